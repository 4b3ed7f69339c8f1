/**
 * The diagnostics of one machine, in one typed sink: kernel WARNs and BUGs, the
 * model's findings (stale IOTLB DMA), the page-table formats' findings,
 * failure effects, isolation breaches and invariant violations. The code
 * that sees each records it here as it happens (through the machine's
 * context, base/context.ts); the snapshot, the invariant checker and the
 * fuzzer read it from here.
 */
import type { FailureEffectRecord } from "./failure-effects.ts";

/**
 * The rules recorded at the moment they are broken, by the paths
 * themselves (while a scheduler wants points), rather than by the state
 * checker (docs/invariants.md): each kind word, and its rule id. A message
 * reads `<rule id>: <subject>: <sentence>`, e.g. `I34 use-after-free: a: ...`.
 */
export const EVENT_RULES = {
  "use-after-free": "I34 use-after-free",
  "half-initialised": "I35 half-initialised",
  "lock-misuse": "I36 lock-misuse",
  "lock-order": "I37 lock-order",
} as const;

export type EventRuleKind = keyof typeof EVENT_RULES;

/** The kind of a violation message of those rules (`I34 use-after-free: a: ...` -> `use-after-free`), or null for another rule's. */
export function violationKind(message: string): EventRuleKind | null {
  for (const kind of Object.keys(EVENT_RULES) as EventRuleKind[]) if (message.startsWith(EVENT_RULES[kind] + ":")) return kind;
  return null;
}

/** A kernel WARN (or dev_warn worth surfacing) raised while the model ran. */
export interface Warning {
  fn: string;
  subject: string;
  message: string;
}

export class Diagnostics {
  /** Kernel WARNs, in the order raised (the snapshot's `warnings`). */
  readonly warnings: Warning[] = [];
  /**
   * Kernel BUGs (BUG_ON), in the order hit (the snapshot's `bugs`): the kernel would stop there; the
   * model carries on, to show the state the kernel stopped in.
   */
  readonly bugs: Warning[] = [];
  /** Failures that left state behind as the kernel's do (lib/failure-effects.ts). */
  readonly effects: FailureEffectRecord[] = [];
  /** The model's own findings: device DMA through a stale IOTLB entry. */
  readonly findings: string[] = [];
  /** Device DMA that reached memory its domain no longer maps, outside a lazy-invalidation window (a finding too). */
  readonly isolationBreaches: string[] = [];
  /** Every distinct invariant violation (`RULE: message`), in the order first seen. */
  readonly violations: string[] = [];
  private readonly seenViolations = new Set<string>();
  /** What each domain's page table reported (WARNs and quirks), by domain. */
  private readonly pgtable = new WeakMap<object, string[]>();

  warning(w: Warning): void {
    this.warnings.push(w);
  }

  bug(b: Warning): void {
    this.bugs.push(b);
  }

  /** Whether a kernel BUG was hit with `subject` (a device's name) as its subject. */
  bugHit(subject: string): boolean {
    for (const b of this.bugs) if (b.subject === subject) return true;
    return false;
  }

  effect(e: FailureEffectRecord): void {
    this.effects.push(e);
  }

  finding(message: string): void {
    this.findings.push(message);
  }

  isolationBreach(message: string): void {
    this.isolationBreaches.push(message);
  }

  /** A finding a domain's page table reported. */
  pgtableFinding(domain: object, finding: string): void {
    let list = this.pgtable.get(domain);
    if (list === undefined) {
      list = [];
      this.pgtable.set(domain, list);
    }
    list.push(finding);
  }

  /** The findings `domain`'s page table reported, in order. */
  pgtableFindingsOf(domain: object): readonly string[] {
    return this.pgtable.get(domain) ?? NONE;
  }

  /** Records an invariant violation; returns false if the same one was recorded before. */
  violation(message: string): boolean {
    if (this.seenViolations.has(message)) return false;
    this.seenViolations.add(message);
    this.violations.push(message);
    return true;
  }
}

const NONE: readonly string[] = Object.freeze([]);
