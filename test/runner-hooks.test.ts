// The runner delegating its setup and teardown to hooks, its shutdown, and its config errors.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { asExpected, parseJson } from './helpers/checked.js';
import { mountat } from './helpers/cli.js';
import { HOOK } from './helpers/oci.js';
import { actionPlanMounts, defaultPlanMountCount, processWith, mountTable, mountsUnder, removeTree, repo, scratchDir } from './helpers/roots.js';
import { freePort, makeAction, requestFor, run, startRunner } from './helpers/runner.js';

describe('hooks around each action', () => {
  it('fails the action with FAILED_PRECONDITION when a prestart hook fails, and still tears down', async () => {
    const dir = scratchDir('mountat-runner-');
    const failing = join(dir, 'failing-hook');
    writeFileSync(failing, '#!/bin/sh\ncat > /dev/null\necho "quota service unreachable" >&2\nexit 4\n', { mode: 0o755 });
    const table = mountTable();
    const runner = await startRunner({ hooks: { prestart: ['mountat', { path: failing, args: ['failing-hook'] }], poststop: ['mountat'] } }, dir);
    try {
      makeAction(runner.build, 'f');
      await expect(run(runner.client, requestFor('f', 'echo ran > /tmp/ran'))).rejects.toMatchObject({
        code: status.FAILED_PRECONDITION,
        details: `setting up the action failed: prestart hook #1 (${failing}) exited with status 4: quota service unreachable`,
      });
      expect(readdirSync(join(runner.build, 'f', 'tmp'))).toEqual([]);
      expect(mountTable()).toBe(table);
      expect(readdirSync(join(runner.build, 'f', 'root')).sort()).toEqual(['bin', 'usr']);
    } finally {
      await runner.stop();
      removeTree(dir);
    }
  });

  it("keeps the setup failure's reason in the status when the teardown fails too, and adds the teardown's", async () => {
    const dir = scratchDir('mountat-runner-');
    const failing = join(dir, 'failing-setup');
    writeFileSync(failing, '#!/bin/sh\ncat > /dev/null\necho "quota service unreachable" >&2\nexit 4\n', { mode: 0o755 });
    const failingTeardown = join(dir, 'failing-teardown');
    writeFileSync(failingTeardown, '#!/bin/sh\ncat > /dev/null\necho "cache flush failed" >&2\nexit 5\n', { mode: 0o755 });
    const runner = await startRunner(
      { hooks: { prestart: [{ path: failing, args: ['failing-setup'] }], poststop: [{ path: failingTeardown, args: ['failing-teardown'] }] } },
      dir,
    );
    try {
      makeAction(runner.build, 'st');
      await expect(run(runner.client, requestFor('st', 'true'))).rejects.toMatchObject({
        code: status.FAILED_PRECONDITION,
        details: `setting up the action failed: prestart hook #0 (${failing}) exited with status 4: quota service unreachable; tearing down the action failed too: poststop hook #0 (${failingTeardown}) exited with status 5: cache flush failed`,
      });
    } finally {
      await runner.stop();
      removeTree(dir);
    }
  });

  it('undoes the built-in hook\'s mounts without "mountat" in poststop, after the last poststop hook', async () => {
    const dir = scratchDir('mountat-runner-');
    // The poststop hook sees the directory made for the action's proc still there: the setup is
    // undone after it. (Its mounts were on a detached copy of the root, in the action's namespace.)
    const seen = join(dir, 'seen');
    const poststop = join(dir, 'poststop-hook');
    writeFileSync(poststop, `#!/bin/sh\ncat > /dev/null\ntest -d /proc/self/fd/3/proc && echo there > ${seen} || echo gone > ${seen}\n`, { mode: 0o755 });
    const table = mountTable();
    const runner = await startRunner({ hooks: { prestart: ['mountat'], poststop: [{ path: poststop, args: ['poststop-hook'] }] } }, dir);
    try {
      makeAction(runner.build, 'p');
      const response = await run(runner.client, requestFor('p', 'test -e /proc/self/exe'));
      expect(response.exitCode).toBe('0');
      expect(readFileSync(seen, 'utf8')).toBe('there\n');
      expect(mountsUnder(runner.build)).toEqual([]);
      expect(mountTable()).toBe(table);
      expect(readdirSync(join(runner.build, 'p', 'root')).sort()).toEqual(['bin', 'usr']);
    } finally {
      await runner.stop();
      removeTree(dir);
    }
  });

  it('leaves no record when its own mounting fails and rolls back whole', async () => {
    const runner = await startRunner();
    try {
      makeAction(runner.build, 'bad');
      // proc and sys are made, then tmp is refused (a symlink where it should mount): all undone.
      symlinkSync('/etc', join(runner.build, 'bad', 'root', 'tmp'));
      await expect(run(runner.client, requestFor('bad', 'true'))).rejects.toMatchObject({
        code: status.FAILED_PRECONDITION,
        details: expect.stringMatching(/^setting up the action failed: built-in mountat prestart hook: resolve `tmp`: openat2: ELOOP/) as unknown,
      });
      expect(mountsUnder(runner.build)).toEqual([]);
      expect(readdirSync(join(runner.build, 'bad', 'root')).sort()).toEqual(['bin', 'tmp', 'usr']);
      expect(readdirSync(join(runner.dir, 'state'))).toEqual(['runner.lock']);
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });

  it('hands external hooks the state and the input root as fd 3: mountat-hook can do the mounting', async () => {
    const dir = scratchDir('mountat-runner-');
    const records = join(dir, 'hook-records');
    const seen = join(dir, 'seen-state');
    const spy = join(dir, 'spy-hook');
    writeFileSync(spy, `#!/bin/sh\ncat > ${seen}\necho >> ${seen}\necho "fd=$MOUNTAT_FD_ROOT $(ls /proc/self/fd/3/bin | grep -c busybox)" >> ${seen}\n`, {
      mode: 0o755,
    });
    const table = mountTable();
    const runner = await startRunner(
      {
        hooks: {
          prestart: [
            { path: spy, args: ['spy'] },
            { path: HOOK, args: ['mountat-hook', 'createContainer', '--root-fd', '3', '--proc-pidns', '--state-dir', records], env: ['PATH=/usr/bin:/bin'] },
          ],
          poststop: [{ path: HOOK, args: ['mountat-hook', 'poststop', '--root-fd', '3', '--state-dir', records], env: ['PATH=/usr/bin:/bin'] }],
        },
        temporaryDirectoryMount: null,
      },
      dir,
    );
    try {
      makeAction(runner.build, 'h');
      const response = await run(
        runner.client,
        requestFor('h', 'readlink /proc/self/exe; echo "pids: $(ls /proc | grep -c "^[0-9]")"; echo x > /tmp/y && echo tmp-ok'),
      );
      expect(response.exitCode).toBe('0');
      const out = readFileSync(join(runner.build, 'h', 'stdout'), 'utf8').split('\n');
      expect(out[0]).toBe('/bin/busybox');
      expect(Number(out[1]?.replace('pids: ', ''))).toBeLessThanOrEqual(5);
      expect(out[2]).toBe('tmp-ok');
      const [stateLine, fdLine] = readFileSync(seen, 'utf8').split('\n');
      const state = parseJson<{ pid: number }>(stateLine!);
      expect(state).toMatchObject({
        id: 'h',
        status: 'creating',
        bundle: runner.build,
        annotations: { 'mountat.runner.input_root_directory': 'h/root', 'mountat.runner.stdout_path': 'h/stdout' },
      });
      expect(state.pid).toBeGreaterThan(1);
      expect(fdLine).toBe('fd=3 1');
      expect(mountTable()).toBe(table);
      expect(readdirSync(records)).toEqual([]);
    } finally {
      await runner.stop();
      removeTree(dir);
    }
  });
});

describe('shutdown', () => {
  it('cancels an in-flight action on SIGTERM, tears it down and exits 0', async () => {
    const table = mountTable();
    const runner = await startRunner();
    makeAction(runner.build, 's');
    const pending = run(runner.client, requestFor('s', 'echo started; exec sleep 64.5')).then(
      () => 'answered',
      (error: unknown) => asExpected<{ code: number }>(error).code,
    );
    // A failed check here must not leave the runner (and its action) running: stop() is idempotent.
    await processWith('sleep 64.5')
      .then((pid) => expect(actionPlanMounts(pid)).toHaveLength(defaultPlanMountCount()))
      .catch(async (error: unknown) => {
        await runner.stop('SIGKILL');
        throw error;
      });
    const code = await runner.stop('SIGTERM');
    expect(await pending).toBe(status.CANCELLED);
    expect(code).toBe(0);
    expect(mountTable()).toBe(table);
    expect(spawnSync('pgrep', ['-f', 'sleep 64.5']).status).toBe(1);
    expect(runner.output()).toMatch(/"runner stopped"/);
    removeTree(runner.dir);
  });
});

describe('shutdown with a hung client', () => {
  it('exits 0 on SIGTERM although a client holding a connection is frozen', async () => {
    const runner = await startRunner();
    const client = spawn(process.execPath, [join(repo, 'test', 'fixtures', 'idle-client.mjs'), runner.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        client.stdout.once('data', () => resolve());
        client.once('exit', (code) => reject(new Error(`client exited ${code}`)));
      });
      // Frozen with its connection open, it will never answer the server's GOAWAY.
      client.kill('SIGSTOP');
      const began = Date.now();
      expect(await runner.stop('SIGTERM')).toBe(0);
      expect(runner.output()).toMatch(/"clients did not close their connections: closing them"/);
      expect(runner.output()).toMatch(/"runner stopped"/);
      // The 2 s grace, not a hang: generous bound, as the machine may be busy.
      expect(Date.now() - began).toBeLessThan(15_000);
    } finally {
      client.kill('SIGKILL');
      removeTree(runner.dir);
    }
  });
});

