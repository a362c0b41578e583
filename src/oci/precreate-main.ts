// `mountat-hook precreate [--plan FILE]`: podman's precreate stage, the candidate config.json
// on stdin, the one podman should use on stdout (nothing else may go there: podman parses it).
// A failure is one line on stderr and a non-zero exit, which makes podman refuse the container
// before any runtime runs, so nothing is mounted and nothing recorded.
//
// Its own entry, reached from hook-entry.ts without loading the OCI stages: it runs on every
// start of a container that carries an org.mountat.* annotation, and needs neither the state
// parser, the bundle reader, the record store nor the rest of the engine (annotations.ts takes the
// plan parser straight from its module); koffi is never loaded (no system call here).
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readBasePlan, type BasePlan } from './annotations.js';
import { messageOf, reportOf } from '../base/index.js';
import { HookError } from './errors.js';
import { specForMountat } from './precreate.js';

const USAGE = 'usage: mountat-hook precreate [--plan FILE] < config.json > config.json';

function basePlan(argv: string[]): BasePlan | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { plan: { type: 'string' } } });
  } catch (error) {
    throw new HookError(`${messageOf(error)}\n${USAGE}`, 'usage', { cause: error });
  }
  return readBasePlan(parsed.values.plan);
}

/** Writes all of `text` to fd 1: a spec is larger than one pipe write may take. */
function writeAll(text: string): void {
  const bytes = Buffer.from(text);
  for (let done = 0; done < bytes.length;) done += writeSync(1, bytes, done);
}

export function precreateMain(argv: string[], stdin: () => string): number {
  try {
    const base = basePlan(argv);
    writeAll(specForMountat(stdin(), base));
    return 0;
  } catch (error) {
    const { exitCode, line } = reportOf(error);
    writeSync(2, `mountat-hook: ${line}\n`);
    return exitCode;
  }
}
