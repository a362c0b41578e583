import { describe, expect, it } from 'vitest';
import { describeError, KINDS, MountatError } from '../base/index.js';
import { outcomeOf, type ActionFacts } from './outcome.js';
import { NO_RUSAGE as rusage } from './protocol.js';

const facts = (more: Partial<ActionFacts>): ActionFacts => ({ teardown: [], argv0: 'cc', rootName: 'the input root', ...more });
const startFailed = (step: 'exec' | 'chdir' | 'pivot_root' | 'credentials', code: string) => ({ kind: 'start-failed' as const, errno: 1, code, step });

describe('the outcome of an action', () => {
  it.each([
    ['exit 0', facts({ end: { kind: 'exited', code: 0, rusage } }), 'exited', 0, undefined, undefined],
    ['exit 3', facts({ end: { kind: 'exited', code: 3, rusage } }), 'exited', 3, undefined, undefined],
    ['SIGKILL', facts({ end: { kind: 'signalled', signal: 9, rusage } }), 'signalled', 137, undefined, undefined],
    ['a command not found', facts({ end: startFailed('exec', 'ENOENT') }), 'start-failed', 127, 'invalid-input', 'cannot start "cc" in the input root: ENOENT'],
    [
      'a command that cannot run',
      facts({ end: startFailed('exec', 'ENOEXEC') }),
      'start-failed',
      126,
      'invalid-input',
      'cannot start "cc" in the input root: ENOEXEC',
    ],
    [
      'a missing working directory',
      facts({ end: startFailed('chdir', 'ENOENT') }),
      'start-failed',
      1,
      'invalid-input',
      'cannot start "cc" in the input root: working directory: ENOENT',
    ],
    [
      'a capability the runner lacks',
      facts({ end: startFailed('pivot_root', 'EPERM') }),
      'start-failed',
      1,
      'not-permitted',
      'cannot start "cc" in the input root: pivot_root: EPERM (the runner needs CAP_SYS_ADMIN, and a seccomp profile that allows pivot_root)',
    ],
    [
      'a starter that broke',
      facts({ end: { kind: 'lost', detail: 'the starter was killed by signal 9' } }),
      'failed',
      1,
      'internal',
      "the action's starter failed: the starter was killed by signal 9",
    ],
    [
      'a bad request',
      facts({ error: new MountatError('invalid-input', 'arguments is empty'), failedIn: 'request' }),
      'invalid-request',
      1,
      'invalid-input',
      'arguments is empty',
    ],
    [
      'a failed setup',
      facts({ error: MountatError.wrap('precondition', 'setting up the action failed', new Error('x')), failedIn: 'setup' }),
      'setup-failed',
      1,
      'precondition',
      'setting up the action failed: x',
    ],
    [
      'a cancellation during setup',
      facts({ error: new MountatError('cancelled', 'cancelled during setup'), failedIn: 'setup' }),
      'cancelled',
      1,
      'cancelled',
      'cancelled during setup',
    ],
    ['an error nobody made on purpose', facts({ error: new TypeError('x is undefined'), failedIn: 'run' }), 'failed', 1, 'internal', 'x is undefined'],
  ])('%s', (_name, given, label, exitCode, kind, line) => {
    const outcome = outcomeOf(given);
    expect(outcome.label).toBe(label);
    expect(outcome.exitCode).toBe(exitCode);
    expect(outcome.error?.kind).toBe(kind);
    expect(outcome.error && describeError(outcome.error)).toBe(line);
  });

  it('fails a successful action whose teardown failed, and keeps its end', () => {
    const outcome = outcomeOf(facts({ end: { kind: 'exited', code: 0, rusage }, teardown: [new Error('umount: EBUSY')] }));
    expect(outcome).toMatchObject({ label: 'teardown-failed', ran: { kind: 'exited', code: 0 }, exitCode: 1 });
    expect(describeError(outcome.error)).toBe('tearing down the action failed: umount: EBUSY');
    expect(KINDS[outcome.error!.kind].grpcStatus).toBe(13);
  });

  it("keeps a failed command's own status over a failed teardown", () => {
    expect(outcomeOf(facts({ end: { kind: 'exited', code: 2, rusage }, teardown: [new Error('x')] })).exitCode).toBe(2);
  });

  it('adds a teardown failure to the failure before it, keeping its kind', () => {
    const outcome = outcomeOf(
      facts({
        error: MountatError.wrap('precondition', 'setting up the action failed', new Error('quota')),
        failedIn: 'setup',
        teardown: [new Error('hook #0: 5'), new Error('umount: EBUSY')],
      }),
    );
    expect(outcome.error?.kind).toBe('precondition');
    expect(outcome.failure?.kind).toBe('precondition');
    expect(describeError(outcome.error)).toBe('setting up the action failed: quota; tearing down the action failed too: hook #0: 5; umount: EBUSY');
  });
});
