import { describe, expect, it } from "vitest";
import { memslotChurn, memslotChurnScenario } from "./memslot-churn.js";
import { planSimulation } from "./params.js";

const MiB = 2 ** 20;
const params = (o: { slots?: number; slotSize?: number; vcpus?: number; cycles?: number } = {}) => ({
  slots: o.slots ?? 16,
  slotSize: o.slotSize ?? MiB,
  vcpus: o.vcpus ?? 2,
  cycles: o.cycles ?? 2,
  refaultPages: 16,
  preemption: "voluntary",
});

describe("memslot-churn: create, move and delete with many slots", () => {
  const runs = memslotChurnScenario.run(params(), {});
  const by = (k: string) => runs.find((r) => r.kernel === k)!.metrics;

  it("each move and each delete fast-zaps the whole guest and kicks every vCPU, which refaults; a create does not", () => {
    expect(runs.map((r) => r.kernel)).toEqual(["v5.17", "v5.18", "v6.6", "v6.9"]);
    for (const r of runs) {
      const m = r.metrics;
      // Two zapping ioctls per cycle (move, delete); the create publishes a slot and zaps nothing.
      expect(m.kicks, r.label).toBe(4);
      // Every vCPU enters a new root after every kick (one root per zap).
      expect(m.reloads, r.label).toBe(2 * 4);
      expect(m.rootsAllocated, r.label).toBe(4);
      // The first zap drops every slot's SPTEs, not only the moved slot's range.
      expect(m.sptesZapped!, r.label).toBeGreaterThanOrEqual(m.leaves!);
      // And the vCPUs refault working sets spread over all the slots.
      expect(m.faultsPerReload!, r.label).toBeGreaterThan(1);
      expect(m.createMedianUs!, r.label).toBeLessThan(m.moveMedianUs!);
    }
  });

  it("5.17 and 6.6 stall the vCPUs for the zap of the whole guest; 6.9 loads roots beside it", () => {
    // 5.17 zaps under the write lock, 6.6 under the read lock that root loads (write lock) wait out.
    for (const k of ["v5.17", "v6.6"])
      expect(by(k).stallMaxUs!, k).toBeGreaterThan(10 * by("v6.9").stallMaxUs!);
    expect(by("v6.9").stallMaxUs!).toBeLessThan(100);
  });

  it("more slots of the same size mean a longer 5.17 stall: a one-slot change costs the whole guest", () => {
    const few = memslotChurn("v5.17", params({ slots: 4, cycles: 1 })).metrics;
    const many = memslotChurn("v5.17", params({ slots: 64, cycles: 1 })).metrics;
    expect(many.stallMaxUs!).toBeGreaterThan(5 * few.stallMaxUs!);
  });

  it("refuses parameters out of range, naming the key", () => {
    expect(() => planSimulation(memslotChurnScenario, { set: ["slots=32769"] })).toThrow(
      /slots must be an integer in 1..32768/,
    );
    expect(() => planSimulation(memslotChurnScenario, { set: ["slotSize=1KiB"] })).toThrow(/slotSize/);
    expect(() => planSimulation(memslotChurnScenario, { set: ["vcpus=65"] })).toThrow(
      /vcpus must be an integer in 1..64/,
    );
    expect(() => memslotChurnScenario.run({ ...params(), slots: 32768, slotSize: MiB }, {})).toThrow(
      /slots x slotSize = 34359738368 bytes; at most 2147483648 \(2GiB\)/,
    );
    expect(() => memslotChurnScenario.run({ ...params(), slotSize: 5000 }, {})).toThrow(
      /slotSize must be a multiple of 4KiB/,
    );
  });
});
