import { describe, expect, it } from 'vitest';
import { parseMountInfo, stackAbove } from './mountinfo.js';

const table = [
  '26 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '40 26 0:50 / /tmp/root\\040with\\040space/proc rw,nosuid - proc proc rw',
  '41 40 0:51 / /tmp/root\\040with\\040space/proc rw shared:7 - tmpfs evil rw',
  '42 41 0:52 / /tmp/root\\040with\\040space/proc rw master:3 - tmpfs evil2 rw',
  '43 40 0:53 / /tmp/root\\040with\\040space/proc/sys rw - tmpfs inside rw',
  '',
].join('\n');

describe('parseMountInfo', () => {
  it('reads ids, parents, escaped mount points, fs types, sources and propagation', () => {
    const entries = parseMountInfo(table);
    expect(entries).toHaveLength(5);
    expect(entries[1]).toEqual({ id: '40', parentId: '26', mountPoint: '/tmp/root with space/proc', fsType: 'proc', source: 'proc', propagation: [] });
    expect(entries[2]?.propagation).toEqual(['shared:7']);
    expect(entries[3]?.propagation).toEqual(['master:3']);
  });
});

describe('stackAbove finds mounts stacked on ours', () => {
  const entries = parseMountInfo(table);
  it('lists the stack topmost first when the chain leads down to ours', () => {
    expect(stackAbove(entries, '42', '40')?.map((e) => e.id)).toEqual(['42', '41']);
  });
  it('is empty when ours is on top', () => {
    expect(stackAbove(entries, '40', '40')).toEqual([]);
  });
  it('refuses a mount below ours rather than on it', () => {
    expect(stackAbove(entries, '43', '40')).toBeUndefined();
  });
  it('refuses when ours is not in the table', () => {
    expect(stackAbove(entries, '42', '99')).toBeUndefined();
  });
});
