// Consistency of deploy/kubernetes: worker.yaml (with the runner.json in its ConfigMap) and
// bb-worker-runner.jsonnet must agree on paths, ports and the runner's privileges. Returns the
// problems found, one line each, so a test can show every check able to fail.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { messageOf } from '../../src/base/index.js';
import { settingsFrom, type Settings } from '../../src/runner/config.js';
import { requiredCapabilities } from '../../src/sandbox/privileges.js';
import { asExpected, parseJson } from './checked.js';
export const DEPLOY_DIR = fileURLToPath(new URL('../../deploy/kubernetes', import.meta.url));
/** The runner image's ENTRYPOINT (read from the Dockerfile), used when the container sets no command. */
export const IMAGE_ENTRYPOINT = parseJson<string[]>(
  /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8'))![1]!,
);

interface VolumeMount {
  name: string;
  mountPath: string;
  mountPropagation?: string;
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  volumeMounts?: VolumeMount[];
  readinessProbe?: { exec?: { command?: string[] }; httpGet?: { path?: string; port?: number | string } };
  livenessProbe?: { httpGet?: { path?: string; port?: number | string } };
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[]; drop?: string[] }; seccompProfile?: { type?: string } };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
}
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { selector?: { matchLabels?: Record<string, string> }; template?: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } };
}
interface WorkerRunner {
  endpoint?: { address?: string };
  concurrency?: number;
  inputRootCharacterDeviceNodes?: string[];
}
interface BuildDirectory {
  native?: { buildDirectoryPath?: string };
  virtual?: { mount?: { mountPath?: string } };
  runners?: WorkerRunner[];
}
export interface WorkerConfig {
  buildDirectories?: BuildDirectory[];
}

export function loadDeploy(): { objects: K8sObject[]; worker: WorkerConfig } {
  const documents = parseAllDocuments(readFileSync(join(DEPLOY_DIR, 'worker.yaml'), 'utf8'));
  for (const document of documents) if (document.errors[0]) throw document.errors[0];
  const objects = documents.map((document) => asExpected<K8sObject>(document.toJS()));
  const worker = parseJson<WorkerConfig>(execFileSync('jsonnet', [join(DEPLOY_DIR, 'bb-worker-runner.jsonnet')], { encoding: 'utf8' }));
  return { objects, worker };
}

/** Whether path is mountPath or beneath it. */
function under(path: string, mountPath: string): boolean {
  return path === mountPath || path.startsWith(`${mountPath.replace(/\/$/, '')}/`);
}

