import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Gen } from "../../engine/op.js";
import type { MachineConfig } from "../../kernel/machine.js";
import { INVARIANT_NAMES } from "../../mmu/invariants/catalog.js";
import { is_shadow_present_pte, SHADOW_NONPRESENT_VALUE } from "../../mmu/spte.js";
import { for_each_tdp_pte_min_level, TdpIter } from "../../mmu/tdp_iter.js";
import { tdp_mmu_set_spte_atomic } from "../../mmu/tdp_mmu_spte.js";
import { tdp_mmu_max_gfn_exclusive } from "../../mmu/tdp_mmu_zap.js";
import type { Kvm, KvmMmuPage } from "../../mmu/types.js";
import { checkResolved } from "../check-testkit.js";
import { defineVariant, type Variant } from "../define.js";
import { type ResolvedScenario, resolveScenario } from "../resolve.js";

/** __tdp_mmu_zap_root() with its tdp_mmu_iter_cond_resched() call removed: a pass with no yield point. */
const zapRootWithoutYield = defineVariant({
  name: "zap-root-without-yield",
  description: "__tdp_mmu_zap_root() that never calls tdp_mmu_iter_cond_resched()",
  overrides: {
    *__tdp_mmu_zap_root(
      _original: unknown,
      kvm: Kvm,
      root: KvmMmuPage,
      shared: boolean,
      zap_level: number,
    ): Gen<void> {
      const iter = new TdpIter(kvm);
      const end = tdp_mmu_max_gfn_exclusive(kvm);
      yield* for_each_tdp_pte_min_level(iter, root, zap_level, 0, end, function* () {
        // The slot deletion zaps invalidated roots under the read lock on these kernels.
        if (!shared) throw new Error("test variant expects a shared zap");
        for (;;) {
          if (!is_shadow_present_pte(iter.old_spte) || iter.level > zap_level) return undefined;
          if ((yield* tdp_mmu_set_spte_atomic(kvm, iter, SHADOW_NONPRESENT_VALUE)) === 0) return undefined;
        }
      });
    },
  },
});

const EXPLORE = { strategy: "dpor", seed: 0n, stopOnFirstViolation: true, maxExecutions: 20_000 } as const;

function tuned(
  s: ResolvedScenario,
  machine: Partial<MachineConfig>,
  invariants?: readonly string[],
): ResolvedScenario {
  const machineNow = { ...s.scenario.machine, ...machine };
  return { ...s, scenario: { ...s.scenario, machine: machineNow, invariants } };
}

function era(kernel: string): Variant {
  return defineVariant({
    name: "era",
    description: "",
    features: { zapPasses: kernel === "v5.17" ? "single" : "two-pass" },
  });
}

describe("bounded-hold (built-in scenario): L3", () => {
  it("the kernel's root zap (a yield point per SPTE) stays within the default bound", async () => {
    const r = checkResolved(await resolveScenario("bounded-hold"), null, EXPLORE);
    expect(r.status).toBe("ok");
  });

  it("a zap pass without its yield point is caught by L3, and by nothing else", async () => {
    const s = await resolveScenario("bounded-hold");
    const bad = checkResolved(s, zapRootWithoutYield, EXPLORE);
    expect(bad.warnings).toEqual([]);
    const v = bad.counterexample?.trace.violation;
    expect(`${v?.invariant}: ${v?.message}`).toMatch(
      /^L3-bounded-hold: __tdp_mmu_zap_root changed .* more than the bound of 7 SPTEs/,
    );
    const others = INVARIANT_NAMES.filter((i) => i !== "L3-bounded-hold");
    expect(checkResolved(tuned(s, {}, others), zapRootWithoutYield, EXPLORE).status).toBe("ok");
  });

  it("the bound is the run's holdBound: the mutant fits a loose one, the kernel breaks a tight one", async () => {
    const s = await resolveScenario("bounded-hold");
    expect(checkResolved(tuned(s, { holdBound: 64 }), zapRootWithoutYield, EXPLORE).status).toBe("ok");
    const tight = checkResolved(tuned(s, { holdBound: 6 }), null, EXPLORE);
    expect(tight.counterexample?.trace.violation?.invariant).toBe("L3-bounded-hold");
  });

  it("5.17's zap tore top-level entries down whole (the stall 1b6043e8e584 fixed): caught once a bound is set", async () => {
    const s = await resolveScenario("bounded-hold");
    expect(checkResolved(s, era("v5.17"), EXPLORE).status).toBe("ok");
    const bounded = checkResolved(tuned(s, { holdBound: 7 }), era("v5.17"), EXPLORE);
    expect(bounded.counterexample?.trace.violation?.message).toMatch(/zap_gfn_range changed/);
  });

  it("a scenario file gets L3 with no help, and sets the bound with check.holdBound", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-bounded-hold-"));
    const file = join(dir, "zap.yaml");
    writeFileSync(
      file,
      `schemaVersion: 1
name: zap-after-fault
kernel: v6.9
machine: { preemption: none, needResched: never }
vm: { rootLevel: 4, ptesPerTable: 2, memslotPages: 16 }
vcpus: [{ smm: 0 }]
tasks:
  - { kind: vcpu, name: vcpu0, vcpu: 0, faults: [{ gfn: 0 }] }
  - { kind: memslot-delete, name: deleter, slot: 0 }
check: { holdBound: 2 }
`,
    );
    const r = checkResolved(await resolveScenario(file), null, EXPLORE);
    expect(r.counterexample?.trace.violation?.invariant).toBe("L3-bounded-hold");
  });
});
