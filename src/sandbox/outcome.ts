// How a contained action came out, decided in one pure function for every caller: the runner
// turns it into a RunResponse or a gRPC status, `mountat exec` into its exit status, and both log
// its label. The inputs are what the session saw: how the action ended, or the error that stopped
// the session and the phase it stopped in, and every undo that failed.
import { describeError, KINDS, kindOf, MountatError, type ErrorKind } from '../base/index.js';
import type { ActionEnd } from './protocol.js';
import { STEP_MEANING } from './start-steps.js';

/** Where a session was when it failed. */
export type SessionPhase = 'request' | 'start' | 'setup' | 'run';

export interface ActionFacts {
  /** How the action ended, when the session got that far. */
  end?: ActionEnd | undefined;
  /** What stopped the session before the action's end, if anything. */
  error?: unknown;
  failedIn?: SessionPhase | undefined;
  /** Every undo that failed, in the order they ran. */
  teardown: readonly unknown[];
  /** The command, for messages. */
  argv0: string;
  /** How the root is named in messages: "the input root" (the runner), "the root" (exec). */
  rootName: string;
}

export type OutcomeLabel = 'exited' | 'signalled' | 'start-failed' | 'cancelled' | 'setup-failed' | 'teardown-failed' | 'invalid-request' | 'failed';

export type RanEnd = Extract<ActionEnd, { kind: 'exited' | 'signalled' }>;

export interface ActionOutcome {
  label: OutcomeLabel;
  /** The action ran to an end: its exit or signal (reported even when the teardown then failed). */
  ran?: RanEnd | undefined;
  /** Why the action has no usable end, before any teardown failure. */
  failure?: MountatError | undefined;
  /** What the caller fails with: the failure, a teardown failure, or both in one. */
  error?: MountatError | undefined;
  /** The exit status a shell would give. */
  exitCode: number;
}

/** start failures that are the request's fault at a step that runs what the request names. */
const CALLER_ERRNOS = new Set(['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOEXEC', 'ENOTDIR', 'ELOOP']);

function startFailure(end: Extract<ActionEnd, { kind: 'start-failed' }>, facts: ActionFacts): MountatError {
  const what = `cannot start ${JSON.stringify(facts.argv0)} in ${facts.rootName}`;
  const meaning = STEP_MEANING[end.step];
  if (meaning.byRequest) {
    const kind: ErrorKind = CALLER_ERRNOS.has(end.code) ? 'invalid-input' : 'internal';
    return new MountatError(kind, `${what}: ${end.step === 'chdir' ? 'working directory: ' : ''}${end.code}`);
  }
  // Every other step fails only for what the runner lacks.
  const lacking = end.code === 'EPERM' ? meaning.lacking : undefined;
  return new MountatError(lacking ? 'not-permitted' : 'internal', `${what}: ${end.step}: ${end.code}${lacking ? ` (the runner needs ${lacking})` : ''}`);
}

function asMountatError(error: unknown): MountatError {
  return error instanceof MountatError ? error : new MountatError('internal', describeError(error), { cause: error });
}

function labelOf(kind: ErrorKind, phase: SessionPhase | undefined): OutcomeLabel {
  if (kind === 'cancelled') return 'cancelled';
  if (phase === 'request' && (kind === 'invalid-input' || kind === 'usage')) return 'invalid-request';
  if (phase === 'setup') return 'setup-failed';
  return 'failed';
}

export function outcomeOf(facts: ActionFacts): ActionOutcome {
  let label: OutcomeLabel;
  let failure: MountatError | undefined;
  let ran: RanEnd | undefined;
  if (facts.error !== undefined) {
    failure = asMountatError(facts.error);
    label = labelOf(failure.kind, facts.failedIn);
  } else if (facts.end === undefined) {
    failure = new MountatError('internal', 'the session ended with neither an end nor an error');
    label = 'failed';
  } else if (facts.end.kind === 'start-failed') {
    failure = startFailure(facts.end, facts);
    label = 'start-failed';
  } else if (facts.end.kind === 'lost') {
    failure = new MountatError('internal', `the action's starter failed: ${facts.end.detail}`);
    label = 'failed';
  } else {
    ran = facts.end;
    label = facts.end.kind;
  }

  let error = failure;
  if (facts.teardown.length > 0) {
    label = 'teardown-failed';
    const teardown = new AggregateError([...facts.teardown], '');
    // Added to the failure that came before (its kind and reason), never put in its place.
    error = failure
      ? MountatError.wrap(failure.kind, `${describeError(failure)}; tearing down the action failed too`, teardown)
      : MountatError.wrap('internal', 'tearing down the action failed', teardown);
  }

  return { label, ran, failure, error, exitCode: exitCodeOf(ran, failure, facts) };
}

/** As a shell: the command's status, 128+N for signal N, 127 for a command not found, 126 for one that cannot run. */
function exitCodeOf(ran: RanEnd | undefined, failure: MountatError | undefined, facts: ActionFacts): number {
  // A command that succeeded over a failed teardown still fails: something was left behind.
  if (ran) return ran.kind === 'exited' ? (ran.code === 0 && facts.teardown.length > 0 ? 1 : ran.code) : 128 + ran.signal;
  if (facts.error === undefined && facts.end?.kind === 'start-failed' && facts.end.step === 'exec') return facts.end.code === 'ENOENT' ? 127 : 126;
  return KINDS[kindOf(failure)].exitCode;
}
