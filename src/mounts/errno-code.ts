// The errno name Node puts on the errors of its own calls (fs, process.kill): read through a
// guard rather than `(error as NodeJS.ErrnoException).code`. A file of its own, importing
// nothing: json-file.ts is on podman's precreate path, which must not load the engine.

/** `error.code` when it is a string, such as "ENOENT"; undefined for anything else. */
export function errnoCodeOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}
