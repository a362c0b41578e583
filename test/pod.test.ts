// deploy/kubernetes/worker.yaml run by a real engine: `podman kube play`, offline, with the runner image built from
// the Dockerfile and a stand-in for bb_worker (test/fixtures/pod/worker-stand-in.mjs: bb_worker cannot be had here)
// in the manifest's `worker` container. The stand-in mounts a file system over the shared build directory after
// the runner started, as bb_worker mounts its FUSE build directory, and sends Run over the shared socket. What the
// manifest says is kept; what podman needs differently is changed in forPodman() below, each change named.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerConfig } from '../src/runner/generated/runner-config.js';
import { asExpected, parseJson } from './helpers/checked.js';
import { DEPLOY_DIR, type K8sObject } from './helpers/deploy-manifest.js';
import { buildPodImages, POD_IMAGES, startPodman, type Podman } from './helpers/podman.js';
import { mountTable, mountsUnder, removeTree, scratchDir } from './helpers/roots.js';

interface Probe {
  httpGet?: { path?: string; port?: number | string };
}
interface Container {
  name: string;
  image: string;
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  env?: Array<{ name: string; value?: string }>;
}
interface Pod {
  initContainers: Container[];
  containers: Container[];
  volumes: Array<{ name: string; emptyDir?: object; hostPath?: object }>;
}

const manifest = (): K8sObject[] =>
  parseAllDocuments(readFileSync(join(DEPLOY_DIR, 'worker.yaml'), 'utf8')).map((document) => asExpected<K8sObject>(document.toJS()));
const podOf = (objects: K8sObject[]): Pod => asExpected<Pod>(objects.find((o) => o.kind === 'Deployment')!.spec!.template!.spec);
const containerOf = (pod: Pod, name: string): Container => [...pod.initContainers, ...pod.containers].find((c) => c.name === name)!;

const runnerConfigMap = (objects: K8sObject[]): K8sObject => objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'mountat-runner')!;
/** The runner's config in the manifest: runner.json of the mountat-runner ConfigMap. */
const runnerJsonOf = (objects: K8sObject[]): RunnerConfig => parseJson<RunnerConfig>(runnerConfigMap(objects).data!['runner.json']!);
/** The limits the pod runs with here (forPodman): small enough for a fork loop and a memory hog to meet at once. */
const TEST_LIMITS = { pids: 64, memoryBytes: 64 * 2 ** 20 };

/** The manifest as podman 4.3 runs it; every difference from worker.yaml is here. */
function forPodman(objects: K8sObject[], workerVolume: string): K8sObject[] {
  const copy = structuredClone(objects);
  const pod = podOf(copy);
  // Images: nothing can be pulled here; the ones built by buildPodImages, and bb_worker's stand-in for bb_worker.
  containerOf(pod, 'volume-init').image = POD_IMAGES.busybox;
  containerOf(pod, 'worker').image = POD_IMAGES.worker;
  containerOf(pod, 'runner').image = POD_IMAGES.runner;
  // The test's own check, not the manifest's: the stand-in's action tries the runner's diagnostics port.
  const diagnostics = containerOf(pod, 'runner').ports!.find((p) => p.name === 'diagnostics')!.containerPort;
  containerOf(pod, 'worker').env!.push({ name: 'MOUNTAT_TEST_DIAGNOSTICS_PORT', value: String(diagnostics) });
  // The test's own check, not the manifest's: the runner's limits lowered, so that a fork loop meets the pids limit
  // and a memory hog memoryBytes in seconds (the manifest's 4096 and 2 GiB would take minutes and gigabytes).
  const runnerJson = runnerJsonOf(copy);
  runnerConfigMap(copy).data!['runner.json'] = JSON.stringify({ ...runnerJson, limits: { ...runnerJson.limits, ...TEST_LIMITS } });
  // `ports`: podman publishes each containerPort on the host, which --network none refuses (and a network would
  // make netavark add iptables rules on the host). The port is still served in the pod's network namespace.
  delete containerOf(pod, 'runner').ports;
  // The shared volume: podman applies Bidirectional and HostToContainer as rshared and rslave, which connect the two
  // containers only if the directory beneath is a shared mount (podman's emptyDir is a directory of its volume
  // storage, made at play). So a directory of the test's, made a shared mount before, instead of the emptyDir.
  const worker = pod.volumes.find((v) => v.name === 'worker')!;
  delete worker.emptyDir;
  worker.hostPath = { path: workerVolume, type: 'Directory' };
  // restartPolicy: podman 4.3 applies the pod's to its init containers too, and with Always (a Deployment's only
  // one) restarts the init container once it has exited, while kube play removes it: play then fails ("cannot
  // remove container ... as it is running"). OnFailure: the init container runs once, as in Kubernetes.
  (pod as Pod & { restartPolicy?: string }).restartPolicy = 'OnFailure';
  // Not changed, and why it does not matter: podman ignores readinessProbe (this test makes the probe itself, as the
  // kubelet would), and turns the httpGet livenessProbe into a curl health check that systemd would schedule (there
  // is no systemd here: podman logs that it cannot add the timer, and the check never runs).
  return copy;
}

