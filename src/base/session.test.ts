import { describe, expect, it } from 'vitest';
import { messageOf } from './errors.js';
import { inSession } from './session.js';

describe('inSession', () => {
  it('undoes in reverse after success and keeps the value', async () => {
    const done: string[] = [];
    const settled = await inSession((session) => {
      session.defer(() => void done.push('first'));
      session.defer(() => void done.push('second'));
      return Promise.resolve(42);
    });
    expect(settled).toMatchObject({ ok: true, value: 42, teardown: [] });
    expect(settled.teardownMs).toBeGreaterThanOrEqual(0);
    expect(done).toEqual(['second', 'first']);
  });

  it("keeps the body's error and every failed undo apart, in the order the undos ran", async () => {
    const failure = new Error('body');
    const settled = await inSession((session) => {
      session.defer(() => {
        throw new Error('made first, undone last');
      });
      session.defer(() => {
        throw new AggregateError([new Error('a'), new Error('b')], '');
      });
      return Promise.reject(failure);
    });
    expect(settled.ok).toBe(false);
    expect(!settled.ok && settled.error).toBe(failure);
    expect(settled.teardown.map(messageOf)).toEqual(['a', 'b', 'made first, undone last']);
  });
});
