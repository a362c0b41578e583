#!/usr/bin/env node
// The quick start's runner part: start `mountat runner` on a temporary build directory holding
// a busybox input root, send one real Run over its UNIX socket as bb_worker would, print what
// the action wrote, then stop the runner with SIGTERM. Run inside a private mount namespace.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { loadRunnerProto, posixResourceUsageType } from '../dist/runner/index.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'mountat-runner-demo-'));
const build = join(dir, 'build');
const socket = join(dir, 'runner.sock');
execFileSync(join(repo, 'scripts', 'make-busybox-root.sh'), [join(build, 'action1', 'root')]);
mkdirSync(join(build, 'action1', 'tmp'));
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({ buildDirectoryPath: build, grpcServers: [{ listenPaths: [socket] }], stateDirectory: join(dir, 'state'), logLevel: 'warn' }),
);

const runner = spawn(join(repo, 'bin', 'mountat.js'), ['runner', '--config', join(dir, 'config.json')], { stdio: 'inherit' });
for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 25));

const client = new (loadRunnerProto().buildbarn.runner.Runner)(`unix://${socket}`, credentials.createInsecure());
const script = [
  'echo "readlink /proc/self/exe: $(readlink /proc/self/exe)"',
  'echo "processes it can see: $(ls /proc | grep "^[0-9]" | tr "\\n" " ")"',
  'echo "/sys/class: $(ls /sys/class | head -4 | tr "\\n" " ")..."',
  'echo "hello" > $TMPDIR/hello && echo "TMPDIR=$TMPDIR holds: $(cat $TMPDIR/hello)"',
].join('; ');
const request = {
  arguments: ['sh', '-c', script],
  environmentVariables: { PATH: '/bin' },
  inputRootDirectory: 'action1/root',
  temporaryDirectory: 'action1/tmp',
  stdoutPath: 'action1/stdout',
  stderrPath: 'action1/stderr',
};
console.log(`Run over ${socket}:`);
const response = await new Promise((resolve, reject) => client.Run(request, (error, reply) => (error ? reject(error) : resolve(reply))));
const usage = posixResourceUsageType().decode(response.resourceUsage[0].value).toJSON();
process.stdout.write(readFileSync(join(build, 'action1', 'stdout'), 'utf8'));
console.log(`exit code ${response.exitCode}, user time ${usage.userTime?.nanos ?? 0} ns, max RSS ${usage.maximumResidentSetSize} bytes`);
client.close();

runner.kill('SIGTERM');
const code = await new Promise((resolve) => runner.once('exit', resolve));
const left = readFileSync('/proc/self/mountinfo', 'utf8')
  .split('\n')
  .filter((line) => line.split(' ')[4]?.startsWith(`${build}/`)).length;
console.log(`runner stopped with status ${code}; ${left} mount(s) left under the build directory`);
rmSync(dir, { recursive: true, force: true });
process.exitCode = code === 0 && left === 0 ? 0 : 1;