describe('configuration errors', () => {
  it('exits 1 with one line naming the problem', () => {
    const dir = scratchDir('mountat-runner-');
    try {
      const config = join(dir, 'config.json');
      writeFileSync(config, JSON.stringify({ buildDirectoryPath: dir, grpcServers: [{ listenPaths: [join(dir, 's')] }], pidNamespaces: true }));
      const result = mountat(['runner', '--config', config]);
      expect(result.status).toBe(1);
      expect(result.stderr).toBe(`mountat: config file ${config}: config has an unknown field "pidNamespaces"\n`);
      expect(mountat(['runner']).stderr).toMatch(/^mountat: --config FILE is required\n/);
      const missing = mountat(['runner', '--config', join(dir, 'nope.json')]);
      expect(missing.stderr).toBe(`mountat: config file ${join(dir, 'nope.json')}: ENOENT\n`);
    } finally {
      removeTree(dir);
    }
  });
});

describe('bb_runner options', () => {
  it('runs the action as runCommandsAs', async () => {
    const runner = await startRunner({ runCommandsAs: { userId: 65534, groupId: 65533, additionalGroupIds: [65532] } });
    try {
      makeAction(runner.build, 'u');
      const response = await run(runner.client, requestFor('u', 'id -u; id -g; id -G'));
      expect(response.exitCode).toBe('0');
      expect(readFileSync(join(runner.build, 'u', 'stdout'), 'utf8')).toBe('65534\n65533\n65533 65532\n');
      expect(mountsUnder(runner.build)).toEqual([]);
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });

  it('runs without chroot and without TMPDIR when told to, in the working directory by its fd', async () => {
    // Not rooted, an action would see a socket of the runner's: TCP, with networks of their own (test/listeners.test.ts).
    const runner = await startRunner({
      chrootIntoInputRoot: false,
      setTmpdirEnvironmentVariable: false,
      network: 'none',
      grpcServers: [{ listenAddresses: [`127.0.0.1:${await freePort()}`] }],
    });
    try {
      makeAction(runner.build, 'n');
      const response = await run(
        runner.client,
        requestFor('n', 'pwd; echo "TMPDIR=${TMPDIR-unset}"', { arguments: ['/bin/sh', '-c', 'pwd; echo "TMPDIR=${TMPDIR-unset}"'], workingDirectory: 'usr' }),
      );
      expect(response.exitCode).toBe('0');
      // Not chrooted: the host's /bin/sh ran, in the input root's usr directory.
      expect(readFileSync(join(runner.build, 'n', 'stdout'), 'utf8')).toBe(`${join(runner.build, 'n', 'root', 'usr')}\nTMPDIR=unset\n`);
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });
});
