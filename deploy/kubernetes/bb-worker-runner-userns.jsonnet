// bb-worker-runner.jsonnet for worker-userns.yaml: the same runner, with a native build directory
// instead of FUSE and no character devices. In a user-namespaced pod a mount bb_worker made would
// not reach the runner's container (no propagation out of a user namespace's mounts), and mknod of
// a device is refused. Merge it into your worker.jsonnet as README.md beside this file says.
local base = import 'bb-worker-runner.jsonnet';
local runner = base.buildDirectories[0].runners[0];

base {
  buildDirectories: [{
    native: {
      buildDirectoryPath: '/worker/build',  // = buildDirectoryPath in runner.json
      cacheDirectoryPath: '/worker/cache',  // the same volume: input roots are hard links into it
      maximumCacheFileCount: 10000,
      maximumCacheSizeBytes: 1024 * 1024 * 1024,
      cacheReplacementPolicy: 'LEAST_RECENTLY_USED',
    },
    runners: [runner { inputRootCharacterDeviceNodes: [] }],
  }],
}
