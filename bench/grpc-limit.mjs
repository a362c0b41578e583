#!/usr/bin/env node
// A grpc-js server of buildbarn.runner.Runner that hands every Run to the limit (bench/limit.c
// --serve) and answers with the limit's exit code: the kernel work of the contained action behind
// the same gRPC as the runner, and no other work of Node's per action (no mounts, records, cgroup
// figures or teardown in this process). The floor of a runner built on grpc-js and Node: what it
// costs above the limit is gRPC and one pipe round trip through an event loop. Measured by
// bench/outside.py beside the runners ("gRPC + the limit").
//
// The limit is not started here: bench/outside.py starts it with posix_spawn, as every process it
// times, and hands this server the limit's stdin as fd 3 and its stdout as fd 4. The request's
// input_root_directory and temporary_directory are taken relative to BUILD, as the runner takes
// them relative to its build directory; the limit binds the temporary directory on /tmp. The proto
// loading and server options are src/runner/service.ts's, as in grpc-echo.mjs.
//
// usage: node bench/grpc-limit.mjs SOCKET BUILD  3>LIMIT-STDIN 4<LIMIT-STDOUT   (stopped with SIGTERM)
import { fstatSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { loadRunnerProto } from '../dist/runner/protos.js';

const REQUESTS_FD = 3;
const ANSWERS_FD = 4;
const [socket, build] = process.argv.slice(2);
const isPipe = (fd) => {
  try {
    return fstatSync(fd).isFIFO();
  } catch {
    return false;
  }
};
if (!socket || !build || !isPipe(REQUESTS_FD) || !isPipe(ANSWERS_FD)) {
  console.error("usage: node bench/grpc-limit.mjs SOCKET BUILD, with the limit's stdin on fd 3 and its stdout on fd 4 (pipes)");
  process.exit(2);
}

let stopping = false;
const requests = new Socket({ fd: REQUESTS_FD, readable: false, writable: true });
const answers = new Socket({ fd: ANSWERS_FD, readable: true, writable: false });
answers.on('end', () => {
  if (stopping) process.exit(0);
  console.error('bench/grpc-limit.mjs: the limit closed its answers while serving');
  process.exit(1);
});

/** Answers in the order the limit's actions end, by the ID each request was sent with. */
const waiting = new Map();
let nextId = 0;
createInterface({ input: answers }).on('line', (line) => {
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
    requests.write(line);
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
  // The end of its input: the limit answers what is outstanding, exits (outside.py reaps it and
  // checks its status) and so closes its answers, whose end ends this process.
  requests.end();
});
