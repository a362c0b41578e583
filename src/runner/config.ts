// The runner's configuration: bb_runner's options under bb_runner's names, mountat's own
// beside them, validated by schemas/runner-config.schema.json and given their defaults here.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { messageOf, MountatError } from '../base/index.js';
import type { CapabilityName } from '../linux/index.js';
import { parsePlan, PlanError, readJsonFile, validateOrThrow, type Plan, type PlanInput, type Validator } from '../mounts/index.js';
import { SANDBOX_DEFAULTS, whyNotAllowable, type CgroupLimits, type LimitName, type NetworkMode } from '../sandbox/index.js';
import type { RunnerConfig, RunnerHookEntry } from './generated/runner-config.js';
import { validateRunnerConfig } from './generated/validate-runner-config.js';
import { listenerKindOf, resolveExisting, unreachableProblem, type Listener } from './listeners.js';

export type { RunnerConfig, RunnerHookEntry } from './generated/runner-config.js';

export type HookSpec = 'mountat' | RunnerHookEntry;

export interface Settings {
  buildDirectoryPath: string;
  listenPaths: string[];
  listenAddresses: string[];
  /** Every socket the runner listens on (gRPC and diagnostics), by its name in the config. */
  listeners: Listener[];
  setTmpdir: boolean;
  chroot: boolean;
  runAs: { uid: number; gid: number; groups: number[] } | undefined;
  readinessPaths: string[];
  /** The mounts besides the temporary directory, validated. */
  plan: Plan;
  temporaryDirectoryMount: string | null;
  pidNamespace: boolean;
  /** What an action running as root keeps (an action with runAs keeps nothing). */
  capabilities: CapabilityName[];
  network: NetworkMode;
  /** Whether actions may make user namespaces (their seccomp filter refuses them otherwise). */
  userNamespaces: boolean;
  /** Refusals of the actions' seccomp filter to do without, checked. */
  allowSyscalls: string[];
  hooks: { prestart: HookSpec[]; poststop: HookSpec[] };
  /** What each action's own cgroup bounds (defaults filled in). */
  limits: CgroupLimits;
  /** The limits the config sets: the runner refuses to start where one cannot be enforced. */
  requiredLimits: LimitName[];
  /** Below which cgroup the actions' are made; default the runner's own. */
  cgroupParent: string | undefined;
  stateDirectory: string;
  /** Worker threads that run actions; 0 runs them on the main thread. */
  actionThreads: number;
  logLevel: string;
  /** Buildbarn's global.diagnosticsHttpServer: /metrics (Prometheus), /-/healthy, /-/ready. */
  diagnostics: { listen: Array<{ host: string; port: number }>; prometheus: boolean } | undefined;
  /** bb_runner options accepted but not used, for a warning at start-up. */
  ignored: string[];
}

export const RUNNER_DEFAULTS = {
  setTmpdirEnvironmentVariable: true,
  chrootIntoInputRoot: true,
  mounts: [
    { target: 'proc', kind: 'proc' },
    { target: 'sys', kind: 'sysfs' },
  ] satisfies PlanInput['mounts'],
  temporaryDirectoryMount: 'tmp',
  pidNamespace: SANDBOX_DEFAULTS.pidNamespace,
  capabilities: SANDBOX_DEFAULTS.capabilities,
  network: SANDBOX_DEFAULTS.network,
  allowUserNamespaces: SANDBOX_DEFAULTS.userNamespaces,
  allowSyscalls: SANDBOX_DEFAULTS.allowSyscalls,
  hooks: { prestart: ['mountat'], poststop: ['mountat'] } satisfies { prestart: HookSpec[]; poststop: HookSpec[] },
  limits: SANDBOX_DEFAULTS.limits,
  stateDirectory: '/run/mountat/runner',
  /**
   * The default actionThreads (defaultActionThreads): one per CPU this process may use beside the
   * main thread's, at most this many (each thread costs some 12-15 MiB of memory: its own V8 heap
   * and modules)...
   */
  maxDefaultActionThreads: 8,
  /**
   * ...and none below this many CPUs: on 2 vCPUs one thread cost 1.11x the time per action, the
   * same throughput and 21 MiB more peak RSS (bench/RESULTS.md, runner): it frees the main thread
   * only where other cores can take the work.
   */
  minCpusForActionThreads: 4,
  logLevel: 'info',
} as const;

