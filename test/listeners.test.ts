// The runner's listeners are not the actions' (docs/containment.md, "The runner's listeners"): a config with a
// listener an action could connect to is refused at start-up, in one line, with nothing left listening; and through
// a real runner, as root and as runCommandsAs, an action trying every way to its TCP ports (network "none") and its
// UNIX socket (the host's network, with and without a PID namespace) is blocked. test/fixtures/listener-attacker.c
// makes the attempts; run outside the sandbox, it reaches each listener, so a "blocked" inside is the sandbox's doing.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureBinary } from './helpers/attacker.js';
import { mountat } from './helpers/cli.js';
import { mountsUnder, removeTree, scratchDir } from './helpers/roots.js';
import { freePort, makeAction, requestFor, run, spawnRunner, startRunner, type RunnerProcess } from './helpers/runner.js';

const attacker = () => fixtureBinary('listener-attacker');

function listen(server: Server, where: string | number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof where === 'number') server.listen(where, '127.0.0.1', () => resolve());
    else server.listen(where, () => resolve());
  });
}

/** Whether this process can listen on 127.0.0.1:port (nothing else does). */
async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    await listen(server, port);
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/** A copy of the attacker that any user can run (fixtureBinary's directory is root's alone). */
let shared: string | undefined;
afterAll(() => {
  if (shared) removeTree(dirname(shared));
});
function sharedAttacker(): string {
  if (shared) return shared;
  const dir = scratchDir('mountat-listener-attacker-');
  chmodSync(dir, 0o755);
  copyFileSync(attacker(), join(dir, 'listener-attacker'));
  chmodSync(join(dir, 'listener-attacker'), 0o755);
  return (shared = join(dir, 'listener-attacker'));
}

/** The attacker run outside any sandbox, as `uid`: its lines and exit status. */
function fromOutside(args: string[], uid = 0): { lines: string[]; status: number | null } {
  const command = uid === 0 ? [attacker(), ...args] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', sharedAttacker(), ...args];
  const result = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' });
  return { lines: result.stdout.trim().split('\n'), status: result.status };
}

let counter = 0;
/** `script` run as an action of `runner` in a busybox root with the attacker at /bin/listener-attacker. */
async function attack(runner: RunnerProcess, script: string): Promise<{ exitCode: string; lines: string[]; stderr: string }> {
  const id = `a${++counter}`;
  makeAction(runner.build, id);
  copyFileSync(attacker(), join(runner.build, id, 'root', 'bin', 'listener-attacker'));
  chmodSync(join(runner.build, id, 'root', 'bin', 'listener-attacker'), 0o755);
  const response = await run(runner.client, requestFor(id, script));
  const stdout = readFileSync(join(runner.build, id, 'stdout'), 'utf8');
  return { exitCode: response.exitCode, lines: stdout.trim().split('\n'), stderr: readFileSync(join(runner.build, id, 'stderr'), 'utf8') };
}

