// `mountat runner`: sweep what a crashed predecessor left, then serve buildbarn.runner.Runner on
// UNIX sockets (and TCP if configured) until SIGTERM, when in-flight actions are cancelled and
// torn down before the process exits.
import { lstatSync, rmSync } from 'node:fs';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MountatError } from '../base/index.js';
import { ownCapabilities, probePivotRoot, probeProcPidns } from '../linux/index.js';
import { refuseUnmappedRunAs } from './run-as.js';
import { RecordStore } from '../mounts/index.js';
import { prepareIsolation, reserveCgroupsInstance, STARTER_PATH, StarterServer } from '../sandbox/index.js';
import { runAction, type ActionSettings } from './action.js';
import { ActionPool } from './action-pool.js';
import { actionConfigOf, actionSettingsOf, releaseActionSettings } from './action-settings.js';
import { BuildDirectory } from './build-directory.js';
import { openActionCgroups } from './cgroups.js';
import { refuseReachableListeners, type Settings } from './config.js';
import { recover } from './recovery.js';
import { lockStateDirectory } from './state-lock.js';
import { startupSweepRule } from './startup-sweep.js';
import { startDiagnostics } from './diagnostics.js';
import { silentObserver } from './observer.js';
import { RunnerService, type ActionRunner } from './service.js';

export interface RunningRunner {
  service: RunnerService;
  /** The worker threads that run actions; undefined with actionThreads 0. */
  pool: ActionPool | undefined;
  /** Stop accepting, cancel in-flight actions, tear them down, close the sockets. */
  close(): Promise<void>;
}

/** How long shutdown waits for clients to close their connections once every action is answered. */
const CONNECTION_GRACE_MS = 2000;

function bind(server: Server, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error) =>
      error ? reject(new MountatError('precondition', `cannot listen on ${address}: ${error.message}`, { cause: error })) : resolve(),
    );
  });
}

/** A socket file left by an earlier instance would make bind fail with EADDRINUSE. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) rmSync(path);
  } catch {
    // Nothing there (or not ours to remove): bind says so, if it matters.
  }
}

export async function startRunner(settings: Settings, log: Logger): Promise<RunningRunner> {
  // Before anything listens or is touched: no listener an action could connect to (listeners.ts).
  refuseReachableListeners(settings);
  refuseUnmappedRunAs(settings.runAs);
  for (const key of settings.ignored) log.warn({ option: key }, 'bb_runner option accepted but not used by mountat');
  const { isolation, warnings } = prepareIsolation(
    {
      rooted: settings.chroot,
      pidNamespace: settings.pidNamespace,
      network: settings.network,
      capabilities: settings.capabilities,
      runAs: settings.runAs,
      userNamespaces: settings.userNamespaces,
      allowSyscalls: settings.allowSyscalls,
    },
    { own: ownCapabilities(), pivotRoot: probePivotRoot(), procPidns: settings.pidNamespace && probeProcPidns() === true },
  );
  for (const { message, detail } of warnings) log.warn(detail, message);
  // Before anything reads the records: they are ours alone once this is held (state-lock.ts).
  const lock = lockStateDirectory(settings.stateDirectory);
  // Before any starter server starts: on v2 the runner may first move into a leaf of its cgroup.
  // With worker threads, this is the one-time work and the refusals; each thread opens a base of
  // its own below the same parent.
  const cgroups = openActionCgroups(settings, log);
  const build = BuildDirectory.open(settings.buildDirectoryPath);

  // Metrics first, so that what the start-up recovery removes is counted.
  const metrics = settings.diagnostics?.prometheus ? new (await import('./metrics.js')).RunnerMetrics() : undefined;
  const observer = metrics ?? silentObserver;
  const records = new RecordStore(settings.stateDirectory);
  const owns = startupSweepRule(
    { plan: settings.plan, temporaryDirectoryMount: settings.temporaryDirectoryMount, builtinHook: settings.hooks.prestart.includes('mountat') },
    build,
  );
  const recovered = recover(build, records, log, owns);
  observer.startupRecovered(recovered.fromRecords, recovered.swept);

  // After the recovery: no action runs before what a predecessor left is torn down.
  const config = actionConfigOf(settings);
  let starterServer: StarterServer | undefined;
  let pool: ActionPool | undefined;
  let runOne: ActionRunner;
  let mainThreadSettings: ActionSettings | undefined;
  if (settings.actionThreads === 0) {
    starterServer = new StarterServer(STARTER_PATH);
    const actionSettings = (mainThreadSettings = actionSettingsOf(config, { isolation, build, records, starterServer, cgroups, observer }));
    runOne = (request, signal, report) => runAction(request, actionSettings, signal, report);
  } else {
    const threads = new ActionPool({
      size: settings.actionThreads,
      config,
      isolation,
      cgroupsInstance: () => (cgroups ? reserveCgroupsInstance() : undefined),
      observer,
      log,
    });
    threads.start();
    pool = threads;
    runOne = (request, signal, report) => threads.run(request, signal, report);
  }
  const service = new RunnerService(build, runOne, settings.readinessPaths, log, observer);
  const server = new Server();
  service.addToServer(server);
  for (const path of settings.listenPaths) {
    removeStaleSocket(path);
    await bind(server, `unix://${path}`);
  }
  for (const address of settings.listenAddresses) await bind(server, address);
  const diagnostics = settings.diagnostics
    ? await startDiagnostics({ listen: settings.diagnostics.listen, registry: metrics?.registry, notReady: () => service.notReady() })
    : undefined;
  log.info(
    {
      listenPaths: settings.listenPaths,
      listenAddresses: settings.listenAddresses,
      diagnostics: diagnostics?.addresses,
      buildDirectory: build.path,
      pidNamespace: isolation.pidNamespace,
      root: isolation.root,
      recovered,
      limits: settings.limits,
      actionThreads: settings.actionThreads,
    },
    'runner ready',
  );

  return {
    service,
    pool,
    async close() {
      const shutdown = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      // tryShutdown waits for calls in flight; cancel them so it does not wait for builds.
      await service.cancelAll();
      // Every action is torn down and answered. tryShutdown also waits for each client to close
      // its connection after the GOAWAY, which a hung or frozen client never does: give them a
      // moment, then close the connections ourselves (nothing is left to lose).
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), CONNECTION_GRACE_MS)));
      if ((await Promise.race([shutdown, grace])) === 'timeout') {
        log.warn({ graceMs: CONNECTION_GRACE_MS }, 'clients did not close their connections: closing them');
        server.forceShutdown();
      }
      clearTimeout(timer);
      await pool?.close();
      starterServer?.close();
      cgroups?.[Symbol.dispose]();
      if (mainThreadSettings) releaseActionSettings(mainThreadSettings);
      for (const path of settings.listenPaths) removeStaleSocket(path);
      await diagnostics?.close();
      build.fd.close();
      lock.release();
      log.info('runner stopped');
    },
  };
}
