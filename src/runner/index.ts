export { startRunner } from './server.js';
export type { RunningRunner } from './server.js';
export { loadSettings, settingsFrom, ConfigError, RUNNER_DEFAULTS } from './config.js';
export type { Settings, RunnerConfig } from './config.js';
export { RunnerService } from './service.js';
export { loadRunnerProto, posixResourceUsageType, SCHEMAS } from './protos.js';
export { POSIX_RESOURCE_USAGE_URL, signalName } from './resource-usage.js';
