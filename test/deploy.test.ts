// deploy/kubernetes: the manifest, its runner.json and the bb_worker fragment agree, and each
// check is shown to fail on a copy broken in the one way it guards against.
import { describe, expect, it } from 'vitest';
import type { RunnerConfig } from '../src/runner/generated/runner-config.js';
import { parseJson } from './helpers/checked.js';
import { deployProblems, loadDeploy, type K8sObject, type WorkerConfig } from './helpers/deploy-manifest.js';

const original = loadDeploy();

type Pod = NonNullable<NonNullable<K8sObject['spec']>['template']>['spec'];
type Container = Pod['containers'][number];

/** Problems of a copy of the real files, changed by edit. */
function problemsAfter(
  edit: (copy: {
    objects: K8sObject[];
    worker: WorkerConfig;
    pod: Pod;
    container: (name: string) => Container;
    runnerJson: (change: (json: RunnerConfig) => void) => void;
  }) => void,
): string[] {
  const { objects, worker } = structuredClone(original);
  const pod = objects.find((o) => o.kind === 'Deployment')!.spec!.template!.spec;
  const container = (name: string): Container => pod.containers.find((c) => c.name === name)!;
  const runnerJson = (change: (json: RunnerConfig) => void): void => {
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'mountat-runner')!;
    const json = parseJson<RunnerConfig>(configMap.data!['runner.json']!);
    change(json);
    configMap.data!['runner.json'] = JSON.stringify(json);
  };
  edit({ objects, worker, pod, container, runnerJson });
  return deployProblems(objects, worker);
}

function mount(container: Container, name: string): NonNullable<Container['volumeMounts']>[number] {
  return container.volumeMounts!.find((m) => m.name === name)!;
}

