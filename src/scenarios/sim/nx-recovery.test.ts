import { describe, expect, it } from "vitest";
import { NX_RECOVERY_RUNS, nxRecoveryScenario, runNxRecovery } from "./nx-recovery.js";
import { planSimulation } from "./params.js";

const MiB = 2 ** 20;
const params = (vcpus: number, memPerVcpu = 64 * MiB, ratio = 60) => ({
  vcpus,
  memPerVcpu,
  ratio,
  preemption: "voluntary",
});

describe("nx-recovery: the recovery worker against faulting vCPUs", () => {
  const runs = nxRecoveryScenario.run(params(4), {});
  const by = (label: string) => runs.find((r) => r.label === label)!.metrics;
  const [write, read] = NX_RECOVERY_RUNS.map((r) => r.label);

  it("one wake-up zaps 1/ratio of the listed tables, rounded up, in both runs", () => {
    // 4 vCPUs x 64MiB = 128 tables of 2MiB; ceil(128 / 60) = 3.
    expect(by(write).tablesZapped).toBe(3);
    expect(by(read).tablesZapped).toBe(3);
    const r1 = runNxRecovery(NX_RECOVERY_RUNS[0], params(1, 8 * MiB, 1));
    expect(r1.metrics.tablesZapped).toBe(4);
  });

  it("under the write lock faults stall for the worker's pass; under the read lock they do not", () => {
    expect(by(read).faultP99Us!).toBeLessThan(by(write).faultP99Us!);
    expect(by(write).lockWaitShare!).toBeGreaterThan(0.1);
    expect(by(read).lockWaitShare!).toBeLessThan(by(write).lockWaitShare!);
    // The vCPUs keep faulting beside a read-lock worker.
    expect(by(read).faults!).toBeGreaterThan(by(write).faults!);
  });

  it("a bigger list makes the write-lock stall longer", () => {
    const big = runNxRecovery(NX_RECOVERY_RUNS[0], params(4, 512 * MiB));
    expect(big.metrics.workerMs!).toBeGreaterThan(4 * by(write).workerMs!);
    expect(big.metrics.faultMaxUs!).toBeGreaterThan(4 * by(write).faultMaxUs!);
  });

  it("refuses parameters out of range", () => {
    expect(() => planSimulation(nxRecoveryScenario, { set: ["ratio=0"] })).toThrow(
      /ratio must be an integer in 1..10000/,
    );
    expect(() => planSimulation(nxRecoveryScenario, { set: ["vcpus=513"] })).toThrow(/1..512/);
    expect(() => nxRecoveryScenario.run(params(1, 3 * MiB), {})).toThrow(/multiple of 2MiB/);
    expect(() => nxRecoveryScenario.run(params(512, 16 * 1024 * MiB), {})).toThrow(
      /at most 68719476736 \(64GiB\)/,
    );
  });
});
