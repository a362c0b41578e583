// A session: a body that makes things, each pushed on a stack with what undoes it, and the undos
// run in reverse when the body is done, on every path (bubblewrap's cleanup attributes, Go's
// defer). Unlike a bare `await using`, which folds a failing undo and the body's error into one
// SuppressedError, the result keeps them apart: what the body gave or threw, and every undo that
// failed, in the order they ran. Callers turn that into their outcome.
import { performance } from 'node:perf_hooks';
import { disposalErrors } from './disposable-stack.js';

export { disposalErrors };

export type Settled<T> = ({ ok: true; value: T } | { ok: false; error: unknown }) & {
  /** Every undo that failed, in the order they ran. */
  teardown: unknown[];
  /** How long the undos took. */
  teardownMs: number;
};

export async function inSession<T>(body: (session: AsyncDisposableStack) => Promise<T>): Promise<Settled<T>> {
  const session = new AsyncDisposableStack();
  let settled: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    settled = { ok: true, value: await body(session) };
  } catch (error) {
    settled = { ok: false, error };
  }
  let teardown: unknown[] = [];
  const undoing = performance.now();
  try {
    await session.disposeAsync();
  } catch (error) {
    teardown = disposalErrors(error).flatMap((failure): unknown[] =>
      failure instanceof AggregateError && failure.message === '' ? [...(failure.errors as unknown[])] : [failure],
    );
  }
  return { ...settled, teardown, teardownMs: performance.now() - undoing };
}
