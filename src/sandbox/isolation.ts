// From what the operator asked for to what every action gets, decided once (at the runner's
// start, or once per `mountat exec`): the capabilities it really keeps, how it is rooted, and
// whether the caller holds what that takes. Pure: the caller passes in what it probed.
import type { CapabilityName, CapabilitySets } from '../linux/index.js';
import { actionCapabilities, REACHES_OUTSIDE } from './capabilities.js';
import type { NetworkMode } from './defaults.js';
import { checkPrivileges } from './privileges.js';
import { chooseRootChange } from './root-change.js';
import type { Isolation, RunAs } from './starter.js';

export interface IsolationRequest {
  /** Rooted at the input root (false: bb_runner's chrootIntoInputRoot: false). */
  rooted: boolean;
  pidNamespace: boolean;
  network: NetworkMode;
  /** What a root action keeps; an action with runAs keeps none. */
  capabilities: readonly CapabilityName[];
  runAs: RunAs | undefined;
  /** May make user namespaces. */
  userNamespaces: boolean;
  /** Refusals of the seccomp filter to do without (already checked: whyNotAllowable). */
  allowSyscalls: readonly string[];
}

export interface Probed {
  own: CapabilitySets | undefined;
  pivotRoot: 'allowed' | 'refused';
  /** Whether proc can be made for another PID namespace (without it, no PID namespace). */
  procPidns: boolean;
}

export interface PreparedIsolation {
  isolation: Isolation;
  /** What the operator should know, one line each, with the names it concerns. */
  warnings: Array<{ message: string; detail: Record<string, unknown> }>;
}

/** Throws a one-line MountatError (not-permitted: a capability missing) or RootChangeError where actions cannot be contained as asked. */
export function prepareIsolation(request: IsolationRequest, probed: Probed, who = 'the runner'): PreparedIsolation {
  const warnings: PreparedIsolation['warnings'] = [];
  const capabilities = actionCapabilities(request.runAs ? [] : request.capabilities, probed.own, request.network);
  const root = chooseRootChange(request.rooted, probed.pivotRoot, capabilities.mask);
  checkPrivileges({ runAs: request.runAs, network: request.network, root }, probed.own, who);
  if (capabilities.lacking.length > 0) {
    warnings.push({
      message: `capabilities configured for actions that ${who} itself lacks: actions run without them`,
      detail: { capabilities: capabilities.lacking },
    });
  }
  for (const name of capabilities.reachingOutside) {
    warnings.push({
      message: 'actions are granted a capability that acts outside their namespaces',
      detail: { capability: name, lets: REACHES_OUTSIDE[name] },
    });
  }
  if (root === 'chroot') {
    warnings.push({
      message:
        "pivot_root is refused here (a seccomp profile?): each action is chrooted into its root mounted over the old one, which stays beneath it out of the action's reach",
      detail: { root },
    });
  }
  if (request.userNamespaces) {
    warnings.push({
      message:
        'actions may make user namespaces: every capability inside one, over the mount, network and other namespaces it then makes (the kernel surface behind most local privilege escalations)',
      detail: { userNamespaces: true },
    });
  }
  const allowSyscalls = [...new Set(request.allowSyscalls)];
  if (allowSyscalls.length > 0) {
    warnings.push({ message: "system calls mountat's seccomp filter refuses are allowed back for actions", detail: { syscalls: allowSyscalls } });
  }
  const pidNamespace = request.pidNamespace && probed.procPidns;
  if (request.pidNamespace && !pidNamespace) {
    warnings.push({
      message: 'this kernel cannot mount a proc for another PID namespace (proc pidns option): actions run without a PID namespace of their own',
      detail: {},
    });
  }
  const isolation: Isolation = {
    pidNamespace,
    root,
    network: request.network,
    capabilities: capabilities.mask,
    runAs: request.runAs,
    userNamespaces: request.userNamespaces,
    allowSyscalls,
  };
  return { isolation, warnings };
}
