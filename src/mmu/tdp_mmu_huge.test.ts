import { describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { WRITE_ONCE } from "../kernel/atomic.js";
import type { Features } from "./features.js";
import { ghost_sp_linked } from "./invariants/pages.js";
import { kvm_vcpu_create } from "./kvm.js";
import { describeSpte, is_dirty_spte, make_leaf_spte, make_nonleaf_spte } from "./spte.js";
import type { TdpIter } from "./tdp_iter.js";
import { KVM_MEM_LOG_DIRTY_PAGES, kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import { kvm_mmu_recover_huge_pages, make_huge_spte } from "./tdp_mmu_recover.js";
import { kvm_mmu_slot_try_split_huge_pages } from "./tdp_mmu_split.js";
import { handle_changed_spte, make_small_spte, tdp_mmu_free_sp, tdp_mmu_link_sp } from "./tdp_mmu_spte.js";
import { makeVm, peekLeaves, tablePages } from "./testing.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";
import { kvm_mmu_load } from "./vcpu.js";
import { guest_access } from "./workloads.js";

const quiet = { needResched: "never", preemption: "none" } as const;

interface World {
  kvm: Kvm;
  vcpus: Vcpu[];
}

/** A VM (2 SPTEs per table: a 1G page is 4 gfns, a 2M page 2) with `n` vCPUs. */
function world(kernel: string, n: number, features: Partial<Features> = {}): World {
  const kvm = makeVm({ kernel, ptes: 2, machine: quiet, features });
  return { kvm, vcpus: Array.from({ length: n }, () => kvm_vcpu_create(kvm)) };
}

/**
 * vCPU 0 loads its root and maps gfn 9 with a huge leaf (1G: gfns 8..11; 2M: 8..9), which the guest
 * then writes (Dirty) if `dirty`.
 */
function* mapHuge(w: World, maxLevel = 3, dirty = true): Gen<void> {
  yield* kvm_mmu_load(w.vcpus[0]);
  // A racing fault that splits first makes this one retry, as the guest would.
  for (let i = 0; i < 3; i++) {
    if ((yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 9, true, { maxLevel })) !== "RET_PF_RETRY") break;
  }
  if (dirty) expect(yield* guest_access(w.vcpus[0], 9, true)).toBe(true);
}

/**
 * vCPU 1 takes a 4K write fault on gfn 9 (as in a dirty-logged slot) on the shared root. The huge
 * page is clean: a fault that rebuilds an SPTE the split already made would otherwise drop its
 * Dirty bit, which the model counts as a flush owed (make_spte() keeps no D either).
 */
function* vcpu1Fault(w: World): Gen<void> {
  yield* kvm_mmu_load(w.vcpus[1]);
  yield* kvm_tdp_mmu_page_fault(w.vcpus[1], 9, true, { maxLevel: 1 });
}

/** Run `body` on one vCPU's VM round-robin, expect no violation, and return the world. */
function runClean(kernel: string, body: (w: World) => Gen<void>): World {
  const { p, w } = program(kernel, 1, body);
  expect(run(p).violations).toEqual([]);
  return w();
}

/** `body` beside vcpu1Fault(): no violation in the first 1,500 schedules DPOR explores. */
function expectNoViolationRacing(kernel: string, body: (w: World) => Gen<void>): void {
  const racing: Program = ({ spawn }) => {
    const w = world(kernel, 2);
    spawn("t0", body(w));
    spawn("vcpu1", vcpu1Fault(w));
  };
  const res = explore(racing, { stopOnFirstViolation: false, maxExecutions: 1_500 });
  expect(res.violation).toBeNull();
  expect(res.executions).toBe(1_500);
}

const leaves = (w: World) =>
  peekLeaves(w.kvm, w.vcpus[0].root!).map(([g, l, s]) => `${g}@${l}:${describeSpte(s, l)}`);

function run(program: Program): RunResult {
  return runProgram(program, { scheduler: new RoundRobinScheduler() });
}

function program(kernel: string, n: number, body: (w: World) => Gen<void>, features: Partial<Features> = {}) {
  let cur!: World;
  const p: Program = ({ spawn }) => {
    cur = world(kernel, n, features);
    spawn("t0", body(cur));
  };
  return { p, w: () => cur };
}

describe("eager page splitting (kvm_mmu_slot_try_split_huge_pages, 5.18+)", () => {
  it("splits a 1G leaf down to 4K: same pfns, same permissions, Dirty kept", () => {
    const { p, w } = program("v6.9", 1, function* (w) {
      yield* mapHuge(w);
      yield* kvm_mmu_slot_try_split_huge_pages(w.kvm, w.kvm.memslots[0]);
    });
    const r = run(p);
    expect(r.violations).toEqual([]);
    expect(leaves(w())).toEqual([
      "8@1:leaf pfn=65544 WAD",
      "9@1:leaf pfn=65545 WAD",
      "10@1:leaf pfn=65546 WAD",
      "11@1:leaf pfn=65547 WAD",
    ]);
    // 1G -> two 2M tables' worth: one table of 2M leaves, then one 4K table per 2M leaf.
    expect(tablePages(w().kvm).filter((sp) => sp.level === 1 && sp.gfn >= 8)).toHaveLength(2);
  });

  // Bounded: the whole space (two root loads, the split's lock drop for the allocation) does not
  // finish in a unit test's time; this looks at the first schedules DPOR picks, no claim beyond.
  it("racing with a vCPU's 4K fault that splits the same page on its way down: no violation in 1,500 schedules", () => {
    expectNoViolationRacing("v6.9", function* (w) {
      yield* mapHuge(w, 2, false);
      yield* kvm_mmu_slot_try_split_huge_pages(w.kvm, w.kvm.memslots[0]);
    });
  });

  it("split-preserves-mapping: a split whose children all map the huge page's first pfn is caught", () => {
    // make_huge_page_split_spte() without the per-index offset.
    function* splitWithoutOffset(
      _original: unknown,
      kvm: Kvm,
      iter: TdpIter,
      sp: KvmMmuPage,
      shared: boolean,
    ): Gen<number> {
      for (let i = 0; i < sp.spt.length; i++) {
        sp.spt[i].v = iter.old_spte - (sp.level === 1 ? 2 ** 7 : 0);
      }
      return yield* tdp_mmu_link_sp(kvm, iter, sp, shared);
    }
    const { p } = program("v6.9", 1, function* (w) {
      yield* mapHuge(w);
      yield* kvm_mmu_slot_try_split_huge_pages(w.kvm, w.kvm.memslots[0]);
    });
    const r = runProgram(p, {
      scheduler: new RoundRobinScheduler(),
      overrides: new Map([["tdp_mmu_split_huge_page", splitWithoutOffset]]),
    });
    expect(r.violations[0]?.invariant).toBe("split-preserves-mapping");
    expect(r.violations[0]?.message).toMatch(
      /spte\[1\] \(leaf pfn=65544 WAD\) maps pfn 65544 instead of 65546/,
    );
  });
});

describe("a split under the read lock that links its table with a plain store", () => {
  /**
   * tdp_mmu_split_huge_page() whose link is WRITE_ONCE() plus the bookkeeping, as if the caller held
   * mmu_lock for write: it cannot see that the huge SPTE changed since the walk read it.
   */
  function* splitWithPlainStore(
    _original: unknown,
    kvm: Kvm,
    iter: TdpIter,
    sp: KvmMmuPage,
    _shared: boolean,
  ): Gen<number> {
    const huge_spte = iter.old_spte;
    for (let i = 0; i < sp.spt.length; i++) sp.spt[i].v = make_small_spte(kvm, huge_spte, sp.level, i);
    const spte = make_nonleaf_spte(sp.pageId);
    yield* WRITE_ONCE(iter.sptep, spte);
    yield* handle_changed_spte(kvm, iter.as_id, iter.gfn, huge_spte, spte, iter.level, true);
    ghost_sp_linked(kvm, sp);
    return 0;
  }

  it("racing a vCPU's fault that splits the same huge page: caught by the model's invariants", () => {
    const racing: Program = ({ spawn }) => {
      const w = world("v6.9", 2);
      spawn(
        "t0",
        (function* () {
          yield* mapHuge(w, 2, false);
          yield* kvm_mmu_slot_try_split_huge_pages(w.kvm, w.kvm.memslots[0]);
        })(),
      );
      spawn("vcpu1", vcpu1Fault(w));
    };
    const res = explore(racing, {
      overrides: new Map([["tdp_mmu_split_huge_page", splitWithPlainStore]]),
      maxExecutions: 20_000,
    });
    const v = res.violation?.result.violations[0];
    expect(`${v?.invariant}: ${v?.message}`).toMatch(/^page-table-orphaned: /);
  });
});

describe("huge page recovery when dirty logging is disabled", () => {
  /** Map huge, split eagerly, then recover (dirty logging was never on for the slot in between). */
  function* splitThenRecover(w: World): Gen<void> {
    yield* mapHuge(w);
    yield* kvm_mmu_slot_try_split_huge_pages(w.kvm, w.kvm.memslots[0]);
    yield* kvm_mmu_recover_huge_pages(w.kvm, w.kvm.memslots[0]);
  }

  it("in place (6.13+): the tables become one 1G leaf again, with the children's bits", () => {
    expect(leaves(runClean("v6.15", splitThenRecover))).toEqual(["8@3:leaf pfn=65544 WAD"]);
  });

  it("by zapping (up to 6.12): the tables are zapped and the next fault maps huge", () => {
    const w = runClean("v6.9", function* (w) {
      yield* splitThenRecover(w);
      expect(leaves(w)).toEqual([]);
      expect(yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 11, false)).toBe("RET_PF_FIXED");
    });
    expect(leaves(w)).toEqual(["8@3:leaf pfn=65544 WA"]);
  });

  it("leaves a slot alone that logs dirty pages again", () => {
    const w = runClean("v6.15", function* (w) {
      yield* mapHuge(w);
      yield* kvm_mmu_slot_try_split_huge_pages(w.kvm, w.kvm.memslots[0]);
      w.kvm.memslots[0].flags |= KVM_MEM_LOG_DIRTY_PAGES;
      yield* kvm_mmu_recover_huge_pages(w.kvm, w.kvm.memslots[0]);
    });
    expect(leaves(w)).toHaveLength(4);
  });

  it("racing with a vCPU's 4K fault into the table being recovered: no violation in 1,500 schedules", () => {
    expectNoViolationRacing("v6.15", function* (w) {
      yield* mapHuge(w, 2, false);
      yield* kvm_mmu_slot_try_split_huge_pages(w.kvm, w.kvm.memslots[0]);
      yield* kvm_mmu_recover_huge_pages(w.kvm, w.kvm.memslots[0]);
    });
  });

  it("inv17: recovery that does not flush before dropping mmu_lock is caught", () => {
    const { p } = program("v6.15", 1, splitThenRecover);
    const r = runProgram(p, {
      scheduler: new RoundRobinScheduler(),
      overrides: new Map([
        [
          "kvm_flush_remote_tlbs_range",
          function* (original: (...a: unknown[]) => Gen<void>, kvm: Kvm, start: number, n: number) {
            // Only the recovery's flush of the slot goes missing.
            if (n !== kvm.memslots[0].npages) yield* original(kvm, start, n);
          },
        ],
      ]),
    });
    expect(r.violations[0]?.invariant).toBe("inv17-no-lost-flush");
    expect(r.violations[0]?.message).toMatch(
      /^t0 dropped mmu_lock owing a TLB flush for gfns \[8, 12\) collapsed in __tdp_mmu_set_spte_atomic/,
    );
  });

  it("inv5: recovery that frees the replaced table at once, not after a grace period, is caught", () => {
    const { p } = program("v6.15", 1, splitThenRecover);
    const r = runProgram(p, {
      scheduler: new RoundRobinScheduler(),
      overrides: new Map([
        [
          "handle_removed_pt",
          function* (_original: unknown, kvm: Kvm, pt: KvmMmuPage): Gen<void> {
            for (const s of pt.spt) s.v = 0;
            yield* tdp_mmu_free_sp(pt, kvm);
          },
        ],
      ]),
    });
    expect(r.violations[0]?.invariant).toBe("inv5-rcu-free-page-table");
  });
});

describe("make_huge_spte (spte.c, 6.13)", () => {
  it("aligns the pfn down and sets the page-size bit, keeping the small leaf's bits", () => {
    const kvm = { geometry: { ptesPerTable: 2 } } as Kvm;
    const small = make_leaf_spte({ pfn: 0x10006, level: 1, writable: true, dirty: true });
    const huge = make_huge_spte(kvm, small, 3);
    expect(describeSpte(huge, 3)).toBe("leaf pfn=65540 WAD");
    expect(is_dirty_spte(huge)).toBe(true);
  });
});
