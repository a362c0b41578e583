// The hook under the real runc and crun: a busybox container whose config.json has no proc,
// sysfs or tmp of its own gets them from the hook, and nothing is left afterwards.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listing, makeBundle, removeBundle, runContainer, RUNTIMES, setHooks, standardHooks, type Bundle } from './helpers/oci.js';
import { mountTable, scratchDir } from './helpers/roots.js';

const PROBE = [
  'readlink /proc/self/exe',
  'echo "pids: $(ls /proc | grep -c "^[0-9]")"',
  'mkdir /sys/x 2>&1 | sed "s/.*: //"',
  'echo written > /tmp/file && cat /tmp/file',
  'dd if=/dev/zero of=/tmp/big bs=1024 count=2048 2>&1 | grep -o "No space left on device" | head -1',
].join('; ');

let bundles: Bundle[] = [];
afterEach(() => {
  for (const bundle of bundles) removeBundle(bundle);
  bundles = [];
});

function bundleWith(options: Parameters<typeof makeBundle>[0]): Bundle {
  const bundle = makeBundle(options);
  bundles.push(bundle);
  return bundle;
}

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

  it('mounts from prestart by entering the container\'s namespaces', () => {
    const bundle = bundleWith({ args: ['/bin/sh', '-c', PROBE] });
    const hooks = standardHooks(bundle)!;
    setHooks(bundle, { prestart: [{ ...hooks.createContainer![0]!, args: ['mountat-hook', 'prestart', '--state-dir', bundle.stateDir] }], poststop: hooks.poststop });
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

describe('the hook cannot be steered by the container\'s environment', () => {
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
