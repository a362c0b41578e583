// The .proto files in schemas/, loaded once: for the gRPC service definition (proto-loader) and
// for encoding POSIXResourceUsage into a google.protobuf.Any (protobufjs).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { ProtoGrpcType } from './generated/runner.js';

export const SCHEMAS = fileURLToPath(new URL('../../schemas', import.meta.url));
export const RUNNER_PROTO = 'buildbarn/runner/runner.proto';
export const RESOURCE_USAGE_PROTO = 'buildbarn/resourceusage/resourceusage.proto';

/** The options the generated types (scripts/generate-types.mjs) were made for. */
export const LOADER_OPTIONS: protoLoader.Options = { includeDirs: [SCHEMAS], longs: String, enums: String, defaults: true, oneofs: true };

export function loadRunnerProto(): ProtoGrpcType {
  const definition = protoLoader.loadSync([RUNNER_PROTO], LOADER_OPTIONS);
  // proto-loader's typings promise a GrpcObject only; the generated ProtoGrpcType is what it is for these options.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- proto-loader-gen-types' own contract
  return loadPackageDefinition(definition) as unknown as ProtoGrpcType & GrpcObject;
}

let resourceUsageType: protobuf.Type | undefined;

/** The POSIXResourceUsage message type; google/protobuf/*.proto come with protobufjs. */
export function posixResourceUsageType(): protobuf.Type {
  if (!resourceUsageType) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(SCHEMAS, target));
    root.loadSync(RESOURCE_USAGE_PROTO);
    resourceUsageType = root.lookupType('buildbarn.resourceusage.POSIXResourceUsage');
  }
  return resourceUsageType;
}
