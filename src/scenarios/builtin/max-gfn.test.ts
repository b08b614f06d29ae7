import { describe, expect, it } from "vitest";
import { INVARIANT_NAMES } from "../../mmu/invariants/catalog.js";
import { geometryFor, kvm_arch_prepare_memory_region, kvm_mmu_max_gfn } from "../../mmu/kvm.js";
import { presetByName } from "../../mmu/presets.js";
import { tdp_mmu_max_gfn_exclusive } from "../../mmu/tdp_mmu_zap.js";
import type { Kvm } from "../../mmu/types.js";
import { runCheck } from "../check.js";
import type { ScenarioError } from "../errors.js";
import { loadScenarioText } from "../load.js";
import { type ResolvedScenario, resolveScenario, runConfigFor } from "../resolve.js";

function check(s: ResolvedScenario, kernel: string, features: string[] = []) {
  return runCheck({
    scenario: s,
    variant: null,
    variantRef: null,
    config: runConfigFor(s, null, { kernel, features }),
    featureFlags: features,
    machineFlags: {},
    explore: { strategy: "dpor", seed: 0n, stopOnFirstViolation: true, maxExecutions: 20_000 },
    shrink: false,
  });
}

const vm = (kernel: string) =>
  ({
    features: presetByName(kernel).features,
    geometry: geometryFor(4, 2, { hostMaxGfn: 8, guestMaxGfn: 16 }),
  }) as Kvm;

describe("address bounds: host MAXPHYADDR apart from the guest's and the page tables' reach", () => {
  it("kvm_mmu_max_gfn() and tdp_mmu_max_gfn_exclusive() come from the host's width, not the reach", () => {
    const kvm = vm("v6.9");
    expect([kvm.geometry.maxGfn, kvm_mmu_max_gfn(kvm), tdp_mmu_max_gfn_exclusive(kvm)]).toEqual([16, 7, 8]);
    expect(geometryFor(4, 2).hostMaxGfn).toBe(16);
    expect(() => geometryFor(4, 2, { hostMaxGfn: 17 })).toThrow(/hostMaxGfn must be an integer in \[1, 16\]/);
  });

  it("kvm_arch_prepare_memory_region() refuses a slot past host MAXPHYADDR from 5.18-rc5, not before", () => {
    const slot = (base: number, npages: number) => ({
      id: 1,
      as_id: 0,
      base_gfn: base,
      npages,
      flags: 0,
      deleted: false,
    });
    expect(kvm_arch_prepare_memory_region(vm("v6.9"), slot(8, 8))).toBe(-22);
    expect(kvm_arch_prepare_memory_region(vm("v6.9"), slot(0, 8))).toBe(0);
    expect(kvm_arch_prepare_memory_region(vm("v5.17"), slot(8, 8))).toBe(0);
  });

  it("max-gfn: safe where the slot is refused; an SPTE past the bound in 5.17 and with the check off", async () => {
    const s = await resolveScenario("max-gfn");
    expect(check(s, "v6.9").status).toBe("ok");
    expect(check(s, "v5.18").status).toBe("ok");
    for (const [kernel, flags] of [
      ["v5.17", []],
      ["v6.9", ["memslotMaxGfnCheck=off"]],
    ] as const) {
      const bad = check(s, kernel, [...flags]);
      expect(bad.counterexample?.trace.violation?.message, kernel).toMatch(
        /installed .* for gfn 12, past kvm_mmu_max_gfn\(\) = 7 \(host MAXPHYADDR\): no zap reaches it/,
      );
      expect(bad.counterexample?.trace.violation?.invariant).toBe("spte-beyond-max-gfn");
    }
    // Without it, the consequence: the fast zap stops at host MAXPHYADDR and leaves gfn 12 mapped.
    const others = INVARIANT_NAMES.filter((i) => i !== "spte-beyond-max-gfn");
    const blind = { ...s, scenario: { ...s.scenario, invariants: others } };
    const late = check(blind, "v6.9", ["memslotMaxGfnCheck=off"]).counterexample?.trace.violation;
    expect(`${late?.invariant}: ${late?.message}`).toMatch(
      /^inv10-fast-zap-complete: kvm_mmu_zap_all_fast returned but root#\d+, invalidated by it, still maps gfn 12/,
    );
  });

  it("a scenario file: hostMaxGfn and guestMaxGfn fit the reach, and faults stay inside the guest's width", () => {
    const doc = (vmExtra: string, gfn: number) => `schemaVersion: 1
name: bounds
kernel: v6.9
vm: { rootLevel: 4, ptesPerTable: 2, ${vmExtra} }
vcpus: [{ smm: 0 }]
tasks:
  - { kind: vcpu, vcpu: 0, faults: [{ gfn: ${gfn} }] }
`;
    const report = (text: string) => {
      try {
        loadScenarioText(text, "a.yaml");
        return "loaded";
      } catch (e) {
        return (e as ScenarioError).report();
      }
    };
    expect(report(doc("hostMaxGfn: 32", 0))).toMatch(/^a\.yaml:4:\d+: vm\.hostMaxGfn: 32 frames do not fit/);
    expect(report(doc("hostMaxGfn: 8, memslotPages: 16, guestMaxGfn: 8", 12))).toMatch(
      /^a\.yaml:7:\d+: tasks\[0\]\.faults\[0\]\.gfn: the guest cannot access gfn 12/,
    );
    expect(loadScenarioText(doc("hostMaxGfn: 8, guestMaxGfn: 16", 4), "c.yaml").vm.hostMaxGfn).toBe(8);
  });
});
