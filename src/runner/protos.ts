// The .proto files in schemas/, loaded once: for the gRPC service definition (proto-loader) here,
// for encoding POSIXResourceUsage and CgroupResourceUsage into google.protobuf.Any (protobufjs) in
// usage-protos.ts, which the action worker threads load without gRPC.
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import type { ProtoGrpcType } from './generated/runner.js';
import { SCHEMAS } from './usage-protos.js';

export { CGROUP_RESOURCE_USAGE_PROTO, cgroupResourceUsageType, posixResourceUsageType, RESOURCE_USAGE_PROTO, SCHEMAS } from './usage-protos.js';
export const RUNNER_PROTO = 'buildbarn/runner/runner.proto';

/** The options the generated types (scripts/generate-types.mjs) were made for. */
export const LOADER_OPTIONS: protoLoader.Options = { includeDirs: [SCHEMAS], longs: String, enums: String, defaults: true, oneofs: true };

export function loadRunnerProto(): ProtoGrpcType {
  const definition = protoLoader.loadSync([RUNNER_PROTO], LOADER_OPTIONS);
  // proto-loader's typings promise a GrpcObject only; the generated ProtoGrpcType is what it is for these options.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- proto-loader-gen-types' own contract
  return loadPackageDefinition(definition) as unknown as ProtoGrpcType & GrpcObject;
}
