// The oci-hooks(5) files podman and CRI-O read: well-formed, and pointing at a hook that the
// image installs, with the stages and arguments the hook understands. test/podman.test.ts runs
// them under the real podman.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ANNOTATION_PREFIX, PRECREATE_STAGE, STAGES } from '../src/oci/index.js';
import { readJson } from './helpers/checked.js';
import { repo } from './helpers/roots.js';

/** An oci-hooks(5) file, as the tests below expect it. */
interface HooksDFile {
  version: string;
  hook: { path: string; args: string[]; env: string[]; timeout: number };
  when: { annotations: Record<string, string> };
  stages: string[];
}

const dir = join(repo, 'hooks', 'hooks.d');
const files = readdirSync(dir).filter((name) => name.endsWith('.json'));
const read = (name: string) => readJson<HooksDFile>(join(dir, name));

describe.each(files)('hooks.d/%s', (name) => {
  const hook = read(name);
  it('is an oci-hooks 1.0.0 file with an explicit env and a timeout', () => {
    expect(Object.keys(hook).sort()).toEqual(['hook', 'stages', 'version', 'when']);
    expect(hook.version).toBe('1.0.0');
    expect(hook.hook.path).toMatch(/^\/.*\/hooks\/mountat-hook$/);
    expect(hook.hook.env).toEqual([expect.stringMatching(/^PATH=/)]);
    expect(hook.hook.timeout).toBeGreaterThan(0);
  });

  it('runs the hook at the stage its arguments name', () => {
    expect(hook.stages).toHaveLength(1);
    // precreate is podman's own stage (the candidate config.json in and out), not an OCI one.
    expect([...STAGES, PRECREATE_STAGE]).toContain(hook.stages[0]);
    expect(hook.hook.args.slice(0, 2)).toEqual(['mountat-hook', hook.stages[0]]);
  });

  it('applies to containers with an org.mountat.* annotation', () => {
    const entries = Object.entries(hook.when.annotations);
    expect(entries).toHaveLength(1);
    const [keyPattern, valuePattern] = entries[0]!;
    expect(new RegExp(keyPattern).test(`${ANNOTATION_PREFIX}mounts`)).toBe(true);
    expect(new RegExp(keyPattern).test('io.kubernetes.pod.name')).toBe(false);
    expect(new RegExp(valuePattern).test('proc,sys,tmp')).toBe(true);
  });
});

it("makes room for mountat in podman's spec, mounts at createContainer and cleans up at poststop", () => {
  const stages = files.map((name) => read(name).stages[0]).sort();
  expect(stages).toEqual(['createContainer', 'poststop', 'precreate']);
});

it('gives every stage the same annotation match, so that none runs without the others', () => {
  const whens = files.map((name) => JSON.stringify(read(name).when));
  expect(new Set(whens).size).toBe(1);
});
