import { describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { WRITE_ONCE } from "../kernel/atomic.js";
import { peekEntries } from "../kernel/rculist.js";
import type { Features } from "./features.js";
import { hostState } from "./host_mm.js";
import { kvm_vcpu_create } from "./kvm.js";
import { kvm_recover_nx_huge_pages, nxRecoveryTask } from "./nx_huge_page_recovery.js";
import { describeSpte, SHADOW_NONPRESENT_VALUE } from "./spte.js";
import { kvm_tdp_mmu_read_spte, spte_to_child_pt, TdpIter } from "./tdp_iter.js";
import { kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import { handle_changed_spte, tdp_mmu_set_spte_atomic } from "./tdp_mmu_spte.js";
import { makeVm, peekLeaves } from "./testing.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";
import { kvm_mmu_load } from "./vcpu.js";
import { dirtyLogDisableTask } from "./workloads.js";

const quiet = { needResched: "never", preemption: "none" } as const;

interface World {
  kvm: Kvm;
  vcpus: Vcpu[];
}

/** A VM with the NX mitigation (2 SPTEs per table: a 1G page is gfns 8..11), `n` vCPUs. */
function world(n: number, features: Partial<Features> = {}, kernel = "v6.15"): World {
  const kvm = makeVm({ kernel, ptes: 2, machine: quiet, features, nxRecoveryRatio: 1 });
  return { kvm, vcpus: Array.from({ length: n }, () => kvm_vcpu_create(kvm)) };
}

/** vCPU 0 loads a root and fetches from gfn 9: the mitigation maps it 4K. */
function* execFault(w: World): Gen<string> {
  yield* kvm_mmu_load(w.vcpus[0]);
  return yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 9, false, { exec: true });
}

const leaves = (w: World) =>
  peekLeaves(w.kvm, w.vcpus[0].root!).map(([g, l, s]) => `${g}@${l}:${describeSpte(s, l)}`);
const listed = (w: World) => peekEntries(w.kvm.nx!.possible_nx_huge_pages).map((sp) => sp.kobj.name);

function runOne(w: () => World, body: (w: World) => Gen<void>, overrides = new Map()) {
  let cur!: World;
  const p: Program = ({ spawn }) => {
    cur = w();
    spawn("t0", body(cur));
  };
  const r = runProgram(p, { scheduler: new RoundRobinScheduler(), overrides });
  return { r, w: cur };
}

describe("the NX huge page mitigation in the fault path", () => {
  it("a fetch maps 4K and lists the tables that stand where a huge page could be", () => {
    const { r, w } = runOne(
      () => world(1),
      function* (w) {
        expect(yield* execFault(w)).toBe("RET_PF_FIXED");
      },
    );
    expect(r.violations).toEqual([]);
    expect(leaves(w)).toEqual(["9@1:leaf pfn=65545 WA"]);
    // The 1G-level table (L2) and the 2M-level one (L1): req_level was 1G.
    expect(listed(w)).toEqual([expect.stringMatching(/\(L2,gfn=8\)/), expect.stringMatching(/\(L1,gfn=8\)/)]);
    expect(w.kvm.nx!.nx_lpage_splits.v).toBe(2);
  });

  it("disallowed_hugepage_adjust: a data access next to it maps inside the NX table, not over it", () => {
    const { r, w } = runOne(
      () => world(1),
      function* (w) {
        yield* execFault(w);
        yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 8, false);
      },
    );
    expect(r.violations).toEqual([]);
    expect(leaves(w)).toEqual(["8@1:leaf pfn=65544 WA", "9@1:leaf pfn=65545 WA"]);
  });
});

describe("NX huge page recovery (kvm_recover_nx_huge_pages)", () => {
  for (const readLock of [false, true]) {
    it(`${readLock ? "6.18, read lock" : "up to 6.17, write lock"}: zaps the listed tables, and the range maps huge again`, () => {
      const { r, w } = runOne(
        () => world(1, { nxRecoveryUnderReadLock: readLock }),
        function* (w) {
          yield* execFault(w);
          yield* kvm_recover_nx_huge_pages(w.kvm);
          expect(yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 9, false)).toBe("RET_PF_FIXED");
        },
      );
      expect(r.violations).toEqual([]);
      expect(listed(w)).toEqual([]);
      expect(w.kvm.nx!.nx_lpage_splits.v).toBe(0);
      expect(leaves(w)).toEqual(["8@3:leaf pfn=65544 WA"]);
    });
  }
});

