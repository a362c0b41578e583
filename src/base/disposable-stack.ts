// AsyncDisposableStack for Node 20, which has Symbol.asyncDispose but not the stack (Node 24 has
// it). The es-shims package (disposablestack) costs about 100 ms and 11 MB at load, more than
// `mountat exec` itself takes; what mountat needs of it is this: push undos, run them in reverse
// on dispose, keep every failure. Installed on globalThis only where the platform lacks it, so the
// platform's own is used where there is one.

type Undo = () => unknown;

class SuppressedErrorShim extends Error {
  readonly error: unknown;
  readonly suppressed: unknown;

  constructor(error: unknown, suppressed: unknown, message = 'An error was suppressed during disposal') {
    super(message);
    this.name = 'SuppressedError';
    this.error = error;
    this.suppressed = suppressed;
  }
}

class AsyncDisposableStackShim {
  #undos: Undo[] | undefined = [];

  get disposed(): boolean {
    return this.#undos === undefined;
  }

  #open(): Undo[] {
    if (this.#undos === undefined) throw new ReferenceError('AsyncDisposableStack already disposed');
    return this.#undos;
  }

  use<T extends AsyncDisposable | Disposable | null | undefined>(value: T): T {
    if (value !== null && value !== undefined) {
      const v = value as Partial<AsyncDisposable & Disposable>;
      const method = v[Symbol.asyncDispose] ?? v[Symbol.dispose];
      if (typeof method !== 'function') throw new TypeError('the value is not disposable');
      this.#open().push(() => method.call(value));
    }
    return value;
  }

  adopt<T>(value: T, onDispose: (value: T) => unknown): T {
    this.#open().push(() => onDispose(value));
    return value;
  }

  defer(onDispose: () => unknown): void {
    this.#open().push(onDispose);
  }

  move(): AsyncDisposableStackShim {
    const moved = new AsyncDisposableStackShim();
    moved.#undos = this.#open();
    this.#undos = undefined;
    return moved;
  }

  async disposeAsync(): Promise<void> {
    const undos = this.#undos;
    if (undos === undefined) return;
    this.#undos = undefined;
    let failure: { error: unknown } | undefined;
    for (const undo of undos.reverse()) {
      try {
        await undo();
      } catch (error) {
        failure = failure === undefined ? { error } : { error: new SuppressedErrorShim(error, failure.error) };
      }
    }
    if (failure !== undefined) throw failure.error;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.disposeAsync();
  }
}

const g = globalThis as Record<string, unknown>;
g.SuppressedError ??= SuppressedErrorShim;
g.AsyncDisposableStack ??= AsyncDisposableStackShim;

/** Every failure a disposal collected, first made first (a SuppressedError chain unfolded). */
export function disposalErrors(error: unknown): unknown[] {
  const found: unknown[] = [];
  let current = error;
  while (current instanceof Error && current.name === 'SuppressedError' && 'suppressed' in current && 'error' in current) {
    found.unshift(current.error);
    current = current.suppressed;
  }
  found.unshift(current);
  return found;
}
