import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { defineVariant } from "../index.js";
import { andMask, testBit } from "../kernel/atomic.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { read_lock, read_unlock } from "../kernel/rwlock.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { checkResolved } from "../scenarios/check-testkit.js";
import { resolveScenario } from "../scenarios/resolve.js";
import { register_page_table_checks } from "./invariants/pages.js";
import { kvm_vcpu_create } from "./kvm.js";
import { kvm_get_kvm_at_spawn } from "./kvm_destroy.js";
import {
  __kvm_write_track_remove_gfn,
  kvm_page_track_write_tracking_alloc,
  kvm_write_track_remove_gfn,
  writeTrackTask,
} from "./page_track.js";
import { is_last_spte, is_shadow_present_pte, is_writable_pte, SPTE_BIT } from "./spte.js";
import { for_each_tdp_pte_min_level, TdpIter } from "./tdp_iter.js";
import { kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import { tdp_mmu_iter_set_spte } from "./tdp_mmu_spte.js";
import { kvm_tdp_mmu_wrprot_slot } from "./tdp_mmu_walks.js";
import { makeVm, peekLeaf } from "./testing.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";
import { kvm_mmu_load } from "./vcpu.js";

const quiet = { needResched: "never", preemption: "none" } as const;

interface World {
  readonly kvm: Kvm;
  readonly vcpu: Vcpu;
}

function vm(): World {
  const kvm = makeVm({ ptes: 2, machine: quiet });
  register_page_table_checks(kvm);
  return { kvm, vcpu: kvm_vcpu_create(kvm) };
}

/** A vCPU loads a root (so it is on tdp_mmu_roots) and takes a fault on gfn 1. */
function* vcpuFault(vcpu: Vcpu, write: boolean, out: string[]): Gen<void> {
  yield* kvm_mmu_load(vcpu);
  out.push(yield* kvm_tdp_mmu_page_fault(vcpu, 1, write, { maxLevel: 1 }));
}

/** Enabling dirty logging as kvm_mmu_slot_apply_flags() does: flush after mmu_lock, before slots_lock. */
function* enableDirtyLogging(kvm: Kvm): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  yield* mutex_lock(kvm.slots_lock);
  yield* read_lock(kvm.mmu_lock);
  const flush = yield* kvm_tdp_mmu_wrprot_slot(kvm, kvm.memslots[0], 1);
  yield* read_unlock(kvm.mmu_lock);
  if (flush) yield* kvm_flush_remote_tlbs(kvm);
  yield* mutex_unlock(kvm.slots_lock);
}

/** write_protect_gfn() as it was before MMU-writable: a page already read-only needs nothing. */
function* wrprotByWritableOnly(
  _original: unknown,
  kvm: Kvm,
  root: KvmMmuPage,
  gfn: number,
  min_level: number,
): Gen<boolean> {
  let set = false;
  yield* rcu_read_lock();
  const iter = new TdpIter(kvm);
  yield* for_each_tdp_pte_min_level(iter, root, min_level, gfn, gfn + 1, function* () {
    if (!is_shadow_present_pte(iter.old_spte) || !is_last_spte(iter.old_spte, iter.level)) return undefined;
    if (!is_writable_pte(iter.old_spte)) return "break";
    yield* tdp_mmu_iter_set_spte(kvm, iter, iter.old_spte - andMask(iter.old_spte, 2 ** SPTE_BIT.writable));
    set = true;
    return undefined;
  });
  yield* rcu_read_unlock();
  return set;
}

/** One task: vCPU 0 write-faults gfn 1, then `then` runs; round-robin. */
function faultThen(then: (w: World, out: string[]) => Gen<void>) {
  const out: string[] = [];
  let w!: World;
  const program: Program = ({ spawn }) => {
    w = vm();
    spawn(
      "vcpu0",
      (function* () {
        yield* vcpuFault(w.vcpu, true, out);
        yield* then(w, out);
      })(),
    );
  };
  const r = runProgram(program, { scheduler: new RoundRobinScheduler() });
  return { r, out, w };
}

/** One task on a VM with write tracking enabled and nothing tracked; round-robin. */
function kvmgt(body: (kvm: Kvm) => Gen<void>) {
  const program: Program = ({ spawn }) => {
    const { kvm } = vm();
    kvm_page_track_write_tracking_alloc(kvm, kvm.memslots[0]);
    spawn("kvmgt", body(kvm));
  };
  return runProgram(program, { scheduler: new RoundRobinScheduler() });
}

