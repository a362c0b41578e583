// Records with and without a hardened proc's covers: what loads, and what is refused as corrupt.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordStore } from './record.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mountat-records-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const proc = { target: 'proc', kind: 'proc', mountId: '65', uniqueMountId: '2147500000', createdDirs: [{ path: 'proc', ino: '12' }] };
const record = (mounts: unknown[]) => ({ version: 1, root: { dev: '0:40', ino: '2' }, mounts });
const cover = { path: 'proc/sys', how: 'readonly', mountId: '66', uniqueMountId: '2147500001' };

describe('RecordStore and covers', () => {
  it('loads a record written before covers existed, and one with them', () => {
    const store = new RecordStore(dir);
    writeFileSync(store.pathFor('old'), JSON.stringify(record([proc])));
    expect(store.load('old')?.mounts[0]?.covers).toBeUndefined();
    const covers = [cover, { ...cover, path: 'proc/keys', how: 'masked', uniqueMountId: null }];
    store.save('new', record([{ ...proc, covers }]) as never);
    expect(store.load('new')?.mounts[0]?.covers).toEqual(covers);
  });

  const corrupt: Array<[string, unknown]> = [
    ['covers not a list', { ...cover, path: undefined }],
    ['a cover without a path', [{ ...cover, path: 3 }]],
    ['a cover of an unknown kind', [{ ...cover, how: 'hidden' }]],
    ['a cover without its mount id', [{ ...cover, mountId: 66 }]],
    ['a cover with a bad unique id', [{ ...cover, uniqueMountId: 7 }]],
    ['a cover that is not an object', ['proc/sys']],
  ];
  it.each(corrupt)('refuses a record with %s', (_name, covers) => {
    const store = new RecordStore(dir);
    writeFileSync(store.pathFor('bad'), JSON.stringify(record([{ ...proc, covers }])));
    expect(() => store.load('bad')).toThrow(/^the record \S+ is not a mountat record of version 1$/);
  });
});

describe('a record kept as a journal', () => {
  it('is the last whole snapshot appended; one cut short is passed over; it replaces an older record of its key', () => {
    const store = new RecordStore(dir);
    store.save('a', record([]) as never);
    const journal = store.journal('a');
    // The older record is gone as soon as the journal exists (it described another attachment);
    // a journal not yet written to records nothing.
    expect(store.load('a')).toBeUndefined();
    journal.append(record([]) as never);
    journal.append(record([proc]) as never);
    expect(store.load('a')?.mounts).toEqual([proc]);
    journal.close();
    expect(() => journal.append(record([]) as never)).toThrow(/is closed$/);
    // A writer killed mid-line (not a write(2) the kernel cut: a torn file, say from a full disk).
    writeFileSync(store.pathFor('a'), `${JSON.stringify(record([proc]))}\n{"version":1,"ro`);
    expect(store.load('a')?.mounts).toEqual([proc]);
    writeFileSync(store.pathFor('b'), '{"version":1,"ro');
    expect(() => store.load('b')).toThrow(/^the record \S+ is not valid JSON$/);
    store.remove('a');
    expect(store.load('a')).toBeUndefined();
  });
});
