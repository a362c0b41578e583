import { describe, expect, it } from 'vitest';
import { parseState } from './state.js';

const good = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 1, bundle: '/b', annotations: { a: 'b' } };

describe('parseState', () => {
  it("accepts runc's and crun's states", () => {
    expect(parseState(JSON.stringify(good))).toEqual(good);
    expect(parseState(JSON.stringify({ ...good, pid: 0, root: 'rootfs' })).root).toBe('rootfs');
    expect(parseState(JSON.stringify({ ...good, status: 'stopped', pid: undefined, extra: 'from a newer runtime' })).status).toBe('stopped');
  });

  const bad: Array<[string, string, string]> = [
    ['empty input', '', 'no container state on stdin (a runtime writes it there)'],
    ['malformed JSON', '{"id": ', 'the container state on stdin is not JSON: '],
    ['a missing field', JSON.stringify({ ...good, bundle: undefined }), "state must have required property 'bundle'"],
    ['a wrong type', JSON.stringify({ ...good, pid: '1' }), 'state.pid must be integer (got "1")'],
    [
      'an unknown status',
      JSON.stringify({ ...good, status: 'paused' }),
      'state.status must be one of "creating", "created", "running", "stopped" (got "paused")',
    ],
    ['a relative bundle', JSON.stringify({ ...good, bundle: 'b' }), 'state.bundle must match ^/ (got "b")'],
    ['an id that is a path', JSON.stringify({ ...good, id: '../../etc' }), 'state.id must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$ (got "../../etc")'],
    [
      'annotations that are not strings',
      JSON.stringify({ ...good, annotations: { 'org.mountat.tmp.size': 64 } }),
      'state.annotations["org.mountat.tmp.size"] must be string (got 64)',
    ],
    ['an array', '[]', 'state must be object'],
  ];
  it.each(bad)('refuses %s in one line naming the field and value', (_name, text, message) => {
    expect(() => parseState(text)).toThrow(message);
  });
});
