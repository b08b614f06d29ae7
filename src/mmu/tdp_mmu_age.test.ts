import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { type Atomic, andMask, READ_ONCE, set_bit, WRITE_ONCE } from "../kernel/atomic.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { is_accessed_spte, is_dirty_spte, SPTE_BIT } from "./spte.js";
import { SPTE_INDEX } from "./tdp_iter.js";
import { kvm_tdp_mmu_age_root } from "./tdp_mmu_age.js";
import { tdp_mmu_zap_root } from "./tdp_mmu_zap.js";
import {
  exploreSleepSets,
  makeRoot,
  makeVm,
  peekLeaf,
  peekLeafSptep,
  peekLeaves,
  populate,
  tablePages,
} from "./testing.js";
import type { Kvm, KvmMmuPage } from "./types.js";

const quiet = { needResched: "never", preemption: "none" } as const;

interface W {
  kvm: Kvm;
  root: KvmMmuPage;
  out: boolean[];
}

function prog(kernel: string, bodies: ((w: W) => Gen<void>)[], fill?: (kvm: Kvm, root: KvmMmuPage) => void) {
  let cur: W | null = null;
  const program: Program = ({ spawn }) => {
    const kvm = makeVm({ ptes: 2, kernel, machine: quiet });
    const root = makeRoot(kvm, 1);
    if (fill) fill(kvm, root);
    else {
      populate(kvm, root, 1, 1);
      populate(kvm, root, 6, 1, { accessed: false });
      populate(kvm, root, 8, 3);
    }
    cur = { kvm, root, out: [] };
    const w = cur;
    bodies.forEach((b, i) => {
      spawn(`t${i}`, b(w));
    });
  };
  return { program, w: () => cur! };
}

function run(program: Program, record = false): RunResult {
  return runProgram(program, { scheduler: new RoundRobinScheduler(), record });
}

/** How the aging caller protects the walk: write mmu_lock (≤ 6.14) or RCU only (6.15). */
function* ageCall(w: W, lockless: boolean, start: number, end: number, test_only: boolean): Gen<boolean> {
  if (lockless) yield* rcu_read_lock();
  else yield* write_lock(w.kvm.mmu_lock);
  const r = yield* kvm_tdp_mmu_age_root(w.kvm, w.root, start, end, test_only);
  if (lockless) yield* rcu_read_unlock();
  else yield* write_unlock(w.kvm.mmu_lock);
  return r;
}

const young = (w: W) =>
  peekLeaves(w.kvm, w.root)
    .filter(([, , s]) => is_accessed_spte(s))
    .map(([g]) => g);

