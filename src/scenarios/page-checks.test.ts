import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defineVariant } from "../index.js";
import { runCheck } from "./check.js";
import { resolveScenario, runConfigFor } from "./resolve.js";

/**
 * The page-table invariants (9, 16, 17) are registered for every scenario kind, not only for
 * modules that ask for them (issue 14): a YAML scenario and a built-in VM scenario catch a zap
 * that yields mmu_lock without the TLB flush it owes, with no help from the scenario.
 */
const YAML = `schemaVersion: 1
name: notifier-vs-fault
description: a vCPU faults in a page while an mmu_notifier invalidation zaps it, yielding on every SPTE
kernel: v6.6
machine: { preemption: full, needResched: always }
vm: { rootLevel: 4, ptesPerTable: 2, memslotPages: 8 }
vcpus: [{ smm: 0 }]
tasks:
  - { kind: vcpu, name: vcpu0, vcpu: 0, faults: [{ gfn: 0, write: true }] }
  - { kind: notifier-invalidate, name: notifier, start: 0, end: 8 }
`;

// The kernel flushes before it drops mmu_lock to yield (tdp_mmu_iter_cond_resched); this one forgets.
const noFlushOnYield = defineVariant({
  name: "no-flush-on-yield",
  description: "tdp_mmu_iter_cond_resched() yields without flushing the TLB for what it zapped",
  overrides: {
    *tdp_mmu_iter_cond_resched(
      original: Function,
      kvm: unknown,
      iter: unknown,
      _flush: boolean,
      shared: boolean,
    ) {
      return yield* original(kvm, iter, false, shared);
    },
  },
});

async function check(ref: string, variant: ReturnType<typeof defineVariant> | null) {
  const scenario = await resolveScenario(ref);
  const config = runConfigFor(scenario, variant, {});
  return runCheck({
    scenario,
    variant,
    variantRef: null,
    config,
    featureFlags: [],
    machineFlags: {},
    explore: { strategy: "dpor", seed: 0n, stopOnFirstViolation: true, maxExecutions: 5000 },
    shrink: false,
  });
}

describe("page-table invariants in every scenario kind", () => {
  const dir = mkdtempSync(join(tmpdir(), "tdplab-page-checks-"));
  const file = join(dir, "notifier-vs-fault.yaml");
  writeFileSync(file, YAML);

  it("a YAML scenario: the kernel's flush-before-yield is safe, dropping it is inv17", async () => {
    const ok = await check(file, null);
    expect(ok.status).toBe("ok");
    const bad = await check(file, noFlushOnYield);
    expect(bad.warnings).toEqual([]);
    expect(bad.status).toBe("violation");
    expect(bad.counterexample?.trace.violation?.invariant).toBe("inv17-no-lost-flush");
  });
});
