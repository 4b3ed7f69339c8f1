/**
 * Failures that change state, as the kernel's do: the registry.
 *
 * Bad input leaves the model's state exactly as it was. A few failures of
 * the kernel leave something behind, and the model keeps those: each is
 * listed here once, under a stable id, with the kernel function that
 * behaves so and the parts of the snapshot it may change. The code that
 * leaves such state records the effect when it happens: the core and the
 * DMA layer through a FailureEffectSink (the IOMMU core, which hands it to
 * the machine's diagnostics, lib/diagnostics.ts), which the trace
 * shows as a `failure effect` note and the snapshot as a finding
 * `failure effect <id> (<function>): <subject>: <what>`; the page-table formats through
 * their own findings (`pgtableFindings`: the kinds that record it); a
 * message the kernel logs is its own record (`warnings`, failure-logged).
 * docs/model.md lists every id (a test checks), and the fuzzer
 * (scripts/fuzz/) accepts a change after a failing event only when an
 * effect that event recorded covers it.
 *
 * `changes` are snapshot paths: `domains[]` is any element of the
 * `domains` list (matched by id), `[+]` an element added, a dotted suffix a
 * field; a path covers every path below it.
 */

export interface FailureEffect {
  /** The kernel function whose behaviour this is. */
  readonly kernel: string;
  /** What stays changed, in a sentence. */
  readonly summary: string;
  /** Snapshot paths the effect may change. */
  readonly changes: readonly string[];
  /** The page-table finding kinds that record this effect (formats report it as they do it). */
  readonly pgtableFindings?: readonly string[];
}

/** The parts of a paging domain's snapshot, in both domain lists. */
function domainFields(...fields: string[]): string[] {
  return fields.flatMap((f) => [`domains[].${f}`, `user_domains[].${f}`]);
}

