import { describe, expect, it } from 'vitest';
import { disposalErrors } from './disposable-stack.js';
import { messageOf } from './errors.js';

describe('AsyncDisposableStack on Node 20', () => {
  it('undoes in reverse and keeps every failure', async () => {
    const done: string[] = [];
    const stack = new AsyncDisposableStack();
    stack.defer(() => void done.push('first made'));
    stack.defer(() => {
      throw new Error('second');
    });
    stack.adopt('third', (name) => {
      done.push(`${name} made`);
      return Promise.reject(new Error(name));
    });
    const error = await stack.disposeAsync().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(done).toEqual(['third made', 'first made']);
    expect(disposalErrors(error).map(messageOf)).toEqual(['third', 'second']);
    expect(stack.disposed).toBe(true);
  });

  it('disposes what `await using` holds on every path', async () => {
    const done: string[] = [];
    const run = async (fail: boolean) => {
      await using stack = new AsyncDisposableStack();
      stack.defer(() => void done.push(fail ? 'undone after a failure' : 'undone after success'));
      if (fail) throw new Error('step failed');
    };
    await run(false);
    await expect(run(true)).rejects.toThrow('step failed');
    expect(done).toEqual(['undone after success', 'undone after a failure']);
  });

  it('hands its undos on with move()', async () => {
    const done: string[] = [];
    const stack = new AsyncDisposableStack();
    stack.defer(() => void done.push('undo'));
    const moved = stack.move();
    await stack.disposeAsync();
    expect(done).toEqual([]);
    await moved.disposeAsync();
    expect(done).toEqual(['undo']);
  });
});
