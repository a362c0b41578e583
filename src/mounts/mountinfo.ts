// /proc/self/mountinfo, parsed. Used only to find mounts stacked on top of ours: the kernel
// table is the one place that tells a mount's parent.
import { readFileSync, readlinkSync } from 'node:fs';
import type { FdRef } from '../linux/index.js';

export interface MountInfoEntry {
  id: string;
  parentId: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Propagation tags: "shared:N", "master:N", "propagate_from:N", "unbindable"; none means private. */
  propagation: string[];
}

/** Octal escapes (\040 for a space, \012 for a newline) as the kernel writes them. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (fields.length < 10 || dash < 6) continue;
    entries.push({
      id: fields[0]!,
      parentId: fields[1]!,
      mountPoint: unescape(fields[4]!),
      fsType: fields[dash + 1]!,
      source: unescape(fields[dash + 2]!),
      propagation: fields.slice(6, dash),
    });
  }
  return entries;
}

export function readMountInfo(path = '/proc/thread-self/mountinfo'): MountInfoEntry[] {
  return parseMountInfo(readFileSync(path, 'utf8'));
}

/**
 * The mounts stacked on ours at the same mountpoint, topmost first, given the topmost id
 * found at our target. Empty when the chain from the top does not lead down to ours.
 */
export function stackAbove(table: MountInfoEntry[], topId: string, ourId: string): MountInfoEntry[] | undefined {
  const byId = new Map(table.map((entry) => [entry.id, entry]));
  const ours = byId.get(ourId);
  if (!ours) return undefined;
  const stack: MountInfoEntry[] = [];
  let current = byId.get(topId);
  while (current && current.id !== ourId) {
    // A mount stacked on ours is mounted at the same place, on top of its parent's root.
    if (current.mountPoint !== ours.mountPoint || stack.length > 64) return undefined;
    stack.push(current);
    current = byId.get(current.parentId);
  }
  return current ? stack : undefined;
}

/** A directory's canonical path, as the mount table writes its mount points (whatever symlinks led to it). */
export function canonicalPathOf(dir: FdRef): string {
  return readlinkSync(`/proc/thread-self/fd/${dir.fd}`);
}
