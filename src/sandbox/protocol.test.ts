import { describe, expect, it } from 'vitest';
import { commandEnded, StatusChannel } from './protocol.js';

const X = (wait: number) => `X ${wait} 10 20 1500 1 2 3 4 5 6 7 8 9 10\n`;

function channel(...chunks: string[]): StatusChannel {
  const c = new StatusChannel();
  for (const chunk of chunks) c.feed(chunk);
  c.close();
  return c;
}

describe("the starter's status channel", () => {
  it('reads a pid, then an exit, across chunk boundaries', () => {
    const c = new StatusChannel();
    expect(c.feed('P 12')).toBeUndefined();
    expect(c.feed('3\nX 768 10 20 15')).toBe(123);
    c.feed('00 1 2 3 4 5 6 7 8 9 10\n');
    c.close();
    expect(c.end(0)).toEqual({
      kind: 'exited',
      code: 3,
      rusage: {
        userMicros: 10,
        systemMicros: 20,
        maxRssKiB: 1500,
        minflt: 1,
        majflt: 2,
        nswap: 3,
        inblock: 4,
        oublock: 5,
        msgsnd: 6,
        msgrcv: 7,
        nsignals: 8,
        nvcsw: 9,
        nivcsw: 10,
      },
    });
  });

  it('tells a signal, a failed step and a lost starter apart', () => {
    expect(channel('P 5\n', X(9)).end(0)).toMatchObject({ kind: 'signalled', signal: 9 });
    expect(channel('P 5\nE 2 exec\n', X(127 << 8)).end(0)).toEqual({ kind: 'start-failed', errno: 2, code: 'ENOENT', step: 'exec' });
    // The init's own failure, then the starter's note of it: the first E is the cause.
    expect(channel('P 5\nE 1 pivot_root\nE 10 wait\n').end(0)).toEqual({ kind: 'start-failed', errno: 1, code: 'EPERM', step: 'pivot_root' });
    expect(channel('P 5\n').end(9)).toEqual({ kind: 'lost', detail: 'the starter was killed by signal 9' });
    // The init killed with its cgroup: the starter's "K" is the end; after the init's "X", the "X" stands.
    expect(channel('P 5\nK 9\n').end(0)).toMatchObject({ kind: 'signalled', signal: 9, rusage: { userMicros: 0 }, killedFromOutside: true });
    expect(channel('P 5\n', X(3 << 8), 'K 9\n').end(0)).toMatchObject({ kind: 'exited', code: 3 });
    // Signalled as the init saw it: the command ran.
    expect(channel('P 5\n', X(9)).end(0)).not.toHaveProperty('killedFromOutside');
    expect([channel('P 5\n', X(9)).end(0), channel('P 5\n', X(3 << 8)).end(0)].map(commandEnded)).toEqual([true, true]);
    expect([channel('P 5\nK 9\n').end(0), channel('P 5\n').end(9), undefined].map(commandEnded)).toEqual([false, false, false]);
    expect(channel('P 5\n').end(125 << 8)).toEqual({ kind: 'lost', detail: 'the starter exited with status 125' });
  });

  // Only the starter and the PID namespace's init hold the pipe: anything else that appears on it
  // means the channel cannot be trusted, and no exit status from it is believed.
  const broken: Array<[string, string[], string]> = [
    ['a second end (a forged one before the real one)', ['P 5\n', X(0), X(3 << 8)], "a line after the action's end"],
    ['an end before the pid', [X(0)], 'an end before the pid'],
    ['a kill line before the pid', ['K 9\n'], 'an end before the pid'],
    ['an end after the kill line', ['P 5\nK 9\n', X(0)], 'an end after the kill line'],
    ['a second kill line', ['P 5\nK 9\nK 9\n'], 'a second kill line'],
    ['a malformed kill line', ['P 5\nK nine\n'], 'a malformed kill line'],
    ['a second pid', ['P 5\nP 6\n'], 'a second pid line'],
    ['an unknown line', ['P 5\nhello\n'], 'an unknown line'],
    ['a short end line', ['P 5\nX 0 1 2\n'], 'a malformed end line'],
    ['a non-numeric field', ['P 5\nX 0 1 2 3 4 5 6 7 8 9 10 11 12 x\n'], 'a malformed end line'],
    ['an unknown step', ['P 5\nE 1 escape\n'], 'a malformed start-error line'],
    ['a negative pid', ['P -1\n'], 'a malformed pid line'],
    ['an unterminated line', ['P 5\nX 0'], 'an unterminated line'],
    ['an endless line', ['P 5\n', 'X'.repeat(600)], 'a line longer than the protocol allows'],
  ];
  for (const [what, chunks, why] of broken) {
    it(`reports the end lost on ${what}`, () => {
      const end = channel(...chunks).end(0);
      expect(end.kind).toBe('lost');
      expect(end.kind === 'lost' && end.detail).toMatch(new RegExp(`^the starter's status channel broke protocol \\(${why.replace(/[()]/g, '\\$&')}`));
    });
  }
});
