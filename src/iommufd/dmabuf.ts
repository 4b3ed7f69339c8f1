/**
 * A dma-buf iommufd imports through IOAS_MAP_FILE (pages.c: the dmabuf
 * flavour of iopt_pages), and the selftest's own exporter (selftest.c:
 * DMABUF_GET, DMABUF_REVOKE, MD_CHECK_DMABUF). The exporter hands out
 * physical ranges, not struct pages: nothing is pinned or accounted. A
 * revoke (the exporter's move notification) makes every importer unmap
 * its areas from every domain and mark its pages revoked: the areas stay
 * in the IOAS (an IOAS_UNMAP still removes them), later fills of those
 * pages map nothing, and a new IOAS_MAP_FILE of a revoked dma-buf is ENODEV.
 */
import { iommuIovaToPhys } from "../iommu/map.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import type { HwptPaging } from "./hw-pagetable.ts";
import type { IommufdCtx } from "./object.ts";
import type { IoptPages } from "./pages.ts";
import { MemFile, USER_PHYS_BASE, type PhysMem } from "./user-memory.ts";

export const IOMMU_TEST_OP_DMABUF_GET = 22;
export const IOMMU_TEST_OP_DMABUF_REVOKE = 23;
export const IOMMU_TEST_OP_MD_CHECK_DMABUF = 24;

/** The most the selftest's exporter makes: 512 pages. */
const DMABUF_MAX_PAGES = 512;

/**
 * The selftest's dma-buf (struct iommufd_test_dma_buf): pages of its own,
 * one physical range each. As a file it lives in the process's file table,
 * so IOAS_MAP_FILE resolves its fd as it resolves a memfd's.
 */
export class DmaBuf extends MemFile {
  /** The exporter has revoked access (priv->revoked). */
  revoked = false;
  /** The iopt_pages attached to it (its dma_buf attachments). */
  readonly importers = new Set<IoptPages>();

  constructor(phys: PhysMem, length: number) {
    super(phys, length);
  }
}

/** What an importer does when the exporter moves or revokes the buffer: unmap from every domain, and revoke its pages. */
// @kernel: iopt_revoke_notify
function revokeNotify(dmabuf: DmaBuf): void {
  for (const pages of dmabuf.importers) {
    if (pages.revoked) continue;
    for (const [area, iopt] of pages.dmabufTrack!) iopt.unmapAreaDomains(area);
    pages.revoked = true;
  }
}

function dmabufOf(ictx: IommufdCtx, fd: number): DmaBuf | KError {
  const f = ictx.mm.files.get(fd);
  if (f === undefined) return kerr("EBADF", `fd ${fd} is not open`);
  if (!(f instanceof DmaBuf)) return kerr("EINVAL", `fd ${fd} is not a dma-buf`);
  return f;
}

/** DMABUF_GET: a dma-buf of `length` bytes of zeroed pages; its fd goes in out_dmabuf_fd (the ioctl's return value in the kernel). */
// @kernel: iommufd_test_dmabuf_get
export function testDmabufGet(ictx: IommufdCtx, c: { length: number; open_flags: number; out_dmabuf_fd: number }): 0 | KError {
  if (c.length === 0 || c.length % PAGE_SIZE !== 0 || c.length > PAGE_SIZE * DMABUF_MAX_PAGES) {
    return kerr("EINVAL", `a test dma-buf is 1 to ${DMABUF_MAX_PAGES} whole pages, not ${c.length} bytes`);
  }
  const fd = ictx.mm.nextFd++;
  ictx.mm.files.set(fd, new DmaBuf(ictx.env.phys, c.length));
  c.out_dmabuf_fd = fd;
  return 0;
}

/** DMABUF_REVOKE: sets the exporter's revoked flag and notifies every importer (which revokes on any notification). */
// @kernel: iommufd_test_dmabuf_revoke
export function testDmabufRevoke(ictx: IommufdCtx, c: { dmabuf_fd: number; revoked: number }): 0 | KError {
  const d = dmabufOf(ictx, c.dmabuf_fd);
  if (isErr(d)) return d;
  d.revoked = c.revoked !== 0;
  // dma_buf_move_notify
  revokeNotify(d);
  return 0;
}

/** MD_CHECK_DMABUF: each mock page of [iova, +length) translates to the dma-buf's byte at offset + i. */
// @kernel: iommufd_test_md_check_dmabuf
export function testMdCheckDmabuf(ictx: IommufdCtx, hwptId: number, c: { dmabuf_fd: number; iova: number; length: number; offset: number }): 0 | KError {
  const o = ictx.get(hwptId, "HWPT_PAGING");
  if (isErr(o)) return o;
  const d = (o as HwptPaging).domain;
  if (d === null || d.pgtableFormat !== "IOMMUFD_MOCK") return kerr("EINVAL", `HWPT ${hwptId} is not a mock domain`);
  const buf = dmabufOf(ictx, c.dmabuf_fd);
  if (isErr(buf)) return buf.errno === "EBADF" ? buf : kerr("EINVAL", buf.message);
  const pageSize = d.pgsizes[0]!;
  if (c.iova % pageSize !== 0 || c.length % pageSize !== 0 || c.offset % pageSize !== 0 || c.offset + c.length > buf.size) {
    return kerr("EINVAL", `iova, length and offset must be ${pageSize}-byte multiples inside the ${buf.size}-byte dma-buf`);
  }
  for (let i = 0; i < c.length; i += pageSize) {
    const at = c.offset + i;
    const want = USER_PHYS_BASE + buf.pfns[Math.floor(at / PAGE_SIZE)]! * PAGE_SIZE + (at % PAGE_SIZE);
    const got = iommuIovaToPhys(d, c.iova + i);
    if (got !== want) return kerr("EINVAL", `IOVA 0x${(c.iova + i).toString(16)} translates to 0x${got.toString(16)}, not the dma-buf's 0x${want.toString(16)}`);
  }
  return 0;
}
