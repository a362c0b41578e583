#!/usr/bin/env node
// A grpc-js server of buildbarn.runner.Runner that answers every Run at once (exit code 0, no
// resource usage) and does nothing else: the floor for any runner built on grpc-js, measured by
// bench/outside.py beside the runners ("gRPC alone"). The same proto loading and server options as
// src/runner/service.ts; it runs nothing and touches no file.
//
// usage: node bench/grpc-echo.mjs SOCKET   (stopped with SIGTERM)
import { rmSync } from 'node:fs';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { loadRunnerProto } from '../dist/runner/protos.js';

const socket = process.argv[2];
if (!socket) {
  console.error('usage: node bench/grpc-echo.mjs SOCKET');
  process.exit(2);
}
const proto = loadRunnerProto();
const server = new Server();
server.addService(proto.buildbarn.runner.Runner.service, {
  CheckReadiness: (_call, callback) => callback(null, {}),
  Run: (_call, callback) => callback(null, { exitCode: 0, resourceUsage: [] }),
});
server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(`bench/grpc-echo.mjs: cannot listen on ${socket}: ${error.message}`);
    process.exit(1);
  }
});
process.on('SIGTERM', () => {
  server.forceShutdown();
  rmSync(socket, { force: true });
  process.exit(0);
});
