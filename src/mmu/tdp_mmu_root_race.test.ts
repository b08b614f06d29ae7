import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import type { RunResult } from "../engine/runtime.js";
import { peekEntries } from "../kernel/rculist.js";
import { refcount_read } from "../kernel/refcount.js";
import { read_lock, read_unlock } from "../kernel/rwlock.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { PRESETS } from "./presets.js";
import { seed003DecNotOnePutRoot } from "./roots_mutations.js";
import { type RootsWorld, rootsProgram, spawnTask, violationsOf } from "./roots_testkit.js";
import { kvm_mmu_zap_all_fast } from "./tdp_mmu_invalidate.js";
import {
  for_each_valid_tdp_mmu_root_yield_safe,
  KVM_VALID_ROOTS,
  tdp_mmu_next_root,
} from "./tdp_mmu_iter_roots.js";
import { exploreSleepSets } from "./testing.js";
import type { Kvm, Vcpu } from "./types.js";
import { kvm_mmu_load, kvm_mmu_unload } from "./vcpu.js";
import { vcpuTask } from "./workloads.js";

/**
 * Concurrent root-lifecycle races, explored over every schedule. Plain enumeration
 * (enumerateAll) is used where the program is small enough to finish; the larger
 * ones use the sleep-set explorer, which runs every Mazurkiewicz trace at least once.
 */

describe("two vCPUs loading a root at the same time (enumerateAll)", () => {
  it.each(PRESETS.map((p) => p.name))(
    "%s: exactly one root is allocated and both vCPUs hold it",
    (kernel) => {
      const f = PRESETS.find((p) => p.name === kernel)!.features;
      const w = {} as RootsWorld;
      const prog = rootsProgram(
        { kernel, vcpus: 2 },
        function* ({ vcpus: [a, b] }) {
          yield* spawnTask("load-a", kvm_mmu_load(a));
          yield* spawnTask("load-b", kvm_mmu_load(b));
        },
        w,
      );
      const res = enumerateAll(prog, { maxExecutions: 100_000 }, (r) => {
        expect(violationsOf(r)).toEqual([]);
        const [a, b] = w.vcpus;
        expect(a.root).not.toBeNull();
        expect(a.root).toBe(b.root);
        expect(peekEntries(w.kvm.tdp_mmu_roots)).toEqual([a.root]);
        expect(a.root!.tdp_mmu_root_count.v).toBe(f.persistentRoots ? 3 : 2);
      });
      expect(res.complete).toBe(true);
    },
  );
});

function* unloadTask(v: Vcpu): Gen<void> {
  yield* kvm_mmu_unload(v);
}

function* fastZapTask(kvm: Kvm): Gen<void> {
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_mmu_zap_all_fast(kvm);
  yield* mutex_unlock(kvm.slots_lock);
}

/** At the end of every run: every root is gone and nothing is left allocated. */
function expectAllFreed(w: RootsWorld, r: RunResult): void {
  expect(violationsOf(r)).toEqual([]);
  expect(peekEntries(w.kvm.tdp_mmu_roots)).toEqual([]);
  expect([...w.kvm.pages.values()].filter((p) => p.kobj.freed === null).map((p) => p.kobj.name)).toEqual([]);
}

describe("vCPU unload racing kvm_mmu_zap_all_fast", () => {
  it.each(PRESETS.map((p) => p.name))("%s, empty root: every schedule frees the root once", (kernel) => {
    const w = {} as RootsWorld;
    const prog = rootsProgram(
      { kernel },
      function* ({ kvm, vcpus: [v] }) {
        yield* vcpuTask(v, { faults: [], unload: false });
        yield* spawnTask("unload", unloadTask(v));
        yield* spawnTask("fast-zap", fastZapTask(kvm));
      },
      w,
    );
    const res = exploreSleepSets(prog, { maxExecutions: 50_000 }, (r) => expectAllFreed(w, r));
    expect(res.complete).toBe(true);
    expect(res.firstViolation).toBeNull();
  });

  it("v6.9, mapped root: the zap and the unload never lose the root or its page tables", () => {
    const w = {} as RootsWorld;
    const prog = rootsProgram(
      { kernel: "v6.9" },
      function* ({ kvm, vcpus: [v] }) {
        yield* vcpuTask(v, { faults: [{ gfn: 1, write: true }], unload: false });
        yield* spawnTask("unload", unloadTask(v));
        yield* spawnTask("fast-zap", fastZapTask(kvm));
      },
      w,
    );
    const res = exploreSleepSets(prog, { maxExecutions: 50_000 }, (r) => expectAllFreed(w, r));
    expect(res.complete).toBe(true);
    expect(res.firstViolation).toBeNull();
  });
});

/**
 * 5.18 (E3): a reader walking valid roots races a thread whose put, under the read lock, drops
 * the last reference of a *valid* root (the vCPU unloaded in between), so the put goes down the
 * defunct-root path while the walker may be taking a reference on the same root.
 */
function e3PutRaceProgram(w: RootsWorld) {
  return rootsProgram(
    { kernel: "v5.18" },
    function* ({ kvm, vcpus: [v] }) {
      yield* vcpuTask(v, { faults: [], unload: false });
      yield* spawnTask(
        "putter",
        (function* () {
          yield* read_lock(kvm.mmu_lock);
          const r = yield* tdp_mmu_next_root(kvm, null, KVM_VALID_ROOTS, true);
          yield* read_unlock(kvm.mmu_lock);
          yield* kvm_mmu_unload(v);
          yield* read_lock(kvm.mmu_lock);
          yield* tdp_mmu_next_root(kvm, r, KVM_VALID_ROOTS, true);
          yield* read_unlock(kvm.mmu_lock);
        })(),
      );
      yield* spawnTask(
        "walker",
        (function* () {
          yield* read_lock(kvm.mmu_lock);
          // The body uses the root under the iterator's reference.
          yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, -1, true, function* (root) {
            yield* refcount_read(root.tdp_mmu_root_count);
            return undefined;
          });
          yield* read_unlock(kvm.mmu_lock);
        })(),
      );
    },
    w,
  );
}

describe("seed 003: kvm_tdp_mmu_put_root against a concurrent walker (5.18)", () => {
  it("the merged shape (dec_and_test, xchg of the role word, set(1), worker) is safe in every schedule", () => {
    const w = {} as RootsWorld;
    const res = exploreSleepSets(e3PutRaceProgram(w), { maxExecutions: 200_000 }, (r) =>
      expectAllFreed(w, r),
    );
    expect(res.complete).toBe(true);
    expect(res.firstViolation).toBeNull();
  });

  it("the refcount_dec_not_one + refcount_set(0) proposal is a use-after-free", () => {
    const overrides = seed003DecNotOnePutRoot;
    const kinds = new Set<string>();
    let uaf: RunResult | null = null;
    const res = exploreSleepSets(
      e3PutRaceProgram({} as RootsWorld),
      { overrides, maxExecutions: 200_000 },
      (r) => {
        for (const v of r.violations) kinds.add(v.invariant);
        if (uaf === null && r.violations.some((v) => v.invariant === "use-after-free")) uaf = r;
      },
    );
    expect(res.complete).toBe(true);
    expect(uaf).not.toBeNull();
    const v = uaf!.violations.find((x) => x.invariant === "use-after-free")!;
    expect(v.message).toMatch(/root#\d+ was freed by rcu_cb/);
    expect(v.taskName).toBe("walker");
  });
});
