import { DEFAULT_COSTS } from "../engine/sim/cost-model.js";
import { simulate } from "../engine/sim/simulator.js";
import { spinlockContention } from "../kernel/sim-fixtures.js";
import { kernelView } from "../kernel/sim-view.js";
import type { SimScenario, SimScenarioRun } from "../scenarios/sim/types.js";

/**
 * Test-only timed scenarios for the `tdplab simulate` tests, so that the CLI is tested on scenarios
 * whose numbers are known exactly, independently of the real scenarios' calibration.
 */

/**
 * A scenario with one parameter of every kind and a closed-form result: "sync" (v5.17) blocks for
 * 4K leaves × spteWriteNs, "async" (v5.18) for 50 µs + 1 µs per vCPU. `sigintAt` raises SIGINT when
 * guestSize reaches it (to test interruption).
 */
export const formulaScenario: SimScenario = {
  name: "fixture-formula",
  thread: "002",
  summary: "closed-form block times (test fixture)",
  params: [
    { name: "guestSize", kind: "size", default: 2 ** 30, doc: "guest memory", min: 4096, max: 2 ** 50 },
    { name: "vcpus", kind: "int", default: 1, doc: "vCPUs", min: 1, max: 64 },
    { name: "fraction", kind: "number", default: 1, doc: "fraction populated", min: 0, max: 1 },
    { name: "mode", kind: "enum", default: "fast", doc: "mode", values: ["fast", "slow"] },
    { name: "busy", kind: "bool", default: false, doc: "a busy CPU" },
    { name: "sigintAt", kind: "size", default: 0, doc: "raise SIGINT at this guestSize (test)" },
  ],
  metrics: [
    { key: "vcpuBlockedMs", unit: "ms", doc: "vCPU block time" },
    { key: "workerMs", unit: "ms", doc: "worker time (async only)" },
    { key: "leaves", unit: "count", doc: "4K leaves" },
    { key: "freedBytes", unit: "bytes", doc: "page-table memory freed" },
  ],
  headline: "vcpuBlockedMs",
  run(params, costs) {
    const size = params.guestSize as number;
    if (params.sigintAt !== 0 && size === params.sigintAt) process.emit("SIGINT", "SIGINT");
    const leaves = Math.round((size / 4096) * (params.fraction as number));
    const slow = params.mode === "slow" ? 2 : 1;
    const perLeaf = (costs.spteWriteNs ?? DEFAULT_COSTS.spteWriteNs) * slow;
    const zapMs = (leaves * perLeaf) / 1e6;
    const base = { leaves, freedBytes: Math.ceil(leaves / 512) * 4096 };
    const runs: SimScenarioRun[] = [
      { label: "sync", kernel: "v5.17", params, metrics: { ...base, vcpuBlockedMs: zapMs, workerMs: null } },
      {
        label: "async",
        kernel: "v5.18",
        params,
        metrics: { ...base, vcpuBlockedMs: 0.05 + 0.001 * (params.vcpus as number), workerMs: zapMs },
      },
    ];
    return runs;
  },
};

/** The real simulator on a tiny program: how long a spinning waiter waits for a holder's flushes. */
export const spinlockScenario: SimScenario = {
  name: "fixture-spinlock",
  thread: null,
  summary: "a spinning waiter behind a lock holder that flushes TLBs (test fixture, real simulator)",
  params: [{ name: "work", kind: "int", default: 4, doc: "flushes inside the lock", min: 0, max: 10_000 }],
  metrics: [
    { key: "waiterBlockedMs", unit: "ms", doc: "time the waiter spent not running" },
    { key: "events", unit: "count", doc: "simulator events" },
  ],
  headline: "waiterBlockedMs",
  run(params, costs, opts) {
    const r = simulate(spinlockContention(params.work as number, "tlb_flush"), {
      kernel: kernelView,
      cpus: 2,
      preemption: "none",
      binding: (n) => (n === "holder" ? 0 : 1),
      costs,
      seed: opts?.seed ?? 0,
      timeline: opts?.timeline === true,
    });
    const waiter = r.perTask.find((t) => t.name === "waiter");
    if (r.status !== "ok" || waiter === undefined) throw new Error(`fixture-spinlock: status ${r.status}`);
    return [
      {
        label: "waiter",
        kernel: "v6.9",
        params,
        metrics: { waiterBlockedMs: waiter.blockedNs / 1e6, events: r.events },
        results: [r],
      },
    ];
  },
};

export const FIXTURE_SCENARIOS: readonly SimScenario[] = [formulaScenario, spinlockScenario];
