// deploy/kubernetes/worker-userns.yaml (the worker pod with `hostUsers: false`) run by a real engine: `podman kube
// play`, offline, with the runner image built from the Dockerfile and bb_worker's stand-in
// (test/fixtures/pod/worker-stand-in.mjs) configured from bb-worker-runner-userns.jsonnet, as test/pod.test.ts runs
// worker.yaml. What podman 4.3.1 needs differently is changed in forPodman() below, each change named. Found here:
// - `hostUsers: false` is honoured: podman gives the pod `--userns=auto` (1024 ids), which for root takes its ids from
//   the `containers` entry of /etc/subuid and /etc/subgid (none on this machine: the test binds a file of its own over
//   them, in its private mount namespace);
// - `procMount: Unmasked` is not: the runtime's masked and read-only /proc paths stay. A `precreate` hook (podman's own
//   stage: the candidate config.json on stdin, the changed one on stdout) empties them for the runner's container, as
//   the kubelet asks of containerd and CRI-O for Unmasked (`--security-opt unmask=ALL` with `podman run`).
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { loadRunnerProto } from '../src/runner/protos.js';
import { installAttacker } from './helpers/attacker.js';
import { asExpected, parseJson } from './helpers/checked.js';
import { DEPLOY_DIR, type K8sObject } from './helpers/deploy-manifest.js';
import { buildPodImages, POD_IMAGES, startPodman, type Podman } from './helpers/podman.js';
import { makeAction, requestFor, run } from './helpers/runner.js';
import { mountTable, removeTree, scratchDir } from './helpers/roots.js';

interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  procMount?: string;
  capabilities?: { add?: string[]; drop?: string[] };
}
interface Container {
  name: string;
  image: string;
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string }>;
  securityContext?: SecurityContext;
}
interface Pod {
  hostUsers?: boolean;
  initContainers: Container[];
  containers: Container[];
}

const manifest = (): K8sObject[] =>
  parseAllDocuments(readFileSync(join(DEPLOY_DIR, 'worker-userns.yaml'), 'utf8')).map((document) => asExpected<K8sObject>(document.toJS()));
const podOf = (objects: K8sObject[]): Pod => asExpected<Pod>(objects.find((o) => o.kind === 'Deployment')!.spec!.template!.spec);
const containerOf = (pod: Pod, name: string): Container => [...pod.initContainers, ...pod.containers].find((c) => c.name === name)!;
const runnerJson = (objects: K8sObject[]): Record<string, unknown> =>
  parseJson<Record<string, unknown>>(objects.find((o) => o.kind === 'ConfigMap')!.data!['runner.json']!);

/** The ids podman's --userns=auto hands out here: the `containers` entry the test puts in /etc/subuid and /etc/subgid. */
const SUBORDINATE = { start: 1_000_000, count: 1_000_000 };

/** The manifest as podman 4.3 runs it; every difference from worker-userns.yaml is here. */
function forPodman(objects: K8sObject[]): K8sObject[] {
  const copy = structuredClone(objects);
  const pod = podOf(copy);
  // Images: nothing can be pulled here; the ones built by buildPodImages (as test/pod.test.ts).
  containerOf(pod, 'volume-init').image = POD_IMAGES.busybox;
  containerOf(pod, 'worker').image = POD_IMAGES.worker;
  containerOf(pod, 'runner').image = POD_IMAGES.runner;
  // The test's own check, not the manifest's: the stand-in's action tries the runner's diagnostics port.
  const diagnostics = containerOf(pod, 'runner').ports!.find((p) => p.name === 'diagnostics')!.containerPort;
  containerOf(pod, 'worker').env!.push({ name: 'MOUNTAT_TEST_DIAGNOSTICS_PORT', value: String(diagnostics) });
  // `ports`: podman publishes them on the host, which --network none refuses (as test/pod.test.ts).
  delete containerOf(pod, 'runner').ports;
  // restartPolicy: podman 4.3 applies the pod's Always to the init container too (as test/pod.test.ts).
  (pod as Pod & { restartPolicy?: string }).restartPolicy = 'OnFailure';
  // Not changed: hostUsers (podman maps it to --userns=auto) and procMount (podman ignores it: the precreate hook
  // written in beforeAll stands in).
  return copy;
}

