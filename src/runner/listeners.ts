// The runner's listeners are not the actions': no action may reach the gRPC service (a Run of its
// own, with another action's directory as its input root) or the diagnostics server. Neither asks
// who is calling, so the rule is where they listen, checked before anything listens:
// - TCP (and grpc-js's abstract UNIX sockets) belong to the network namespace, which actions share
//   with network "host". TCP carries no credentials to tell an action from bb_worker on loopback,
//   so such a listener is refused there; with network "none" each action has a namespace of its
//   own with only loopback, and the runner's ports are not in it.
// - A UNIX socket with a path is reached through the filesystem. An action rooted in its input
//   root (pivot_root) sees nothing outside it, unless the socket is inside what becomes a root: the
//   build directory (any directory of it can be a Run's input or temporary directory), or beneath
//   a bind source of the plan. Not rooted (chrootIntoInputRoot false), it sees the whole filesystem.
// docs/containment.md ("The runner's listeners") has the reasoning and test/listeners.test.ts the attacks.
import { realpathSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { NetworkMode } from '../sandbox/index.js';

/** A socket the runner listens on, by its name in the config. */
export interface Listener {
  /** Where in the config: "config.grpcServers[0].listenPaths[1]". */
  name: string;
  /** As written there. */
  address: string;
  /** 'path': a UNIX socket file; 'network': TCP or an abstract socket; 'unix-address': a UNIX path given as an address. */
  kind: 'path' | 'network' | 'unix-address';
  /** The diagnostics HTTP server, or the gRPC service. */
  diagnostics: boolean;
}

export interface ListenerContext {
  network: NetworkMode;
  chroot: boolean;
  buildDirectoryPath: string;
  /** Bind sources of the plan given as host paths, by their entry's name ("config.mounts[2]"). */
  bindSources: Array<{ name: string; path: string }>;
}

/** grpc-js's address forms: "unix:PATH" and "unix://PATH" are a socket file; anything else is of the network namespace. */
export function listenerKindOf(address: string): Listener['kind'] {
  return address.startsWith('unix:') ? 'unix-address' : 'network';
}

function inside(path: string, directory: string): boolean {
  return path === directory || path.startsWith(directory.endsWith('/') ? directory : `${directory}/`);
}

/**
 * The first listener an action could reach, as one line naming it and the fix; undefined if none.
 * `resolvePath` maps a path to the one compared: lexically here, through symlinks at start-up.
 */
export function unreachableProblem(
  listeners: readonly Listener[],
  context: ListenerContext,
  resolvePath: (path: string) => string = (path) => resolve(path),
): string | undefined {
  for (const listener of listeners) {
    const named = `${listener.name} ${JSON.stringify(listener.address)}`;
    if (listener.kind === 'unix-address') return `${named}: a UNIX socket goes in listenPaths, where the runner checks that no action can reach it`;
    if (listener.kind === 'network') {
      if (context.network !== 'host') continue;
      const fix = listener.diagnostics
        ? 'give actions a network of their own (network "none"), or remove global.diagnosticsHttpServer (`mountat probe` asks the socket)'
        : 'listen on a UNIX socket (listenPaths), or give actions a network of their own (network "none")';
      return `${named}: every action can connect to it, on the runner's network (network "host"); ${fix}`;
    }
    if (!context.chroot) {
      return `${named}: with chrootIntoInputRoot false every action sees the runner's filesystem, this socket included; root actions in their input roots (chrootIntoInputRoot true), or listen on TCP (listenAddresses) with network "none"`;
    }
    const path = resolvePath(listener.address);
    const seen = path === listener.address ? named : `${named} (${path})`;
    const build = resolvePath(context.buildDirectoryPath);
    if (inside(path, build)) {
      return `${seen}: inside buildDirectoryPath ${JSON.stringify(build)}, where a Run's input root or temporary directory can contain it; listen outside buildDirectoryPath`;
    }
    for (const source of context.bindSources) {
      const from = resolvePath(source.path);
      if (inside(path, from))
        return `${seen}: beneath ${source.name}'s bind source ${JSON.stringify(from)}, mounted into every action's root; listen outside it`;
    }
  }
  return undefined;
}

/**
 * A path with its symlinks resolved as far as it exists: a socket's directory exists when the
 * runner binds (else bind fails and says so), the socket file need not.
 */
export function resolveExisting(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : `${resolveExisting(parent).replace(/\/$/, '')}/${basename(absolute)}`;
  }
}
