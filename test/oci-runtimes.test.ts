// The hook under the real runc and crun: a busybox container whose config.json has no proc,
// sysfs or tmp of its own gets them from the hook, and nothing is left afterwards.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundlesRemovedAfterEach, listing, runContainer, RUNTIMES, setHooks, standardHooks } from './helpers/oci.js';
import { mountTable, scratchDir } from './helpers/roots.js';

const PROBE = [
  'readlink /proc/self/exe',
  'echo "pids: $(ls /proc | grep -c "^[0-9]")"',
  'mkdir /sys/x 2>&1 | sed "s/.*: //"',
  'echo written > /tmp/file && cat /tmp/file',
  'dd if=/dev/zero of=/tmp/big bs=1024 count=2048 2>&1 | grep -o "No space left on device" | head -1',
].join('; ');

const bundleWith = bundlesRemovedAfterEach();

describe.each(RUNTIMES)('%s with mountat-hook at createContainer and poststop', (runtime) => {
  it('gives the container a working /proc, a read-only /sys and a capped /tmp, and leaves nothing', () => {
    const testTable = mountTable();
    const bundle = bundleWith({ args: ['/bin/sh', '-c', PROBE], annotations: { 'org.mountat.tmp.size': '1m' } });
    setHooks(bundle, standardHooks(bundle));
    const before = listing(bundle.dir);
    const run = runContainer(runtime, bundle, `ok-${runtime}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('/bin/busybox');
    // Only the container's own processes: sh, ls and grep at most.
    expect(Number(lines[1]?.replace('pids: ', ''))).toBeLessThanOrEqual(4);
    expect(lines.slice(2)).toEqual(['Read-only file system', 'written', 'No space left on device']);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(mountTable()).toBe(testTable);
    expect(listing(bundle.dir)).toEqual(before);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });

  it('fails the container on a bad annotation, with our message, mounting nothing', () => {
    const bundle = bundleWith({ args: ['/bin/true'], annotations: { 'org.mountat.tmp.size': 'lots' } });
    const hookErr = join(bundle.dir, '..', `${bundle.dir.split('/').pop()}-hook.err`);
    // crun shows hook output only where this annotation points.
    setHooks(bundle, standardHooks(bundle), { 'run.oci.hooks.stderr': hookErr });
    const before = listing(bundle.dir);
    const run = runContainer(runtime, bundle, `bad-${runtime}`);
    expect(run.status).not.toBe(0);
    const message = 'mountat-hook: annotation org.mountat.tmp.size="lots": expected a value like "64m"';
    // runc quotes the hook's stderr inside its own logfmt message.
    if (runtime === 'runc') expect(run.stderr.replace(/\\"/g, '"')).toContain(message);
    else {
      expect(readFileSync(hookErr, 'utf8')).toContain(message);
      rmSync(hookErr);
    }
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(listing(bundle.dir)).toEqual(before);
  });

  it("mounts from prestart by entering the container's namespaces", () => {
    const bundle = bundleWith({ args: ['/bin/sh', '-c', PROBE] });
    const hooks = standardHooks(bundle)!;
    setHooks(bundle, {
      prestart: [{ ...hooks.createContainer![0]!, args: ['mountat-hook', 'prestart', '--state-dir', bundle.stateDir] }],
      poststop: hooks.poststop,
    });
    const before = listing(bundle.dir);
    const run = runContainer(runtime, bundle, `pre-${runtime}`);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('/bin/busybox');
    expect(Number(lines[1]?.replace('pids: ', ''))).toBeLessThanOrEqual(4);
    expect(lines[2]).toBe('Read-only file system');
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(listing(bundle.dir)).toEqual(before);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });
});

describe.each(RUNTIMES)('%s: what a container may ask of the hook is bounded, and its proc is hardened', (runtime) => {
  // The creator of a container sets its annotations: a plan there that would give it a second,
  // bare proc, a writable sysfs or a tmpfs of a thousand times the RAM fails the container.
  const plan = (...mounts: object[]) => JSON.stringify({ mounts });
  const refused: Array<[string, string, string]> = [
    [
      'a second proc at host-proc',
      plan({ target: 'proc', kind: 'proc' }, { target: 'host-proc', kind: 'proc', hardened: false }),
      'plan.mounts[1] ("host-proc"): target: an untrusted plan may mount proc only at "proc"',
    ],
    [
      'a read-write sysfs',
      plan({ target: 'proc', kind: 'proc' }, { target: 'sys', kind: 'sysfs', attributes: { readOnly: false } }),
      'plan.mounts[1] ("sys"): attributes.readOnly: an untrusted plan may not turn off what sysfs has on by default (readOnly, nosuid, nodev, noexec)',
    ],
    [
      'a tmpfs of size=100000%',
      plan({ target: 'proc', kind: 'proc' }, { target: 'tmp', kind: 'tmpfs', options: { size: '100000%' } }),
      'plan.mounts[1] ("tmp"): options.size: "100000%" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
  ];
  it.each(refused)("refuses %s: the container fails with the hook's one line, nothing mounted, no record", (_name, annotationPlan, why) => {
    const testTable = mountTable();
    const bundle = bundleWith({ args: ['/bin/true'], annotations: { 'org.mountat.plan': annotationPlan } });
    const hookErr = join(bundle.dir, '..', `${bundle.dir.split('/').pop()}-hook.err`);
    setHooks(bundle, standardHooks(bundle), { 'run.oci.hooks.stderr': hookErr });
    const before = listing(bundle.dir);
    const run = runContainer(runtime, bundle, `bounded-${runtime}`);
    expect(run.status).not.toBe(0);
    const message = `mountat-hook: annotation org.mountat.plan: ${why}`;
    if (runtime === 'runc') expect(run.stderr.replace(/\\"/g, '"')).toContain(`${message}\\n`);
    else {
      expect(readFileSync(hookErr, 'utf8')).toBe(`${message}\n`);
      rmSync(hookErr);
    }
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(mountTable()).toBe(testTable);
    expect(listing(bundle.dir)).toEqual(before);
    expect(existsSync(bundle.stateDir) ? readdirSync(bundle.stateDir) : []).toEqual([]);
  });

  // Root in the container, with the runtime's own masks taken away: what it sees of /proc is
  // the hook's doing. The drop_caches write fails on the read-only cover (were it writable, it
  // would only drop the host's page cache); hostname is the container's own UTS namespace's.
  const probeProc = (writeDropCaches: boolean) =>
    [
      'id -u',
      writeDropCaches ? '(echo 1 > /proc/sys/vm/drop_caches && echo written) 2>&1 | sed "s/.*: //"' : 'echo not written',
      '(echo probed > /proc/sys/kernel/hostname && echo written) 2>&1 | sed "s/.*: //"; hostname',
      'if [ -e /proc/kcore ]; then echo "kcore $(wc -c < /proc/kcore)"; else echo "kcore absent"; fi',
      'echo "timer_list $(wc -c < /proc/timer_list)"',
      'cut -d" " -f5,6 /proc/self/mountinfo | grep "^/proc/sys "',
    ].join('; ');
  it('gives root in the container a read-only /proc/sys and an empty /proc/kcore and /proc/timer_list by default', () => {
    const bundle = bundleWith({ args: ['/bin/sh', '-c', probeProc(true)], runtimeProcCovers: false });
    setHooks(bundle, standardHooks(bundle));
    const run = runContainer(runtime, bundle, `hardened-${runtime}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const [uid, dropCaches, hostnameWrite, hostname, kcore, timerList, sysMount] = run.stdout.trim().split('\n');
    expect(uid).toBe('0');
    expect(dropCaches).toBe('Read-only file system');
    expect([hostnameWrite, hostname]).toEqual(['Read-only file system', 'runc']);
    // This test machine's kernel has no /proc/kcore; on one that has it, it must read empty.
    expect(kcore).toBe(existsSync('/proc/kcore') ? 'kcore 0' : 'kcore absent');
    expect(timerList).toBe('timer_list 0');
    expect(sysMount).toMatch(/^\/proc\/sys ro,nosuid,nodev,noexec,/);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });

  it("leaves /proc bare only where the operator's plan says hardened: false (the control of the test above)", () => {
    // drop_caches is not written here: it would work, and drop the host's page cache.
    const bundle = bundleWith({ args: ['/bin/sh', '-c', probeProc(false)], runtimeProcCovers: false });
    const planFile = join(bundle.dir, '..', `${bundle.dir.split('/').pop()}-plan.json`);
    writeFileSync(planFile, plan({ target: 'proc', kind: 'proc', hardened: false }));
    try {
      setHooks(bundle, standardHooks(bundle, ['--plan', planFile]));
      const run = runContainer(runtime, bundle, `bare-${runtime}`);
      expect(run.stderr).toBe('');
      const [uid, notWritten, hostnameWrite, hostname, , timerList, sysMount] = run.stdout.trim().split('\n');
      expect([uid, notWritten]).toEqual(['0', 'not written']);
      expect([hostnameWrite, hostname]).toEqual(['written', 'probed']);
      expect(timerList).not.toBe('timer_list 0');
      expect(sysMount).toBeUndefined();
      expect(run.tableAfter).toBe(run.tableBefore);
    } finally {
      rmSync(planFile);
    }
  });
});

describe("the hook cannot be steered by the container's environment", () => {
  it('ignores NODE_OPTIONS and LD_PRELOAD that runc hands a createContainer hook without env', () => {
    const evil = scratchDir('mountat-evil-');
    try {
      const markers = join(evil, 'markers');
      execFileSync('mkdir', [markers]);
      writeFileSync(join(evil, 'evil.js'), `require('fs').writeFileSync(${JSON.stringify(join(markers, 'node-options'))}, 'ran');\n`);
      writeFileSync(
        join(evil, 'evil.c'),
        `#include <stdio.h>\n#include <errno.h>\nextern char *program_invocation_short_name;\n` +
          `__attribute__((constructor)) static void evil(void) { char p[512]; snprintf(p, sizeof p, "${markers}/preload-%s", program_invocation_short_name); FILE *f = fopen(p, "w"); if (f) fclose(f); }\n`,
      );
      execFileSync('cc', ['-shared', '-fPIC', '-o', join(evil, 'evil.so'), join(evil, 'evil.c')]);
      const bundle = bundleWith({
        args: ['/bin/sh', '-c', 'readlink /proc/self/exe'],
        env: [`NODE_OPTIONS=--require=${join(evil, 'evil.js')}`, `LD_PRELOAD=${join(evil, 'evil.so')}`],
      });
      const control = join(evil, 'control.sh');
      writeFileSync(control, `#!/bin/sh\nenv > ${join(evil, 'control.env')}\n`, { mode: 0o755 });
      const hooks = standardHooks(bundle)!;
      // No env on the createContainer entries: runc 1.1 then passes the container's.
      setHooks(bundle, {
        createContainer: [{ path: control, args: ['control.sh'] }, { args: hooks.createContainer![0]!.args }],
        poststop: hooks.poststop,
      });
      const run = runContainer('runc', bundle, 'steer');
      expect(run.stdout).toBe('/bin/busybox\n');
      expect(run.status).toBe(0);
      // The attack was live: the control hook (a dynamic /bin/sh running env) got both, and
      // both its processes were preloaded; nothing of ours (mountat-hook, node) was.
      expect(readFileSync(join(evil, 'control.env'), 'utf8')).toMatch(/^NODE_OPTIONS=--require=/m);
      expect(readdirSync(markers).sort()).toEqual(['preload-env', 'preload-sh']);
      expect(existsSync(join(markers, 'node-options'))).toBe(false);
    } finally {
      rmSync(evil, { recursive: true, force: true });
    }
  });
});