describe("kvm_tdp_mmu_age_root", () => {
  for (const [kernel, lockless] of [
    ["v6.9", false],
    ["v6.15", true],
  ] as const) {
    it(`${kernel}: test_only reports young without clearing; aging clears every A bit in range`, () => {
      const { program, w } = prog(kernel, [
        function* (w) {
          w.out.push(yield* ageCall(w, lockless, 0, 16, true));
          w.out.push(yield* ageCall(w, lockless, 0, 8, false));
          w.out.push(yield* ageCall(w, lockless, 0, 8, true));
          w.out.push(yield* ageCall(w, lockless, 0, 16, false));
          w.out.push(yield* ageCall(w, lockless, 0, 16, true));
        },
      ]);
      expect(run(program).violations).toEqual([]);
      expect(w().out).toEqual([true, true, false, true, false]);
      expect(young(w())).toEqual([]);
      // Nothing but A changed: leaves and tables all still there.
      expect(peekLeaves(w().kvm, w().root).map(([g, l]) => [g, l])).toEqual([
        [1, 1],
        [6, 1],
        [8, 3],
      ]);
    });
  }

  it("6.15 test_only stops at the first young leaf; ≤ 6.14 walks them all", () => {
    const reads = (kernel: string, lockless: boolean) => {
      const { program, w } = prog(kernel, [
        function* (w) {
          w.out.push(yield* ageCall(w, lockless, 0, 16, true));
        },
      ]);
      const r = run(program, true);
      expect(r.violations).toEqual([]);
      expect(w().out).toEqual([true]);
      // Was the 1G leaf (gfn 8) ever read?
      const leaf8 = `root#1.spte[${SPTE_INDEX(w().kvm, 8, 4)}]`;
      return r.trace!.some((s) => r.objectNames[s.obj] === leaf8);
    };
    expect(reads("v6.15", true)).toBe(false);
    expect(reads("v6.9", false)).toBe(true);
  });

  it("≤ 6.14 needs the write mmu_lock; 6.15 needs RCU", () => {
    const { program: p1 } = prog("v6.9", [
      function* (w) {
        yield* read_lock(w.kvm.mmu_lock);
        yield* kvm_tdp_mmu_age_root(w.kvm, w.root, 0, 16, false);
        yield* read_unlock(w.kvm.mmu_lock);
      },
    ]);
    expect(run(p1).violations[0]?.invariant).toBe("lockdep");
    const { program: p2 } = prog("v6.15", [
      function* (w) {
        yield* kvm_tdp_mmu_age_root(w.kvm, w.root, 0, 16, false);
      },
    ]);
    expect(run(p2).violations[0]?.invariant).toBe("suspicious-rcu");
  });

  /** Lockless aging of gfn 1 while the CPU sets the D bit of the same leaf (an A/D assist). */
  function agingVsDirty(overrides?: ReadonlyMap<string, Function>) {
    let leaf: Atomic | null = null;
    const { program } = prog(
      "v6.15",
      [
        function* (w) {
          yield* ageCall(w, true, 0, 16, false);
        },
        function* () {
          yield* set_bit(SPTE_BIT.dirty, leaf!);
        },
      ],
      (kvm, root) => {
        populate(kvm, root, 1, 1);
        leaf = peekLeafSptep(kvm, root, 1);
      },
    );
    let lost = 0;
    let bad = 0;
    const res = exploreSleepSets(program, { overrides }, (r) => {
      if (!is_dirty_spte(leaf!.v)) lost++;
      if (r.violations.length > 0 || is_accessed_spte(leaf!.v)) bad++;
    });
    expect(res.complete).toBe(true);
    expect(bad).toBe(0);
    return lost;
  }

  it("6.15 clears A with an atomic AND: a concurrent D bit is never lost", () => {
    expect(agingVsDirty()).toBe(0);
  });

  it("a non-atomic A clear (seed 004 mutant c) loses the D bit in some schedule", () => {
    const nonAtomic = new Map<string, Function>([
      [
        "tdp_mmu_clear_spte_bits_atomic",
        function* (_orig: unknown, sptep: Atomic, mask: number): Gen<number> {
          const old = yield* READ_ONCE(sptep);
          yield* WRITE_ONCE(sptep, old - andMask(old, mask));
          return old;
        },
      ],
    ]);
    expect(agingVsDirty(nonAtomic)).toBeGreaterThan(0);
  });

  it("6.15 lockless aging concurrent with a root zap under the read lock: no use-after-free", () => {
    let cur: W | null = null;
    const { program, w } = prog(
      "v6.15",
      [
        function* (w) {
          cur = w;
          yield* ageCall(w, true, 0, 16, false);
        },
        function* (w) {
          yield* read_lock(w.kvm.mmu_lock);
          yield* tdp_mmu_zap_root(w.kvm, w.root, true);
          yield* read_unlock(w.kvm.mmu_lock);
        },
      ],
      (kvm, root) => {
        populate(kvm, root, 0, 2);
      },
    );
    let bad = 0;
    const res = exploreSleepSets(program, {}, (r) => {
      if (r.violations.length > 0 || tablePages(w().kvm).length > 0) bad++;
    });
    expect(bad).toBe(0);
    expect(cur).not.toBeNull();
    expect(res.complete).toBe(true);
    expect(peekLeaf(w().kvm, w().root, 0)).toBeNull();
  });
});
