import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RandomScheduler, RoundRobinScheduler } from "../engine/scheduler.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { INV } from "./invariants/roots.js";
import { kvm_mmu_notifier_invalidate_range_start } from "./mmu_notifier.js";
import { seed002DefunctNotQueued, seed002RequeueInvalidRoots } from "./roots_mutations.js";
import {
  type RootsVmOptions,
  type RootsWorld,
  rootsProgram,
  spawnTask,
  violationsOf,
} from "./roots_testkit.js";
import { kvm_mmu_zap_all_fast } from "./tdp_mmu_invalidate.js";
import { exploreSleepSets } from "./testing.js";
import type { Kvm } from "./types.js";
import { kvm_mmu_unload } from "./vcpu.js";
import { destroyVmTask, type FaultSpec, vcpuTask } from "./workloads.js";

/**
 * The root invariants fail when the design is wrong: each test breaks one rule the seed threads
 * argue for (by a mutation or by turning a feature off) and expects the named invariant to catch
 * it, and checks that the real design passes the same program.
 */

function* fastZap(kvm: Kvm): Gen<void> {
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_mmu_zap_all_fast(kvm);
  yield* mutex_unlock(kvm.slots_lock);
}

/** Explore every schedule (sleep sets) and collect the invariants violated in any of them. */
function invariantsHit(
  o: RootsVmOptions,
  main: Parameters<typeof rootsProgram>[1],
  overrides?: ReadonlyMap<string, Function>,
): { names: Set<string>; complete: boolean; example: RunResult | null } {
  const names = new Set<string>();
  let example: RunResult | null = null;
  const res = exploreSleepSets(rootsProgram(o, main), { overrides, maxExecutions: 20_000 }, (r) => {
    for (const v of r.violations) names.add(v.invariant);
    if (example === null && r.violations.length > 0) example = r;
  });
  return { names, complete: res.complete, example };
}

/** A vCPU's last put makes its root defunct (queued); a fast zap follows, racing the worker. */
function defunctThenFastZap(faults: FaultSpec[]) {
  return function* ({ kvm, vcpus: [v] }: RootsWorld): Gen<void> {
    yield* vcpuTask(v, { faults, unload: false });
    yield* kvm_mmu_unload(v);
    yield* fastZap(kvm);
  };
}

describe("seed 002: every place that sets `invalid` must queue the worker, and only once (5.18)", () => {
  it("the merged code passes", () => {
    const r = invariantsHit({ kernel: "v5.18" }, defunctThenFastZap([]));
    expect(r.complete).toBe(true);
    expect([...r.names]).toEqual([]);
  });

  it("re-queuing an already-invalid root is caught (invariant 13: a gifted reference leaks)", () => {
    const r = invariantsHit({ kernel: "v5.18" }, defunctThenFastZap([]), seed002RequeueInvalidRoots);
    expect(r.complete).toBe(true);
    expect(r.names.has(INV.workOnce)).toBe(true);
  });

  it("a defunct root that is not queued is caught when the fast zap returns (invariant 10)", () => {
    const r = runProgram(rootsProgram({ kernel: "v5.18" }, defunctThenFastZap([{ gfn: 6, write: true }])), {
      scheduler: new RoundRobinScheduler(),
      overrides: seed002DefunctNotQueued,
    });
    expect(r.violations[0]?.invariant).toBe(INV.fastZapComplete);
    expect(r.violations[0]?.message).toMatch(/root#1, invalidated by it, still maps gfn/);
  });
});

describe("d62007edf01f (5.16): the mmu_notifier must zap invalid roots too", () => {
  /**
   * The fast zap's worker yields (a writer is queued) while zapping the invalidated root; the
   * notifier's invalidate_range_start runs in between.
   */
  const program = function* ({ kvm, vcpus: [v] }: RootsWorld): Gen<void> {
    yield* vcpuTask(v, { faults: [{ gfn: 12 }], unload: false });
    yield* spawnTask("notifier", kvm_mmu_notifier_invalidate_range_start(kvm, 8, 16));
    yield* fastZap(kvm);
  };

  it("with the fix, the range is unmapped when range_start returns (2000 random schedules)", () => {
    const prog = rootsProgram({ kernel: "v5.18" }, program);
    for (let seed = 1; seed <= 2000; seed++) {
      const r = runProgram(prog, { scheduler: new RandomScheduler(seed) });
      expect(violationsOf(r), `seed ${seed}`).toEqual([]);
    }
  });

  it("without it, a root invalidated but not yet zapped still maps the range (invariant 11)", () => {
    const prog = rootsProgram({ kernel: "v5.18", features: { unmapZapsInvalidRoots: false } }, program);
    const res = exploreSleepSets(prog, { stopOnFirst: true, maxExecutions: 10_000 });
    expect(res.firstViolation?.violations[0]?.invariant).toBe(INV.notifierComplete);
  });
});

describe("seed 000: 6.4 teardown invalidates roots without mmu_lock while the worker unlinks them", () => {
  /**
   * A root held only by the TDP MMU at teardown: the walk queues it, the worker may zap, put and
   * free it before the walk reads the root's ->next.
   */
  const program = function* ({ kvm, vcpus: [v] }: RootsWorld): Gen<void> {
    yield* vcpuTask(v, { faults: [] });
    yield* destroyVmTask(kvm);
  };

  it("walking the list under rcu_read_lock() (as merged) is safe", () => {
    const r = invariantsHit({ kernel: "v6.4" }, program);
    expect(r.complete).toBe(true);
    expect([...r.names]).toEqual([]);
  });

  it("a plain list walk lets the worker free the root the walk stands on", () => {
    const r = invariantsHit({ kernel: "v6.4", features: { teardownInvalidateUnderRcu: false } }, program);
    expect(r.complete).toBe(true);
    expect(r.names.has("use-after-free")).toBe(true);
    expect(violationsOf(r.example!).join("\n")).toMatch(/kvm_tdp_mmu_invalidate_all_roots/);
  });
});
