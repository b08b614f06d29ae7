import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import type { Features } from "./features.js";
import { kvm_mmu_notifier_clear_young, kvm_mmu_notifier_invalidate_range_start } from "./mmu_notifier.js";
import { type RootsWorld, rootsProgram, violationsOf } from "./roots_testkit.js";
import { is_accessed_spte } from "./spte.js";
import { kvm_tdp_mmu_invalidate_all_roots, kvm_tdp_mmu_invalidate_roots } from "./tdp_mmu_invalidate.js";
import { KVM_ALL_ROOTS } from "./tdp_mmu_iter_roots.js";
import { kvm_tdp_mmu_get_root } from "./tdp_mmu_root.js";
import { kvm_tdp_mmu_zap_leafs } from "./tdp_mmu_walks.js";
import { peekLeaf } from "./testing.js";
import type { KvmMmuPage } from "./types.js";
import { vcpuTask } from "./workloads.js";

/**
 * Which roots the many-roots entry points visit. Two roots map gfn 1: `stale`, invalidated (its
 * scheduled zap not run yet, 6.6+), and `fresh`, the valid root a second vCPU loaded afterwards.
 */
interface Roots {
  stale: KvmMmuPage;
  fresh: KvmMmuPage;
}

function twoRoots(kernel: string, features: Partial<Features>, then: (w: RootsWorld, r: Roots) => Gen<void>) {
  return rootsProgram({ kernel, features, vcpus: 2 }, function* (w) {
    const [a, b] = w.vcpus;
    yield* vcpuTask(a, { faults: [{ gfn: 1 }], unload: false });
    yield* write_lock(w.kvm.mmu_lock);
    yield* kvm_tdp_mmu_invalidate_all_roots(w.kvm);
    yield* write_unlock(w.kvm.mmu_lock);
    yield* vcpuTask(b, { faults: [{ gfn: 1 }], unload: false });
    yield* then(w, { stale: a.root!, fresh: b.root! });
  });
}

const rr = () => ({ scheduler: new RoundRobinScheduler() });

describe("entry points over many roots: valid and invalid roots", () => {
  it.each([
    ["v6.6", {}, true],
    ["v6.9", {}, false],
    ["v6.9", { leafZapSkipsInvalid: false }, true],
  ] as const)("kvm_tdp_mmu_zap_leafs, %s %o: invalid roots zapped = %s", (kernel, features, zapsInvalid) => {
    let stale = true;
    let fresh = true;
    const r = runProgram(
      twoRoots(kernel, features, function* ({ kvm }, roots) {
        expect(roots.stale).not.toBe(roots.fresh);
        yield* write_lock(kvm.mmu_lock);
        yield* kvm_tdp_mmu_zap_leafs(kvm, 0, 16, false);
        yield* write_unlock(kvm.mmu_lock);
        stale = peekLeaf(kvm, roots.stale, 1) !== null;
        fresh = peekLeaf(kvm, roots.fresh, 1) !== null;
      }),
      rr(),
    );
    expect(violationsOf(r)).toEqual([]);
    expect(fresh).toBe(false);
    expect(stale).toBe(!zapsInvalid);
  });

  it.each([
    ["v6.9", {}, true],
    ["v6.9", { unmapZapsInvalidRoots: false }, false],
  ] as const)("mmu_notifier unmap, %s %o: invalid roots zapped = %s", (kernel, features, zapsInvalid) => {
    let stale = true;
    const r = runProgram(
      twoRoots(kernel, features, function* ({ kvm }, roots) {
        yield* kvm_mmu_notifier_invalidate_range_start(kvm, 0, 4);
        stale = peekLeaf(kvm, roots.stale, 1) !== null;
      }),
      rr(),
    );
    if (zapsInvalid) expect(violationsOf(r)).toEqual([]);
    else expect(r.violations[0]?.invariant).toBe("inv11-notifier-complete");
    expect(stale).toBe(!zapsInvalid);
  });

  it.each([
    ["v6.9", {}, true],
    ["v6.15", {}, false],
    ["v6.9", { agingSkipsInvalidRoots: true }, false],
  ] as const)("clear_young, %s %o: invalid roots aged = %s", (kernel, features, agesInvalid) => {
    let staleYoung = false;
    let freshYoung = true;
    const r = runProgram(
      twoRoots(kernel, features, function* ({ kvm }, roots) {
        yield* kvm_mmu_notifier_clear_young(kvm, 0, 16);
        staleYoung = is_accessed_spte(peekLeaf(kvm, roots.stale, 1)!.spte);
        freshYoung = is_accessed_spte(peekLeaf(kvm, roots.fresh, 1)!.spte);
      }),
      rr(),
    );
    expect(violationsOf(r)).toEqual([]);
    expect(freshYoung).toBe(false);
    expect(staleYoung).toBe(!agesInvalid);
  });
});

describe("root references and root types", () => {
  it.each([
    [true, true],
    [false, false],
  ])(
    "kvm_tdp_mmu_get_root on an invalid, referenced root (getRootIgnoresInvalid=%s) succeeds: %s",
    (ignores, ok) => {
      let got: boolean | null = null;
      const r = runProgram(
        twoRoots("v6.9", { getRootIgnoresInvalid: ignores }, function* (_w, roots) {
          got = yield* kvm_tdp_mmu_get_root(roots.stale);
        }),
        rr(),
      );
      expect(violationsOf(r)).toEqual([]);
      expect(got).toBe(ok);
    },
  );

  it("6.14+: asking kvm_tdp_mmu_invalidate_roots() for invalid roots WARNs", () => {
    const r = runProgram(
      rootsProgram({ kernel: "v6.15" }, function* ({ kvm }) {
        yield* write_lock(kvm.mmu_lock);
        yield* kvm_tdp_mmu_invalidate_roots(kvm, KVM_ALL_ROOTS);
        yield* write_unlock(kvm.mmu_lock);
      }),
      rr(),
    );
    expect(r.violations[0]?.message).toMatch(/WARN_ON_ONCE\(root_types & KVM_INVALID_ROOTS\)/);
  });
});