export const FAILURE_EFFECTS = {
  "failure-logged": {
    kernel: "the function each warning names",
    summary:
      "a failure the kernel logs leaves its message in the log: the snapshot's `warnings`, each naming the kernel function that logged it (e.g. __iommu_device_set_domain refusing to block a device that needs a direct mapping, iommu_get_default_domain_type refusing an untrusted device's override, arm_smmu_insert_master meeting an aliased StreamID, iommu_device_unuse_default_domain with PASIDs attached); the model logs only where the kernel does, and a WARN_ONCE only once",
    changes: ["warnings[+]"],
  },
  "claim-keeps-blocking-domain": {
    kernel: "__iommu_take_dma_ownership",
    summary:
      "a DMA-ownership claim refused while it switches the group to its blocking domain (a member's firmware requires a direct mapping: EINVAL) leaves the blocking domain __iommu_group_alloc_blocking_domain allocated in group->blocking_domain, until the group is freed",
    changes: ["domains[+]"],
  },
  "register-walk-keeps-other-probes": {
    kernel: "iommu_device_register",
    summary:
      "a registration whose bus walk fails part-way calls iommu_device_unregister, which releases exactly the devices the walk probed for this instance on iommu_buses[] (remove_iommu_group matches dev->iommu->iommu_dev; the selftest's mock bus is not walked, so a failed iommu_device_register_bus leaves the mock devices it probed, e.g. before an injected probe_device fault, probed against the unlisted mock); devices the walk probed for other registered instances stay probed, in their groups (a group whose first attach failed keeps its default domain, with a WARN), the direct mappings a released device's reserved regions added to its group's default domain stay mapped (iommu_create_device_direct_mappings has no undo), a fwspec-only dev_iommu the walk's refused probes freed (one a deferral left under fwspec-carries-ops) stays freed, and what the walk logged stays; the same when, up to v6.0 (ops_resolution=bus-set-iommu), the driver's bus_set_iommu calls fail its probe after iommu_device_register",
    changes: ["devices[]", "groups", "iommus[].devices", "domains[+]", "warnings[+]", ...domainFields("mapped_bytes", "pgtable_pages", "pgtable_bytes", "tlb")],
  },
  "fwspec-left-after-failed-parse": {
    kernel: "of_iommu_configure",
    summary:
      "up to v6.10 (fwspec_ops=fwspec-carries-ops) a firmware parse that fails leaves the fwspec it made, and the dev_iommu under it: on a deferral (the IOMMU not registered) the otherwise-empty fwspec naming the IOMMU waited for, after another error (a second `iommus` entry for other ops: EINVAL) the fwspec of the entries before it; the next of_iommu_configure frees an ops-less fwspec and parses again, and keeps one with ops",
    changes: ["devices[].fwspec", "devices[].dev_iommu"],
  },
  "failed-register-changes-bus-ops": {
    kernel: "iommu_device_register",
    summary:
      "an IOMMU driver's registration that fails leaves the buses' ops as it made them: from v6.1 to v6.7 (ops_resolution=bus-ops) iommu_device_register sets each bus's iommu_ops before walking it (iommu_device_register_bus its private bus's) and iommu_device_unregister clears none, so a different driver stays EBUSY; up to v6.0 (bus-set-iommu) a driver's failed bus_set_iommu keeps the buses it claimed before (virtio-iommu, amd-iommu) or sets them back to NULL even where another instance had claimed them (the Arm SMMU drivers' unwind)",
    changes: ["bus_ops"],
  },
  "bus-set-iommu-releases-bus": {
    kernel: "bus_set_iommu",
    summary:
      "up to v6.0 (ops_resolution=bus-set-iommu) a bus_set_iommu whose probe replay fails releases every device of the bus (remove_iommu_group), whichever instance probed it (another instance of the driver, when the bus had lost its ops to the driver's remove), with their groups and domains (and the page-table findings of those domains) and any fwspec-only dev_iommu, and gives the bus no ops; the driver's probe then fails",
    // The freed domains' page-table findings go with them (findings[-]).
    changes: ["devices[]", "groups", "iommus[].devices", "domains", "warnings[+]", "findings[-]"],
  },
  "unuse-keeps-owner-count": {
    kernel: "iommu_device_unuse_default_domain",
    summary:
      "a driver bind that fails in the driver's probe, after iommu_device_use_default_domain counted the device on a group with PASID attachments (owner_cnt was 0, so nothing was checked), is undone by dma_cleanup, whose iommu_device_unuse_default_domain WARNs on the PASIDs and leaves owner_cnt raised",
    changes: ["groups[].owner", "groups[].owner_cnt", "warnings[+]"],
  },
  "default-domain-restore-moves-group": {
    kernel: "iommu_setup_default_domain",
    summary:
      "a new default domain (a sysfs type write) that fails after the group was switched to it (its direct mappings could not be made even after the attach) is undone by switching the group back to its old default domain, even when the group was on another domain before (attached by iommu_attach_group without DMA ownership): it ends on the old default",
    changes: ["groups[].domain", "devices[].domain"],
  },
  "must-succeed-attach-refused": {
    kernel: "__iommu_group_set_domain_internal",
    summary:
      "a switch the core may not fail (IOMMU_SET_DOMAIN_MUST_SUCCEED: the first attach of a default domain, the restore of the old default domain after a sysfs type change failed, a release to the blocking domain) that the driver refuses for a member goes on with the other members; the refused member is left where the driver put it (on the blocking domain if it took that, else on its previous domain, even one the caller then frees: the kernel's comment names the use-after-free risk)",
    changes: ["devices[].domain"],
  },
  "attach-revert-refused": {
    kernel: "__iommu_group_set_domain_internal",
    summary:
      "a group attach that fails on a later device reverts the earlier ones to the group's domain; a driver that refuses even that revert (a group already inconsistent, e.g. spanning two instances) gets a WARN_ON, and the device stays on the new domain in the driver's view",
    changes: ["devices[].domain"],
  },
  "probe-keeps-direct-mappings": {
    kernel: "__iommu_probe_device",
    summary:
      "a device probe that fails after iommu_create_device_direct_mappings mapped its firmware's direct regions into its group's default domain (its attach to the group's domain failed) leaves those mappings: the error path (err_remove_gdev, iommu_deinit_device) unmaps nothing; seen from an event whose probe fails (a registration walk, a bind's late probe)",
    changes: domainFields("mapped_bytes", "pgtable_pages", "pgtable_bytes", "tlb"),
  },
  "attach-finalises-domain": {
    kernel: "arm_smmu_attach_dev",
    summary:
      "an attach (or PASID attach) of a domain allocated without a device that fails after the driver finalised the domain for the first device's instance (on a later group member, or in the driver's own later check) leaves the domain finalised: nothing undoes it",
    changes: domainFields("iommu", "page_sizes", "format", "pgtable_pages", "pgtable_bytes"),
  },
  "bind-keeps-iommu-probe": {
    kernel: "platform_dma_configure",
    summary:
      "a driver bind whose dma_configure step probed the device into its IOMMU (a late IOMMU probe: the IOMMU registered after the device was added), and then refused it (iommu_device_use_default_domain: EBUSY, EPROBE_DEFER), leaves the device probed, in its group, attached; only the arch DMA ops are torn down (pci_dma_configure and the amba bus alike)",
    changes: ["devices[]", "groups", "iommus[].devices", "domains", "warnings[+]", "deferred"],
  },
  "map-unwind-keeps-tables": {
    kernel: "iommu_map",
    summary:
      "a map that fails part-way is undone by the core's iommu_unmap of what it mapped, but the tables the failed call allocated stay (io-pgtable never frees a table on a leaf unmap), and the unmap's invalidations are issued and counted (dropping any IOTLB entries in that range)",
    changes: domainFields("pgtable_pages", "pgtable_bytes", "tlb", "iotlb_entries"),
  },
  "map-tears-down-tables": {
    kernel: "arm_lpae_init_pte",
    summary:
      "a block mapped over a table tears the table down first (its leaves discarded, the walk cache flushed), before the later entries of the call are looked at; if the map then fails, nothing puts the table back, and iommu_map's unwind unmaps the block too: the discarded mappings stay lost (the generic page table's clear_contig does the same with empty tables)",
    changes: domainFields("mapped_bytes", "pgtable_pages", "pgtable_bytes", "tlb", "iotlb_entries"),
    pgtableFindings: ["map-discards-mappings", "map-failed-after-teardown"],
  },
  "pgtable-warns-on-refusal": {
    kernel: "arm_lpae_map_pages",
    summary:
      "io-pgtable refuses a map whose IOVA or physical address is beyond the table (ERANGE), whose page size is not the table's (EINVAL), or that would overwrite a leaf (EEXIST), with a WARN_ON: the model reports the WARN as a finding of the domain",
    changes: ["findings[+]"],
    pgtableFindings: ["out-of-range", "bad-pgsize", "map-exists"],
  },
  "pgtable-enomem-keeps-tables": {
    kernel: "__arm_lpae_map",
    summary:
      "a map that runs out of page-table memory (the pools' memory cap) fails with ENOMEM; the tables installed above the one that could not be allocated stay (the generic page table's pt_iommu_new_table alike)",
    changes: domainFields("pgtable_pages", "pgtable_bytes"),
    pgtableFindings: ["table-alloc-failed"],
  },
  "dma-map-iova-cached": {
    kernel: "iommu_dma_free_iova",
    summary:
      "a dma_map that fails after taking its IOVA gives it back through free_iova_fast, which parks the range in the per-CPU IOVA cache: it stays a node of the tree",
    changes: domainFields("dma.iovas"),
  },
  "iova-alloc-flushes-caches": {
    kernel: "alloc_iova_fast",
    summary:
      "an IOVA allocation that finds no space flushes every CPU's cached ranges and the depot back to the tree and retries once; when the retry fails too (the dma_map fails with ENOMEM), the caches stay flushed",
    changes: domainFields("dma.iovas"),
  },
  "fault-keeps-iotlb-entries": {
    kernel: "report_iommu_fault",
    summary:
      "a device DMA that faults part-way has already gone through the pages before the fault: their translations (and that of a faulting page whose leaf lacks the permission) stay cached in the IOTLB, since a fault invalidates nothing, and a page read through a stale entry before it is reported as such",
    changes: [...domainFields("iotlb_entries"), "findings[+]"],
  },
  "ioas-unmap-keeps-earlier-unmaps": {
    kernel: "iopt_unmap_iova_range",
    summary:
      "an IOAS_UNMAP over several areas takes them out one at a time, in IOVA order; meeting an area that crosses the range's edge (ENOENT) or one a HW queue holds (EBUSY) it returns the error, and the areas it had already removed stay removed: gone from the IOAS and from every domain, their pages unpinned",
    changes: ["iommufd[].areas", "iommufd[].pinned_pages", ...domainFields("mapped_bytes", "pgtable_pages", "pgtable_bytes", "tlb", "iotlb_entries")],
  },
} as const satisfies Record<string, FailureEffect>;

export type FailureEffectId = keyof typeof FAILURE_EFFECTS;

export const FAILURE_EFFECT_IDS = Object.keys(FAILURE_EFFECTS) as FailureEffectId[];

/** One effect as it happened: which, on what, and a sentence with the particulars. */
export interface FailureEffectRecord {
  id: FailureEffectId;
  subject: string;
  message: string;
}

/** Where the code that leaves such state records it (the IOMMU core, into the machine's diagnostics). */
export interface FailureEffectSink {
  effect(id: FailureEffectId, subject: string, message: string): void;
}

export function formatFailureEffect(e: FailureEffectRecord): string {
  return `failure effect ${e.id} (${FAILURE_EFFECTS[e.id].kernel}): ${e.subject}: ${e.message}`;
}

/** The effect a page-table finding kind records, if any. */
export function failureEffectOfPgtableFinding(kind: string): FailureEffectId | null {
  for (const id of FAILURE_EFFECT_IDS) {
    const kinds: readonly string[] | undefined = (FAILURE_EFFECTS[id] as FailureEffect).pgtableFindings;
    if (kinds?.includes(kind)) return id;
  }
  return null;
}
