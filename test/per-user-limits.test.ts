// Per-user kernel limits (issue 19, item 4). The kernel counts inotify instances and watches per
// (user namespace, effective uid): without the starter's broker (native/starter/broker.c) an action
// as root used up the host's root's 128 instances, and actions of one runCommandsAs uid each
// other's. Each test holds an action at its limit and checks, while it holds, that the host's root
// (this process) and a second action still have theirs: without the broker each would fail. POSIX
// message queues are bounded instead (native/starter/user-limits.c). Run through a real runner over
// its socket (as root and as runCommandsAs) and through `mountat exec`. The probe is
// test/fixtures/user-limits-probe.c, at /bin/probe in the actions' roots.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureBinary } from './helpers/attacker.js';
import { mountat } from './helpers/cli.js';
import { busyboxRoot, mountsUnder, removeTree, repo, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor, run, runInFullUserland, startRunner, type RunnerProcess } from './helpers/runner.js';

const probe = () => fixtureBinary('user-limits-probe');
const MAX_INSTANCES = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
const MAX_WATCHES = Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8'));
/** The range the brokers' uids are taken from: 2^31 … 2^32-2. */
const BROKER_UIDS = { min: 2 ** 31, max: 2 ** 32 - 2 };

/** The probe run here, as the host's root (or through `setpriv` as another user): its output. */
function host(args: string[], as?: number): string {
  const command = as === undefined ? [probe(), ...args] : ['setpriv', `--reuid=${as}`, `--regid=${as}`, '--clear-groups', probe(), ...args];
  const result = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  return result.stdout.trim();
}

interface Broker {
  pid: number;
  /** Real, effective, saved and filesystem uid. */
  uids: number[];
  capEff: string;
  noNewPrivs: string;
  fds: string[];
}

/** Every live process whose uids are all one uid of the brokers' range: the actions' brokers. */
function brokers(): Broker[] {
  const found: Broker[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status)!.slice(1).map(Number);
      if (!uids.every((uid) => uid >= BROKER_UIDS.min && uid <= BROKER_UIDS.max)) continue;
      const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, 'm').exec(status)?.[1] ?? '';
      found.push({ pid: Number(entry), uids, capEff: field('CapEff'), noNewPrivs: field('NoNewPrivs'), fds: readdirSync(`/proc/${entry}/fd`) });
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

