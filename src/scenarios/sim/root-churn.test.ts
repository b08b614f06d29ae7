import { describe, expect, it } from "vitest";
import { planSimulation } from "./params.js";
import { rootChurn, rootChurnScenario } from "./root-churn.js";

const MiB = 2 ** 20;
const params = (vcpus: number, memPerVcpu = 64 * MiB) => ({
  vcpus,
  memPerVcpu,
  toggles: 3,
  refaultPages: 16,
  preemption: "voluntary",
});

describe("root-churn: CR0.WP toggles on a TDP host", () => {
  const runs = rootChurnScenario.run(params(1), {});
  const by = (label: string) => runs.find((r) => r.label === label)!.metrics;

  it("before 6.4 a lone vCPU frees its root on every toggle and refaults its working set", () => {
    for (const l of ["v5.17", "v5.18"]) {
      expect(by(l).rootsFreed, l).toBe(3);
      expect(by(l).rootsAllocated, l).toBe(3);
      expect(by(l).faultsPerToggle, l).toBe(16);
    }
  });

  it("5.17 zaps the freed root on the spot: the toggle costs the whole zap", () => {
    const big = rootChurn({ label: "v5.17", kernel: "v5.17", unload: true }, params(1, 256 * MiB));
    expect(big.metrics.toggleMaxUs!).toBeGreaterThan(3 * by("v5.17").toggleMaxUs!);
    expect(by("v5.17").toggleMaxUs!).toBeGreaterThan(100 * by("v6.4").toggleMaxUs!);
  });

  it("persistent roots keep the root; from 6.4 the toggle does not even unload it", () => {
    for (const l of ["v6.4 unload", "v6.4"]) {
      expect(by(l).rootsFreed, l).toBe(0);
      expect(by(l).rootsAllocated, l).toBe(0);
      expect(by(l).faultsPerToggle, l).toBe(0);
    }
    // The unload and reload take mmu_lock twice; without them the toggle is an exit.
    expect(by("v6.4").toggleMedianUs!).toBeLessThan(by("v6.4 unload").toggleMedianUs!);
  });

  it("refuses parameters out of range with the allowed range", () => {
    expect(() => planSimulation(rootChurnScenario, { set: ["toggles=0"] })).toThrow(
      /toggles must be an integer in 1..1000/,
    );
    expect(() => planSimulation(rootChurnScenario, { set: ["vcpus=513"] })).toThrow(/1..512/);
    expect(() => rootChurnScenario.run(params(512, 16 * 1024 * MiB), {})).toThrow(
      /at most 1099511627776 \(1TiB\)/,
    );
  });
});
