// Running hook entries the way a runtime does, minus runc's wait for orphans.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandHook, HookError, type OciState } from '../src/oci/index.js';
import { removeTree, scratchDir } from './helpers/roots.js';

const state: OciState = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 42, bundle: '/b' };
let dir: string;
beforeEach(() => {
  dir = scratchDir('mountat-cmdhook-');
});
afterEach(() => removeTree(dir));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

/** Running, as opposed to gone or a zombie waiting for whoever adopted it to reap it. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('CommandHook', () => {
  it("gives the state on stdin and exactly the entry's env", async () => {
    const path = script('h', `cat > ${dir}/stdin; echo "$1|$(env | grep -v '^PWD=' | sort | tr '\\n' ' ')"`);
    const hook = new CommandHook({ path, args: ['h', 'arg1'], env: ['ONLY=this'] }, 'createContainer', 0);
    const out = await hook.run(state);
    expect(JSON.parse(readFileSync(join(dir, 'stdin'), 'utf8'))).toEqual(state);
    expect(out).toMatch(/^arg1\|ONLY=this( SHLVL=1)?$/);
  });

  it('passes args[0] as argv[0] (busybox picks its applet by it)', async () => {
    expect(await new CommandHook({ path: '/bin/busybox', args: ['echo', 'from', 'echo'] }, 'poststop', 0).run(state)).toBe('from echo');
  });

  it("names the stage, index and path, and the hook's last stderr line, on failure", async () => {
    const path = script('fails', 'echo progress; echo "first problem" >&2; echo "the real reason" >&2; exit 3');
    const hook = new CommandHook({ path, args: ['fails'] }, 'createRuntime', 2);
    await expect(hook.run(state)).rejects.toThrow(new HookError(`createRuntime hook #2 (${path}) exited with status 3: the real reason`, 'precondition'));
  });

  it('kills a hook past its timeout together with the orphans holding its output', async () => {
    const path = script('hangs', `sleep 60 & echo $! > ${dir}/orphan; echo started; exec sleep 60`);
    const hook = new CommandHook({ path, args: ['hangs'], timeout: 1 }, 'createContainer', 0);
    await expect(hook.run(state)).rejects.toThrow(`createContainer hook #0 (${path}) timed out after 1s and was killed: started`);
    const orphan = Number(readFileSync(join(dir, 'orphan'), 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(running(orphan)).toBe(false);
  });

  it('does not wait for an orphan that keeps stdout open after the hook exited', async () => {
    const path = script('forks', `sleep 60 & echo $! > ${dir}/orphan; echo done`);
    const hook = new CommandHook({ path, args: ['forks'] }, 'poststop', 0);
    expect(await hook.run(state)).toBe('done');
    const orphan = Number(readFileSync(join(dir, 'orphan'), 'utf8'));
    process.kill(orphan, 'SIGKILL');
  });

  it('reports a hook that cannot start, and refuses a relative path', async () => {
    await expect(new CommandHook({ path: join(dir, 'missing') }, 'poststop', 1).run(state)).rejects.toThrow(
      /poststop hook #1 \(.*missing\) cannot start: spawn .* ENOENT/,
    );
    expect(() => new CommandHook({ path: 'relative/hook' }, 'poststop', 0)).toThrow('poststop hook #0: path "relative/hook" must be absolute');
  });
});
