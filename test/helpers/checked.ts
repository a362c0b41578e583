// Values whose type TypeScript cannot follow (JSON from a file, a command or a log; parsed YAML; a
// module loaded by path; Object.create; a caught error), typed as the test expects them. The
// tests' one place for the unchecked cast that eslint forbids elsewhere (no-unsafe-type-assertion):
// what follows is the test's own assertions, and they fail on the wrong shape.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** A value TypeScript cannot follow, as the shape the test expects; the assertions that follow check it. */
export function asExpected<T>(value: unknown): T {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- see the file's header
  return value as T;
}

/** JSON text as the shape the test expects. */
export function parseJson<T>(text: string): T {
  return asExpected<T>(JSON.parse(text));
}

/** A JSON file as the shape the test expects. */
export function readJson<T>(path: string): T {
  return parseJson<T>(readFileSync(path, 'utf8'));
}

/** `value` as an instance of `type`, or the test fails there: a checked `value as T`. */
export function instanceOf<T>(value: unknown, type: abstract new (...args: never[]) => T): T {
  expect(value).toBeInstanceOf(type);
  if (!(value instanceof type)) throw new Error('unreachable: toBeInstanceOf passed');
  return value;
}

/** The errno name (`code`) of a failed fs or child_process call; undefined for anything else. */
export function codeOf(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/**
 * `base` with some of its members replaced: an object whose prototype is `base`, so that what is
 * not replaced (a class's private fields among it) is still base's own.
 */
export function overriding<T extends object>(base: T, members: Partial<T>): T {
  return Object.assign(asExpected<T>(Object.create(base)), members);
}
