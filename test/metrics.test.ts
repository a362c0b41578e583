// The diagnostics HTTP server: exact metrics after a known sequence of actions, readiness, methods.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from './helpers/checked.js';
import { mountTable, removeTree, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor, run, startRunner, type RunnerProcess } from './helpers/runner.js';

let runner: RunnerProcess;
let base: string;
let flag: string;
let tableBefore: string;
beforeAll(async () => {
  tableBefore = mountTable();
  const dir = scratchDir('mountat-runner-');
  flag = join(dir, 'ready-flag');
  writeFileSync(flag, '');
  // Something an earlier runner "left" (a proc where it mounts one, with no record): the start-up
  // sweep must count it.
  mkdirSync(join(dir, 'build', 'left', 'root', 'proc'), { recursive: true });
  const { execFileSync } = await import('node:child_process');
  execFileSync('mount', ['-t', 'proc', 'left', join(dir, 'build', 'left', 'root', 'proc')]);
  runner = await startRunner(
    {
      readinessCheckingPathnames: [flag],
      // A TCP listener: actions get networks of their own, else they could reach it (test/listeners.test.ts).
      network: 'none',
      global: { diagnosticsHttpServer: { httpServers: [{ listenAddresses: ['127.0.0.1:0'], authenticationPolicy: { allow: {} } }], enablePrometheus: true } },
    },
    dir,
  );
  const ready = runner
    .output()
    .split('\n')
    .find((line) => line.includes('"runner ready"'))!;
  base = `http://${parseJson<{ diagnostics: string[] }>(ready).diagnostics[0]}`;
});
afterAll(async () => {
  await runner.stop();
  expect(mountTable()).toBe(tableBefore);
  removeTree(runner.dir);
});

/** name{labels} value lines of the exposition, as a map. */
async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const values = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

describe('/metrics', () => {
  it('counts a known sequence of actions exactly', async () => {
    const ids = ['ok1', 'ok2', 'fail', 'kill', 'nostart', 'bad', 'cancel'];
    for (const id of ids) makeAction(runner.build, id);
    expect((await run(runner.client, requestFor('ok1', 'true'))).exitCode).toBe('0');
    expect((await run(runner.client, requestFor('ok2', 'echo hi'))).exitCode).toBe('0');
    expect((await run(runner.client, requestFor('fail', 'exit 3'))).exitCode).toBe('3');
    expect((await run(runner.client, requestFor('kill', 'kill -9 $$'))).exitCode).toBe('-1');
    await expect(run(runner.client, requestFor('nostart', '', { arguments: ['no-such-tool'] }))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(run(runner.client, requestFor('bad', 'true', { inputRootDirectory: '../bad' }))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    const call = runner.client.Run(requestFor('cancel', 'echo started; exec sleep 65.5'), () => {});
    const midway = await (async () => {
      for (let i = 0; i < 250; i++) {
        const values = await scrape();
        if (values.get('mountat_runner_mounts_held') === 3) return values;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the action never held its mounts');
    })();
    expect(midway.get('mountat_runner_actions_in_flight')).toBe(1);
    call.cancel();
    for (let i = 0; i < 250 && (await scrape()).get('mountat_runner_actions_in_flight') !== 0; i++) await new Promise((r) => setTimeout(r, 20));

    const values = await scrape();
    const outcome = (name: string) => values.get(`mountat_runner_actions_total{outcome="${name}"}`);
    expect(outcome('exit_zero')).toBe(2);
    expect(outcome('exit_nonzero')).toBe(1);
    expect(outcome('signal')).toBe(1);
    expect(outcome('start_failure')).toBe(1);
    expect(outcome('invalid_request')).toBe(1);
    expect(outcome('cancelled')).toBe(1);
    expect(outcome('setup_failure')).toBe(0);
    expect(outcome('teardown_failure')).toBe(0);
    expect(outcome('internal_error')).toBe(0);
    // Every action has a duration; all but the refused request were set up and torn down.
    expect(values.get('mountat_runner_action_duration_seconds_count')).toBe(7);
    expect(values.get('mountat_runner_action_setup_duration_seconds_count')).toBe(6);
    expect(values.get('mountat_runner_action_teardown_duration_seconds_count')).toBe(6);
    expect(values.get('mountat_runner_action_duration_seconds_bucket{le="+Inf"}')).toBe(7);
    expect(values.get('mountat_runner_actions_in_flight')).toBe(0);
    expect(values.get('mountat_runner_mounts_held')).toBe(0);
    expect(values.get('mountat_runner_startup_swept_mounts_total{source="sweep"}')).toBe(1);
    expect(values.get('mountat_runner_startup_swept_mounts_total{source="record"}')).toBe(0);
    expect(values.get('process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(values.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });
});

describe('/-/healthy and /-/ready', () => {
  it('is healthy while up, and ready only while the readiness paths exist', async () => {
    expect((await fetch(`${base}/-/healthy`)).status).toBe(200);
    expect((await fetch(`${base}/-/ready`)).status).toBe(200);
    rmSync(flag);
    const notReady = await fetch(`${base}/-/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe(`not ready: ${flag} missing\n`);
    writeFileSync(flag, '');
    expect((await fetch(`${base}/-/ready`)).status).toBe(200);
  });

  it('refuses anything but GET, and unknown paths', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const response = await fetch(`${base}/metrics`, { method });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD');
    }
    expect((await fetch(`${base}/-/ready`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/debug/pprof`)).status).toBe(404);
  });
});
