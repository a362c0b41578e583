// The package's public API (`import … from 'mountat'`; docs/library.md): the mount engine and its
// error model. Everything else in dist/ is the command's, the hook's and the runner's, and may
// change without notice; package.json's "exports" lets nothing else be imported.

// The root, by fd: opened once by path, lent to the engine as an Fd or a BorrowedFd.
export { BorrowedFd, Fd } from './linux/index.js';
export type { FdRef } from './linux/index.js';
export { openRoot, rootIdentityOf, rootKey } from './mounts/index.js';
export type { MountIdentity, RootIdentity } from './mounts/index.js';

// Plans: pure data, parsed and validated before anything is touched.
export { ALLOWED_OPTIONS, DEFAULTS, defaultPlan, parsePlan, PlanError } from './mounts/index.js';
export type { Attributes, BindSource, FsOption, MountEntry, MountKind, MountPlan, Plan, PlanInput, PlannedMount, PlanTrust, Trust } from './mounts/index.js';

// Attach and detach: all or nothing, and only what the engine made.
export { AttachError, attach, detach, detachAsync, DetachError, MountError } from './mounts/index.js';
export type { AttachedMount, Attachment, AttachOptions, Cover, CreatedDir, DetachReport, ProcCover } from './mounts/index.js';

// Mounted and recorded: one owner whose tearDown() is the only way back, and the record on disk
// (schemas/mount-record.schema.json) that lets another process tear down instead.
export { AlreadyRecordedError, MountedRoot, mountRecorded, RecordJournal, RecordStore, stateDirectoryFrom } from './mounts/index.js';
export type { MountRecord, MountRecordedOptions, RecordKeeping, RecordOf } from './mounts/index.js';

// The error model: one base error with a kind, and the table the edges map kinds through.
export { describeError, GrpcStatus, KINDS, kindOf, messageOf, MountatError, reportOf } from './base/index.js';
export type { ErrorKind, KindMapping } from './base/index.js';
export { SyscallError } from './linux/index.js';
