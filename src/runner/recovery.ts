// After a crash: first tear down from the records the built-in hook left (each proves its mounts
// by id, and knows the mountpoint directories it created), then sweep what is still mounted
// below the build directory where and as this runner mounts (a mount made after the last record
// was written); other mounts there are someone else's (startup-sweep.ts).
import type { Logger } from 'pino';
import { messageOf, MountatError } from '../base/index.js';
import { MountedRoot, RecordStore, sweepBelow, type SweepRule } from '../mounts/index.js';
import type { BuildDirectory } from './build-directory.js';
import { RECORD_PREFIX, type ActionRecord, type ActionRecordExtra } from './hooks.js';

export interface RecoveryResult {
  fromRecords: number;
  swept: number;
}

export function recover(build: BuildDirectory, records: RecordStore, log: Logger, owns: SweepRule): RecoveryResult {
  for (const name of records.removePartialWrites()) log.warn({ file: name }, 'start-up: removed a record an earlier runner was killed while writing');
  const keys = records.keys(RECORD_PREFIX);
  let fromRecords = 0;
  // 1. What the records prove ours. A mount made after the last record was written is not in it,
  //    and hides the directory beneath it (whose inode then looks wrong): such directories are kept
  //    in this pass.
  for (const key of keys) fromRecords += tearDownFromRecord(build, records, key, log, 'first');
  // 2. What is still mounted below the build directory where this runner mounts, of the kinds it
  //    mounts (startup-sweep.ts); anything else is someone else's, left alone and named once.
  const sweep = sweepBelow(build.fd, owns);
  for (const mount of sweep.swept) log.warn({ mount }, 'start-up sweep removed a mount left below the build directory');
  if (sweep.leftAlone.length > 0)
    log.info({ mounts: sweep.leftAlone }, 'start-up sweep left alone mounts below the build directory that this runner does not make');
  for (const problem of sweep.problems) log.error({ problem: problem.message }, 'start-up sweep could not remove a mount');
  // 3. The records again, now that nothing covers their directories; then they go.
  for (const key of keys) {
    tearDownFromRecord(build, records, key, log, 'second');
    records.remove(key);
  }
  return { fromRecords, swept: sweep.swept.length };
}

function tearDownFromRecord(build: BuildDirectory, records: RecordStore, key: string, log: Logger, pass: 'first' | 'second'): number {
  try {
    const loaded = records.load(key);
    if (!loaded) return 0;
    const { inputRoot } = loaded;
    // The built-in hook writes it with every line; a record without it is not one of ours to use.
    if (inputRoot === undefined) throw new MountatError('invalid-input', `the record ${records.pathFor(key)} names no input root`);
    const record: ActionRecord = { ...loaded, inputRoot };
    using root = build.openDirectory('input_root_directory', inputRoot);
    const mounted = new MountedRoot<ActionRecordExtra>(root, record, records, key);
    // The first pass keeps the record: what covers its directories is only swept after it.
    const report = pass === 'first' ? mounted.detachKeepingRecord() : mounted.tearDown();
    if (pass === 'first' || report.removed.length > 0) {
      log.warn({ record: key, inputRoot: record.inputRoot, pass, report }, 'start-up: tore down what an earlier runner left, from its record');
    }
    return report.detached.length;
  } catch (error) {
    // The input root is gone (bb_worker removed it) or is another one now: the sweep still catches
    // any mount left under the build directory.
    if (pass === 'first') log.warn({ record: key, error: messageOf(error) }, 'start-up: record of an earlier runner could not be used');
    return 0;
  }
}
