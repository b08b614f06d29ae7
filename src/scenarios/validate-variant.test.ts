import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import { runCheck } from "./check.js";
import { checkResolved } from "./check-testkit.js";
import { defineVariant } from "./define.js";
import { loadScenarioText } from "./load.js";
import { ResolveError, resolveScenario, resolveVariant, runConfigFor } from "./resolve.js";
import { variantProblems } from "./validate-variant.js";
import { BUILTIN_VARIANTS } from "./variants/index.js";

const noop = function* (orig: (...a: unknown[]) => Gen<unknown>, ...a: unknown[]): Gen<unknown> {
  return yield* orig(...a);
};

describe("a variant names only what exists", () => {
  it("every built-in variant passes", () => {
    expect(BUILTIN_VARIANTS.flatMap(variantProblems)).toEqual([]);
  });

  it("a misspelt override, feature or waived invariant is an error with a did-you-mean", () => {
    const v = defineVariant({
      name: "typos",
      description: "",
      overrides: { kvm_tdp_mmu_put_rooot: noop },
      features: { asyncZapWorkr: false } as never,
      waives: ["inv4-no-uaf-root"],
    });
    expect(variantProblems(v)).toEqual([
      "variant 'typos': overrides names the model function 'kvm_tdp_mmu_put_rooot', which does not exist (did you mean 'kvm_tdp_mmu_put_root'?)",
      "variant 'typos': features names the feature 'asyncZapWorkr', which does not exist (did you mean 'asyncZapWorker'?)",
      "variant 'typos': waives names the invariant 'inv4-no-uaf-root', which does not exist (did you mean 'inv4-no-uaf-roots'?)",
    ]);
  });

  it("a variant module with a misspelt override is refused when it is loaded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-variant-"));
    const file = join(dir, "typo.mjs");
    writeFileSync(
      file,
      "export default { name: 'typo', description: 'x', overrides: { kvm_tdp_mmu_put_rooot: function* (o, ...a) { return yield* o(...a); } } };\n",
    );
    await expect(resolveVariant(file)).rejects.toThrow(ResolveError);
    await expect(resolveVariant(file)).rejects.toThrow(/did you mean 'kvm_tdp_mmu_put_root'/);
  });
});

describe("overrides that never ran", () => {
  it("are named in the outcome's warnings; overrides that ran are not", async () => {
    const scenario = await resolveScenario("seed-003-put-root");
    const variant = defineVariant({
      name: "half-used",
      description: "",
      overrides: { kvm_tdp_mmu_put_root: noop, kvm_rmap_lock_readonly: noop },
    });
    const out = runCheck({
      scenario,
      variant,
      variantRef: null,
      config: runConfigFor(scenario, variant, { kernel: "v5.18" }),
      featureFlags: [],
      machineFlags: {},
      explore: { strategy: "dpor", maxExecutions: 20 },
      shrink: false,
    });
    expect(out.explore.stats.overridesRan).toEqual(["kvm_tdp_mmu_put_root"]);
    expect(out.warnings).toEqual([
      "the override of kvm_rmap_lock_readonly never ran in the executions explored: the verdict says nothing about it",
    ]);
  });
});

describe("a scenario file's check.invariants selects what is reported", () => {
  const text = (invariants: string) => `schemaVersion: 1
name: sel
kernel: v6.4
vm: { rootLevel: 4, ptesPerTable: 2 }
vcpus: [{ smm: 0 }]
tasks:
  - { kind: vcpu, vcpu: 0, faults: [{ gfn: 0, write: true }] }
  - { kind: destroy-vm }
check:
  invariants: ${invariants}
`;

  it("an unknown name is an error naming the closest one", () => {
    expect(() => loadScenarioText(text("[inv4-no-uaf-root]"), "s.yaml")).toThrow(
      /unknown invariant 'inv4-no-uaf-root' \(did you mean 'inv4-no-uaf-roots'\?\)/,
    );
  });

  it("a design that breaks teardown is caught with [all] and not reported when only another invariant is selected", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-sel-"));
    const verdict = async (invariants: string) => {
      const file = join(dir, `s-${invariants.length}.yaml`);
      writeFileSync(file, text(invariants));
      const scenario = await resolveScenario(file);
      const variant = await resolveVariant("uninit-invalidate-unprotected");
      const out = checkResolved(scenario, variant, { strategy: "dpor", stopOnFirstViolation: false });
      return Object.keys(out.explore.stats.violationsByInvariant).sort();
    };
    const all = await verdict("[all]");
    expect(all).toContain("use-after-free");
    expect(await verdict("[inv11-notifier-complete]")).toEqual([]);
    expect(await verdict("[use-after-free]")).toEqual(["use-after-free"]);
  });
});