/** The runner's config refused: invalid input, the operator's to fix. */
export class ConfigError extends MountatError {
  constructor(message: string, options?: ErrorOptions) {
    super('invalid-input', message, options);
    this.name = 'ConfigError';
  }
}

/** actionThreads when the config gives none, for a runner that may use `cpus` CPUs. */
export function defaultActionThreads(cpus: number): number {
  return cpus < RUNNER_DEFAULTS.minCpusForActionThreads ? 0 : Math.min(cpus - 1, RUNNER_DEFAULTS.maxDefaultActionThreads);
}

export function settingsFrom(json: unknown): Settings {
  const config = validateOrThrow<RunnerConfig>(validateRunnerConfig as Validator, json, 'config', (line) => new ConfigError(line));
  const listenPaths = config.grpcServers.flatMap((server) => server.listenPaths ?? []);
  const listenAddresses = config.grpcServers.flatMap((server) => server.listenAddresses ?? []);
  if (listenPaths.length + listenAddresses.length === 0) throw new ConfigError('config.grpcServers: give at least one listenPaths or listenAddresses entry');
  let plan: Plan;
  try {
    // Parsed under the config's own name: its messages read "config.mounts[0] …" as they are.
    plan = parsePlan({ mounts: config.mounts ?? structuredClone(RUNNER_DEFAULTS.mounts) }, 'operator', 'config');
  } catch (error) {
    throw new ConfigError(messageOf(error), { cause: error });
  }
  const temporaryDirectoryMount = config.temporaryDirectoryMount === undefined ? RUNNER_DEFAULTS.temporaryDirectoryMount : config.temporaryDirectoryMount;
  if (temporaryDirectoryMount !== null) {
    try {
      parsePlan({ mounts: [...plan.mounts.map((m) => ({ target: m.target, kind: 'tmpfs' as const })), { target: temporaryDirectoryMount, kind: 'tmpfs' }] });
    } catch (error) {
      // The entry at fault is one made up here: only the reason is the operator's to read.
      throw new ConfigError(`config.temporaryDirectoryMount: ${error instanceof PlanError ? error.reason : messageOf(error)}`, { cause: error });
    }
  }
  const allowSyscalls = config.allowSyscalls ?? [...RUNNER_DEFAULTS.allowSyscalls];
  for (const name of allowSyscalls) {
    const why = whyNotAllowable(name, 'allowUserNamespaces');
    if (why !== undefined) throw new ConfigError(`config.allowSyscalls: ${JSON.stringify(name)}: ${why}`);
  }
  const prestart = config.hooks?.prestart ?? [...RUNNER_DEFAULTS.hooks.prestart];
  const poststop = config.hooks?.poststop ?? [...RUNNER_DEFAULTS.hooks.poststop];
  const settings: Settings = {
    buildDirectoryPath: config.buildDirectoryPath,
    listenPaths,
    listenAddresses,
    listeners: listenersOf(config),
    setTmpdir: config.setTmpdirEnvironmentVariable ?? RUNNER_DEFAULTS.setTmpdirEnvironmentVariable,
    chroot: config.chrootIntoInputRoot ?? RUNNER_DEFAULTS.chrootIntoInputRoot,
    runAs: config.runCommandsAs && {
      uid: config.runCommandsAs.userId,
      gid: config.runCommandsAs.groupId,
      groups: config.runCommandsAs.additionalGroupIds ?? [],
    },
    readinessPaths: config.readinessCheckingPathnames ?? [],
    plan,
    temporaryDirectoryMount,
    pidNamespace: config.pidNamespace ?? RUNNER_DEFAULTS.pidNamespace,
    capabilities: config.capabilities ?? [...RUNNER_DEFAULTS.capabilities],
    network: config.network ?? RUNNER_DEFAULTS.network,
    userNamespaces: config.allowUserNamespaces ?? RUNNER_DEFAULTS.allowUserNamespaces,
    allowSyscalls,
    hooks: { prestart, poststop },
    ...limitsFrom(config),
    stateDirectory: config.stateDirectory ?? RUNNER_DEFAULTS.stateDirectory,
    actionThreads: config.actionThreads ?? defaultActionThreads(availableParallelism()),
    logLevel: config.logLevel ?? RUNNER_DEFAULTS.logLevel,
    diagnostics: diagnosticsFrom(config),
    ignored: [
      ...Object.keys(config.global ?? {})
        .filter((key) => key !== 'diagnosticsHttpServer')
        .map((key) => `global.${key}`),
      ...(['temporaryDirectories', 'cleanTemporaryDirectories'] as const).filter((key) => config[key] !== undefined),
    ],
  };
  // As written here; loadSettings and startRunner check again with symlinks resolved.
  refuseReachableListeners(settings, (path) => resolve(path));
  return settings;
}

