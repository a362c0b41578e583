// Load campaigns through a real runner: a soak of 2,000 mixed actions 16 at a time, and a burst
// of 64 at once. Afterwards the mount table, the runner's fds and children are where they
// started, its memory is reported, and every input root holds what it held before.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { asExpected } from '../helpers/checked.js';
import { mountTable, mountsUnder, removeTree } from '../helpers/roots.js';
import { makeAction, requestFor, resourceUsage, run, startRunner } from '../helpers/runner.js';
import { processState, treeHash } from '../helpers/snapshot.js';

type Kind = 'success' | 'exit' | 'signal' | 'start-failure' | 'cancel';
const MIX: Kind[] = ['success', 'success', 'success', 'success', 'success', 'exit', 'exit', 'signal', 'start-failure', 'cancel'];
/** How the client saw a rejected Run: the gRPC status's name. */
const statusName = (code: number | undefined) => `status ${status[code ?? -1] ?? code}`;

describe('load', () => {
  it('soak: 2,000 mixed actions, 16 at a time, leave nothing behind', { timeout: 600_000 }, async () => {
    const table = mountTable();
    const runner = await startRunner({ logLevel: 'warn' });
    try {
      const workers = Array.from({ length: 16 }, (_, w) => `w${w}`);
      for (const id of workers) makeAction(runner.build, id);
      const hashes = workers.map((id) => treeHash(join(runner.build, id, 'root')));
      const pid = runner.process.pid!;
      // One action first, so the lazily loaded parts of the runner are in its baseline too.
      await run(runner.client, requestFor('w0', 'true', { stdoutPath: 'w0/warm-out', stderrPath: 'w0/warm-err' }));
      const before = processState(pid);
      // What the runner answered, tallied from its responses (exit code and termination signal,
      // or gRPC status, and each success's stdout); and what the schedule below asks for,
      // counted from the schedule alone.
      const answers: Record<string, number> = {};
      const answered = (what: string) => (answers[what] = (answers[what] ?? 0) + 1);
      const expectedAnswer: Record<Kind, string> = {
        success: 'exit 0, stdout right',
        exit: 'exit 7',
        signal: 'exit -1, signal KILL',
        'start-failure': 'status INVALID_ARGUMENT',
        cancel: 'status CANCELLED',
      };
      const expected: Record<string, number> = {};
      for (let k = 0; k < 2000; k++) {
        const answer = expectedAnswer[MIX[(k * 7) % MIX.length]!];
        expected[answer] = (expected[answer] ?? 0) + 1;
      }
      const statusOf = (promise: Promise<unknown>) =>
        promise.then(
          () => 'status OK',
          (error: unknown) => statusName(asExpected<{ code?: number }>(error).code),
        );
      const cancelledRoots: string[] = [];
      let n = 0;
      await Promise.all(
        workers.map(async (id) => {
          for (let i = 0; i < 125; i++) {
            const kind = MIX[(n++ * 7) % MIX.length]!;
            const files = { stdoutPath: `${id}/out-${i}`, stderrPath: `${id}/err-${i}` };
            if (kind === 'success') {
              const response = await run(runner.client, requestFor(id, `echo ok > /tmp/last; echo "ok ${id} ${i}"`, files));
              const stdout = readFileSync(join(runner.build, files.stdoutPath), 'utf8');
              answered(`exit ${response.exitCode}${stdout === `ok ${id} ${i}\n` ? ', stdout right' : `, stdout ${JSON.stringify(stdout)}`}`);
            } else if (kind === 'exit' || kind === 'signal') {
              const response = await run(runner.client, requestFor(id, kind === 'exit' ? 'exit 7' : 'kill -9 $$', files));
              const signal = resourceUsage(response).terminationSignal;
              answered(`exit ${response.exitCode}${typeof signal === 'string' && signal !== '' ? `, signal ${signal}` : ''}`);
            } else if (kind === 'start-failure') answered(await statusOf(run(runner.client, requestFor(id, '', { ...files, arguments: ['no-such-tool'] }))));
            else {
              // The client hears CANCELLED at once and the runner tears down just after, so a
              // cancelled action gets a directory of its own, as bb_worker gives every action.
              const own = `${id}-c${i}`;
              execFileSync('cp', ['-al', join(runner.build, id), join(runner.build, own)]);
              cancelledRoots.push(own);
              const answer = await new Promise<string>((resolve) => {
                const call = runner.client.Run(requestFor(own, 'sleep 30 & exec sleep 31', { stdoutPath: `${own}/out`, stderrPath: `${own}/err` }), (error) =>
                  resolve(error ? `status ${status[error.code]}` : 'status OK'),
                );
                setTimeout(() => call.cancel(), 30 + (i % 5) * 10);
              });
              answered(answer);
            }
          }
        }),
      );
      // Cancelled actions are torn down after the client hears CANCELLED: wait for the runner to
      // finish. Their mounts were never in its namespace (a copy of each root, the action's own), so
      // what shows a teardown still running is its fds (the roots, the copy, the files); a leak
      // never settles, and fails below after 5 s.
      const settled = () => {
        const now = processState(pid);
        return mountsUnder(runner.build).length === 0 && now.children <= before.children && now.fds <= before.fds;
      };
      for (let i = 0; i < 250 && !settled(); i++) await new Promise((r) => setTimeout(r, 20));
      const after = processState(pid);
      const summary = { actions: Object.values(answers).reduce((a, b) => a + b, 0), answers, before, after };
      writeFileSync(join(runner.dir, 'soak.json'), JSON.stringify(summary));
      console.log(`soak: ${JSON.stringify(summary)}`);
      expect(answers).toEqual(expected);
      expect(mountsUnder(runner.build)).toEqual([]);
      expect(after.fds).toBe(before.fds);
      // Its only child, before and after, is the starter server; the actions' inits were its
      // children, and none is left there either (not even a zombie).
      expect(before.children).toBe(1);
      expect(after.children).toBe(1);
      const server = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim());
      expect(readFileSync(`/proc/${server}/cmdline`, 'utf8')).toBe('mountat-action\0--serve\0');
      expect(processState(server).children).toBe(0);
      // Memory: reported above; a leak of one object per action would show as tens of MB here.
      expect(after.rssKiB - before.rssKiB).toBeLessThan(64 * 1024);
      expect(workers.map((id) => treeHash(join(runner.build, id, 'root')))).toEqual(hashes);
      // A cancelled action's root is back to the worker's too: every mountpoint directory removed.
      for (const own of cancelledRoots) expect(treeHash(join(runner.build, own, 'root')), own).toBe(hashes[0]);
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
    expect(mountTable()).toBe(table);
  });

  it("burst: 64 actions at once, all answered, none sees another's /tmp", { timeout: 300_000 }, async () => {
    const runner = await startRunner({ logLevel: 'warn' });
    try {
      const ids = Array.from({ length: 64 }, (_, i) => `b${i}`);
      for (const id of ids) makeAction(runner.build, id);
      const script = 'echo mine > /tmp/$MARK; sleep 0.2; ls /tmp | tr "\\n" " "; echo; cat /tmp/*';
      const responses = await Promise.all(ids.map((id) => run(runner.client, requestFor(id, script, { environmentVariables: { PATH: '/bin', MARK: id } }))));
      expect(responses.map((r) => r.exitCode)).toEqual(ids.map(() => '0'));
      for (const id of ids) expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe(`${id} \nmine\n`);
      expect(mountsUnder(runner.build)).toEqual([]);
      console.log(`burst: 64 actions at once, ${responses.length} answered, each saw only its own marker`);
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });
});
