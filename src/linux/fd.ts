import { MountatError } from '../base/index.js';
import { libc } from './libc.js';

/**
 * A file descriptor with exactly one owner. `using fd = ...` closes it at the end of the
 * scope; `release()` hands the number on to a new owner, after which dispose does nothing.
 */
export class Fd implements Disposable {
  #fd: number;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`not a file descriptor: ${fd}`);
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0) throw new MountatError('internal', 'file descriptor used after close or release');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Give up ownership: the caller now closes the returned number. */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    return fd;
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    // close(2) errors are not actionable here (the fd is gone either way on Linux).
    libc().close(fd);
  }

  /**
   * close() on a thread of libuv's pool. Where the fd is the last reference to a detached mount
   * tree (open_tree's OPEN_TREE_CLONE, fsmount), the kernel unmounts the tree in that close and
   * waits for an RCU grace period: not on this thread. Closed here at once (a second close or a
   * dispose does nothing); resolves when the kernel's close has returned.
   */
  closeAsync(): Promise<void> {
    if (this.#fd < 0) return Promise.resolve();
    const fd = this.#fd;
    this.#fd = -1;
    // As close(): its errors are not actionable; the promise only says when it has happened.
    return new Promise((resolve) => libc().close.async(fd, () => resolve()));
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * An fd that another owner keeps open, lent by its number (the hook's --root-fd, an fd a caller
 * handed in): never closed through this. Where the engine takes an fd it takes an FdRef: an owned
 * Fd (lent for the call) or one of these, never a bare number that could be anything.
 */
export class BorrowedFd {
  readonly #fd: number;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`not a file descriptor: ${fd}`);
    this.#fd = fd;
  }

  get fd(): number {
    return this.#fd;
  }
}

/** An fd the callee may use but never closes: owned by the caller, or borrowed from someone else. */
export type FdRef = Fd | BorrowedFd;
