// hooks/mountat-hook run directly, as a runtime would run it, on hand-made states and bundles.
// The hook runs in this test's own (private) mount namespace, so its mounts can be inspected.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseJson } from './helpers/checked.js';
import { HOOK } from './helpers/oci.js';
import { busyboxRoot, coverPoints, coversHere, mountTable, mountsUnder, procCoversHere, removeTree, scratchDir } from './helpers/roots.js';
import { PROC_COVERS } from '../src/mounts/index.js';

let bundle: string;
let state: string;
beforeEach(() => {
  bundle = scratchDir('mountat-hookbundle-');
  state = scratchDir('mountat-hookstate-');
  const rootfs = busyboxRoot();
  spawnSync('mv', [rootfs, join(bundle, 'rootfs')]);
  writeConfig({ ociVersion: '1.0.2', root: { path: 'rootfs' } });
});
afterEach(() => {
  removeTree(bundle);
  removeTree(state);
});

function writeConfig(config: unknown): void {
  writeFileSync(join(bundle, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
}

function hook(args: string[], input: unknown, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(HOOK, args, { input: typeof input === 'string' ? input : JSON.stringify(input), encoding: 'utf8', env });
}

const stateFor = (extra: object = {}) => ({ ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 1, bundle, ...extra });

describe('createContainer then poststop', () => {
  it("mounts into config.json's root.path and cleans up from the record", () => {
    const before = mountTable();
    const mounted = hook(['createContainer', '--state-dir', state], stateFor());
    expect(mounted.stderr).toBe('');
    // proc and sysfs are hardened by default: the summary counts their covers, which are submounts of them.
    const readOnly = procCoversHere().filter((name) => PROC_COVERS.find((spec) => spec.name === name)?.how === 'readonly').length;
    const masked = procCoversHere().length - readOnly;
    const sysfsCovers = coversHere('sysfs').length;
    expect(mounted.stdout).toBe(
      `mounted proc on /proc (hardened: ${readOnly} read-only, ${masked} masked), sysfs on /sys (hardened: 0 read-only, ${sysfsCovers} masked), tmpfs on /tmp in ${bundle}/rootfs\n`,
    );
    const rootfs = join(bundle, 'rootfs');
    expect(mountsUnder(rootfs)).toEqual([
      join(rootfs, 'proc'),
      ...coverPoints('proc', join(rootfs, 'proc')),
      join(rootfs, 'sys'),
      ...coverPoints('sysfs', join(rootfs, 'sys')),
      join(rootfs, 'tmp'),
    ]);
    expect(readdirSync(state)).toEqual(['oci-c1.json']);

    const cleaned = hook(['poststop', '--state-dir', state], stateFor({ status: 'stopped' }));
    expect(cleaned.stderr).toBe('');
    expect(cleaned.stdout).toBe(`unmounted tmp, sys, proc (with ${procCoversHere().length + sysfsCovers} covers); removed directories tmp, sys, proc\n`);
    expect(mountTable()).toBe(before);
    expect(readdirSync(state)).toEqual([]);
    expect(readdirSync(join(bundle, 'rootfs')).sort()).toEqual(['bin', 'usr']);

    const again = hook(['poststop', '--state-dir', state], stateFor({ status: 'stopped' }));
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('nothing recorded for container c1\n');
  });

  it("uses crun's state.root (relative to the bundle) without reading config.json", () => {
    writeConfig('not json at all');
    const mounted = hook(['createContainer', '--state-dir', state], stateFor({ pid: 0, root: 'rootfs', annotations: { 'org.mountat.mounts': 'tmp' } }));
    expect(mounted.stderr).toBe('');
    expect(mountsUnder(join(bundle, 'rootfs'))).toEqual([join(bundle, 'rootfs', 'tmp')]);
    expect(hook(['poststop', '--state-dir', state], stateFor({ root: 'rootfs' })).status).toBe(0);
    expect(mountsUnder(join(bundle, 'rootfs'))).toEqual([]);
  });

  it("takes the operator's plan file, binds included, and writes pino logs when asked", () => {
    const source = scratchDir('mountat-hooksrc-');
    const plan = join(state, 'plan.json');
    const log = join(state, 'logs', 'hook.log');
    writeFileSync(plan, JSON.stringify({ mounts: [{ target: 'work', kind: 'bind', source }] }));
    try {
      const args = ['--state-dir', join(state, 'records'), '--plan', plan, '--log-file', log];
      expect(hook(['createContainer', ...args], stateFor()).stderr).toBe('');
      expect(mountsUnder(join(bundle, 'rootfs'))).toEqual([join(bundle, 'rootfs', 'work')]);
      expect(hook(['poststop', ...args], stateFor()).stderr).toBe('');
      const lines = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => parseJson<{ stage: string; container: string; msg: string; mounts: unknown[] }>(line));
      expect(lines.map((line) => [line.stage, line.container, line.msg])).toEqual([
        ['createContainer', 'c1', 'mounted'],
        ['poststop', 'c1', 'cleaned up'],
      ]);
      expect(lines[0]!.mounts[0]).toMatchObject({ target: 'work', kind: 'bind' });
    } finally {
      removeTree(source);
    }
  });
});

describe('poststop keeps the record unless the rootfs is really gone', () => {
  const mount = () => {
    const mounted = hook(['createContainer', '--state-dir', state], stateFor());
    expect(mounted.stderr).toBe('');
    expect(readdirSync(state)).toEqual(['oci-c1.json']);
  };

  it('drops the record when the rootfs is gone (ENOENT): nothing of ours can be left in it', () => {
    mount();
    // What a runtime's delete does: the mounts went with the container's namespace, then the bundle goes.
    spawnSync('umount', ['-R', join(bundle, 'rootfs', 'proc'), join(bundle, 'rootfs', 'sys'), join(bundle, 'rootfs', 'tmp')]);
    spawnSync('rm', ['-rf', join(bundle, 'rootfs')]);
    const cleaned = hook(['poststop', '--state-dir', state], stateFor({ status: 'stopped' }));
    expect(cleaned.status).toBe(0);
    expect(cleaned.stdout).toMatch(/^rootfs gone, dropped the record \(.*ENOENT.*\)\n$/);
    expect(readdirSync(state)).toEqual([]);
  });

  it('keeps the record and fails when config.json cannot be read as JSON at poststop; cleans up once it can', () => {
    mount();
    writeConfig('{"root": ');
    const failed = hook(['poststop', '--state-dir', state], stateFor({ status: 'stopped' }));
    expect(failed.stderr).toMatch(/^mountat-hook: poststop: config\.json in bundle .* is not JSON: .* \(record kept in .*oci-c1\.json\)\n$/);
    expect(failed.status).toBe(1);
    expect(readdirSync(state)).toEqual(['oci-c1.json']);
    expect(mountsUnder(join(bundle, 'rootfs')).length).toBeGreaterThan(0);
    writeConfig({ ociVersion: '1.0.2', root: { path: 'rootfs' } });
    expect(hook(['poststop', '--state-dir', state], stateFor({ status: 'stopped' })).status).toBe(0);
    expect(mountsUnder(join(bundle, 'rootfs'))).toEqual([]);
    expect(readdirSync(state)).toEqual([]);
  });

  it('keeps the record when the rootfs cannot be opened for want of permission (EACCES), not only when it is gone', () => {
    // The hook as an unprivileged uid, its records its own; the bundle is mode 000, so that uid cannot look inside.
    const records = join(state, 'nobody');
    mkdirSync(records, { mode: 0o700 });
    spawnSync('chmod', ['0755', state]);
    spawnSync('chown', ['65534:65534', records]);
    writeFileSync(join(records, 'oci-c1.json'), `${JSON.stringify({ version: 1, root: { dev: '0:0', ino: '1' }, mounts: [] })}\n`);
    spawnSync('chown', ['65534:65534', join(records, 'oci-c1.json')]);
    spawnSync('chmod', ['0755', join(bundle, '..')]);
    spawnSync('chmod', ['000', bundle]);
    try {
      const result = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', HOOK, 'poststop', '--state-dir', records], {
        input: JSON.stringify(stateFor({ status: 'stopped', root: 'rootfs' })),
        encoding: 'utf8',
        env: {},
      });
      expect(result.stderr).toMatch(/^mountat-hook: poststop: .*EACCES.* \(record kept in .*oci-c1\.json\)\n$/);
      expect(result.status).toBe(1);
      expect(readdirSync(records)).toEqual(['oci-c1.json']);
    } finally {
      spawnSync('chmod', ['0700', bundle]);
    }
  });

  it('does not read --plan at poststop: a plan file broken since createContainer does not block the clean-up', () => {
    const plan = join(bundle, 'plan.json');
    writeFileSync(plan, JSON.stringify({ mounts: [{ target: 'tmp', kind: 'tmpfs' }] }));
    expect(hook(['createContainer', '--state-dir', state, '--plan', plan], stateFor()).stderr).toBe('');
    writeFileSync(plan, '{"mounts": [');
    const cleaned = hook(['poststop', '--state-dir', state, '--plan', plan], stateFor({ status: 'stopped' }));
    expect(cleaned.stderr).toBe('');
    expect(cleaned.stdout).toBe('unmounted tmp; removed directories tmp\n');
    expect(mountsUnder(join(bundle, 'rootfs'))).toEqual([]);
    expect(readdirSync(state)).toEqual([]);
  });
});