/** The limits with their defaults, and those the config sets (null is "no limit", not a limit to enforce). */
function limitsFrom(config: RunnerConfig): Pick<Settings, 'limits' | 'requiredLimits' | 'cgroupParent'> {
  const given = config.limits ?? {};
  const defaults = RUNNER_DEFAULTS.limits;
  const limits: CgroupLimits = {
    pids: given.pids === undefined ? defaults.pids : given.pids,
    memoryBytes: given.memoryBytes === undefined ? defaults.memoryBytes : given.memoryBytes,
    cpu: given.cpu === undefined || given.cpu === null ? defaults.cpu : { quota: given.cpu.quota, weight: given.cpu.weight },
    oomScoreAdj: given.oomScoreAdj === undefined ? defaults.oomScoreAdj : given.oomScoreAdj,
    nice: given.nice === undefined ? defaults.nice : given.nice,
  };
  const requiredLimits = (['pids', 'memoryBytes', 'cpu'] as const).filter((name) => given[name] !== undefined && given[name] !== null);
  return { limits, requiredLimits, cgroupParent: config.cgroupParent };
}

function listenersOf(config: RunnerConfig): Listener[] {
  const grpc = config.grpcServers.flatMap((server, i) => [
    ...(server.listenPaths ?? []).map((address, j): Listener => ({
      name: `config.grpcServers[${i}].listenPaths[${j}]`,
      address,
      kind: 'path',
      diagnostics: false,
    })),
    ...(server.listenAddresses ?? []).map((address, j): Listener => ({
      name: `config.grpcServers[${i}].listenAddresses[${j}]`,
      address,
      kind: listenerKindOf(address),
      diagnostics: false,
    })),
  ]);
  const http = (config.global?.diagnosticsHttpServer?.httpServers ?? []).flatMap((server, i) =>
    server.listenAddresses.map((address, j): Listener => ({
      name: `config.global.diagnosticsHttpServer.httpServers[${i}].listenAddresses[${j}]`,
      address,
      kind: 'network',
      diagnostics: true,
    })),
  );
  return [...grpc, ...http];
}

/**
 * Refuse, in one line naming it and the fix, a listener an action could connect to
 * (src/runner/listeners.ts). `resolvePath` defaults to resolving symlinks on this filesystem.
 */
export function refuseReachableListeners(settings: Settings, resolvePath: (path: string) => string = resolveExisting): void {
  const bindSources = settings.plan.mounts.flatMap((mount, index) =>
    mount.kind === 'bind' && 'path' in mount.source ? [{ name: `config.mounts[${index}]`, path: mount.source.path }] : [],
  );
  const problem = unreachableProblem(
    settings.listeners,
    { network: settings.network, chroot: settings.chroot, buildDirectoryPath: settings.buildDirectoryPath, bindSources },
    resolvePath,
  );
  if (problem !== undefined) throw new ConfigError(problem);
}

/** Buildbarn spells listen addresses "host:port", ":port" meaning every address. */
function diagnosticsFrom(config: RunnerConfig): Settings['diagnostics'] {
  const server = config.global?.diagnosticsHttpServer;
  if (!server) return undefined;
  const listen = (server.httpServers ?? []).flatMap((http) =>
    http.listenAddresses.map((address) => {
      const colon = address.lastIndexOf(':');
      const port = Number(address.slice(colon + 1));
      if (port > 65535) throw new ConfigError(`config.global.diagnosticsHttpServer: port of ${JSON.stringify(address)} is above 65535`);
      return { host: address.slice(0, colon), port };
    }),
  );
  if (listen.length === 0) throw new ConfigError('config.global.diagnosticsHttpServer: give httpServers with listenAddresses');
  return { listen, prometheus: server.enablePrometheus ?? false };
}

export function loadSettings(file: string): Settings {
  let json: unknown;
  try {
    json = readJsonFile(file, 'config file');
  } catch (error) {
    throw new ConfigError(messageOf(error), { cause: error });
  }
  try {
    const settings = settingsFrom(json);
    refuseReachableListeners(settings);
    return settings;
  } catch (error) {
    throw new ConfigError(`config file ${file}: ${messageOf(error)}`, { cause: error });
  }
}
