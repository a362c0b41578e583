// Fault campaign: the runner SIGKILLed at points spread over an action's life (before setup,
// mid-setup, while the action runs, mid-teardown), 20 times. After each restart the start-up
// recovery must leave no mount below the build directory, and the input root must hold exactly
// what it held before (the action writes only to its /tmp, which is not in the root).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultPlanMountCount, mountTable, mountsUnder, removeTree } from '../helpers/roots.js';
import { makeAction, requestFor, startRunner, type RunnerProcess } from '../helpers/runner.js';
import { treeHash } from '../helpers/snapshot.js';

describe('faults', () => {
  it('survives 20 SIGKILLs of the runner at points spread over an action\'s life', { timeout: 300_000 }, async () => {
    const table = mountTable();
    let runner: RunnerProcess = await startRunner({ logLevel: 'info' });
    const dir = runner.dir;
    makeAction(runner.build, 'template');
    const template = treeHash(join(runner.build, 'template', 'root'));
    const outcomes: Array<{ delayMs: number; mountsAtKill: number; recovered: string }> = [];
    try {
      for (let i = 0; i < 20; i++) {
        const id = `k${i}`;
        execFileSync('cp', ['-al', join(runner.build, 'template'), join(runner.build, id)]);
        // 0–95 ms after the request: here an action is set up within ~35 ms, sleeps 30 ms, and is
        // torn down in ~1 ms, so the kills land before setup, mid-setup, while it runs, around
        // its teardown and after it.
        const delayMs = i * 5;
        runner.client.Run(requestFor(id, 'sleep 0.03; echo done > /tmp/x'), () => {});
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        const mountsAtKill = mountsUnder(runner.build).length;
        await runner.stop('SIGKILL');
        runner = await startRunner({ logLevel: 'info' }, dir);
        expect(mountsUnder(runner.build), `after kill ${i}`).toEqual([]);
        expect(treeHash(join(runner.build, id, 'root')), `root of ${id}: ${readdirSync(join(runner.build, id, 'root')).join(' ')} ${runner.output().split('\n').filter((l) => l.includes('start-up')).join('\n')}`).toBe(template);
        // The state directory is made at the first record; it may not exist if no setup was reached.
        expect(readdirSync(join(dir, 'state')), `records after kill ${i}`).toEqual(['runner.lock']);
        const recovered = /"recovered":(\{[^}]*\})/.exec(runner.output())?.[1] ?? '?';
        outcomes.push({ delayMs, mountsAtKill, recovered });
      }
      console.log(`faults: ${JSON.stringify(outcomes)}`);
      // The kills did land at different points: with none, some and all of the mounts in place
      // (all: proc, sys, tmp and the hardened proc's covers).
      const atKill = new Set(outcomes.map((o) => o.mountsAtKill));
      expect(atKill.has(0)).toBe(true);
      expect(atKill.has(defaultPlanMountCount())).toBe(true);
    } finally {
      await runner.stop();
      removeTree(dir);
    }
    expect(mountTable()).toBe(table);
  });
});