/** bb_worker's ConfigMap for this variant: worker.jsonnet, here the evaluated bb-worker-runner-userns.jsonnet. */
function workerConfigMap(): object {
  const fragment = execFileSync('jsonnet', ['-J', DEPLOY_DIR, join(DEPLOY_DIR, 'bb-worker-runner-userns.jsonnet')], { encoding: 'utf8' });
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bb-worker-userns' }, data: { 'worker.jsonnet': fragment } };
}

interface Step {
  step: string;
  [field: string]: unknown;
}
const steps = (log: string): Step[] =>
  log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => parseJson<Step>(line));

let podman: Podman | undefined;
let setupError: unknown;
let tableBefore: string;
let subids: string | undefined;

beforeAll(async () => {
  tableBefore = mountTable();
  try {
    // /etc/subuid and /etc/subgid with a `containers` range, in this test's mount namespace only (scripts/test.sh runs
    // vitest in a private one): podman's --userns=auto for root takes its ids there.
    subids = scratchDir('mountat-subids-');
    writeFileSync(join(subids, 'subid'), `containers:${SUBORDINATE.start}:${SUBORDINATE.count}\n`);
    for (const file of ['/etc/subuid', '/etc/subgid']) execFileSync('mount', ['--bind', join(subids, 'subid'), file]);
    podman = await startPodman();
    await buildPodImages(podman);
    // procMount: Unmasked, for the runner's container alone (its command is the image's tini): no masked paths, no
    // read-only ones, as containerd and CRI-O are asked by the kubelet.
    const hook = join(podman.dir, 'unmask-proc.mjs');
    writeFileSync(
      hook,
      [
        `#!${process.execPath}`,
        "import { readFileSync } from 'node:fs';",
        "const config = JSON.parse(readFileSync(0, 'utf8'));",
        'config.linux.maskedPaths = [];',
        'config.linux.readonlyPaths = [];',
        'process.stdout.write(JSON.stringify(config));',
        '',
      ].join('\n'),
    );
    chmodSync(hook, 0o755);
    writeFileSync(
      join(podman.dir, 'hooks.d', 'unmask-proc.json'),
      JSON.stringify({ version: '1.0.0', hook: { path: hook }, when: { commands: ['(^|/)tini$'] }, stages: ['precreate'] }),
    );
  } catch (error) {
    setupError = error;
  }
}, 20 * 60_000);

afterAll(async () => {
  try {
    if (podman) {
      try {
        await podman.podman(['pod', 'rm', '--force', '--all']);
        await podman.podman(['rm', '--force', '--all']);
        await podman.podman(['volume', 'rm', '--force', '--all']);
      } finally {
        podman.remove();
      }
    }
  } finally {
    for (const file of ['/etc/subuid', '/etc/subgid']) execFileSync('umount', [file]);
    if (subids) removeTree(subids);
    expect(mountTable()).toBe(tableBefore);
  }
});

