import { describe, expect, it } from "vitest";
import type { Gen } from "../../engine/op.js";
import { WRITE_ONCE } from "../../kernel/atomic.js";
import { SHADOW_NONPRESENT_VALUE } from "../../mmu/spte.js";
import { kvm_tdp_mmu_read_spte, spte_to_child_pt } from "../../mmu/tdp_iter.js";
import { handle_changed_spte } from "../../mmu/tdp_mmu_spte.js";
import type { Kvm, KvmMmuPage } from "../../mmu/types.js";
import { checkResolved } from "../check-testkit.js";
import { defineVariant } from "../define.js";
import { resolveScenario } from "../resolve.js";
import { ScenarioSchema } from "../schema.js";

/** 6.18's read-lock zap with a plain store where the cmpxchg belongs. */
const plainStore = defineVariant({
  name: "nx-zap-plain-store",
  description: "kvm_tdp_mmu_zap_possible_nx_huge_page() with WRITE_ONCE instead of tdp_mmu_set_spte_atomic()",
  features: { nxRecoveryUnderReadLock: true },
  overrides: {
    *kvm_tdp_mmu_zap_possible_nx_huge_page(_original: unknown, kvm: Kvm, sp: KvmMmuPage): Gen<boolean> {
      const old = yield* kvm_tdp_mmu_read_spte(sp.ptep!);
      if (spte_to_child_pt(kvm, old, sp.level + 1) !== sp) return false;
      yield* WRITE_ONCE(sp.ptep!, SHADOW_NONPRESENT_VALUE);
      yield* handle_changed_spte(kvm, 0, sp.gfn, old, SHADOW_NONPRESENT_VALUE, sp.level + 1, true);
      return true;
    },
  },
});

describe("nx-recovery (built-in scenario)", () => {
  it("is safe in both eras, and catches a read-lock zap with a plain store", {
    timeout: 120_000,
  }, async () => {
    const s = await resolveScenario("nx-recovery");
    const era = (on: boolean) =>
      defineVariant({
        name: "era",
        description: "",
        features: { nxRecoveryUnderReadLock: on },
        overrides: {},
      });
    for (const on of [false, true]) {
      const r = checkResolved(s, era(on), { strategy: "dpor", seed: 0n, stopOnFirstViolation: true });
      expect(r.status, `nxRecoveryUnderReadLock=${on}`).toBe("ok");
    }
    const bad = checkResolved(s, plainStore, { strategy: "dpor", seed: 0n, stopOnFirstViolation: true });
    expect(bad.status).toBe("violation");
    expect(bad.counterexample?.trace.violation?.invariant).toBe("deadlock");
  });

  it("a scenario file's nx-recovery task needs vm.nxHugePages", () => {
    const r = ScenarioSchema.safeParse({
      schemaVersion: 1,
      name: "nx",
      kernel: "v6.15",
      vm: { rootLevel: 4, ptesPerTable: 2 },
      vcpus: [],
      tasks: [{ kind: "nx-recovery" }],
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join("."), i.message])).toEqual([
      ["tasks.0.kind", "nx-recovery needs the NX huge page mitigation: set vm.nxHugePages (e.g. {})"],
    ]);
  });
});
