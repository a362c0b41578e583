// The record of what was attached, for a process other than the one that attached: an OCI
// poststop hook, `mountat umount`, a runner restarted after a crash.
//
// Why a small file rather than the kernel's mount table alone: mountinfo lists mounts but
// cannot prove which ones we made (the action can make an identical-looking proc), says
// nothing of the directories we created, and in an OCI poststop the container's mount
// namespace, and with it its table, is gone. The file holds exactly what detach needs: the
// kernel's ids of our mounts and the inodes of our directories. Each record has a key: the
// root's device and inode for the command line (rootKey: the same seen from any namespace),
// the container id for OCI hooks (two containers may share one rootfs).
import {
  closeSync,
  constants as fsConstants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { errnoCodeOf, messageOf, MountatError } from '../base/index.js';
import { DEFAULTS } from './defaults.js';
import type { MountRecord } from './generated/mount-record.js';
import { validateMountRecord } from './generated/validate-mount-record.js';
import type { RootIdentity } from './identity.js';
import { describeSchemaError, schemaValidator } from './validation.js';

export type { MountRecord } from './generated/mount-record.js';

/** The record's schema (schemas/mount-record.schema.json), compiled ahead by scripts/generate-types.mjs. */
const validateRecord = schemaValidator<MountRecord>(validateMountRecord);

/**
 * A record kept current while something is being attached (the runner's, step by step): each
 * snapshot is appended as one whole line with a single write(2) to a file opened once, instead
 * of a file written and renamed per step. A process killed between writes leaves whole lines
 * (the kernel finishes or never starts a write it was given), and load() takes the last one.
 */
export class RecordJournal {
  #fd: number | undefined;

  constructor(
    readonly path: string,
    fd: number,
  ) {
    this.#fd = fd;
  }

  append(line: MountRecord): void {
    if (this.#fd === undefined) throw new MountatError('internal', `the record journal ${this.path} is closed`);
    writeSync(this.#fd, `${JSON.stringify(line)}\n`);
  }

  /** No more snapshots: the file stays, as the record, until removed. */
  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

export class RecordStore {
  readonly directory: string;
  #directoryMade = false;

  /** `directory` is the entry point's choice (stateDirectoryFrom): nothing here reads the environment. */
  constructor(directory: string) {
    this.directory = directory;
  }

  #makeDirectory(): void {
    if (this.#directoryMade) return;
    mkdirSync(this.directory, { recursive: true, mode: 0o700 });
    this.#directoryMade = true;
  }

  pathFor(key: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/.test(key)) throw new MountatError('invalid-input', `record key ${JSON.stringify(key)} is not a plain file name`);
    return join(this.directory, `${key}.json`);
  }

  /** Written whole to a temporary name and renamed, so a reader never sees half a record. */
  save(key: string, record: MountRecord): string {
    const path = this.pathFor(key);
    this.#makeDirectory();
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    renameSync(temporary, path);
    return path;
  }

  /** A record for `key` written as a journal of whole snapshots (replacing any record of that key). */
  journal(key: string): RecordJournal {
    const path = this.pathFor(key);
    this.#makeDirectory();
    const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND } = fsConstants;
    return new RecordJournal(path, openSync(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o600));
  }

  /** The record under `key`, checked against its schema; undefined if there is none. */
  load(key: string): MountRecord | undefined {
    const path = this.pathFor(key);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if (errnoCodeOf(error) === 'ENOENT') return undefined;
      throw new MountatError('kernel', `cannot read the record ${path}: ${messageOf(error)}`, { cause: error });
    }
    // One line, or a journal of whole lines: the last one that parses is the record.
    let parsed: unknown;
    const lines = text.split('\n').filter((line) => line !== '');
    // A journal opened and never written to: its writer died before it did anything.
    if (lines.length === 0) return undefined;
    for (let i = lines.length - 1; i >= 0 && parsed === undefined; i--) {
      try {
        parsed = JSON.parse(lines[i]!);
      } catch {
        // a line cut short: the one before it is whole
      }
    }
    if (parsed === undefined) throw new MountatError('invalid-input', `the record ${path} is not valid JSON`);
    if (!validateRecord(parsed)) {
      const first = validateRecord.errors?.[0];
      const what = first ? `: ${describeSchemaError('record', first, parsed)}` : '';
      throw new MountatError('invalid-input', `the record ${path} is not a mountat record of version 1${what}`);
    }
    return parsed;
  }

  /** Remove the record under `key`; none there is no error. */
  remove(key: string): void {
    // unlink alone: rmSync stats the path twice first (lstat, then stat), once per action.
    try {
      unlinkSync(this.pathFor(key));
    } catch (error) {
      if (errnoCodeOf(error) !== 'ENOENT') throw error;
    }
  }

  /**
   * Remove half-written records (`<key>.json.<pid>.tmp`) whose writer is gone: a process killed
   * between writing and renaming leaves one. The complete record it replaced is still there.
   */
  removePartialWrites(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      const match = /\.json\.(\d+)\.tmp$/.exec(name);
      if (!match || processExists(Number(match[1]))) continue;
      rmSync(join(this.directory, name), { force: true });
      removed.push(name);
    }
    return removed;
  }

  /** The keys of the records present, optionally only those starting with `prefix`. */
  keys(prefix = ''): string[] {
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch (error) {
      if (errnoCodeOf(error) === 'ENOENT') return [];
      throw error;
    }
    return names.filter((name) => name.startsWith(prefix) && name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length));
  }
}

/**
 * The state directory of a command line or hook: its --state-dir, else $MOUNTAT_STATE_DIR (an
 * empty one counts as unset), else the default. The entry point reads the variable and passes it
 * in, so that nothing below it depends on the environment.
 */
export function stateDirectoryFrom(flag: string | undefined, variable: string | undefined): string {
  return flag ?? (variable || DEFAULTS.stateDirectory);
}

/** The key of a root's record when nothing else names it: its device and inode. */
export function rootKey(root: RootIdentity): string {
  return `root-${root.dev.replace(':', '-')}-${root.ino}`;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCodeOf(error) === 'EPERM';
  }
}
