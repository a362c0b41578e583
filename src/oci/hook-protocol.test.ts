import { describe, expect, it } from 'vitest';
import { decodeAnswer, decodeRequest, encodeDone, encodeRefusal, encodeRequest, MAX_OUTPUT_BYTES } from './hook-protocol.js';

describe('hook server requests', () => {
  it('round-trips argv and the state', () => {
    const request = { argv: ['createContainer', '--state-dir', '/run/x', 'ünïcode'], state: '{"id":"a"}' };
    expect(decodeRequest(encodeRequest(request))).toEqual(request);
    expect(decodeRequest(encodeRequest({ argv: [], state: '' }))).toEqual({ argv: [], state: '' });
  });

  const header = (magic: string, argc: number) => {
    const bytes = Buffer.alloc(8);
    bytes.write(magic, 0, 'latin1');
    bytes.writeUInt32LE(argc, 4);
    return bytes;
  };
  it.each([
    ['empty', Buffer.alloc(0), 'not a mountat-hook request'],
    ['another magic', Buffer.concat([header('XXXX', 0)]), 'not a mountat-hook request'],
    ['an argument without its NUL', Buffer.concat([header('MHK1', 1), Buffer.from('poststop')]), 'argument list cut short'],
    ['more arguments than announced fit', Buffer.concat([header('MHK1', 2), Buffer.from('a\0')]), 'argument list cut short'],
    ['too many arguments', header('MHK1', 65), 'too many arguments (65)'],
  ])('refuses %s', (_name, payload, why) => {
    expect(decodeRequest(payload)).toBe(why);
  });
});

describe('hook server answers', () => {
  it('round-trips a refusal and a result', () => {
    expect(decodeAnswer(encodeRefusal('uid 1000'))).toEqual({ refused: 'uid 1000' });
    expect(decodeAnswer(encodeDone(2, 'out\n', 'mountat-hook: err\n'))).toEqual({ exitCode: 2, stdout: 'out\n', stderr: 'mountat-hook: err\n' });
  });

  it('keeps the end of an output too long for one message: the last line says why', () => {
    const long = `${'x'.repeat(MAX_OUTPUT_BYTES)}\nmountat-hook: the reason\n`;
    const answer = decodeAnswer(encodeDone(1, '', long));
    expect(answer && 'stderr' in answer && answer.stderr.endsWith('mountat-hook: the reason\n')).toBe(true);
    expect(answer && 'stderr' in answer && Buffer.byteLength(answer.stderr)).toBe(MAX_OUTPUT_BYTES);
  });

  it('reads nothing from a cut answer', () => {
    expect(decodeAnswer(Buffer.from('D'))).toBeUndefined();
    expect(decodeAnswer(encodeDone(0, 'out', '').subarray(0, 7))).toBeUndefined();
  });
});