describe('bad input: one line on stderr, a non-zero exit, nothing mounted', () => {
  const cases: Array<[string, () => { args: string[]; input: unknown }, number, RegExp]> = [
    ['no stage', () => ({ args: [], input: stateFor() }), 2, /^mountat-hook: no stage given\nusage: mountat-hook STAGE/],
    [
      'an unknown stage',
      () => ({ args: ['create'], input: stateFor() }),
      2,
      /^mountat-hook: unknown stage "create" \(one of prestart, createRuntime, createContainer, startContainer, poststart, poststop\)\n$/,
    ],
    ['an unknown flag', () => ({ args: ['createContainer', '--bogus'], input: stateFor() }), 2, /^mountat-hook: Unknown option '--bogus'/],
    [
      'a stage with nothing to do',
      () => ({ args: ['poststart'], input: stateFor() }),
      2,
      /^mountat-hook: stage poststart: mountat-hook mounts at createContainer .* it has nothing to do at poststart\n$/,
    ],
    [
      'malformed JSON',
      () => ({ args: ['createContainer'], input: '{"ociVersion": "1.0.2", ' }),
      1,
      /^mountat-hook: the container state on stdin is not JSON: .*\n$/,
    ],
    [
      'a missing field',
      () => ({ args: ['createContainer'], input: { ...stateFor(), id: undefined } }),
      1,
      /^mountat-hook: state must have required property 'id'\n$/,
    ],
    [
      'a missing bundle',
      () => ({ args: ['createContainer'], input: stateFor({ bundle: '/nonexistent/bundle' }) }),
      1,
      /^mountat-hook: state\.bundle "\/nonexistent\/bundle": openat2 `\/nonexistent\/bundle`: ENOENT\n$/,
    ],
    [
      'a bad annotation',
      () => ({ args: ['createContainer'], input: stateFor({ annotations: { 'org.mountat.mounts': 'proc,nfs' } }) }),
      1,
      /^mountat-hook: annotation org\.mountat\.mounts="proc,nfs": unknown mount "nfs" \(known: proc, sys, tmp\)\n$/,
    ],
    [
      'prestart without a pid',
      () => ({ args: ['prestart'], input: stateFor({ pid: 0 }) }),
      1,
      /^mountat-hook: stage prestart: the state has no container pid \(got 0\), so its namespace cannot be entered; run the hook at createContainer\n$/,
    ],
    [
      'a missing plan file',
      () => ({ args: ['createContainer', '--plan', '/nonexistent/plan.json'], input: stateFor() }),
      1,
      /^mountat-hook: --plan \/nonexistent\/plan\.json: ENOENT\n$/,
    ],
  ];
  it.each(cases)('%s', (_name, make, code, message) => {
    const before = mountTable();
    const { args, input } = make();
    const result = hook([...args, ...(args.length ? ['--state-dir', state] : [])], input);
    expect(result.stderr).toMatch(message);
    expect(result.status).toBe(code);
    expect(mountTable()).toBe(before);
    expect(readdirSync(state)).toEqual([]);
  });

  const configCases: Array<[string, () => void, RegExp]> = [
    [
      'a missing config.json',
      () => spawnSync('rm', [join(bundle, 'config.json')]),
      /^mountat-hook: cannot read config\.json in bundle .*: openat2 `config\.json`: ENOENT\n$/,
    ],
    [
      'config.json as a symlink out of the bundle',
      () => (spawnSync('rm', [join(bundle, 'config.json')]), symlinkSync('/etc/passwd', join(bundle, 'config.json'))),
      /^mountat-hook: cannot read config\.json in bundle .*: openat2 `config\.json`: EXDEV\n$/,
    ],
    ['malformed config.json', () => writeConfig('{"root": '), /^mountat-hook: config\.json in bundle .* is not JSON: /],
    [
      'config.json without root',
      () => writeConfig({ ociVersion: '1.0.2' }),
      /^mountat-hook: config\.json in bundle .*: config must have required property 'root'\n$/,
    ],
    [
      'a root.path that escapes',
      () => (
        mkdirSync(join(bundle, '..', `${bundle.split('/').pop()}-outside`)),
        writeConfig({ ociVersion: '1.0.2', root: { path: `../${bundle.split('/').pop()}-outside` } })
      ),
      /^mountat-hook: config\.json root\.path "\.\.\/.*-outside" escapes the bundle .*\n$/,
    ],
    [
      'a root.path that is a symlink out',
      () => (symlinkSync('/', join(bundle, 'evil-root')), writeConfig({ ociVersion: '1.0.2', root: { path: 'evil-root' } })),
      /^mountat-hook: config\.json root\.path "evil-root" escapes the bundle/,
    ],
  ];
  it.each(configCases)('%s', (_name, arrange, message) => {
    arrange();
    const before = mountTable();
    const result = hook(['createContainer', '--state-dir', state], stateFor());
    expect(result.stderr).toMatch(message);
    expect(result.status).toBe(1);
    expect(mountTable()).toBe(before);
    spawnSync('rm', ['-rf', join(bundle, '..', `${bundle.split('/').pop()}-outside`)]);
  });

  it("rolls back earlier mounts when a later one fails, with the kernel's reason", () => {
    const before = mountTable();
    // The operator's plan file: an annotation may not put a proc at p2 (it is refused before
    // anything is mounted, src/oci/annotations.test.ts); the kernel's refusal is what is tested.
    const plan = join(bundle, 'plan.json');
    writeFileSync(
      plan,
      JSON.stringify({
        mounts: [
          { target: 'proc', kind: 'proc' },
          { target: 'tmp', kind: 'tmpfs' },
          { target: 'p2', kind: 'proc', options: { hidepid: 'bogus' } },
        ],
      }),
    );
    const result = hook(['createContainer', '--state-dir', state, '--plan', plan], stateFor());
    expect(result.stderr).toBe('mountat-hook: mount proc on `p2`: fsconfig: EINVAL (proc: unknown value of hidepid - bogus)\n');
    expect(result.status).toBe(1);
    expect(mountTable()).toBe(before);
    expect(readdirSync(join(bundle, 'rootfs')).sort()).toEqual(['bin', 'usr']);
    expect(readdirSync(state)).toEqual([]);
  });
});

describe('the launcher', () => {
  it('starts node with its own minimal environment, whatever it was given', () => {
    const evil = scratchDir('mountat-evil-');
    try {
      writeFileSync(join(evil, 'evil.js'), `require('fs').writeFileSync(${JSON.stringify(join(evil, 'ran'))}, 'x')`);
      const result = hook(['poststop', '--state-dir', state], stateFor(), { NODE_OPTIONS: `--require=${join(evil, 'evil.js')}`, NODE_PATH: evil, PATH: evil });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(readdirSync(evil)).toEqual(['evil.js']);
    } finally {
      removeTree(evil);
    }
  });
});