describe('deploy/kubernetes', () => {
  it('worker.yaml, its runner.json and bb-worker-runner.jsonnet are consistent', () => {
    expect(deployProblems(original.objects, original.worker)).toEqual([]);
  });

  it('runner.json with runCommandsAs is consistent with only what the runner itself then needs', () => {
    expect(
      problemsAfter(({ container, runnerJson }) => {
        runnerJson((json) => (json.runCommandsAs = { userId: 65534, groupId: 65534 }));
        container('runner').securityContext!.capabilities!.add = ['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT', 'NET_ADMIN', 'SETUID', 'SETGID'];
      }),
    ).toEqual([]);
  });

  const cases: Array<[string, Parameters<typeof problemsAfter>[0], string[]]> = [
    [
      'a runner volumeMount renamed',
      ({ container }) => (mount(container('runner'), 'runner-state').name = 'state'),
      ['runner: volumeMount state names no volume of the pod'],
    ],
    [
      'the stateDirectory mount removed',
      ({ container }) => (container('runner').volumeMounts = container('runner').volumeMounts!.filter((m) => m.name !== 'runner-state')),
      ['runner: stateDirectory /run/mountat/runner is on no volumeMount (records would not survive a container restart)'],
    ],
    [
      'the socket moved within the shared volume',
      ({ runnerJson }) => runnerJson((json) => (json.grpcServers = [{ listenPaths: ['/worker/other.sock'] }])),
      ['bb_worker: no runner with endpoint unix:///worker/other.sock'],
    ],
    [
      'the socket moved off the shared volume',
      ({ runnerJson }) => runnerJson((json) => (json.grpcServers = [{ listenPaths: ['/tmp/runner'] }])),
      ['runner: socket /tmp/runner is on no volumeMount', 'bb_worker: no runner with endpoint unix:///tmp/runner'],
    ],
    [
      'the worker mounting the shared volume elsewhere',
      ({ container }) => (mount(container('worker'), 'worker').mountPath = '/srv'),
      [
        "worker: does not mount volume worker at /worker, where the runner's socket /worker/runner is",
        "worker: does not mount volume worker at /worker, where the runner's buildDirectoryPath /worker/build is",
      ],
    ],
    [
      'the readiness probe on another path',
      ({ container }) => (container('runner').readinessProbe!.httpGet!.path = '/-/healthy'),
      ['runner: readinessProbe is not httpGet /-/ready on port 9981'],
    ],
    [
      'the readiness probe back to a process per probe',
      ({ container }) => (container('runner').readinessProbe = { exec: { command: ['mountat', 'probe', '--config', '/config/runner.json'] } }),
      ['runner: readinessProbe is not httpGet /-/ready on port 9981'],
    ],
    [
      'the readiness check not naming the build directory',
      ({ runnerJson }) => runnerJson((json) => (json.readinessCheckingPathnames = [])),
      ['runner.json: readinessCheckingPathnames does not name buildDirectoryPath /worker/build (the readiness probe would pass while it is missing)'],
    ],
    [
      'the config key renamed',
      ({ objects }) => (objects[0]!.data = { 'config.json': objects[0]!.data!['runner.json']! }),
      ['runner: ConfigMap mountat-runner (in this file) has no key runner.json'],
    ],
    [
      'runner.json invalid',
      ({ runnerJson }) => runnerJson((json) => (json.buildDirectoryPath = 'worker/build')),
      ['runner.json: config.buildDirectoryPath must match ^/ (got "worker/build")'],
    ],
    [
      'an extra capability',
      ({ container }) => container('runner').securityContext!.capabilities!.add!.push('SYS_PTRACE'),
      [
        'runner: capabilities.add is [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT, SYS_PTRACE], expected [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT]',
      ],
    ],
    [
      'SETPCAP missing',
      ({ container }) =>
        (container('runner').securityContext!.capabilities!.add = container('runner').securityContext!.capabilities!.add!.filter((cap) => cap !== 'SETPCAP')),
      [
        'runner: capabilities.add is [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETUID, SYS_ADMIN, SYS_CHROOT], expected [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT]',
      ],
    ],
    [
      "the actions' capabilities missing",
      ({ container }) => (container('runner').securityContext!.capabilities!.add = ['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT', 'NET_ADMIN']),
      [
        'runner: capabilities.add is [NET_ADMIN, SETPCAP, SYS_ADMIN, SYS_CHROOT], expected [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT]',
      ],
    ],
    [
      'NET_ADMIN missing (network "none")',
      ({ container }) =>
        (container('runner').securityContext!.capabilities!.add = container('runner').securityContext!.capabilities!.add!.filter((cap) => cap !== 'NET_ADMIN')),
      [
        'runner: capabilities.add is [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT], expected [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT]',
      ],
    ],
    [
      "the actions on the pod's network, with the diagnostics port there",
      ({ runnerJson }) => runnerJson((json) => delete json.network),
      [
        'runner.json: config.global.diagnosticsHttpServer.httpServers[0].listenAddresses[0] ":9981": every action can connect to it, on the runner\'s network (network "host"); give actions a network of their own (network "none"), or remove global.diagnosticsHttpServer (`mountat probe` asks the socket)',
      ],
    ],
    [
      'the seccomp profile left to the node',
      ({ container }) => delete container('runner').securityContext!.seccompProfile,
      ['runner: seccompProfile is unset, not RuntimeDefault or Unconfined (how actions are rooted would depend on the node)'],
    ],
    [
      'Unconfined seccomp with SYS_CHROOT still added',
      ({ container }) => (container('runner').securityContext!.seccompProfile = { type: 'Unconfined' }),
      [
        'runner: capabilities.add is [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT], expected [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN]',
      ],
    ],
    [
      'drop not ALL',
      ({ container }) => (container('runner').securityContext!.capabilities!.drop = ['NET_RAW']),
      ['runner: capabilities.drop is [NET_RAW], not [ALL]'],
    ],
    ['the runner privileged', ({ container }) => (container('runner').securityContext!.privileged = true), ['runner: privileged']],
    [
      'the worker not privileged',
      ({ container }) => (container('worker').securityContext!.privileged = false),
      ['worker: not privileged (FUSE; and Kubernetes allows Bidirectional only there)'],
    ],
    [
      'the worker propagation None',
      ({ container }) => (mount(container('worker'), 'worker').mountPropagation = 'None'),
      ['worker: mount of worker is not Bidirectional'],
    ],
    [
      'the runner propagation None',
      ({ container }) => (mount(container('runner'), 'worker').mountPropagation = 'None'),
      ['runner: mount of worker is not HostToContainer'],
    ],
    [
      'the jsonnet endpoint elsewhere',
      ({ worker }) => (worker.buildDirectories![0]!.runners![0]!.endpoint = { address: 'unix:///worker/bb_runner' }),
      ['bb_worker: no runner with endpoint unix:///worker/runner'],
    ],
    [
      'the jsonnet build directory elsewhere',
      ({ worker }) => (worker.buildDirectories![0]!.virtual!.mount!.mountPath = '/worker/b'),
      ["bb_worker: build directory /worker/b is not the runner's /worker/build"],
    ],
    [
      'no inputRootCharacterDeviceNodes',
      ({ worker }) => delete worker.buildDirectories![0]!.runners![0]!.inputRootCharacterDeviceNodes,
      ['bb_worker: no inputRootCharacterDeviceNodes (the runner does not mount /dev)'],
    ],
    [
      "runCommandsAs with the root actions' capabilities still added",
      ({ runnerJson }) => runnerJson((json) => (json.runCommandsAs = { userId: 65534, groupId: 65534 })),
      [
        'runner: capabilities.add is [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT], expected [NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT]',
      ],
    ],
    [
      'runCommandsAs without a PID namespace and without KILL',
      ({ container, runnerJson }) => {
        runnerJson((json) => Object.assign(json, { runCommandsAs: { userId: 65534, groupId: 65534 }, pidNamespace: false }));
        container('runner').securityContext!.capabilities!.add = ['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT', 'NET_ADMIN', 'SETUID', 'SETGID'];
      },
      [
        'runner: capabilities.add is [NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT], expected [KILL, NET_ADMIN, SETGID, SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT]',
      ],
    ],
    ['no cpu request on the worker', ({ container }) => delete container('worker').resources!.requests!.cpu, ['worker: no resources.requests.cpu']],
    [
      'the diagnostics port changed in runner.json only',
      ({ runnerJson }) => runnerJson((json) => (json.global!.diagnosticsHttpServer!.httpServers![0]!.listenAddresses = [':9990'])),
      [
        'runner: no containerPort 9990 (diagnostics)',
        'runner: livenessProbe is not httpGet /-/healthy on port 9990',
        'runner: readinessProbe is not httpGet /-/ready on port 9990',
      ],
    ],
    [
      'the liveness probe on another port',
      ({ container }) => (container('runner').livenessProbe!.httpGet!.port = 8080),
      ['runner: livenessProbe is not httpGet /-/healthy on port 9981'],
    ],
    [
      'no memory limit per action',
      ({ runnerJson }) => runnerJson((json) => delete json.limits!.memoryBytes),
      ['runner.json: no limits.memoryBytes (one action could make the whole runner container run out of memory)'],
    ],
    [
      'concurrency raised without the memory limit',
      ({ worker }) => (worker.buildDirectories![0]!.runners![0]!.concurrency = 9),
      ['runner: resources.limits.memory 16640Mi leaves nothing for the runner beside 9 actions x limits.memoryBytes 2048Mi (18432Mi)'],
    ],
    [
      'the selector not matching the pod',
      ({ objects }) => (objects[1]!.spec!.selector!.matchLabels = { app: 'other' }),
      ["Deployment: selector app=other does not match the pod template's labels"],
    ],
  ];
  it.each(cases)('finds %s', (_name, edit, expected) => {
    expect(problemsAfter(edit)).toEqual(expected);
  });
});
