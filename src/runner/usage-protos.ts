// The resource usage messages of a RunResponse (POSIXResourceUsage, CgroupResourceUsage), loaded
// once with protobufjs alone: the action worker threads encode them, and need no gRPC for it.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export const SCHEMAS = fileURLToPath(new URL('../../schemas', import.meta.url));
export const RESOURCE_USAGE_PROTO = 'buildbarn/resourceusage/resourceusage.proto';
export const CGROUP_RESOURCE_USAGE_PROTO = 'mountat/resourceusage/cgroup_resource_usage.proto';

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