/** bb_worker's ConfigMap (not in worker.yaml: README.md beside it): worker.jsonnet, here the evaluated fragment. */
function workerConfigMap(): object {
  const fragment = execFileSync('jsonnet', [join(DEPLOY_DIR, 'bb-worker-runner.jsonnet')], { encoding: 'utf8' });
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bb-worker' }, data: { 'worker.jsonnet': fragment } };
}

interface Step {
  step: string;
  [field: string]: unknown;
}
/** The CgroupResourceUsage a step logs (protobufjs toObject: a field absent on the wire is absent here). */
interface CgroupFigures {
  memoryPeak?: number;
  memoryEvents?: { oomKill?: number };
  memoryPressure?: object;
  userTime?: object;
  systemTime?: object;
  pidsPeak?: number;
  pidsLimitHits?: number;
  oomKilled?: boolean;
}
const steps = (log: string): Step[] =>
  log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => parseJson<Step>(line));

let podman: Podman | undefined;
let setupError: unknown;
let tableBefore: string;

beforeAll(async () => {
  tableBefore = mountTable();
  // Kept for the test to throw: a failing beforeAll would only mark it skipped, and a missing podman must fail it.
  try {
    podman = await startPodman();
    await buildPodImages(podman);
  } catch (error) {
    setupError = error;
  }
}, 20 * 60_000);

afterAll(async () => {
  if (!podman) return;
  // Only after a failure (the test asserts that kube down leaves nothing): whatever is left goes, so that the
  // storage and its mounts can.
  try {
    await podman.podman(['pod', 'rm', '--force', '--all']);
    await podman.podman(['rm', '--force', '--all']);
  } finally {
    // Even when a removal failed: the storage (gigabytes of images) goes, or remove() says which mounts kept it.
    try {
      podman.remove();
    } finally {
      expect(mountTable()).toBe(tableBefore);
    }
  }
});

