// The action's rusage as Buildbarn wants it: one POSIXResourceUsage packed in an Any.
import { constants as osConstants } from 'node:os';
import { posixResourceUsageType } from './usage-protos.js';
import type { Rusage } from '../sandbox/index.js';

export const POSIX_RESOURCE_USAGE_URL = 'type.googleapis.com/buildbarn.resourceusage.POSIXResourceUsage';

const signalNames = new Map<number, string>();
for (const [name, number] of Object.entries(osConstants.signals)) if (!signalNames.has(number)) signalNames.set(number, name);

/** "KILL" for 9: Buildbarn's spelling, without the SIG prefix. */
export function signalName(signal: number): string {
  return signalNames.get(signal)?.replace(/^SIG/, '') ?? String(signal);
}

function duration(micros: number) {
  return { seconds: Math.floor(micros / 1e6), nanos: (micros % 1e6) * 1000 };
}

export function packResourceUsage(rusage: Rusage, terminationSignal?: number): { type_url: string; value: Buffer } {
  const type = posixResourceUsageType();
  const message = type.fromObject({
    userTime: duration(rusage.userMicros),
    systemTime: duration(rusage.systemMicros),
    maximumResidentSetSize: rusage.maxRssKiB * 1024,
    pageReclaims: rusage.minflt,
    pageFaults: rusage.majflt,
    swaps: rusage.nswap,
    blockInputOperations: rusage.inblock,
    blockOutputOperations: rusage.oublock,
    messagesSent: rusage.msgsnd,
    messagesReceived: rusage.msgrcv,
    signalsReceived: rusage.nsignals,
    voluntaryContextSwitches: rusage.nvcsw,
    involuntaryContextSwitches: rusage.nivcsw,
    terminationSignal: terminationSignal === undefined ? '' : signalName(terminationSignal),
  });
  return { type_url: POSIX_RESOURCE_USAGE_URL, value: Buffer.from(type.encode(message).finish()) };
}
