// One lifecycle for a contained process, shared by the runner's actions and `mountat exec`. The
// body reads as the happy path; everything it makes is owned by the session and undone in
// reverse on every path out:
//
//   request   open what the start needs (the root, the output files): owned by the session
//   start     the starter: the action exists, waiting at its gate; disposing it stops it
//   setup     the caller's setup (mounts, prestart hooks), each pushing what undoes it on a stack
//             that is undone only after the action has stopped: nothing may still run in the root
//   run       the gate opens; the action runs to its end (killed if the caller gives up)
//
// Then the session is undone: the action is stopped (if it still runs), the setup's undos run,
// the session's fds close. outcomeOf() turns the action's end or the error, and every undo that
// failed, into the outcome.
import { MountatError } from '../base/index.js';
import type { ActionCgroups } from './cgroups/action-cgroups.js';
import type { CgroupUsage } from './cgroups/types.js';
import { inSession } from '../base/session.js';
import { outcomeOf, type ActionOutcome, type SessionPhase } from './outcome.js';
import { PhaseTimer } from './phases.js';
import type { ActionEnd } from './protocol.js';
import { StartedAction, type StartOptions } from './starter.js';

export interface ContainedRun {
  /** The command's name, for messages. */
  argv0: string;
  /** How the root is named in messages: "the input root" (the runner), "the root" (exec). */
  rootName: string;
  /** The request phase: check and open what the start needs; what it opens, `session` owns. */
  request(session: AsyncDisposableStack): StartOptions;
  /** Right after the starter started (the runner closes its copies of the action's output files). */
  started?(): void;
  /**
   * The setup phase, once the action's pid exists and before its gate opens: set up what it needs,
   * pushing what undoes each step on `undos` as it goes (a step that fails half-way pushes what it
   * left too). `undos` runs after the action has stopped; `ended` then says how (undefined where
   * its end was never learnt).
   */
  setUp(pid: number, undos: AsyncDisposableStack, ended: () => ActionEnd | undefined): Promise<void> | void;
  /** The caller gives up: a setup stops at the next phase; a running action is killed. */
  signal?: AbortSignal | undefined;
  /** When the gate has opened (`mountat exec` passes on the signals it receives from then on). */
  running?(action: StartedAction): void;
  /** Where to make the action's own cgroup (its limits, its kill, its figures); none without. */
  cgroups?: ActionCgroups | undefined;
  /** The action's oom_score_adj (with or without a cgroup); null leaves it as this process's. */
  oomScoreAdj?: number | null | undefined;
  /** The action's nice value, and its floor; null leaves it as this process's. */
  nice?: number | null | undefined;
}

export interface ContainedResult {
  outcome: ActionOutcome;
  /** Every undo that failed, in the order they ran (also in outcome.error). */
  teardown: readonly unknown[];
  /** ms of each phase: requestMs, spawnMs, pidMs, prestartMs, runMs, then poststopMs (the undo). */
  phases: Record<string, number>;
  /** From the start of the starter to the end of the setup; absent if it never started. */
  setupMs?: number | undefined;
  /** The undo of the whole session; absent if the action never started. */
  teardownMs?: number | undefined;
  durationMs: number;
  /** The figures of the action's own cgroup, read once everything in it had ended. */
  cgroup?: CgroupUsage | undefined;
}

export async function runContained(run: ContainedRun): Promise<ContainedResult> {
  const timer = new PhaseTimer();
  let phase: SessionPhase = 'request';
  let startedAt: number | undefined;
  let started = false;
  let setupMs: number | undefined;
  let end: ActionEnd | undefined;
  let cgroupUsage: CgroupUsage | undefined;
  const cancelled = (what: string) => new MountatError('cancelled', what);

  const settled = await inSession(async (session) => {
    const options = run.request(session);
    if (run.signal?.aborted) throw cancelled('cancelled before it started');
    startedAt = timer.mark('requestMs');

    phase = 'start';
    // Removed last, once the action, everything it started and the setup's undos are gone.
    const cgroup = run.cgroups && session.use(run.cgroups.create());
    // Pushed before the action starts, so undone after it has stopped.
    const undos = session.use(new AsyncDisposableStack());
    // Nothing the action started (a process it left behind without a PID namespace of its own)
    // still runs when the setup is undone.
    if (cgroup) session.defer(() => cgroup.stop());
    // The starter's child enters its cgroup in every tree and sets its oom_score_adj itself, before
    // its gate, so before its first instruction and before it makes its cgroup namespace as the
    // gate opens (native/starter/cgroup.c): none of it blocks this thread. The starter holds its
    // own copies of the fds once started.
    let action: StartedAction;
    {
      using entry = cgroup?.entry();
      action = session.use(new StartedAction({ ...options, cgroup: entry, oomScoreAdj: run.oomScoreAdj, nice: run.nice }));
    }
    started = true;
    run.started?.();
    timer.mark('spawnMs');
    const pid = await action.untilPid().catch(async (error: unknown) => {
      // A step before the action's pid (its PID namespace, its fork into its cgroup) failed: the
      // starter named it, and that is the answer.
      const early = await action.ended;
      if (early.kind !== 'start-failed') throw error;
      end = early;
      return undefined;
    });
    if (pid === undefined) return;
    cgroup?.watch();
    timer.mark('pidMs');

    phase = 'setup';
    await run.setUp(pid, undos, () => end);
    setupMs = timer.mark('prestartMs') - startedAt;
    if (run.signal?.aborted) throw cancelled('cancelled during setup');

    phase = 'run';
    action.open();
    run.running?.(action);
    const kill = () => action.kill();
    run.signal?.addEventListener('abort', kill);
    try {
      end = await action.ended;
    } finally {
      run.signal?.removeEventListener('abort', kill);
    }
    if (cgroup) {
      await cgroup.stop();
      cgroupUsage = cgroup.usage();
    }
    timer.mark('runMs');
    if (run.signal?.aborted) throw cancelled('cancelled while running; the action was killed');
  });

  // Only a session that started the action reports its teardown (stopping it, the setup's undos).
  const teardownMs = started ? (timer.ms.poststopMs = settled.teardownMs) : undefined;
  const outcome = outcomeOf({
    end,
    error: settled.ok ? undefined : settled.error,
    failedIn: settled.ok ? undefined : phase,
    teardown: settled.teardown,
    argv0: run.argv0,
    rootName: run.rootName,
  });
  return { outcome, teardown: settled.teardown, phases: timer.ms, setupMs, teardownMs, durationMs: timer.sinceStart(), cgroup: cgroupUsage };
}