describe('the user-namespaced worker pod under podman kube play', () => {
  it("runs in a user namespace of its own: the runner's uid 0 is an unprivileged uid on the host, the action sees its proc, sys and tmp, an attack is blocked", async () => {
    if (setupError !== undefined || !podman) throw setupError;
    const objects = manifest();
    // What the manifest says, read back: the point of the variant.
    const declared = podOf(objects);
    expect(declared.hostUsers).toBe(false);
    expect(containerOf(declared, 'runner').securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, procMount: 'Unmasked' });
    expect(runnerJson(objects).limits).toBeUndefined();

    const dir = scratchDir('mountat-pod-userns-');
    const podYaml = join(dir, 'worker-userns.yaml');
    writeFileSync(
      podYaml,
      forPodman(objects)
        .map((o) => stringify(o))
        .join('---\n'),
    );
    const configMap = join(dir, 'bb-worker-userns.yaml');
    writeFileSync(configMap, stringify(workerConfigMap()));

    try {
      try {
        await podman.podman(['kube', 'play', '--network', 'none', '--configmap', configMap, podYaml]);
        const [podName, ...otherPods] = (await podman.podman(['pod', 'ps', '--format', '{{.Name}}'])).trim().split('\n');
        expect(otherPods).toEqual([]);
        const container = (name: string) => `${podName}-${name}`;

        let log: Step[] = [];
        for (let i = 0; i < 240 && !log.some((s) => s.step === 'done' || s.step === 'failed'); i++) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          log = steps(await podman.podman(['logs', container('worker')]).catch(() => ''));
        }
        const runnerLog = await podman.podman(['logs', container('runner')]);
        expect(
          log.map((s) => s.step),
          runnerLog,
        ).toEqual(['config', 'runner ready', 'build directory seen', 'run', 'run', 'run', 'still ready', 'done']);
        expect(log[0]).toEqual({ step: 'config', build: '/worker/build', address: 'unix:///worker/runner' });

        // A user namespace really: the runner's uid map is podman's auto range, not the identity of every uid, and
        // from the host its process runs as that range's first uid, with no capability in the host's namespace.
        const uidMap = (await podman.podman(['exec', container('runner'), 'cat', '/proc/self/uid_map'])).trim().split(/\s+/).map(Number);
        expect(uidMap).toEqual([0, SUBORDINATE.start, 1024]);
        const runnerPid = (await podman.podman(['inspect', container('runner'), '--format', '{{.State.Pid}}'])).trim();
        const status = readFileSync(`/proc/${runnerPid}/status`, 'utf8');
        expect(status).toMatch(new RegExp(`^Uid:\\s+${SUBORDINATE.start}\\s+${SUBORDINATE.start}\\s+${SUBORDINATE.start}\\s+${SUBORDINATE.start}$`, 'm'));
        // allowPrivilegeEscalation: false, and the runner runs under it.
        expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
        // procMount: Unmasked (the precreate hook): nothing mounted over /proc's entries in the runner's container.
        const runnerMounts = await podman.podman(['exec', container('runner'), 'cat', '/proc/self/mountinfo']);
        expect(runnerMounts.split('\n').filter((line) => / \/proc\/\S+ /.test(line.split(' - ')[0] ?? ''))).toEqual([]);

        // The action, through the pod's socket, on the native build directory.
        const action = log[3]!;
        expect({ exitCode: action.exitCode, stderr: action.stderr }).toEqual({ exitCode: 0, stderr: '' });
        const [exe, mounts, pids, classes, tmp, written, diagnostics, oomScoreAdj, nice] = String(action.stdout).trim().split('\n');
        expect(exe).toBe('/bin/busybox');
        // /tmp is the request's temporary directory bound in: on the native build directory, the emptyDir's disk (podman's
        // volume storage here).
        const volumeFs = execFileSync('findmnt', ['--noheadings', '--output', 'FSTYPE', '--target', podman.dir], { encoding: 'utf8' }).trim();
        expect(mounts).toBe(`/proc proc,/sys sysfs,/tmp ${volumeFs},`);
        expect(pids).toMatch(/^pids: 1 2( \d+)* ?$/);
        expect(Number(classes)).toBeGreaterThan(5);
        expect(tmp).toBe('written');
        expect(written).toBe("on the worker's mount");
        // The runner's diagnostics port, from the action: not in its network namespace (network "none").
        expect(diagnostics).toBe("wget: can't connect to remote host (127.0.0.1): Connection refused");
        // oom_score_adj is the runner's limits.oomScoreAdj (1000 by default), written with or without a cgroup.
        expect(oomScoreAdj).toBe('1000');
        // And its nice value, limits.nice's default: raising one's own needs no privilege, in a user namespace too.
        expect(nice).toBe('10');
        // The stand-in's two actions against limits, answered: the fork loop's 200 processes (below the default 4096
        // anyway) all started, so grep counts no refusal and exits 1.
        expect({ stdout: log[4]!.stdout, exitCode: log[4]!.exitCode }).toEqual({ stdout: 'fork loop: 0\n0\n', exitCode: 1 });
        // The memory hog is dd from /dev/zero: no device nodes in this variant's input roots (bb_worker cannot mknod in a
        // user namespace), so it fails to open it; answered all the same, and the runner answers after.
        expect(log[5]!.exitCode).toBe(1);
        expect(log[5]!.stderr).toMatch(/\/dev\/zero/);
        // Only wait4's figures: no cgroup, no CgroupResourceUsage.
        expect(action.resourceUsage).toEqual(['type.googleapis.com/buildbarn.resourceusage.POSIXResourceUsage']);
        // The runner said once, at start-up, what its actions go without: the cgroup files belong to a uid the pod does
        // not map.
        expect(runnerLog.match(/actions run without/g), runnerLog).toHaveLength(1);
        expect(runnerLog).toMatch(/cannot make cgroups in \/sys\/fs\/cgroup\/pids: EACCES/);

        // doctor in the runner's container: the user namespace and what follows.
        const doctor = await podman.podman(['exec', container('runner'), 'sh', '-c', 'mountat doctor; true']);
        expect(doctor).toContain(
          `ok   user namespace: not the host's, uid map 0 ${SUBORDINATE.start} 1024 (capabilities held here hold only in it; uid 0 here is uid ${SUBORDINATE.start} on the host)`,
        );
        expect(doctor).toContain('ok   /proc is fully visible here: a new proc can be mounted (a trial made and dissolved)');
        expect(doctor).toMatch(/^ok {3}the runner and `mountat exec` can start actions here/m);

        // An attack, sent by the host over the pod's socket: chroot out of the action's root and read a file of the
        // runner's container, and make the read-only /sys writable again. Laid out on the shared volume, owned by the
        // pod's root (files of an unmapped owner are nobody's there).
        const volume = (
          await podman.podman(['inspect', container('runner'), '--format', '{{range .Mounts}}{{if eq .Destination "/worker"}}{{.Source}}{{end}}{{end}}'])
        ).trim();
        const build = join(volume, 'build');
        makeAction(build, 'attack');
        installAttacker(join(build, 'attack', 'root'));
        execFileSync('chown', ['-R', `${SUBORDINATE.start}:${SUBORDINATE.start}`, join(build, 'attack')]);
        // The socket's path in podman's storage is longer than a UNIX socket address may be: reached through a symlink.
        symlinkSync(volume, join(dir, 'v'));
        const proto = loadRunnerProto();
        const client = new proto.buildbarn.runner.Runner(`unix://${join(dir, 'v', 'runner')}`, credentials.createInsecure());
        try {
          const response = await run(client, requestFor('attack', 'attacker chroot-escape /opt/mountat/package.json; attacker remount-sys'));
          const out = readFileSync(join(build, 'attack', 'stdout'), 'utf8');
          expect(Number(response.exitCode), out).toBe(0);
          const lines = out.trim().split('\n');
          expect(lines).toHaveLength(2);
          for (const line of lines) expect(line).toMatch(/^blocked: /);
        } finally {
          client.close();
        }

        await podman.podman(['pod', 'stop', '--time', '30', podName!]);
        for (const name of ['worker', 'runner'])
          expect(`${name}: ${(await podman.podman(['inspect', container(name), '--format', '{{.State.ExitCode}}'])).trim()}`).toBe(`${name}: 0`);
        expect(await podman.podman(['logs', container('runner')])).toContain('"msg":"runner stopped"');
      } finally {
        await podman.podman(['kube', 'down', podYaml]);
      }
      expect(await podman.podman(['ps', '--all', '--quiet'])).toBe('');
      expect(await podman.podman(['pod', 'ps', '--quiet'])).toBe('');
    } finally {
      removeTree(dir);
    }
  }, 300_000);
});
