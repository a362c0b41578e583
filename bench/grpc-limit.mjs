#!/usr/bin/env node
// A grpc-js server of buildbarn.runner.Runner that hands every Run to the limit (bench/limit.c
// --serve, started once as its child) and answers with the limit's exit code: the kernel work of
// the contained action behind the same gRPC as the runner, and no other work of Node's per action
// (no mounts, records, cgroup figures or teardown in this process). The floor of a runner built on
// grpc-js and Node: what it costs above the limit is gRPC and one pipe round trip through an event
// loop. Measured by bench/outside.py beside the runners ("gRPC + the limit").
//
// The request's input_root_directory and temporary_directory are taken relative to BUILD, as the
// runner takes them relative to its build directory; the limit binds the temporary directory on
// /tmp. The proto loading and server options are src/runner/service.ts's, as in grpc-echo.mjs.
//
// usage: node bench/grpc-limit.mjs SOCKET BUILD LIMIT [LIMIT-ARG]...   (stopped with SIGTERM)
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { loadRunnerProto } from '../dist/runner/protos.js';

const [socket, build, limitBinary, ...limitArgs] = process.argv.slice(2);
if (!socket || !build || !limitBinary) {
  console.error('usage: node bench/grpc-limit.mjs SOCKET BUILD LIMIT [LIMIT-ARG]...');
  process.exit(2);
}

// Started once, for the server's life, before any Run is timed: Node's fork of itself for this one
// start is in no figure, and no process is started per Run from here.
let stopping = false;
const limit = spawn(limitBinary, [...limitArgs, '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
limit.on('exit', (code, signal) => {
  if (stopping) return;
  console.error(`bench/grpc-limit.mjs: the limit exited (${signal ?? code}) while serving`);
  process.exit(1);
});

/** Answers in the order the limit's actions end, by the ID each request was sent with. */
const waiting = new Map();
let nextId = 0;
createInterface({ input: limit.stdout }).on('line', (line) => {
  const [id, kind, value] = line.split(' ');
  const callback = waiting.get(id);
  if (!callback) return;
  waiting.delete(id);
  if (kind === 'exit') callback(null, { exitCode: Number(value), resourceUsage: [] });
  else callback({ code: status.INTERNAL, details: `the limit: ${line}` });
});

/** A path of the request, beneath BUILD; the limit takes no spaces in its request line. */
function inBuild(relative) {
  const path = join(build, relative);
  if (/\s/.test(path) || !path.startsWith(`${build}/`)) throw new Error(`not a path beneath ${build} without spaces: ${relative}`);
  return path;
}

const proto = loadRunnerProto();
const server = new Server();
server.addService(proto.buildbarn.runner.Runner.service, {
  CheckReadiness: (_call, callback) => callback(null, {}),
  Run: (call, callback) => {
    let line;
    try {
      const { inputRootDirectory, temporaryDirectory } = call.request;
      line = `${++nextId} ${inBuild(inputRootDirectory)}${temporaryDirectory ? ` ${inBuild(temporaryDirectory)}` : ''}\n`;
    } catch (error) {
      callback({ code: status.INVALID_ARGUMENT, details: error.message });
      return;
    }
    waiting.set(String(nextId), callback);
    limit.stdin.write(line);
  },
});
server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(`bench/grpc-limit.mjs: cannot listen on ${socket}: ${error.message}`);
    process.exit(1);
  }
});
process.on('SIGTERM', () => {
  stopping = true;
  server.forceShutdown();
  rmSync(socket, { force: true });
  // End of its input: the limit answers what is outstanding and exits 0.
  limit.stdin.end();
  limit.on('exit', (code) => process.exit(code === 0 ? 0 : 1));
});
