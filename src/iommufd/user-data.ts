/**
 * Driver data passed through iommufd (include/linux/iommu.h, struct
 * iommu_user_data and iommu_user_data_array): a typed user buffer, read
 * the way copy_struct_from_user reads an extensible struct (a short buffer
 * reads as zeros past its end, a longer one must be zero past the kernel's
 * struct, else E2BIG; an unreadable pointer is EFAULT).
 */
import { kerr, type KError } from "../lib/errno.ts";

/** struct iommu_user_data: the user buffer is `uptr` (null for NULL), `len` bytes of it. */
export interface IommuUserData {
  readonly type: number;
  readonly uptr: Uint8Array | null;
  readonly len: number;
}

/** struct iommu_user_data_array: `entry_num` entries of `entry_len` bytes each. */
export interface IommuUserDataArray {
  readonly type: number;
  readonly uptr: Uint8Array | null;
  readonly entryLen: number;
  /** In: the entries given; out: the entries handled. */
  entryNum: number;
}

// @kernel: copy_struct_from_user
export function copyStructFromUser(ksize: number, uptr: Uint8Array | null, offset: number, usize: number): Uint8Array | KError {
  if (uptr === null || offset + usize > uptr.length) return kerr("EFAULT", `the user buffer does not hold ${usize} bytes at offset ${offset}`);
  for (let i = ksize; i < usize; i++) if (uptr[offset + i] !== 0) return kerr("E2BIG", `byte ${i} past the kernel's ${ksize}-byte struct is not zero`);
  const k = new Uint8Array(ksize);
  k.set(uptr.subarray(offset, offset + Math.min(ksize, usize)));
  return k;
}

/** The driver's struct of `ksize` bytes, of which the first `minLen` are required. */
// @kernel: __iommu_copy_struct_from_user
export function iommuCopyStructFromUser(src: IommuUserData, dataType: number, ksize: number, minLen: number): Uint8Array | KError {
  if (src.type !== dataType) return kerr("EINVAL", `data type 0x${src.type.toString(16)} is not 0x${dataType.toString(16)}`);
  if (src.len < minLen || src.len > ksize) return kerr("EINVAL", `data_len ${src.len} is outside [${minLen}, ${ksize}]`);
  return copyStructFromUser(ksize, src.uptr, 0, src.len);
}

/** Entry `index` of an array. */
// @kernel: __iommu_copy_struct_from_user_array
export function iommuCopyStructFromUserArray(src: IommuUserDataArray, dataType: number, index: number, ksize: number, minLen: number): Uint8Array | KError {
  if (index >= src.entryNum || src.entryNum === 0) return kerr("EINVAL", `no entry ${index}`);
  if (src.type !== dataType) return kerr("EINVAL", `data type 0x${src.type.toString(16)} is not 0x${dataType.toString(16)}`);
  if (src.entryLen < minLen || src.entryLen > ksize) return kerr("EINVAL", `entry_len ${src.entryLen} is outside [${minLen}, ${ksize}]`);
  return copyStructFromUser(ksize, src.uptr, index * src.entryLen, src.entryLen);
}

/** Every entry at once, each widened or narrowed to `ksize` bytes. */
// @kernel: iommu_copy_struct_from_full_user_array
export function iommuCopyStructFromFullUserArray(src: IommuUserDataArray, dataType: number, ksize: number): Uint8Array[] | KError {
  if (src.type !== dataType) return kerr("EINVAL", `data type 0x${src.type.toString(16)} is not 0x${dataType.toString(16)}`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < src.entryNum; i++) {
    const e = copyStructFromUser(ksize, src.uptr, i * src.entryLen, src.entryLen);
    if (!(e instanceof Uint8Array)) return e;
    out.push(e);
  }
  return out;
}

/** Writes the kernel's struct back into the user buffer: min(len, ksize) bytes, zeros past it. */
// @kernel: __iommu_copy_struct_to_user
export function iommuCopyStructToUser(dst: IommuUserData, dataType: number, k: Uint8Array, minLen: number): 0 | KError {
  if (dst.type !== dataType) return kerr("EINVAL", `data type 0x${dst.type.toString(16)} is not 0x${dataType.toString(16)}`);
  if (dst.len < minLen || dst.uptr === null) return kerr("EINVAL", `data_len ${dst.len} is below ${minLen}, or the buffer is NULL`);
  if (dst.len > dst.uptr.length) return kerr("EFAULT", "the user buffer is shorter than data_len");
  dst.uptr.fill(0, 0, dst.len);
  dst.uptr.set(k.subarray(0, Math.min(k.length, dst.len)));
  return 0;
}

export function u32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}
export function setU32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(off, v >>> 0, true);
}
export function setU64(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(off, BigInt(v), true);
}
