// Fault campaign: the runner SIGKILLed at planned points of an action's life, 20 times. The kills
// are placed by the runner's progress, not by delays: external hooks around the built-in one
// report each stage as the runner reaches it and hold the runner there when it is the planned
// point (prestart [hold, "mountat", hold], poststop [hold, "mountat", hold]), and the action
// itself reports that it runs. At each kill the test checks the point was really hit (the
// stage reached, the mounts and the record as that stage has them). After each restart the
// start-up recovery must leave no mount below the build directory, no record, and the input
// root exactly as it was (the action writes only to its /tmp, which is not in the root).
//
// Not planned: a kill inside the built-in hook's attach or detach, a synchronous stretch of a
// millisecond with no point to hold it at; teardown.test.ts covers records cut short there.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultPlanMountCount, mountTable, mountsUnder, removeTree, scratchDir } from '../helpers/roots.js';
import { makeAction, requestFor, startRunner, type RunnerProcess } from '../helpers/runner.js';
import { treeHash } from '../helpers/snapshot.js';

const POINTS = ['before-setup', 'after-setup', 'running', 'before-teardown', 'after-teardown'] as const;
type Point = (typeof POINTS)[number];

/** What the runner has done by each point: mounts held, and whether the action's record exists. */
const AT: Record<Point, { mounted: boolean; record: boolean; actionEnded: boolean }> = {
  'before-setup': { mounted: false, record: false, actionEnded: false },
  'after-setup': { mounted: true, record: true, actionEnded: false },
  running: { mounted: true, record: true, actionEnded: false },
  'before-teardown': { mounted: true, record: true, actionEnded: true },
  'after-teardown': { mounted: false, record: false, actionEnded: true },
};

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('faults', () => {
  it("survives 20 SIGKILLs of the runner, each at a planned point of an action's life it was seen to reach", { timeout: 300_000 }, async () => {
    const table = mountTable();
    const dir = scratchDir('mountat-runner-');
    const progress = join(dir, 'progress');
    const hold = join(dir, 'hold');
    const hook = join(dir, 'point-hook');
    // Says which stage the runner reached (and its own pid, to be killed after the runner), and
    // holds the runner there if that is the planned point.
    writeFileSync(hook, `#!/bin/sh\ncat > /dev/null\necho "$1 $$" >> ${progress}\n[ "$(cat ${hold})" = "$1" ] && exec sleep 61.7\nexit 0\n`, { mode: 0o755 });
    const point = (name: Point) => ({ path: hook, args: ['point-hook', name], env: ['PATH=/usr/bin:/bin'] });
    const config = {
      logLevel: 'info',
      hooks: { prestart: [point('before-setup'), 'mountat', point('after-setup')], poststop: [point('before-teardown'), 'mountat', point('after-teardown')] },
    };
    writeFileSync(hold, '');
    let runner: RunnerProcess = await startRunner(config, dir);
    makeAction(runner.build, 'template');
    const template = treeHash(join(runner.build, 'template', 'root'));
    const hits: Array<{ planned: Point; reached: string[]; mountsAtKill: number; record: boolean; recovered: string }> = [];
    try {
      for (let i = 0; i < 20; i++) {
        const planned = POINTS[i % POINTS.length]!;
        const id = `k${i}`;
        execFileSync('cp', ['-al', join(runner.build, 'template'), join(runner.build, id)]);
        writeFileSync(hold, planned);
        writeFileSync(progress, '');
        const tmp = join(runner.build, id, 'tmp');
        // The action says it runs, and holds there when that is the point; else it ends at once.
        const script = `echo started > /tmp/started; ${planned === 'running' ? 'exec sleep 61.8' : 'echo done > /tmp/x'}`;
        runner.client.Run(requestFor(id, script), () => {});
        const reachedPoint = () => (planned === 'running' ? existsSync(join(tmp, 'started')) : readFileSync(progress, 'utf8').includes(`${planned} `));
        for (let t = 0; t < 500 && !reachedPoint(); t++) await wait(10);
        expect(reachedPoint(), `kill ${i}: the runner never reached ${planned}: ${readFileSync(progress, 'utf8')}`).toBe(true);
        // Held there: what the runner has done so far is what the point says.
        const mountsAtKill = mountsUnder(join(runner.build, id)).length;
        const record = existsSync(join(dir, 'state', `action-${id}.json`));
        await runner.stop('SIGKILL');
        const lines = readFileSync(progress, 'utf8')
          .trim()
          .split('\n')
          .filter((line) => line !== '');
        for (const line of lines) {
          try {
            process.kill(Number(line.split(' ')[1]), 'SIGKILL'); // the holding hook, orphaned by the kill
          } catch {
            // gone already
          }
        }
        const reached = lines.map((line) => line.split(' ')[0]!);
        // Held at the point: no stage after it was reached (the action reports 'running' itself).
        expect(reached.at(-1), `stages reached by kill ${i}`).toBe(planned === 'running' ? 'after-setup' : planned);
        expect({ mountsAtKill, record, actionEnded: existsSync(join(tmp, 'x')) }, `state at kill ${i} (${planned})`).toEqual({
          mountsAtKill: AT[planned].mounted ? defaultPlanMountCount() : 0,
          record: AT[planned].record,
          actionEnded: AT[planned].actionEnded,
        });
        writeFileSync(hold, '');
        runner = await startRunner(config, dir);
        expect(mountsUnder(runner.build), `after kill ${i}`).toEqual([]);
        expect(
          treeHash(join(runner.build, id, 'root')),
          `root of ${id}: ${readdirSync(join(runner.build, id, 'root')).join(' ')} ${runner
            .output()
            .split('\n')
            .filter((l) => l.includes('start-up'))
            .join('\n')}`,
        ).toBe(template);
        expect(readdirSync(join(dir, 'state')), `records after kill ${i}`).toEqual(['runner.lock']);
        const recovered = /"recovered":(\{[^}]*\})/.exec(runner.output())?.[1] ?? '?';
        hits.push({ planned, reached, mountsAtKill, record, recovered });
      }
      console.log(`faults: ${JSON.stringify(hits)}`);
      // Every planned point was hit, each four times.
      for (const name of POINTS)
        expect(
          hits.filter((hit) => hit.planned === name),
          name,
        ).toHaveLength(4);
    } finally {
      await runner.stop();
      removeTree(dir);
    }
    const now = mountTable();
    expect({ added: now.split('\n').filter((line) => !table.includes(line)), gone: table.split('\n').filter((line) => !now.includes(line)) }).toEqual({
      added: [],
      gone: [],
    });
  });
});
