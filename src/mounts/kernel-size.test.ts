import { describe, expect, it } from 'vitest';
import { parseKernelSize } from './kernel-size.js';

describe('parseKernelSize reads what memparse reads, or refuses', () => {
  const read: Array<[string, boolean, ReturnType<typeof parseKernelSize>]> = [
    ['0', false, { count: 0n }],
    ['65536', false, { count: 65536n }],
    ['1k', false, { count: 1024n }],
    ['64m', false, { count: 64n << 20n }],
    ['16G', false, { count: 16n << 30n }],
    ['2t', false, { count: 2n << 40n }],
    ['1p', false, { count: 1n << 50n }],
    // memparse would wrap this to 0 (unlimited); here it stays a number over every limit.
    ['16e', false, { count: 16n << 60n }],
    ['99999999999999999999999', false, { count: 99999999999999999999999n }],
    ['50%', true, { percent: 50n }],
    ['100000%', true, { percent: 100000n }],
  ];
  it.each(read)('%s', (text, percent, size) => expect(parseKernelSize(text, percent)).toEqual(size));

  const refused: Array<[string, boolean]> = [
    ['', true],
    ['50%', false], // nr_blocks and nr_inodes take no %
    ['0x10', true], // memparse reads hex; refused rather than read differently
    ['010', true], // memparse reads octal
    ['1.5g', true],
    ['-1', true],
    ['1 m', true],
    ['1mb', true],
    ['1m,exec', true],
    ['%', true],
    ['k', true],
  ];
  it.each(refused)('refuses %j', (text, percent) => expect(parseKernelSize(text, percent)).toBeUndefined());
});
