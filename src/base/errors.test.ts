import { describe, expect, it } from 'vitest';
import { describeError, kindOf, KINDS, messageOf, MountatError, reportOf } from './errors.js';

describe('the error model', () => {
  it('keeps a kind, and maps it through the one table', () => {
    const error = new MountatError('usage', 'exec needs a command after --');
    expect(kindOf(error)).toBe('usage');
    expect(reportOf(error)).toEqual({ kind: 'usage', exitCode: 2, grpcStatus: 3, logLevel: 'warn', line: 'exec needs a command after --' });
  });

  it('calls anything not made on purpose internal', () => {
    expect(kindOf(new TypeError('x is undefined'))).toBe('internal');
    expect(kindOf('a string')).toBe('internal');
    expect(reportOf(new RangeError('bad')).exitCode).toBe(1);
    expect(KINDS.internal.grpcStatus).toBe(13);
  });

  it.each([
    ['a plain message', new Error('boom'), 'boom'],
    [
      'a wrapped cause',
      MountatError.wrap('precondition', 'setting up the action failed', new Error('fsopen: EPERM')),
      'setting up the action failed: fsopen: EPERM',
    ],
    [
      'a cause the message already says',
      new MountatError('kernel', 'mount `proc`: fsopen: EPERM', { cause: new Error('fsopen `proc`: EPERM') }),
      'mount `proc`: fsopen: EPERM',
    ],
    [
      'an aggregate',
      MountatError.wrap('internal', 'tearing down the action failed', new AggregateError([new Error('a'), new Error('b')], '')),
      'tearing down the action failed: a; b',
    ],
    ['wraps of wraps', MountatError.wrap('internal', 'a', MountatError.wrap('internal', 'b', new Error('c'))), 'a: b: c'],
    ['a thrown string', 'plain', 'plain'],
  ])('formats %s in one line', (_name, error, line) => {
    expect(describeError(error)).toBe(line);
  });

  it('keeps the kind and the cause of a wrap', () => {
    const cause = new Error('inner');
    const error = MountatError.wrap('precondition', 'outer', cause);
    expect(error.kind).toBe('precondition');
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('outer');
  });

  it('reads the message of anything thrown', () => {
    expect(messageOf(new Error('m'))).toBe('m');
    expect(messageOf(42)).toBe('42');
  });
});
