// After a crash: first tear down from the records the built-in hook left (each proves its mounts
// by id, and knows the mountpoint directories it created), then sweep whatever is still mounted
// below the build directory (mounts of external hooks, or of a record never written).
import type { Logger } from 'pino';
import { detach, RecordStore, sweepBelow } from '../mounts/index.js';
import type { BuildDirectory } from './build-directory.js';
import { RECORD_PREFIX, type ActionRecord } from './hooks.js';

export interface RecoveryResult {
  fromRecords: number;
  swept: number;
}

export function recover(build: BuildDirectory, records: RecordStore, log: Logger): RecoveryResult {
  let fromRecords = 0;
  for (const key of records.keys(RECORD_PREFIX)) {
    try {
      const record = records.load(key) as ActionRecord | undefined;
      if (record) {
        using root = build.openDirectory('input_root_directory', record.inputRoot);
        const report = detach(root, record);
        fromRecords += report.detached.length;
        log.warn({ record: key, inputRoot: record.inputRoot, report }, 'start-up: tore down what an earlier runner left, from its record');
      }
    } catch (error) {
      // The input root is gone (bb_worker removed it) or is another one now: the sweep below
      // still catches any mount left under the build directory.
      log.warn({ record: key, error: (error as Error).message }, 'start-up: record of an earlier runner could not be used; dropped');
    }
    records.remove(key);
  }
  const sweep = sweepBelow(build.fd, build.path);
  for (const mount of sweep.swept) log.warn({ mount }, 'start-up sweep removed a mount left below the build directory');
  for (const problem of sweep.problems) log.error({ problem }, 'start-up sweep could not remove a mount');
  return { fromRecords, swept: sweep.swept.length };
}