describe("write tracking (page_track.c)", () => {
  it("a tracked page is mapped read-only and a write fault is emulated", () => {
    const out: string[] = [];
    let w!: World;
    const program: Program = ({ spawn }) => {
      w = vm();
      spawn("kvmgt", writeTrackTask(w.kvm, 1));
      spawn("vcpu0", vcpuFault(w.vcpu, true, out));
    };
    const r = runProgram(program, { scheduler: new RoundRobinScheduler() });
    expect(r.violations).toEqual([]);
    expect(out).toEqual(["RET_PF_EMULATE"]);
    expect(is_writable_pte(peekLeaf(w.kvm, w.vcpu.root!, 1)!.spte)).toBe(false);
  });

  it("tracking write-protects a mapped page (Writable and MMU-writable) and flushes", () => {
    const { r, out, w } = faultThen(function* (w) {
      yield* writeTrackTask(w.kvm, 1);
    });
    expect(r.violations).toEqual([]);
    expect(out).toEqual(["RET_PF_FIXED"]);
    const spte = peekLeaf(w.kvm, w.vcpu.root!, 1)!.spte;
    expect(is_writable_pte(spte)).toBe(false);
    expect(testBit(spte, SPTE_BIT.mmuWritable)).toBe(false);
  });

  // Dirty logging leaves MMU-writable set and flushes only before returning to user space; tracking
  // that starts in between must flush itself. The kernel's write_protect_gfn() sees MMU-writable and
  // does, in every schedule.
  const race =
    (): Program =>
    ({ spawn }) => {
      const { kvm, vcpu } = vm();
      spawn(
        "dirty-log",
        (function* () {
          yield* vcpuFault(vcpu, true, []);
          yield* enableDirtyLogging(kvm);
        })(),
      );
      spawn("kvmgt", writeTrackTask(kvm, 1));
    };

  it("tracking racing with enabling dirty logging: safe in every schedule", () => {
    const res = explore(race(), { stopOnFirstViolation: false });
    expect(res.complete).toBe(true);
    expect(res.violation).toBeNull();
  });

  it("invariant 17: skipping the flush because the page is already read-only is 6dbf79e7164e's race", () => {
    const overrides = new Map<string, Function>([["write_protect_gfn", wrprotByWritableOnly]]);
    const res = explore(race(), { overrides });
    const v = res.violation?.result.violations[0];
    expect(`${v?.invariant}: ${v?.message}`).toMatch(
      /^inv17-no-lost-flush: __kvm_write_track_add_gfn returned with gfn 1 write-tracked while a TLB flush for it is still owed by dirty-log \(write-protected/,
    );
  });

  it("in a scenario file: write-track tasks beside dirty logging, safe as merged and caught with the old write_protect_gfn()", {
    timeout: 300_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-track-"));
    const file = join(dir, "track.yaml");
    writeFileSync(
      file,
      [
        "schemaVersion: 1",
        "name: write-track-vs-dirty-log",
        "kernel: v6.6",
        "machine: { preemption: none, needResched: never }",
        "vm: { rootLevel: 4, ptesPerTable: 2 }",
        "vcpus: [{}]",
        "tasks:",
        "  - { kind: vcpu, vcpu: 0, faults: [{ gfn: 1, write: true }] }",
        "  - { kind: dirty-log-enable, slot: 0 }",
        "  - { kind: write-track, gfn: 1 }",
        "  - { kind: destroy-vm }",
        "",
      ].join("\n"),
    );
    const scenario = await resolveScenario(file);
    const check = (variant: ReturnType<typeof defineVariant> | null, maxExecutions: number) =>
      checkResolved(scenario, variant, {
        strategy: "portfolio",
        seed: 0n,
        stopOnFirstViolation: true,
        maxExecutions,
      });
    // The whole configuration takes minutes to exhaust; a bounded look at each side is enough here.
    const merged = check(null, 300);
    expect(merged.status).not.toBe("violation");
    const old = check(
      defineVariant({
        name: "write-protect-gfn-writable-only",
        description: "write_protect_gfn() skips pages that are already read-only, ignoring MMU-writable",
        overrides: { write_protect_gfn: wrprotByWritableOnly },
      }),
      20_000,
    );
    expect(old.counterexample?.trace.violation?.invariant).toBe("inv17-no-lost-flush");
  });

  it("kvm_write_track_remove_gfn: after the tracker is gone, a write fault maps the page writable again", () => {
    const { r, out, w } = faultThen(function* (w, out) {
      yield* writeTrackTask(w.kvm, 1, true);
      out.push(yield* kvm_tdp_mmu_page_fault(w.vcpu, 1, true, { maxLevel: 1 }));
    });
    expect(r.violations).toEqual([]);
    expect(out).toEqual(["RET_PF_FIXED", "RET_PF_FIXED"]);
    expect(is_writable_pte(peekLeaf(w.kvm, w.vcpu.root!, 1)!.spte)).toBe(true);
  });

  it("kvm_write_track_remove_gfn: removing a tracker that was never added WARNs (the count would underflow)", () => {
    const r = kvmgt(function* (kvm) {
      yield* kvm_write_track_remove_gfn(kvm, 1);
    });
    expect(r.violations.map((v) => `${v.invariant}: ${v.message}`)).toEqual([
      expect.stringMatching(/^WARN: .*val \+ count < 0/),
    ]);
  });

  it("__kvm_write_track_remove_gfn asserts mmu_lock held for write (a fault reads the count under the read lock)", () => {
    const r = kvmgt(function* (kvm) {
      yield* read_lock(kvm.mmu_lock);
      yield* __kvm_write_track_remove_gfn(kvm, kvm.memslots[0], 1);
      yield* read_unlock(kvm.mmu_lock);
    });
    expect(r.violations[0]?.invariant).toBe("lockdep");
    expect(r.violations[0]?.message).toMatch(
      /lockdep_assert_held_write\(kvm.mmu_lock\) failed in __kvm_write_track_remove_gfn/,
    );
  });
});
