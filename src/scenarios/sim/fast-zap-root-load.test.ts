import { describe, expect, it } from "vitest";
import { fastZapRootLoad, fastZapRootLoadScenario } from "./fast-zap-root-load.js";

const MiB = 2 ** 20;
const params = (vcpus: number, memPerVcpu = 64 * MiB) => ({
  vcpus,
  memPerVcpu,
  rootLevel: 4,
  ptesPerTable: 512,
  materialise: false,
  preemption: "voluntary",
});

describe("fast-zap-root-load: vCPU root loads during a memslot deletion's fast zap", () => {
  it("every kicked vCPU loads a new root; 5.17 makes them all wait for the whole synchronous zap", () => {
    const runs = fastZapRootLoadScenario.run(params(4), {});
    expect(runs.map((r) => r.kernel)).toEqual(["v5.17", "v5.18", "v6.6", "v6.9"]);
    for (const r of runs) expect(r.metrics.vcpusReloaded, r.label).toBe(4);
    const m = Object.fromEntries(runs.map((r) => [r.kernel, r.metrics]));
    // 5.17 zaps under the write lock that root allocation needs: every load ends with the zap.
    expect(m["v5.17"].rootLoadMedianUs! * 1e3).toBeGreaterThan(0.95 * m["v5.17"].zapMs! * 1e6);
    // 6.9 allocates roots under the read lock, beside the zap: microseconds, not the zap's time.
    expect(m["v6.9"].rootLoadMaxUs!).toBeLessThan(100);
    expect(m["v6.9"].rootLoadMaxUs!).toBeLessThan(m["v5.17"].rootLoadMedianUs! / 100);
  });

  it("5.17's root-load latency grows with the guest (the vCPU count times memory per vCPU)", () => {
    const small = fastZapRootLoad("v5.17", params(2)).metrics;
    const big = fastZapRootLoad("v5.17", params(8)).metrics;
    expect(big.rootLoadMedianUs!).toBeGreaterThan(3 * small.rootLoadMedianUs!);
  });

  it("v6.9's four-pass zap is not run beyond 4GiB of guest: the row says so", () => {
    const runs = fastZapRootLoadScenario
      .run(params(2, 4 * 1024 * MiB), {})
      .filter((r) => r.kernel === "v6.9");
    expect(runs[0].label).toMatch(/not run/);
    expect(runs[0].metrics.rootLoadMedianUs).toBeNull();
  }, 60_000);
});
