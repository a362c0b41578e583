// Records with and without the covers of a hardened proc or sysfs, and records that do not match their schema:
// what loads, and what is refused as corrupt (with the file and the field named).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageOf, MountatError } from '../base/index.js';
import type { AttachedMount, Cover } from './generated/mount-record.js';
import { RecordStore, stateDirectoryFrom, type MountRecord } from './record.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mountat-records-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const proc = { target: 'proc', kind: 'proc', mountId: '65', uniqueMountId: '2147500000', createdDirs: [{ path: 'proc', ino: '12' }] } satisfies AttachedMount;
/** A record line with these mounts, as written to a file: they may be anything. */
const record = (mounts: unknown[]) => ({ version: 1, root: { dev: '0:40', ino: '2' }, mounts });
/** A record as the engine saves one. */
const recordOf = (mounts: AttachedMount[]): MountRecord => ({ version: 1, root: { dev: '0:40', ino: '2' }, mounts });
const cover = { path: 'proc/sys', how: 'readonly', mountId: '66', uniqueMountId: '2147500001' } satisfies Cover;

describe('RecordStore and covers', () => {
  it('loads a record written before covers existed, and one with them', () => {
    const store = new RecordStore(dir);
    writeFileSync(store.pathFor('old'), JSON.stringify(record([proc])));
    expect(store.load('old')?.mounts[0]?.covers).toBeUndefined();
    const covers: Cover[] = [cover, { ...cover, path: 'proc/keys', how: 'masked', uniqueMountId: null }];
    store.save('new', recordOf([{ ...proc, covers }]));
    expect(store.load('new')?.mounts[0]?.covers).toEqual(covers);
  });

  const corrupt: Array<[string, unknown, string]> = [
    ['covers not a list', { ...cover, path: undefined }, 'record.mounts[0].covers must be array'],
    ['a cover without a path', [{ ...cover, path: 3 }], 'record.mounts[0].covers[0].path must be string (got 3)'],
    ['a cover of an unknown kind', [{ ...cover, how: 'hidden' }], 'record.mounts[0].covers[0].how must be one of "readonly", "masked" (got "hidden")'],
    ['a cover without its mount id', [{ ...cover, mountId: 66 }], 'record.mounts[0].covers[0].mountId must be string (got 66)'],
    ['a cover with a bad unique id', [{ ...cover, uniqueMountId: 7 }], 'record.mounts[0].covers[0].uniqueMountId must be string,null (got 7)'],
    ['a cover that is not an object', ['proc/sys'], 'record.mounts[0].covers[0] must be object (got "proc/sys")'],
  ];
  it.each(corrupt)('refuses a record with %s', (_name, covers, why) => {
    const store = new RecordStore(dir);
    writeFileSync(store.pathFor('bad'), JSON.stringify(record([{ ...proc, covers }])));
    expect(() => store.load('bad')).toThrow(`the record ${store.pathFor('bad')} is not a mountat record of version 1: ${why}`);
  });
});

