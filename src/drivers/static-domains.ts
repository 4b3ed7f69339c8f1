/**
 * The drivers' static domains: the identity and blocked domains a driver
 * keeps as globals (`ops->identity_domain`, `ops->blocked_domain`).
 */
import { IOMMU_DOMAIN_BLOCKED, IOMMU_DOMAIN_IDENTITY, IommuDomain } from "../iommu/domain.ts";
import type { IommuDomainOps } from "../iommu/ops.ts";

/** A static domain every device of the driver can attach to (no instance check): one per driver, as `ops->identity_domain` and `ops->blocked_domain` are. */
export function staticDomain(type: number): IommuDomain {
  const ops: IommuDomainOps = {
    attachDev: () => 0,
    setDevPasid: () => 0,
  };
  return new IommuDomain(type, ops, true);
}

export function staticIdentityDomain(): IommuDomain {
  return staticDomain(IOMMU_DOMAIN_IDENTITY);
}

export function staticBlockedDomain(): IommuDomain {
  return staticDomain(IOMMU_DOMAIN_BLOCKED);
}