/**
 * vCPU 0 fetches from gfn 9 first (two tables listed); then the recovery worker runs beside
 * `other`, which reaches the same tables under the read lock.
 */
function racing(features: Partial<Features>, other: (w: World) => Gen<void>): Program {
  return ({ spawn }) => {
    const w = world(1, features);
    // The memslot array is a shared word from the start, not from when `other` first runs.
    hostState(w.kvm);
    spawn(
      "prologue",
      (function* (): Gen<void> {
        yield* execFault(w);
        yield { kind: "spawn", name: "nx-recovery", body: nxRecoveryTask(w.kvm) };
        yield { kind: "spawn", name: "other", body: other(w) };
      })(),
    );
  };
}

/** Disabling dirty logging recovers huge pages in place (6.13+) under the read lock: the same table. */
const recoverInPlace = (w: World) => dirtyLogDisableTask(w.kvm, w.kvm.memslots[0]);

/** A read-lock zap with a plain store: the 6.18 shape without tdp_mmu_set_spte_atomic(). */
function* zapWithPlainStore(_original: unknown, kvm: Kvm, sp: KvmMmuPage): Gen<boolean> {
  const old = yield* kvm_tdp_mmu_read_spte(sp.ptep!);
  if (spte_to_child_pt(kvm, old, sp.level + 1) !== sp) return false;
  yield* WRITE_ONCE(sp.ptep!, SHADOW_NONPRESENT_VALUE);
  yield* handle_changed_spte(kvm, 0, sp.gfn, old, SHADOW_NONPRESENT_VALUE, sp.level + 1, true);
  return true;
}

/** The 6.18 zap without its re-check: it trusts that the SPTE it read still points at the page. */
function* zapWithoutRecheck(_original: unknown, kvm: Kvm, sp: KvmMmuPage): Gen<boolean> {
  const iter = new TdpIter(kvm);
  iter.old_spte = yield* kvm_tdp_mmu_read_spte(sp.ptep!);
  iter.sptep = sp.ptep!;
  iter.level = sp.level + 1;
  iter.gfn = sp.gfn;
  return (yield* tdp_mmu_set_spte_atomic(kvm, iter, SHADOW_NONPRESENT_VALUE)) === 0;
}

describe("NX huge page recovery under the read lock racing in-place huge page recovery", () => {
  const read = { nxRecoveryUnderReadLock: true };

  it("as merged: every interleaving explored, no violation", () => {
    const res = explore(racing(read, recoverInPlace), { stopOnFirstViolation: true, maxExecutions: 20_000 });
    expect(res.violation).toBeNull();
    expect(res.complete).toBe(true);
  });

  it("a zap with a plain store instead of the cmpxchg is caught", () => {
    const res = explore(racing(read, recoverInPlace), {
      overrides: new Map([["kvm_tdp_mmu_zap_possible_nx_huge_page", zapWithPlainStore]]),
    });
    // The store lands on the huge leaf that replaced the table, and tears the table down a second
    // time: handle_removed_pt() spins forever on children the first teardown left frozen.
    const v = res.violation?.result.violations[0];
    expect(v?.invariant).toBe("deadlock");
    expect(v?.message).toMatch(/nx-recovery waits in handle_removed_pt \(cpu_relax\) on sp#\d+\(L2,gfn=8\)/);
  });

  it("a zap that does not re-check what the SPTE points at is caught", () => {
    const res = explore(racing(read, recoverInPlace), {
      overrides: new Map([["kvm_tdp_mmu_zap_possible_nx_huge_page", zapWithoutRecheck]]),
    });
    // It tries to cmpxchg an SPTE the in-place recovery has frozen.
    const v = res.violation?.result.violations[0];
    expect(v?.invariant).toBe("WARN");
    expect(v?.message).toMatch(/is_frozen_spte\(old_spte\)\) in __tdp_mmu_set_spte_atomic/);
  });
});