describe('the worker pod under podman kube play', () => {
  it("runs: the runner becomes ready, the worker's late mount reaches it, the action sees its proc, sys and tmp, within its limits; kube down leaves nothing", async () => {
    if (setupError !== undefined || !podman) throw setupError;
    const objects = manifest();
    const dir = scratchDir('mountat-pod-');
    const volume = join(dir, 'worker');
    mkdirSync(volume);
    execFileSync('mount', ['--bind', volume, volume]);
    execFileSync('mount', ['--make-shared', volume]);
    const podYaml = join(dir, 'worker.yaml');
    writeFileSync(
      podYaml,
      forPodman(objects, volume)
        .map((o) => stringify(o))
        .join('---\n'),
    );
    const configMap = join(dir, 'bb-worker.yaml');
    writeFileSync(configMap, stringify(workerConfigMap()));

    try {
      try {
        // --configmap: the ConfigMap that is not in the file (the one that is, mountat-runner, podman reads there).
        await podman.podman(['kube', 'play', '--network', 'none', '--configmap', configMap, podYaml]);
        const [podName, ...otherPods] = (await podman.podman(['pod', 'ps', '--format', '{{.Name}}'])).trim().split('\n');
        expect(otherPods).toEqual([]);
        const container = (name: string) => `${podName}-${name}`;

        let log: Step[] = [];
        for (let i = 0; i < 240 && !log.some((s) => s.step === 'done' || s.step === 'failed'); i++) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          log = steps(await podman.podman(['logs', container('worker')]).catch(() => ''));
        }
        expect(log.map((s) => s.step)).toEqual(['config', 'runner ready', 'late mount seen', 'run', 'run', 'run', 'still ready', 'done']);
        // From the configuration bb_worker reads: the build directory and the runner's socket on the shared volume.
        expect(log[0]).toEqual({ step: 'config', build: '/worker/build', address: 'unix:///worker/runner' });

        // The readiness probe as the manifest declares it (the port by its name), made from outside the containers
        // into the pod's network namespace, as the kubelet makes it: busybox wget, from the host.
        const probe = containerOf(podOf(objects), 'runner').readinessProbe!.httpGet!;
        const port = containerOf(podOf(objects), 'runner').ports!.find((p) => p.name === probe.port)!.containerPort;
        const infra = (await podman.podman(['pod', 'inspect', podName!, '--format', '{{.InfraContainerID}}'])).trim();
        const pid = (await podman.podman(['inspect', infra, '--format', '{{.State.Pid}}'])).trim();
        const ready = execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, '/bin/busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}${probe.path}`], {
          encoding: 'utf8',
        });
        expect(ready).toBe('ready\n');

        // The action, through the pod's socket, on the worker's late mount.
        const run = log[3]!;
        expect({ exitCode: run.exitCode, stderr: run.stderr }).toEqual({ exitCode: 0, stderr: '' });
        const [exe, mounts, pids, classes, tmp, late, diagnostics, oomScoreAdj, nice] = String(run.stdout).trim().split('\n');
        expect(exe).toBe('/bin/busybox');
        // /tmp is the request's temporary directory bound in: on the worker's tmpfs.
        expect(mounts).toBe('/proc proc,/sys sysfs,/tmp tmpfs,');
        // Its own PID namespace: its init (1) and the action (2), then the pipeline's processes.
        expect(pids).toMatch(/^pids: 1 2( \d+)* ?$/);
        expect(Number(classes)).toBeGreaterThan(5);
        expect(tmp).toBe('written');
        // A file the worker wrote on its mount, made after the runner started: it reached the runner's container.
        expect(late).toBe("on the worker's mount");
        // The port the GET above reached from the pod's network namespace, tried by the action: not in its own
        // (runner.json's network "none"; with the pod's, the runner refuses to listen there).
        expect(diagnostics).toBe("wget: can't connect to remote host (127.0.0.1): Connection refused");

        // The limits, on: the runner made a cgroup for every action in the runner's container (whose read-only cgroup
        // mounts the image's entrypoint made writable), and said nothing about going without.
        expect(runnerJsonOf(objects).limits).toEqual({ pids: 4096, memoryBytes: 2 * 2 ** 30, oomScoreAdj: 1000 });
        expect(oomScoreAdj).toBe('1000');
        expect(nice).toBe('10');
        // Both figures bb_worker passes on, the wait4 of the first process and the action's cgroup's.
        expect(run.resourceUsage).toEqual([
          'type.googleapis.com/buildbarn.resourceusage.POSIXResourceUsage',
          'type.googleapis.com/mountat.resourceusage.CgroupResourceUsage',
        ]);
        const cgroup = (step: Step) => asExpected<CgroupFigures>(step.cgroup);
        // Podman on this hybrid host mounts only the v1 hierarchies in a container: CPU time from cpuacct, peak memory
        // from memory.max_usage_in_bytes, no PSI (v1 has none).
        expect(cgroup(run).memoryPeak).toBeGreaterThan(0);
        expect(cgroup(run).memoryPeak).toBeLessThan(TEST_LIMITS.memoryBytes);
        expect(cgroup(run).userTime ?? cgroup(run).systemTime).toBeDefined();
        expect(cgroup(run).memoryPressure).toBeUndefined();
        expect(cgroup(run).oomKilled).toBeUndefined();
        // The fork loop stopped at the pids limit: its shell refused a fork and exited 2; the action went on.
        const forkLoop = log[4]!;
        expect({ id: forkLoop.id, exitCode: forkLoop.exitCode, stdout: forkLoop.stdout, stderr: forkLoop.stderr }).toEqual({
          id: 'a2',
          exitCode: 0,
          stdout: 'fork loop: 2\n1\n',
          stderr: '',
        });
        expect(cgroup(forkLoop).pidsPeak).toBe(TEST_LIMITS.pids);
        expect(cgroup(forkLoop).pidsLimitHits).toBeGreaterThanOrEqual(1);
        // The memory hog, killed by the kernel in its own cgroup, reported as an OOM kill; the runner answered, and
        // answers still (the step after it).
        const hog = log[5]!;
        expect({ id: hog.id, exitCode: hog.exitCode, terminationSignal: hog.terminationSignal }).toEqual({ id: 'a3', exitCode: -1, terminationSignal: 'KILL' });
        expect(cgroup(hog).oomKilled).toBe(true);
        expect(cgroup(hog).memoryEvents?.oomKill).toBeGreaterThanOrEqual(1);
        expect(cgroup(hog).memoryPeak).toBeLessThanOrEqual(TEST_LIMITS.memoryBytes);

        const runnerLog = await podman.podman(['logs', container('runner')]);
        expect(runnerLog).toContain('"msg":"runner ready"');
        expect(runnerLog).toContain(`"limits":${JSON.stringify({ ...TEST_LIMITS, cpu: null, oomScoreAdj: 1000, nice: 10 })}`);
        expect(runnerLog).not.toContain('actions run without');
        expect(runnerLog).not.toContain('writable-cgroups');
        expect(runnerLog).toMatch(/"action":\{"id":"a1","outcome":"exited".*"exitCode":0/);
        expect(runnerLog).toMatch(/"action":\{"id":"a3",.*"oomKilled":true/);
        // In the runner's container: the worker's mount at the build directory, nothing of the runner's below it.
        const inside = (await podman.podman(['exec', container('runner'), 'cat', '/proc/1/mountinfo'])).split('\n').map((line) => line.split(' '));
        expect(inside.filter((fields) => fields[4]?.startsWith('/worker/build')).map((fields) => [fields[4], fields.at(-3)])).toEqual([
          ['/worker/build', 'tmpfs'],
        ]);
        // On the host, through the shared volume (Bidirectional): the worker's mount.
        expect(mountsUnder(volume)).toEqual([volume, join(volume, 'build')]);

        // Stopped as the kubelet stops a pod: SIGTERM, and terminationGracePeriodSeconds (30 s by default) before
        // SIGKILL. Podman 4.3's kube down alone gives no grace (the stand-in's SIGTERM handler never ran under it).
        await podman.podman(['pod', 'stop', '--time', '30', podName!]);
        // The runner shut down (SIGTERM through tini) and the stand-in unmounted, each exiting 0.
        for (const name of ['worker', 'runner'])
          expect(`${name}: ${(await podman.podman(['inspect', container(name), '--format', '{{.State.ExitCode}}'])).trim()}`).toBe(`${name}: 0`);
        expect(await podman.podman(['logs', container('runner')])).toContain('"msg":"runner stopped"');
      } finally {
        await podman.podman(['kube', 'down', podYaml]);
      }

      // Nothing of the pod is left: no container, no pod; the worker's mount went with the worker (its stand-in
      // unmounted on SIGTERM, as bb_worker does), so the host has only the volume's own bind (the test's).
      expect(await podman.podman(['ps', '--all', '--quiet'])).toBe('');
      expect(await podman.podman(['pod', 'ps', '--quiet'])).toBe('');
      expect(steps(readFileSync(join(volume, 'worker-stand-in.log'), 'utf8'))).toEqual([{ step: 'SIGTERM' }, { step: 'stopped', unmounted: true }]);
      expect(mountsUnder(volume)).toEqual([volume]);
      // Podman 4.3's kube down leaves the volumes it made for the two ConfigMaps (4.4 has --force for them), and
      // only those: removed by name, then podman holds no volume.
      expect((await podman.podman(['volume', 'ls', '--format', '{{.Name}}'])).trim().split('\n').sort()).toEqual(['bb-worker', 'mountat-runner']);
      await podman.podman(['volume', 'rm', 'bb-worker', 'mountat-runner']);
      expect(await podman.podman(['volume', 'ls', '--quiet'])).toBe('');
    } finally {
      execFileSync('umount', ['--recursive', '--lazy', volume]);
      removeTree(dir);
    }
  }, 300_000);
});
