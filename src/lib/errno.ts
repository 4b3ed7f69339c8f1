/**
 * Kernel errno values and the model's error type.
 *
 * Every failure in the model is a `KError`: the errno name the kernel would
 * return plus a sentence for a human. `KError` deliberately does not extend
 * `Error` (no stack capture), so returning one on a hot path costs one small
 * allocation. `IommuSimError` is the thrown form used at API boundaries.
 */

/** errno numbers as include/uapi/asm-generic/errno*.h and linux/errno.h define them. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  ESPIPE: 29,
  ERANGE: 34,
  EDEADLK: 35,
  ENOSYS: 38,
  EBADE: 52,
  EOVERFLOW: 75,
  EBADFD: 77,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ETIMEDOUT: 110,
  EPROBE_DEFER: 517,
} as const;

export type ErrnoName = keyof typeof ERRNO;

export const ERRNO_NAMES = Object.keys(ERRNO) as ErrnoName[];

/** A failure as the kernel would report it: errno name plus a human sentence. */
export class KError {
  constructor(
    readonly errno: ErrnoName,
    readonly message: string,
  ) {}

  /** The negative value a kernel function would return. */
  get code(): number {
    return -ERRNO[this.errno];
  }

  toString(): string {
    return `${this.errno}: ${this.message}`;
  }
}

export function kerr(errno: ErrnoName, message: string): KError {
  return new KError(errno, message);
}

export function isErr(x: unknown): x is KError {
  return x instanceof KError;
}

/** Thrown form of a KError, for API boundaries where throwing is the contract. */
export class IommuSimError extends Error {
  readonly errno: ErrnoName;
  constructor(e: KError | ErrnoName, message?: string) {
    const k = typeof e === "string" ? new KError(e, message ?? e) : e;
    super(`${k.errno}: ${k.message}`);
    this.name = "IommuSimError";
    this.errno = k.errno;
  }
}