/** Until `path` exists, or `seconds`. */
async function until(path: string, seconds = 10): Promise<void> {
  for (let i = 0; i < seconds * 50 && !existsSync(path); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(existsSync(path), `${path} never appeared`).toBe(true);
}

/** Until no broker is left (a PID namespace's last processes are killed as its init exits). */
async function untilNoBroker(): Promise<void> {
  for (let i = 0; i < 100 && brokers().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(brokers()).toEqual([]);
}

/** What a broker must be: one uid of its own in every slot, no capability, no new privileges, only the listener open. */
function expectUnprivileged(broker: Broker | undefined): void {
  expect(broker).toBeDefined();
  expect(new Set(broker!.uids).size).toBe(1);
  expect(broker!.capEff).toBe('0000000000000000');
  expect(broker!.noNewPrivs).toBe('1');
  expect(broker!.fds).toHaveLength(1);
}

/** What `probe works DIR` prints when the instances behave as the kernel's own. */
const WORKS = [
  'cloexec: yes, nonblock: yes',
  'read with nothing queued: EAGAIN',
  'event: IN_CREATE created',
  'plain: cloexec: no, nonblock: no',
  'inotify_init: cloexec: no, nonblock: no',
  'bad flags: EINVAL',
  'lowest free fd: yes',
  'fd cloexec after exec: closed',
  'fd plain after exec: open',
];

interface Identity {
  name: string;
  config: object;
  uid: number;
  own(dir: string): void;
}
const asRoot: Identity = { name: 'as root', config: {}, uid: 0, own: () => {} };
const asUser: Identity = {
  name: 'as runCommandsAs 4242',
  config: { runCommandsAs: { userId: 4242, groupId: 4242 } },
  uid: 4242,
  own: (dir) => chownSync(dir, 4242, 4242),
};

// Every action of these runners has a tmpfs at /scratch (for the files it watches) besides proc, sys and its tmp.
const MOUNTS = {
  mounts: [
    { target: 'proc', kind: 'proc' },
    { target: 'sys', kind: 'sysfs' },
    { target: 'scratch', kind: 'tmpfs' },
  ],
};

let counter = 0;
/** An action directory with busybox and the probe in its root, its tmp its own. */
function probeAction(runner: RunnerProcess, as: Identity): string {
  const id = `p${++counter}`;
  makeAction(runner.build, id);
  copyFileSync(probe(), join(runner.build, id, 'root', 'bin', 'probe'));
  as.own(join(runner.build, id, 'tmp'));
  return id;
}

/**
 * An action that holds what it made until released: release() (always call it, in a finally: a
 * root action holding root's instances would starve the host) lets it end, and gives its exit code.
 */
function hold(runner: RunnerProcess, id: string, script: string): { release(): Promise<string> } {
  const response = run(runner.client, requestFor(id, script));
  return {
    async release() {
      writeFileSync(join(runner.build, id, 'tmp', 'release'), '');
      return (await response).exitCode;
    },
  };
}

const output = (runner: RunnerProcess, id: string, name = 'stdout') => readFileSync(join(runner.build, id, name), 'utf8');

beforeAll(() => {
  probe();
  // The host's root has its instances before anything here runs (another process may hold some, not all).
  expect(host(['count', '16'])).toBe('count 16');
});

afterAll(async () => {
  await untilNoBroker();
  expect(host(['count', '16'])).toBe('count 16');
});

for (const as of [asRoot, asUser]) {
  describe(`through the runner, ${as.name}`, () => {
    let runner: RunnerProcess;
    beforeAll(async () => {
      runner = await startRunner({ ...as.config, ...MOUNTS });
    });
    afterAll(async () => {
      expect(await runner.stop()).toBe(0);
      expect(mountsUnder(runner.build)).toEqual([]);
      removeTree(runner.dir);
    });

    it("uses up only instances of its own: the host's root and a second action keep theirs", async () => {
      const held = probeAction(runner, as);
      const holding = hold(runner, held, 'probe instances /tmp/ready /tmp/release');
      let code: string | undefined;
      try {
        await until(join(runner.build, held, 'tmp', 'ready'));
        expect(output(runner, held)).toBe(`instances ${MAX_INSTANCES} EMFILE\n`);

        // While it holds every instance it can make: the host's root still makes its own, and so does another action.
        expect(host(['count', '16'])).toBe('count 16');
        const [broker, ...others] = brokers();
        expect(others).toEqual([]);
        expectUnprivileged(broker);
        const second = probeAction(runner, as);
        const response = await run(runner.client, requestFor(second, 'probe count 1000'));
        expect(output(runner, second, 'stderr')).toBe('');
        expect(output(runner, second)).toBe(`count ${MAX_INSTANCES} EMFILE\n`);
        expect(response.exitCode).toBe('0');
      } finally {
        code = await holding.release();
      }
      expect(code).toBe('0');
      // Nothing of it is left: its broker is gone, and its instances with it.
      await untilNoBroker();
      expect(host(['count', '16'])).toBe('count 16');
    });

    it("gets instances that behave as the kernel's own: flags, events, exec, threads", async () => {
      const id = probeAction(runner, as);
      const response = await run(runner.client, requestFor(id, 'probe works /tmp && probe threads 16 /tmp && probe x32 && probe own-listener'));
      expect(output(runner, id, 'stderr')).toBe('');
      // x32: what the kernel answers the host's root (ENOSYS where it runs no x32, as here). A listener of its own:
      // refused, one per filter chain (docs/containment.md says so).
      expect(output(runner, id)).toBe([...WORKS, 'threads 16 of 16', host(['x32']), 'own listener: EBUSY', ''].join('\n'));
      expect(response.exitCode).toBe('0');
    });

    it(`${as.uid === 0 ? 'can kill its broker (CAP_KILL): the next call forks another' : 'cannot signal its broker'}`, async () => {
      const id = probeAction(runner, as);
      const brokersInside = `awk '/^Uid:/ && $2 >= ${BROKER_UIDS.min} { split(FILENAME, p, "/"); print p[3] }' /proc/[0-9]*/status`;
      const script = [
        'probe count 1',
        `before=$(${brokersInside})`,
        'echo "before: $before"',
        'kill -9 $before 2>/tmp/kill-error; echo "kill: $?"',
        'sleep 0.1',
        'probe count 3',
        `echo "after: $(${brokersInside})"`,
      ].join('; ');
      const response = await run(runner.client, requestFor(id, script));
      expect(output(runner, id, 'stderr')).toBe('');
      const [first, before, kill, again, after] = output(runner, id).trim().split('\n');
      expect([first, kill, again]).toEqual(['count 1', `kill: ${as.uid === 0 ? 0 : 1}`, 'count 3']);
      // One broker each time: a new one after the kill, the same one where the kill was refused.
      expect(before).toMatch(/^before: \d+$/);
      expect(after).toMatch(/^after: \d+$/);
      if (as.uid === 0) expect(after!.slice(7)).not.toBe(before!.slice(8));
      else expect(after!.slice(7)).toBe(before!.slice(8));
      expect(response.exitCode).toBe('0');
    });

    it("charges its watches to its own uid: holding all it may add, the host's root and a second action still add theirs", async () => {
      const held = probeAction(runner, as);
      const holding = hold(runner, held, 'mkdir /scratch/w && probe watches /scratch/w /tmp/ready /tmp/release');
      let code: string | undefined;
      try {
        await until(join(runner.build, held, 'tmp', 'ready'), 20);
        expect(output(runner, held)).toBe(`watches ${MAX_WATCHES} ENOSPC\n`);

        expect(host(['watch', runner.dir])).toBe('watch ok');
        const second = probeAction(runner, as);
        await run(runner.client, requestFor(second, 'probe watch /tmp'));
        expect(output(runner, second)).toBe('watch ok\n');
      } finally {
        code = await holding.release();
      }
      expect(code).toBe('0');
      await untilNoBroker();
    });

    it("bounds its POSIX message queues: holding all it may make, the host's user of its uid can still make one", async () => {
      const held = probeAction(runner, as);
      const holding = hold(runner, held, 'grep "^Max msgqueue size" /proc/self/limits && probe queues /tmp/ready /tmp/release');
      let code: string | undefined;
      try {
        await until(join(runner.build, held, 'tmp', 'ready'));
        const [limit, queues] = output(runner, held).trim().split('\n');
        expect(limit).toMatch(/^Max msgqueue size\s+409600\s+409600\s+bytes\s*$/);
        // 4 of the default size (10 x 8 KiB and the kernel's bookkeeping, 82400 bytes here) fit;
        // fewer if the host's root holds queues of its own.
        if (as.uid === 0) expect(queues).toMatch(/^queues [0-4] EMFILE$/);
        else expect(queues).toBe('queues 4 EMFILE');
        // The host's processes have the kernel's default limit (819200 bytes): half is theirs whatever actions hold.
        expect(host(['queue'], as.uid === 0 ? undefined : as.uid)).toBe('queue ok');
      } finally {
        code = await holding.release();
      }
      expect(code).toBe('0');
    });
  });
}

describe('without a PID namespace (pidNamespace: false): no init, no broker', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner({ ...asUser.config, pidNamespace: false });
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it('still gets working instances', async () => {
    const id = probeAction(runner, asUser);
    const response = await run(runner.client, requestFor(id, 'probe works /tmp && probe threads 16 /tmp && probe own-listener'));
    expect(output(runner, id, 'stderr')).toBe('');
    expect(output(runner, id)).toBe([...WORKS, 'threads 16 of 16', 'own listener: ok', ''].join('\n'));
    expect(response.exitCode).toBe('0');
  });

  it("charges them to the uid it runs as, as docs/containment.md says: the host's 4242 has none left while it holds them", async () => {
    const held = probeAction(runner, asUser);
    const holding = hold(runner, held, 'probe instances /tmp/ready /tmp/release');
    let code: string | undefined;
    try {
      await until(join(runner.build, held, 'tmp', 'ready'));
      expect(output(runner, held)).toBe(`instances ${MAX_INSTANCES} EMFILE\n`);
      expect(brokers()).toEqual([]);
      expect(host(['count', '16'], 4242)).toBe('count 0 EMFILE');
    } finally {
      code = await holding.release();
    }
    expect(code).toBe('0');
    expect(host(['count', '16'], 4242)).toBe('count 16');
  });
});

describe('mountat exec', () => {
  const roots: string[] = [];
  const state = scratchDir('mountat-state-');
  /** A busybox root with the probe, and /hold for the files the test and the command exchange. */
  function probeRoot(): string {
    const root = busyboxRoot();
    roots.push(root);
    copyFileSync(probe(), join(root, 'bin', 'probe'));
    mkdirSync(join(root, 'hold'));
    return root;
  }
  afterAll(() => {
    for (const root of roots) removeTree(root);
    removeTree(state);
  });

  it("uses up only instances of its own: the host's root and a second command keep theirs, and the instances work", async () => {
    const root = probeRoot();
    const command = spawn(
      process.execPath,
      [join(repo, 'bin', 'mountat.js'), 'exec', '--root', root, '--state-dir', state, '--', 'probe', 'instances', '/hold/ready', '/hold/release'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    command.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    command.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => command.once('exit', resolve));
    let code: number | null = null;
    try {
      await until(join(root, 'hold', 'ready'));
      expect(host(['count', '16'])).toBe('count 16');
      expect(brokers()).toHaveLength(1);
      expectUnprivileged(brokers()[0]);
      const second = mountat(['exec', '--root', probeRoot(), '--state-dir', state, '--', '/bin/sh', '-c', 'probe count 1000 && probe works /hold']);
      expect(second.stderr).toBe('');
      expect(second.stdout).toBe([`count ${MAX_INSTANCES} EMFILE`, ...WORKS, ''].join('\n'));
    } finally {
      // Released even when a check failed: a command holding root's instances would starve the host.
      writeFileSync(join(root, 'hold', 'release'), '');
      code = await exited;
    }
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toBe(`instances ${MAX_INSTANCES} EMFILE\n`);
    await untilNoBroker();
    expect(host(['count', '16'])).toBe('count 16');
  });
});

describe('ordinary programs that use inotify', () => {
  for (const as of [asRoot, asUser]) {
    it(`node's fs.watch (libuv, with its threads), ${as.name}, in a full-userland root`, async () => {
      const script = [
        'const fs = require("fs");',
        'const watcher = fs.watch(".", (event, name) => { if (name === "touched") { console.log("saw", event, name); watcher.close(); } });',
        'setTimeout(() => fs.writeFileSync("touched", "x"), 50);',
      ].join(' ');
      const result = await runInFullUserland({ config: as.config, own: (dir) => as.own(dir), arguments: [realpathSync(process.execPath), '-e', script] });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('saw rename touched\n');
      expect(result.exitCode).toBe('0');
    });
  }
});
