import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { is_dirty_spte, is_writable_pte, SPTE_BIT } from "./spte.js";
import {
  clear_dirty_gfn_range,
  clear_dirty_pt_masked,
  write_protect_gfn,
  wrprot_gfn_range,
} from "./tdp_mmu_dirty.js";
import { kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import { exploreSleepSets, makeRoot, makeVcpu, makeVm, peekLeaves, populate } from "./testing.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";

interface W {
  kvm: Kvm;
  root: KvmMmuPage;
  vcpu: Vcpu;
  out: boolean[];
}

const quiet = { needResched: "never", preemption: "none" } as const;

/** Leaves: 4K at gfns 0..3 (dirty), a 2M leaf at 4-5, a 1G leaf at 8-11. */
function fill(kvm: Kvm, root: KvmMmuPage): void {
  for (let g = 0; g < 4; g++) populate(kvm, root, g, 1, { dirty: true });
  populate(kvm, root, 4, 2, { dirty: true });
  populate(kvm, root, 8, 3, { dirty: true });
}

function prog(bodies: ((w: W) => Gen<void>)[], machine = quiet) {
  let cur: W | null = null;
  const program: Program = ({ spawn }) => {
    const kvm = makeVm({ ptes: 2, machine });
    const root = makeRoot(kvm, 2);
    fill(kvm, root);
    cur = { kvm, root, vcpu: makeVcpu(kvm, root), out: [] };
    const w = cur;
    bodies.forEach((b, i) => {
      spawn(`t${i}`, b(w));
    });
  };
  return { program, w: () => cur! };
}

function run(program: Program): RunResult {
  return runProgram(program, { scheduler: new RoundRobinScheduler() });
}

/**
 * As dirty logging calls these walks: with slots_lock held, flushing after mmu_lock is dropped
 * and before slots_lock is (kvm_mmu_slot_apply_flags(), kvm_get_dirty_log_protect()).
 */
function* dirtyLogIoctl(w: W, locked: Gen<void>, flush = true): Gen<void> {
  yield* mutex_lock(w.kvm.slots_lock);
  yield* locked;
  if (flush) yield* kvm_flush_remote_tlbs(w.kvm);
  yield* mutex_unlock(w.kvm.slots_lock);
}

const leavesWhere = (w: W, pred: (spte: number) => boolean) =>
  peekLeaves(w.kvm, w.root)
    .filter(([, , s]) => pred(s))
    .map(([g]) => g);

describe("dirty logging", () => {
  it("wrprot_gfn_range makes leaves at or above min_level in range read-only, once", () => {
    const { program, w } = prog([
      (w) =>
        dirtyLogIoctl(
          w,
          (function* () {
            yield* read_lock(w.kvm.mmu_lock);
            w.out.push(yield* wrprot_gfn_range(w.kvm, w.root, 1, 9, 2));
            w.out.push(yield* wrprot_gfn_range(w.kvm, w.root, 1, 9, 2));
            w.out.push(yield* wrprot_gfn_range(w.kvm, w.root, 1, 3, 1));
            yield* read_unlock(w.kvm.mmu_lock);
          })(),
        ),
    ]);
    expect(run(program).violations).toEqual([]);
    expect(w().out).toEqual([true, false, true]);
    // min_level 2 skipped the 4K leaves in the first calls; the third took gfns 1 and 2.
    expect(leavesWhere(w(), (s) => !is_writable_pte(s))).toEqual([1, 2, 4, 8]);
  });

  it("clear_dirty_gfn_range clears D in range", () => {
    const { program, w } = prog([
      (w) =>
        dirtyLogIoctl(
          w,
          (function* () {
            yield* read_lock(w.kvm.mmu_lock);
            w.out.push(yield* clear_dirty_gfn_range(w.kvm, w.root, 2, 5));
            w.out.push(yield* clear_dirty_gfn_range(w.kvm, w.root, 2, 5));
            yield* read_unlock(w.kvm.mmu_lock);
          })(),
        ),
    ]);
    expect(run(program).violations).toEqual([]);
    expect(w().out).toEqual([true, false]);
    expect(leavesWhere(w(), (s) => !is_dirty_spte(s))).toEqual([2, 3, 4]);
  });

  it("clear_dirty_pt_masked clears D on the 4K leaves of the mask only", () => {
    const { program, w } = prog([
      (w) =>
        dirtyLogIoctl(
          w,
          (function* () {
            yield* write_lock(w.kvm.mmu_lock);
            yield* clear_dirty_pt_masked(w.kvm, w.root, 0, 0b110101n, false);
            yield* write_unlock(w.kvm.mmu_lock);
          })(),
        ),
    ]);
    expect(run(program).violations).toEqual([]);
    // Bits 0 and 2 are 4K leaves; bit 4 and 5 fall in the 2M leaf (skipped: not 4K).
    expect(leavesWhere(w(), (s) => !is_dirty_spte(s))).toEqual([0, 2]);
  });

  it("write_protect_gfn clears W and MMU-writable; needs the write lock", () => {
    const { program, w } = prog([
      function* (w) {
        yield* write_lock(w.kvm.mmu_lock);
        w.out.push(yield* write_protect_gfn(w.kvm, w.root, 5, 1));
        w.out.push(yield* write_protect_gfn(w.kvm, w.root, 5, 1));
        yield* kvm_flush_remote_tlbs(w.kvm);
        yield* write_unlock(w.kvm.mmu_lock);
      },
    ]);
    expect(run(program).violations).toEqual([]);
    expect(w().out).toEqual([true, false]);
    const leaf = peekLeaves(w().kvm, w().root).find(([g]) => g === 4)!;
    expect(is_writable_pte(leaf[2])).toBe(false);
    expect(Math.floor(leaf[2] / 2 ** SPTE_BIT.mmuWritable) % 2).toBe(0);
    const { program: p2 } = prog([
      function* (w) {
        yield* read_lock(w.kvm.mmu_lock);
        yield* write_protect_gfn(w.kvm, w.root, 5, 1);
        yield* read_unlock(w.kvm.mmu_lock);
      },
    ]);
    expect(run(p2).violations[0]?.invariant).toBe("lockdep");
  });

  it("write-protecting concurrently with a fault: no violation in any schedule", () => {
    const { program } = prog([
      (w) =>
        dirtyLogIoctl(
          w,
          (function* () {
            yield* read_lock(w.kvm.mmu_lock);
            yield* wrprot_gfn_range(w.kvm, w.root, 0, 16, 1);
            yield* read_unlock(w.kvm.mmu_lock);
          })(),
        ),
      function* (w) {
        yield* kvm_tdp_mmu_page_fault(w.vcpu, 13, true, { maxLevel: 1 });
      },
    ]);
    let bad = 0;
    const res = exploreSleepSets(program, {}, (r) => {
      if (r.violations.length > 0) bad++;
    });
    expect(bad).toBe(0);
    expect(res.complete).toBe(true);
  });

  it.each([
    ["write-protecting", "write-protected"],
    ["cleaning", "made clean"],
  ] as const)("invariant 17: %s for dirty logging owes a flush until slots_lock is released", (_, what) => {
    const walk = (w: W) =>
      (function* () {
        yield* read_lock(w.kvm.mmu_lock);
        if (what === "write-protected") yield* wrprot_gfn_range(w.kvm, w.root, 0, 4, 1);
        else yield* clear_dirty_gfn_range(w.kvm, w.root, 0, 4);
        yield* read_unlock(w.kvm.mmu_lock);
      })();
    // Flushing after mmu_lock is dropped is fine while slots_lock is held; not flushing is not.
    expect(run(prog([(w) => dirtyLogIoctl(w, walk(w))]).program).violations).toEqual([]);
    const v = run(prog([(w) => dirtyLogIoctl(w, walk(w), false)]).program).violations;
    expect(v[0]?.invariant).toBe("inv17-no-lost-flush");
    expect(v[0]?.message).toContain(`dropped slots_lock owing a TLB flush for gfns [0, 1) ${what}`);
  });

  it("invariant 17: write-protecting without slots_lock owes the flush before mmu_lock is dropped", () => {
    const unflushed = prog([
      function* (w) {
        yield* write_lock(w.kvm.mmu_lock);
        yield* write_protect_gfn(w.kvm, w.root, 1, 1);
        yield* write_unlock(w.kvm.mmu_lock);
        yield* kvm_flush_remote_tlbs(w.kvm);
      },
    ]);
    expect(run(unflushed.program).violations[0]?.message).toContain(
      "dropped mmu_lock owing a TLB flush for gfns [1, 2) write-protected",
    );
    const flushed = prog([
      function* (w) {
        yield* write_lock(w.kvm.mmu_lock);
        yield* write_protect_gfn(w.kvm, w.root, 1, 1);
        yield* kvm_flush_remote_tlbs(w.kvm);
        yield* write_unlock(w.kvm.mmu_lock);
      },
    ]);
    expect(run(flushed.program).violations).toEqual([]);
  });
});
