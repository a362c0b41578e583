// An action without a PID namespace can leave processes in its process group. They are killed
// as the starter ends, before it is reaped, by whoever reaps it (this process for an executed
// starter, the starter server for a served one): after the reap the starter's pid, and so the
// group's id, may be given to another action's starter, which a later SIGKILL of -pid would hit.
// What a test can show: by the time `ended` resolves, with nothing else called, the
// leftover is gone, both ways; and a served starter is still signalled (through its pidfd).
// That the kill comes before the reap is the code's order (starter.ts, reap_starters in
// native/starter/server.c), which no test can watch without forcing a pid to be reused.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownCapabilities, probePivotRoot } from '../src/linux/index.js';
import type { StartedAction, StarterServer } from '../src/sandbox/index.js';
import { asExpected } from './helpers/checked.js';
import { busyboxRoot, openDir, removeTree, repo, scratchDir } from './helpers/roots.js';

// The built sandbox: its STARTER_PATH is the built starter beside it (dist/mountat-action).
const {
  prepareIsolation,
  SANDBOX_DEFAULTS,
  StartedAction: Started,
  STARTER_PATH,
  StarterServer: Server,
} = asExpected<typeof import('../src/sandbox/index.js')>(await import(join(repo, 'dist', 'sandbox', 'index.js')));

let root: string;
let out: string;
let server: StarterServer;
beforeAll(() => {
  root = busyboxRoot();
  // As bb_worker gives input roots their character devices: sh runs `cmd &` with stdin from /dev/null.
  mkdirSync(join(root, 'dev'));
  execFileSync('mknod', ['-m', '666', join(root, 'dev', 'null'), 'c', '1', '3']);
  out = scratchDir('mountat-leftovers-');
  server = new Server(STARTER_PATH);
});
afterAll(() => {
  server.close();
  removeTree(root);
  removeTree(out);
});

const alive = (mark: string) => spawnSync('pgrep', ['-f', mark]).status === 0;

function start(script: string, served: boolean, name: string): StartedAction {
  const { isolation } = prepareIsolation(
    {
      rooted: true,
      pidNamespace: false,
      network: 'host',
      capabilities: SANDBOX_DEFAULTS.capabilities,
      runAs: undefined,
      userNamespaces: false,
      allowSyscalls: [],
    },
    { own: ownCapabilities(), pivotRoot: probePivotRoot(), procPidns: false },
    'the test',
  );
  const stdout = openSync(join(out, `${name}.out`), 'w');
  try {
    using rootFd = openDir(root);
    const started = new Started({
      argv: ['/bin/sh', '-c', script],
      env: { PATH: '/bin' },
      root: rootFd,
      workingDirectory: '.',
      stdout,
      stderr: stdout,
      isolation,
      server: served ? server : undefined,
    });
    started.open();
    return started;
  } finally {
    closeSync(stdout);
  }
}

describe('leftovers of an action without a PID namespace', () => {
  for (const served of [false, true]) {
    const way = served ? 'served' : 'executed';
    it(`are killed as the ${way} starter ends, with nothing else called`, async () => {
      const mark = `sleep 79.${served ? 2 : 1}`;
      const started = start(`${mark} & echo left; exit 3`, served, way);
      const end = await started.ended;
      expect(end).toMatchObject({ kind: 'exited', code: 3 });
      expect(readFileSync(join(out, `${way}.out`), 'utf8')).toBe('left\n');
      // The server reaps (and so kills) on its SIGCHLD, a moment after the status pipe closed.
      for (let i = 0; i < 100 && alive(mark); i++) await new Promise((r) => setTimeout(r, 10));
      expect(alive(mark)).toBe(false);
    });
  }

  it('a served starter is still signalled (kill() through its pidfd), and its group goes with it', async () => {
    const mark = 'sleep 79.3';
    const started = start(`${mark} & echo up; exec sleep 79.4`, true, 'signalled');
    await started.pid;
    // Once sh has printed `up`, the leftover has been forked (`&` comes before the echo): the kill
    // below must reach a process that really is there.
    const up = () => readFileSync(join(out, 'signalled.out'), 'utf8') === 'up\n' && alive('sleep 79.4');
    for (let i = 0; i < 200 && !up(); i++) await new Promise((r) => setTimeout(r, 10));
    expect([up(), alive(mark)]).toEqual([true, true]);
    started.kill();
    const end = await started.ended;
    expect(end.kind).not.toBe('exited');
    for (let i = 0; i < 100 && (alive(mark) || alive('sleep 79.4')); i++) await new Promise((r) => setTimeout(r, 10));
    expect([alive(mark), alive('sleep 79.4')]).toEqual([false, false]);
  });
});
