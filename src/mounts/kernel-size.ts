// The kernel's syntax for tmpfs's size, nr_blocks and nr_inodes, read purely, so that an
// untrusted plan's limits can be compared before anything is mounted. The kernel reads them
// with memparse(): a number, then optionally one of k m g t p e (either case, each ×1024);
// size may end in % instead (of RAM). This reader is stricter on purpose: decimal digits only
// (memparse also takes 0x… and, with a leading 0, octal) and no leading zeros, so what is
// compared is exactly what the kernel will read. BigInt: memparse works in 64 bits and wraps
// ("16e" is 2^64, which it reads as 0: unlimited); here it is just a number over any limit.

export type KernelSize = { count: bigint } | { percent: bigint };

const SHIFTS: Record<string, bigint> = { '': 0n, k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n };

/** The size `text` stands for, or undefined if it is not in the syntax above. */
export function parseKernelSize(text: string, percentAllowed: boolean): KernelSize | undefined {
  const match = /^(0|[1-9][0-9]*)([kmgtpeKMGTPE%]?)$/.exec(text);
  if (!match) return undefined;
  const number = BigInt(match[1]!);
  const suffix = match[2]!.toLowerCase();
  if (suffix === '%') return percentAllowed ? { percent: number } : undefined;
  return { count: number << SHIFTS[suffix]! };
}