/** The mount holding path: the deepest one, as the kernel resolves it. */
function mountOf(container: Container, path: string): VolumeMount | undefined {
  const holding = (container.volumeMounts ?? []).filter((m) => under(path, m.mountPath));
  return holding.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

export function deployProblems(objects: K8sObject[], worker: WorkerConfig): string[] {
  const problems: string[] = [];
  const deployment = objects.find((o) => o.kind === 'Deployment');
  const pod = deployment?.spec?.template?.spec;
  if (deployment?.apiVersion !== 'apps/v1' || !pod) return ['no apps/v1 Deployment with a pod template'];
  const labels = deployment.spec?.template?.metadata?.labels ?? {};
  for (const [key, value] of Object.entries(deployment.spec?.selector?.matchLabels ?? {})) {
    if (labels[key] !== value) problems.push(`Deployment: selector ${key}=${value} does not match the pod template's labels`);
  }
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
    for (const m of container.volumeMounts ?? [])
      if (!volumes.has(m.name)) problems.push(`${container.name}: volumeMount ${m.name} names no volume of the pod`);
  }
  const runner = pod.containers.find((c) => c.name === 'runner');
  const workerContainer = pod.containers.find((c) => c.name === 'worker');
  if (!runner || !workerContainer) return [...problems, 'the pod needs containers named worker and runner'];
  for (const c of [workerContainer, runner]) {
    for (const resource of ['cpu', 'memory'])
      if (c.resources?.requests?.[resource] === undefined) problems.push(`${c.name}: no resources.requests.${resource}`);
  }

  // The runner's config: the file its command names, from a ConfigMap of this manifest.
  const argv = [...(runner.command ?? IMAGE_ENTRYPOINT), ...(runner.args ?? [])];
  const configPath = argv[argv.lastIndexOf('--config') + 1];
  if (!configPath) return [...problems, 'runner: its command names no --config'];
  const configMount = mountOf(runner, configPath);
  const configVolume = configMount && volumes.get(configMount.name);
  if (!configMount || !configVolume?.configMap) return [...problems, `runner: config ${configPath} is on no ConfigMap volume`];
  const file = relative(configMount.mountPath, configPath);
  const key = configVolume.configMap.items?.find((item) => item.path === file)?.key ?? file;
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === configVolume.configMap!.name);
  const text = configMap?.data?.[key];
  if (text === undefined) return [...problems, `runner: ConfigMap ${configVolume.configMap.name} (in this file) has no key ${key}`];
  let settings: Settings;
  try {
    settings = settingsFrom(JSON.parse(text));
  } catch (error) {
    return [...problems, `runner.json: ${messageOf(error)}`];
  }

  // Socket and build directory: on a volume both containers mount at the same place.
  const socket = settings.listenPaths[0];
  if (!socket) return [...problems, 'runner.json: no listenPaths (bb_worker dials a UNIX socket)'];
  for (const [what, path] of [
    ['socket', socket],
    ['buildDirectoryPath', settings.buildDirectoryPath],
  ] as const) {
    const m = mountOf(runner, path);
    if (!m) problems.push(`runner: ${what} ${path} is on no volumeMount`);
    else if (!workerContainer.volumeMounts?.some((w) => w.name === m.name && w.mountPath === m.mountPath)) {
      problems.push(`worker: does not mount volume ${m.name} at ${m.mountPath}, where the runner's ${what} ${path} is`);
    }
  }
  // bb_worker's FUSE mount of the build directory reaches the runner only through propagation.
  const buildMount = mountOf(runner, settings.buildDirectoryPath);
  const workerBuildMount = buildMount && workerContainer.volumeMounts?.find((w) => w.name === buildMount.name);
  if (buildMount && buildMount.mountPropagation !== 'HostToContainer') problems.push(`runner: mount of ${buildMount.name} is not HostToContainer`);
  if (workerBuildMount && workerBuildMount.mountPropagation !== 'Bidirectional')
    problems.push(`worker: mount of ${workerBuildMount.name} is not Bidirectional`);
  if (workerContainer.securityContext?.privileged !== true) problems.push('worker: not privileged (FUSE; and Kubernetes allows Bidirectional only there)');
  if (!mountOf(runner, settings.stateDirectory))
    problems.push(`runner: stateDirectory ${settings.stateDirectory} is on no volumeMount (records would not survive a container restart)`);

  // Privileges: exactly what the runner uses.
  const security = runner.securityContext;
  if (security?.privileged === true) problems.push('runner: privileged');
  const drop = security?.capabilities?.drop ?? [];
  if (drop.length !== 1 || drop[0] !== 'ALL') problems.push(`runner: capabilities.drop is [${drop.join(', ')}], not [ALL]`);
  // The runner's own (src/sandbox/privileges.ts), then what its root actions keep.
  // The runtime's default seccomp profile refuses pivot_root: the actions are then chrooted (src/sandbox/root-change.ts).
  const seccomp = security?.seccompProfile?.type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Unconfined')
    problems.push(`runner: seccompProfile is ${seccomp ?? 'unset'}, not RuntimeDefault or Unconfined (how actions are rooted would depend on the node)`);
  const root = !settings.chroot ? 'none' : seccomp === 'Unconfined' ? 'pivot' : 'chroot';
  const needed = [...requiredCapabilities({ ...settings, root }).map(([name]) => name), ...(settings.runAs ? [] : settings.capabilities)];
  if (settings.runAs && !settings.pidNamespace) needed.push('CAP_KILL');
  const expected = [...new Set(needed.map((name) => name.replace(/^CAP_/, '')))].sort();
  const add = [...(security?.capabilities?.add ?? [])].sort();
  if (add.join() !== expected.join()) problems.push(`runner: capabilities.add is [${add.join(', ')}], expected [${expected.join(', ')}]`);

  // The readiness probe (/-/ready) answers what readinessCheckingPathnames says: without the build directory there,
  // the runner would be ready while the build directory is missing.
  if (!settings.readinessPaths.includes(settings.buildDirectoryPath))
    problems.push(
      `runner.json: readinessCheckingPathnames does not name buildDirectoryPath ${settings.buildDirectoryPath} (the readiness probe would pass while it is missing)`,
    );

  // Diagnostics: the port the runner listens on is the one declared and probed.
  const port = settings.diagnostics?.listen[0]?.port;
  if (port === undefined) problems.push('runner.json: no global.diagnosticsHttpServer (metrics and the liveness probe)');
  else {
    if (!runner.ports?.some((p) => p.containerPort === port)) problems.push(`runner: no containerPort ${port} (diagnostics)`);
    // Both probes are HTTP GETs on that server: no process started in the container per probe.
    for (const [probe, path] of [
      ['livenessProbe', '/-/healthy'],
      ['readinessProbe', '/-/ready'],
    ] as const) {
      const get = runner[probe]?.httpGet;
      const probed = typeof get?.port === 'string' ? runner.ports?.find((p) => p.name === get.port)?.containerPort : get?.port;
      if (get?.path !== path || probed !== port) problems.push(`runner: ${probe} is not httpGet ${path} on port ${port}`);
    }
  }

  // bb_worker's side: dials that socket, for that build directory, and creates /dev's nodes.
  const address = `unix://${socket}`;
  const directory = (worker.buildDirectories ?? []).find((d) => d.runners?.some((r) => r.endpoint?.address === address));
  const workerRunner = directory?.runners?.find((r) => r.endpoint?.address === address);
  if (!directory || !workerRunner) return [...problems, `bb_worker: no runner with endpoint ${address}`];

  // Memory: each action bounded (limits.memoryBytes), and concurrency of them fit the container's limit with room for
  // the runner itself; otherwise the container as a whole can run out, and on cgroup v2 (memory.oom.group on the
  // container, Kubernetes >= 1.28) that kills the runner and every action in flight, not the one at fault.
  problems.push(...memoryProblems(runner, parseJson<{ limits?: { memoryBytes?: number | null } }>(text), workerRunner.concurrency));

  const buildPath = directory.native?.buildDirectoryPath ?? directory.virtual?.mount?.mountPath;
  if (buildPath !== settings.buildDirectoryPath) problems.push(`bb_worker: build directory ${buildPath} is not the runner's ${settings.buildDirectoryPath}`);
  if (!workerRunner.inputRootCharacterDeviceNodes?.length) problems.push('bb_worker: no inputRootCharacterDeviceNodes (the runner does not mount /dev)');
  return problems;
}

/** A Kubernetes memory quantity (binary or decimal suffix, or plain bytes) in bytes; undefined if it is none. */
export function quantityBytes(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  if (!match) return undefined;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** The runner container's memory limit against concurrency x the actions' memoryBytes. */
function memoryProblems(runner: Container, config: { limits?: { memoryBytes?: number | null } }, concurrency: number | undefined): string[] {
  const memoryBytes = config.limits?.memoryBytes;
  if (typeof memoryBytes !== 'number') return ['runner.json: no limits.memoryBytes (one action could make the whole runner container run out of memory)'];
  const limit = quantityBytes(runner.resources?.limits?.memory);
  if (limit === undefined) return [`runner: no resources.limits.memory (in bytes or with a Ki/Mi/Gi/Ti suffix)`];
  if (concurrency === undefined) return ['bb_worker: the runner has no concurrency'];
  const actions = concurrency * memoryBytes;
  const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)}Mi`;
  return limit > actions
    ? []
    : [
        `runner: resources.limits.memory ${mib(limit)} leaves nothing for the runner beside ${concurrency} actions x limits.memoryBytes ${mib(memoryBytes)} (${mib(actions)})`,
      ];
}