/** The inodes of every socket held by `pid` and its descendants. */
function socketInodes(pid: number): Set<string> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const parent = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const inodes = new Set<string>();
  const visit = (p: number) => {
    for (const fd of readdirSync(`/proc/${p}/fd`)) {
      const target = (() => {
        try {
          return readlinkSync(`/proc/${p}/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    }
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return inodes;
}

/** What `pid` and its descendants listen on, from this network namespace's tables: "unix PATH", "unix @NAME", "tcp PORT". */
function listeningOf(pid: number): string[] {
  const inodes = socketInodes(pid);
  const found: string[] = [];
  for (const line of readFileSync('/proc/net/unix', 'utf8').trim().split('\n').slice(1)) {
    const [, , , flags, , , inode, path] = line.trim().split(/\s+/);
    if (inodes.has(inode!) && (parseInt(flags!, 16) & 0x10000) !== 0) found.push(`unix ${path ?? '(unnamed)'}`);
  }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A' && inodes.has(fields[9]!)) found.push(`tcp ${parseInt(fields[1]!.split(':')[1]!, 16)}`);
    }
  }
  return found.sort();
}

/** This host's addresses but link-local ones (those need a scope to connect to), loopback's included. */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((entry) => entry.address)
    .filter((address) => !address.startsWith('fe80:'));
}

interface Identity {
  title: string;
  config: object;
  uid: number;
}
const identities: Identity[] = [
  { title: 'as root', config: {}, uid: 0 },
  { title: 'as runCommandsAs 4242', config: { runCommandsAs: { userId: 4242, groupId: 4242 } }, uid: 4242 },
];

describe('a config with a listener an action could reach is refused at start-up', () => {
  const onHostNetwork = 'every action can connect to it, on the runner\'s network (network "host")';
  const cases: Array<{ name: string; config: (dir: string, port: number) => object; line: (dir: string, port: number) => string }> = [
    {
      name: 'gRPC on TCP with the host network',
      config: (dir, port) => ({ grpcServers: [{ listenPaths: [join(dir, 'runner.sock')], listenAddresses: [`127.0.0.1:${port}`] }] }),
      line: (_dir, port) =>
        `config.grpcServers[0].listenAddresses[0] "127.0.0.1:${port}": ${onHostNetwork}; listen on a UNIX socket (listenPaths), or give actions a network of their own (network "none")`,
    },
    {
      name: 'the diagnostics server on TCP with the host network',
      config: (_dir, port) => ({ global: { diagnosticsHttpServer: { httpServers: [{ listenAddresses: [`:${port}`] }], enablePrometheus: true } } }),
      line: (_dir, port) =>
        `config.global.diagnosticsHttpServer.httpServers[0].listenAddresses[0] ":${port}": ${onHostNetwork}; give actions a network of their own (network "none"), or remove global.diagnosticsHttpServer (\`mountat probe\` asks the socket)`,
    },
    {
      name: 'an abstract socket with the host network',
      config: (dir) => ({ grpcServers: [{ listenPaths: [join(dir, 'runner.sock')], listenAddresses: ['unix-abstract:mountat-listeners-test'] }] }),
      line: () =>
        `config.grpcServers[0].listenAddresses[0] "unix-abstract:mountat-listeners-test": ${onHostNetwork}; listen on a UNIX socket (listenPaths), or give actions a network of their own (network "none")`,
    },
    {
      name: 'a socket path given as a listen address',
      config: (dir) => ({ network: 'none', grpcServers: [{ listenPaths: [join(dir, 'runner.sock')], listenAddresses: [`unix:${join(dir, 'other.sock')}`] }] }),
      line: (dir) =>
        `config.grpcServers[0].listenAddresses[0] "unix:${join(dir, 'other.sock')}": a UNIX socket goes in listenPaths, where the runner checks that no action can reach it`,
    },
    {
      name: 'a socket inside the build directory',
      config: (dir) => ({ grpcServers: [{ listenPaths: [join(dir, 'build', 'runner.sock')] }] }),
      line: (dir) =>
        `config.grpcServers[0].listenPaths[0] "${join(dir, 'build', 'runner.sock')}": inside buildDirectoryPath "${join(dir, 'build')}", where a Run's input root or temporary directory can contain it; listen outside buildDirectoryPath`,
    },
    {
      name: 'a socket whose directory is a symlink into the build directory',
      config: (dir) => {
        mkdirSync(join(dir, 'build', 'sockets'), { recursive: true });
        symlinkSync(join(dir, 'build', 'sockets'), join(dir, 'sockets'));
        return { grpcServers: [{ listenPaths: [join(dir, 'sockets', 'runner.sock')] }] };
      },
      line: (dir) =>
        `config.grpcServers[0].listenPaths[0] "${join(dir, 'sockets', 'runner.sock')}" (${join(dir, 'build', 'sockets', 'runner.sock')}): inside buildDirectoryPath "${join(dir, 'build')}"`,
    },
    {
      name: 'a socket beneath a bind source of the plan',
      config: (dir) => ({
        mounts: [
          { target: 'proc', kind: 'proc' },
          { target: 'sys', kind: 'sysfs' },
          { target: 'cache', kind: 'bind', source: dir },
        ],
      }),
      line: (dir) =>
        `config.grpcServers[0].listenPaths[0] "${join(dir, 'runner.sock')}": beneath config.mounts[2]'s bind source "${dir}", mounted into every action's root; listen outside it`,
    },
    {
      name: 'a socket with chrootIntoInputRoot false',
      config: () => ({ chrootIntoInputRoot: false }),
      line: (dir) =>
        `config.grpcServers[0].listenPaths[0] "${join(dir, 'runner.sock')}": with chrootIntoInputRoot false every action sees the runner's filesystem, this socket included; root actions in their input roots (chrootIntoInputRoot true), or listen on TCP (listenAddresses) with network "none"`,
    },
  ];

  it.each(cases)('$name: one line, exit 1, nothing listening; `mountat runner --check` says the same', async ({ config, line }) => {
    const dir = scratchDir('mountat-listeners-');
    try {
      const port = await freePort();
      const spawned = spawnRunner(config(dir, port), dir);
      expect(await spawned.exited).toEqual([1, null]);
      const file = join(dir, 'config.json');
      const output = spawned.output();
      expect(output.split('\n').filter(Boolean)).toHaveLength(1);
      expect(output).toMatch(new RegExp(`^mountat: config file ${file}: `));
      expect(output).toContain(line(dir, port));
      // Nothing left listening: no socket file anywhere it was to be, the port free.
      expect(readdirSync(dir).filter((name) => name.endsWith('.sock'))).toEqual([]);
      expect(existsSync(join(dir, 'build', 'runner.sock')) || existsSync(join(dir, 'build', 'sockets', 'runner.sock'))).toBe(false);
      expect(await portFree(port)).toBe(true);
      // Nothing started either: no state directory made (the lock comes after the config).
      expect(existsSync(join(dir, 'state'))).toBe(false);

      const check = mountat(['runner', '--config', file, '--check']);
      expect([check.status, check.stdout, check.stderr]).toEqual([1, '', output]);
    } finally {
      removeTree(dir);
    }
  });

  it('`mountat runner --check` passes the configs that stay valid', async () => {
    const dir = scratchDir('mountat-listeners-');
    try {
      mkdirSync(join(dir, 'build'));
      const port = await freePort();
      const configs = {
        socket: { grpcServers: [{ listenPaths: [join(dir, 'runner.sock')] }] },
        'TCP, diagnostics, network none': {
          network: 'none',
          grpcServers: [{ listenPaths: [join(dir, 'runner.sock')], listenAddresses: [`127.0.0.1:${port}`] }],
          global: { diagnosticsHttpServer: { httpServers: [{ listenAddresses: [':9981'] }] } },
        },
        'TCP only, not rooted, network none': { network: 'none', chrootIntoInputRoot: false, grpcServers: [{ listenAddresses: [`:${port}`] }] },
        'a socket beside the build directory, its name a prefix': { grpcServers: [{ listenPaths: [`${join(dir, 'build')}.sock`] }] },
      };
      for (const [name, config] of Object.entries(configs)) {
        const file = join(dir, `${name.replace(/\W+/g, '-')}.json`);
        writeFileSync(file, JSON.stringify({ buildDirectoryPath: join(dir, 'build'), ...config }));
        const check = mountat(['runner', '--config', file, '--check']);
        expect([name, check.status, check.stdout, check.stderr]).toEqual([name, 0, `config file ${file}: valid\n`, '']);
      }
    } finally {
      removeTree(dir);
    }
  });
});

describe.each(identities)("an action cannot reach the runner's TCP ports with network none ($title)", ({ config, uid }) => {
  let runner: RunnerProcess;
  let grpcPort: number;
  let httpPort: number;
  const addresses = hostAddresses();
  beforeAll(async () => {
    grpcPort = await freePort();
    httpPort = await freePort();
    const dir = scratchDir('mountat-listeners-');
    runner = await startRunner(
      {
        ...config,
        network: 'none',
        // Every address of the host, both ways: "[::]" takes IPv4 too.
        grpcServers: [{ listenPaths: [join(dir, 'runner.sock')], listenAddresses: [`[::]:${grpcPort}`] }],
        global: { diagnosticsHttpServer: { httpServers: [{ listenAddresses: [`:${httpPort}`] }], enablePrometheus: true } },
      },
      dir,
    );
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    expect(mountsUnder(runner.build)).toEqual([]);
    removeTree(runner.dir);
  });

  it("the ports are open on loopback and on each of the host's addresses, from outside", () => {
    expect(addresses).toEqual(expect.arrayContaining(['127.0.0.1', '::1']));
    expect(addresses.length).toBeGreaterThan(2);
    expect(listeningOf(runner.process.pid!)).toEqual([`tcp ${grpcPort}`, `tcp ${httpPort}`, `unix ${runner.socket}`].sort());
    for (const address of addresses) {
      expect(fromOutside(['tcp', address, String(grpcPort), 'h2'], uid)).toEqual({
        lines: [`ESCAPED: tcp ${address} port ${grpcPort}: connected, answered: an HTTP/2 frame of type 4`],
        status: 1,
      });
      expect(fromOutside(['tcp', address, String(httpPort), 'http'], uid)).toEqual({
        lines: [`ESCAPED: tcp ${address} port ${httpPort}: connected, answered: HTTP/1.1 200 OK`],
        status: 1,
      });
    }
  });

  it("from the action: refused on its own loopback, unreachable on the host's addresses, no socket of the runner listed", async () => {
    const script = [
      ...addresses.flatMap((address) => [`listener-attacker tcp ${address} ${grpcPort} h2`, `listener-attacker tcp ${address} ${httpPort} http`]),
      'listener-attacker unix-all',
      'id -u',
    ].join('; ');
    const { exitCode, lines, stderr } = await attack(runner, script);
    const loopback = new Set(['127.0.0.1', '::1']);
    expect({ exitCode, lines, stderr }).toEqual({
      exitCode: '0',
      lines: [
        ...addresses.flatMap((address) => {
          const why = loopback.has(address) ? 'ECONNREFUSED' : 'ENETUNREACH';
          return [`blocked: tcp ${address} port ${grpcPort}: ${why}`, `blocked: tcp ${address} port ${httpPort}: ${why}`];
        }),
        // Its network namespace's own table: the runner's socket is not in it.
        'named listening sockets in /proc/net/unix: 0',
        String(uid),
      ],
      stderr: '',
    });
  });
});

describe.each(identities.flatMap((identity) => [true, false].map((pidNamespace) => ({ ...identity, pidNamespace }))))(
  "an action cannot reach the runner's UNIX socket with the host's network ($title, pidNamespace $pidNamespace)",
  ({ config, uid, pidNamespace }) => {
    let runner: RunnerProcess;
    let decoyTcp: Server;
    let decoyAbstract: Server;
    let decoyPort: number;
    const decoyName = `mountat-listeners-decoy-${process.pid}-${pidNamespace}-${uid}`;
    beforeAll(async () => {
      runner = await startRunner({ ...config, pidNamespace });
      // Reachable but for the sandbox: the directory and the socket open to everyone, as an operator's umask 0 would
      // leave them (grpc-js makes the socket 0777 & ~umask; connecting needs write permission).
      chmodSync(runner.dir, 0o755);
      chmodSync(runner.socket, 0o777);
      // What the host's network does share, to show the sweep below finds it: a TCP port on loopback and an
      // abstract socket, both the test's.
      decoyPort = await freePort();
      decoyTcp = createServer((socket) => socket.end('decoy\n'));
      await listen(decoyTcp, decoyPort);
      decoyAbstract = createServer((socket) => socket.end('decoy\n'));
      await listen(decoyAbstract, `\0${decoyName}`);
    });
    afterAll(async () => {
      decoyTcp.close();
      decoyAbstract.close();
      expect(await runner.stop()).toBe(0);
      expect(mountsUnder(runner.build)).toEqual([]);
      removeTree(runner.dir);
    });

    it('the runner listens on its socket only (no abstract socket, no TCP), which the attacker reaches from outside', () => {
      expect(listeningOf(runner.process.pid!)).toEqual([`unix ${runner.socket}`]);
      expect(fromOutside(['unix', runner.socket], uid)).toEqual({
        lines: [`ESCAPED: unix ${runner.socket}: connected, answered: an HTTP/2 frame of type 4`],
        status: 1,
      });
    });

    it('from the action: not by its path, not through /proc/PID/root, not by any socket /proc/net/unix names', async () => {
      const runnerPid = runner.process.pid!;
      const script = [
        `test -d /proc/${runnerPid}/fd && echo "runner's pid visible" || echo "runner's pid not visible"`,
        `listener-attacker unix ${runner.socket}`,
        'listener-attacker unix-all',
        `listener-attacker tcp 127.0.0.1 ${decoyPort} h2`,
      ].join('; ');
      const { exitCode, lines, stderr } = await attack(runner, script);
      expect(stderr).toBe('');
      // Without a PID namespace the runner is there to try: /proc/PID/root of the runner refuses (ptrace's check).
      expect(lines[0]).toBe(pidNamespace ? "runner's pid not visible" : "runner's pid visible");
      expect(lines[1]).toBe(`blocked: unix ${runner.socket}: ENOENT`);
      // The listening socket's inode (the connections it accepted show its path too).
      const inode = readFileSync('/proc/net/unix', 'utf8')
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .find((fields) => fields[7] === runner.socket && (parseInt(fields[3]!, 16) & 0x10000) !== 0)![6]!;
      // /proc/net/unix is the host network's: the runner's socket is named there, and every way to it is blocked.
      const ours = lines.filter((line) => line.includes(`(inode ${inode})`));
      expect(ours[0]).toBe(`blocked: unix ${runner.socket} (inode ${inode}): ENOENT`);
      expect(ours[1]).toMatch(new RegExp(`^blocked: unix /proc/\\*/root${runner.socket} \\(inode ${inode}\\), \\d+ processes: (ENOENT|EACCES)$`));
      expect(ours).toHaveLength(2);
      // No socket file of the host is reached at all; of the abstract sockets, the decoy is (that is what the host's
      // network shares), and none of the runner's (it has none: above).
      expect(lines.filter((line) => line.startsWith('ESCAPED: unix /'))).toEqual([]);
      const runnerInodes = socketInodes(runnerPid);
      expect(lines.filter((line) => line.startsWith('ESCAPED') && [...runnerInodes].some((i) => line.includes(`(inode ${i})`)))).toEqual([]);
      expect(lines.filter((line) => line.includes(decoyName))).toEqual([
        expect.stringMatching(new RegExp(`^ESCAPED: unix abstract @${decoyName}@* \\(inode \\d+\\): connected, answered: \\d+ bytes$`)),
      ]);
      expect(lines.at(-1)).toBe(`ESCAPED: tcp 127.0.0.1 port ${decoyPort}: connected, answered: 6 bytes`);
      expect(exitCode).toBe('1');
    });
  },
);
