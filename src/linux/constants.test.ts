// The starter (native/starter/kernel.h) and this layer name the same kernel ABI each in its own
// language. A value copied wrong on one side would pass every test that only uses the other, so
// each of the header's defines is held to the value here, by name.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as C from './constants.js';

const HEADER = new URL('../../native/starter/kernel.h', import.meta.url);

/** Defines only the starter uses: calls the TypeScript side never makes. */
const ONLY_IN_C: Readonly<Record<string, string>> = {
  SYS_close_range: 'only the starter closes fds in bulk (close_range); Node closes its own one by one',
  CLOSE_RANGE_CLOEXEC: 'a close_range flag, as above',
  LINUX_CAPABILITY_VERSION_3: 'only the starter calls capget/capset; the TypeScript side reads capabilities from /proc',
  PR_CAP_AMBIENT: "only the starter clears the ambient set (prctl), just before the action's exec",
  PR_CAP_AMBIENT_CLEAR_ALL: 'a PR_CAP_AMBIENT operation, as above',
  PIDFD_GET_PID_NAMESPACE: "only the starter's inotify broker asks for its PID namespace's inode number",
  KEYCTL_JOIN_SESSION_KEYRING: 'only the starter gives the action a session keyring of its own, just before its exec',
  SYS_clone3: "only the starter forks the action's first process, born into its cgroup (clone3)",
  CLONE_INTO_CGROUP: 'a clone3 flag, as above',
};

/** `#define NAME VALUE` lines of the header, evaluated: a number, or a number shifted left. */
function headerDefines(text: string): Map<string, number> {
  const defines = new Map<string, number>();
  for (const match of text.matchAll(/^#define\s+(\w+)\s+(.+?)\s*$/gm)) {
    const [, name, value] = match;
    if (name!.startsWith('MOUNTAT_')) continue; // the include guard
    const parts = /^\(?\s*(0x[0-9a-f]+|\d+)U?\s*(?:<<\s*(\d+))?\s*\)?$/i.exec(value!);
    if (!parts) throw new Error(`kernel.h: cannot read the value of ${name}: ${value}`);
    defines.set(name!, Number(parts[1]) * 2 ** Number(parts[2] ?? 0));
  }
  return defines;
}

/** constants.ts by name, and its SYS table. */
const TYPESCRIPT = new Map<string, unknown>(Object.entries(C));
const TYPESCRIPT_SYS = new Map<string, unknown>(Object.entries(C.SYS));

/** The TypeScript name of a C define: SYS_x is SYS.x; a trailing underscore (kept apart from libc's) goes. */
function typescriptValue(name: string): number | undefined {
  const bare = name.replace(/_$/, '');
  const value = bare.startsWith('SYS_') ? TYPESCRIPT_SYS.get(bare.slice(4)) : TYPESCRIPT.get(bare);
  return typeof value === 'number' ? value : undefined;
}

describe("the starter's kernel constants (native/starter/kernel.h)", () => {
  const defines = headerDefines(readFileSync(HEADER, 'utf8'));

  it('reads the header', () => {
    expect(defines.get('SYS_open_tree')).toBe(428);
    expect(defines.get('MS_PRIVATE_')).toBe(1 << 18);
    expect(defines.get('CLOSE_RANGE_CLOEXEC_')).toBe(4);
  });

  it.each([...defines].filter(([name]) => !(name.replace(/_$/, '') in ONLY_IN_C)))('%s is %d on both sides', (name, value) => {
    expect(typescriptValue(name), `${name} in src/linux/constants.ts (if absent: add it there, or to ONLY_IN_C with a reason)`).toBe(value);
  });

  it('lists as C-only exactly the defines TypeScript lacks', () => {
    for (const name of Object.keys(ONLY_IN_C)) {
      const define = [...defines.keys()].find((key) => key.replace(/_$/, '') === name);
      expect(define, `${name} is no longer in kernel.h`).toBeDefined();
      expect(typescriptValue(define!), `${name} is in constants.ts now: compare it instead`).toBeUndefined();
    }
  });
});
