// The .proto files in schemas/, loaded once: for the gRPC service definition (proto-loader) and
// for encoding POSIXResourceUsage and CgroupResourceUsage into google.protobuf.Any (protobufjs).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { ProtoGrpcType } from './generated/runner.js';

export const SCHEMAS = fileURLToPath(new URL('../../schemas', import.meta.url));
export const RUNNER_PROTO = 'buildbarn/runner/runner.proto';
export const RESOURCE_USAGE_PROTO = 'buildbarn/resourceusage/resourceusage.proto';
export const CGROUP_RESOURCE_USAGE_PROTO = 'mountat/resourceusage/cgroup_resource_usage.proto';

/** The options the generated types (scripts/generate-types.mjs) were made for. */
export const LOADER_OPTIONS: protoLoader.Options = { includeDirs: [SCHEMAS], longs: String, enums: String, defaults: true, oneofs: true };

export function loadRunnerProto(): ProtoGrpcType {
  const definition = protoLoader.loadSync([RUNNER_PROTO], LOADER_OPTIONS);
  // proto-loader's typings promise a GrpcObject only; the generated ProtoGrpcType is what it is for these options.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- proto-loader-gen-types' own contract
  return loadPackageDefinition(definition) as unknown as ProtoGrpcType & GrpcObject;
}

/** One message type of one .proto file in schemas/; google/protobuf/*.proto come with protobufjs. */
function loadType(file: string, name: string): protobuf.Type {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(SCHEMAS, target));
  root.loadSync(file);
  return root.lookupType(name);
}

let resourceUsageType: protobuf.Type | undefined;
let cgroupUsageType: protobuf.Type | undefined;

/** The POSIXResourceUsage message type. */
export function posixResourceUsageType(): protobuf.Type {
  resourceUsageType ??= loadType(RESOURCE_USAGE_PROTO, 'buildbarn.resourceusage.POSIXResourceUsage');
  return resourceUsageType;
}

/** The CgroupResourceUsage message type: the figures of an action's own cgroup. */
export function cgroupResourceUsageType(): protobuf.Type {
  cgroupUsageType ??= loadType(CGROUP_RESOURCE_USAGE_PROTO, 'mountat.resourceusage.CgroupResourceUsage');
  return cgroupUsageType;
}
