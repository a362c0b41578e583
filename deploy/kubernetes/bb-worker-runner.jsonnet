// The part of bb_worker's configuration that concerns mountat's runner (worker.yaml). It is not a
// whole bb_worker configuration: merge it into yours, for instance
//
//   (import 'bb-worker-runner.jsonnet') + {
//     blobstore: ..., scheduler: { address: ... }, browserUrl: ..., global: ...,
//   }
//
// with both files in the bb-worker ConfigMap (README.md beside this file). Field names are
// bb_worker's (its configuration proto in JSON form), as in buildbarn/bb-deployments.
local concurrency = 8;  // worker.yaml sizes the runner container's resources for this many actions
local maximumFilePoolSizeBytes = 1024 * 1024 * 1024;  // per action

{
  buildDirectories: [{
    // A virtual (FUSE) build directory: bb_worker mounts it at /worker/build, on the volume it
    // shares with the runner; it reaches the runner's container through mount propagation. This
    // is why the worker container is privileged and its /worker mount Bidirectional (worker.yaml).
    // With a `native` build directory instead (buildDirectoryPath, cacheDirectoryPath,
    // maximumCacheFileCount, maximumCacheSizeBytes, cacheReplacementPolicy) there is no such
    // mount: the shared emptyDir is enough, and neither privilege nor propagation is needed for it.
    virtual: {
      mount: {
        mountPath: '/worker/build',  // = buildDirectoryPath in the runner's runner.json
        fuse: {
          directoryEntryValidity: '300s',
          inodeAttributeValidity: '300s',
          // Without allow_other FUSE refuses every user but the one that mounted it, and
          // actions run as another user when runner.json sets runCommandsAs.
          allowOther: true,
          // bb_worker calls mount(2) itself instead of a fusermount helper.
          directMount: true,
        },
      },
      maximumExecutionTimeoutCompensation: '3600s',
      shuffleDirectoryListings: true,
    },
    runners: [{
      // = 'unix://' + grpcServers[0].listenPaths[0] of runner.json: the socket on the shared volume.
      endpoint: { address: 'unix:///worker/runner' },
      concurrency: concurrency,
      instanceNamePrefix: '',
      // Must match what clients ask for (e.g. Bazel's --remote_default_exec_properties). Actions
      // run chrooted into their input root, so the runner image is not their environment and no
      // container-image property describes it.
      platform: {
        properties: [
          { name: 'OSFamily', value: 'linux' },
        ],
      },
      // The runner mounts /proc, /sys and /tmp into each input root, not /dev: bb_worker creates
      // these character devices in it.
      inputRootCharacterDeviceNodes: ['full', 'null', 'random', 'tty', 'urandom', 'zero'],
      maximumFilePoolFileCount: 10000,
      maximumFilePoolSizeBytes: maximumFilePoolSizeBytes,
      // workerId: { pod: std.extVar('POD_NAME') } in the full configuration: bb_worker passes its
      // environment (worker.yaml sets POD_NAME) as external variables; left out here so that
      // `jsonnet` evaluates this file on its own.
    }],
  }],
  // Where the virtual build directory keeps files that actions write: on the worker's side of
  // the shared emptyDir (node disk), concurrency x maximumFilePoolSizeBytes.
  filePool: {
    blockDevice: {
      file: {
        path: '/worker/filepool',
        sizeBytes: concurrency * maximumFilePoolSizeBytes,
      },
    },
  },
}