describe('a record is checked against schemas/mount-record.schema.json', () => {
  const line = (fields: Record<string, unknown>) => ({ ...record([proc]), ...fields });
  const malformed: Array<[string, unknown, string]> = [
    ['of another version', line({ version: 2 }), 'record.version must be 1 (got 2)'],
    ['without its root', { version: 1, mounts: [] }, "record must have required property 'root'"],
    ['whose root device is not major:minor', line({ root: { dev: 'sda', ino: '2' } }), 'record.root.dev must match ^[0-9]+:[0-9]+$ (got "sda")'],
    ['whose root inode is a number', line({ root: { dev: '0:40', ino: 2 } }), 'record.root.ino must be string (got 2)'],
    ['whose mounts are not a list', line({ mounts: {} }), 'record.mounts must be array'],
    [
      'of a mount kind the engine never makes',
      line({ mounts: [{ ...proc, kind: 'overlay' }] }),
      'record.mounts[0].kind must be one of "proc", "sysfs", "tmpfs", "bind" (got "overlay")',
    ],
    ['a mount without a target', line({ mounts: [{ ...proc, target: '' }] }), 'record.mounts[0].target must NOT have fewer than 1 characters (got "")'],
    ['a mount id that is not decimal', line({ mounts: [{ ...proc, mountId: '0x41' }] }), 'record.mounts[0].mountId must match ^[0-9]+$ (got "0x41")'],
    [
      'a mount without its unique id (null where the kernel has none)',
      line({ mounts: [{ target: 'proc', kind: 'proc', mountId: '65', createdDirs: [] }] }),
      "record.mounts[0] must have required property 'uniqueMountId'",
    ],
    [
      'a created directory without its inode',
      line({ mounts: [{ ...proc, createdDirs: [{ path: 'proc' }] }] }),
      "record.mounts[0].createdDirs[0] must have required property 'ino'",
    ],
    [
      'a created directory whose inode is not a number',
      line({ mounts: [{ ...proc, createdDirs: [{ path: 'proc', ino: 'x' }] }] }),
      'record.mounts[0].createdDirs[0].ino must match ^[0-9]*$ (got "x")',
    ],
    ['pending directories not a list', line({ pending: {} }), 'record.pending must be array'],
    ["the runner's input root not a string", line({ inputRoot: 3 }), 'record.inputRoot must be string (got 3)'],
    ['a mount field the engine does not write', line({ mounts: [{ ...proc, source: '/etc' }] }), 'record.mounts[0] has an unknown field "source"'],
    ['a list for a record', [], 'record must be object'],
    ['null for a record', null, 'record must be object'],
  ];
  it.each(malformed)('refuses a record %s, naming the file and the field', (_name, content, why) => {
    const store = new RecordStore(dir);
    writeFileSync(store.pathFor('bad'), `${JSON.stringify(content)}\n`);
    expect(() => store.load('bad')).toThrow(`the record ${store.pathFor('bad')} is not a mountat record of version 1: ${why}`);
  });

  it('loads each line the engine and the runner write: a progress line with pending directories, a final line, the input root', () => {
    const store = new RecordStore(dir);
    const pending = { ...record([]), pending: [{ path: 'proc', ino: '' }], inputRoot: '1/root' };
    const final = { ...record([{ ...proc, uniqueMountId: null, covers: [cover] }]), inputRoot: '1/root' };
    writeFileSync(store.pathFor('runner'), `${JSON.stringify(pending)}\n${JSON.stringify(final)}\n`);
    expect(store.load('runner')).toEqual(final);
    writeFileSync(store.pathFor('runner'), `${JSON.stringify(pending)}\n`);
    expect(store.load('runner')).toEqual(pending);
    // A field a caller added to every line (mountRecorded's extra) is its own: kept, not refused.
    const withExtra = { ...recordOf([proc]), where: 'here' };
    store.save('extra', withExtra);
    expect(store.load('extra')).toEqual({ ...record([proc]), where: 'here' });
  });

  it('a malformed record is invalid input, in one line', () => {
    const store = new RecordStore(dir);
    writeFileSync(store.pathFor('bad'), JSON.stringify({ version: 1 }));
    let thrown: unknown;
    try {
      store.load('bad');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(MountatError);
    expect(thrown).toHaveProperty('kind', 'invalid-input');
    expect(messageOf(thrown)).not.toContain('\n');
  });
});

describe('a record kept as a journal', () => {
  it('is the last whole snapshot appended; one cut short is passed over; it replaces an older record of its key', () => {
    const store = new RecordStore(dir);
    store.save('a', recordOf([]));
    const journal = store.journal('a');
    // The older record is gone as soon as the journal exists (it described another attachment);
    // a journal not yet written to records nothing.
    expect(store.load('a')).toBeUndefined();
    journal.append(recordOf([]));
    journal.append(recordOf([proc]));
    expect(store.load('a')?.mounts).toEqual([proc]);
    journal.close();
    expect(() => journal.append(recordOf([]))).toThrow(/is closed$/);
    // A writer killed mid-line (not a write(2) the kernel cut: a torn file, say from a full disk).
    writeFileSync(store.pathFor('a'), `${JSON.stringify(record([proc]))}\n{"version":1,"ro`);
    expect(store.load('a')?.mounts).toEqual([proc]);
    writeFileSync(store.pathFor('b'), '{"version":1,"ro');
    expect(() => store.load('b')).toThrow(/^the record \S+ is not valid JSON$/);
    store.remove('a');
    expect(store.load('a')).toBeUndefined();
  });
});

describe('the state directory an entry point passes down', () => {
  const cases: Array<[string, string | undefined, string | undefined, string]> = [
    ['the flag, over the variable', '/flag', '/variable', '/flag'],
    ['the variable without a flag', undefined, '/variable', '/variable'],
    ['the default without either', undefined, undefined, '/run/mountat'],
    ['the default when the variable is empty', undefined, '', '/run/mountat'],
  ];
  it.each(cases)('is %s', (_name, flag, variable, expected) => {
    expect(stateDirectoryFrom(flag, variable)).toBe(expected);
  });
});
