import { describe, expect, it } from "vitest";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { liveObjects } from "../kernel/alloc.js";
import { rcu_barrier } from "../kernel/rcu.js";
import { peekEntries } from "../kernel/rculist.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { flush_workqueue } from "../kernel/workqueue.js";
import { PRESETS } from "./presets.js";
import { roleInvalid } from "./role.js";
import { rootsProgram, violationsOf } from "./roots_testkit.js";
import { kvm_mmu_zap_all_fast } from "./tdp_mmu_invalidate.js";
import { peekLeaf } from "./testing.js";
import { KVM_REQ, type Kvm, type KvmMmuPage } from "./types.js";
import { vcpu_enter_guest, vcpu_exit_guest } from "./vcpu.js";
import { destroyVmTask, vcpuTask } from "./workloads.js";

/** What the main task saw at one point, read without ops. */
interface Snap {
  readonly count: number;
  readonly invalid: boolean;
  readonly onList: boolean;
  readonly freed: boolean;
}

function snap(root: KvmMmuPage): Snap {
  return {
    count: root.tdp_mmu_root_count.v,
    invalid: roleInvalid(root.role.v),
    onList: root.link.onList,
    freed: root.kobj.freed !== null,
  };
}

function* quiesce(kvm: Kvm) {
  if (kvm.tdp_mmu_zap_wq !== null) yield* flush_workqueue(kvm.tdp_mmu_zap_wq);
  yield* rcu_barrier();
}

const rr = () => ({ scheduler: new RoundRobinScheduler() });

describe.each(PRESETS.map((p) => [p.name, p.era] as const))(
  "root lifecycle, single-threaded: %s (%s)",
  (kernel) => {
    const f = PRESETS.find((p) => p.name === kernel)!.features;

    it("a vCPU's load / fault / unload frees the root when the era says", () => {
      const seen: Record<string, Snap> = {};
      let root: KvmMmuPage | null = null;
      const r = runProgram(
        rootsProgram({ kernel }, function* ({ kvm, vcpus: [v] }) {
          yield* vcpuTask(v, { faults: [{ gfn: 5, write: true }], unload: false });
          root = v.root!;
          seen.loaded = snap(root);
          expect(peekLeaf(kvm, root, 5)).not.toBeNull();
          yield* vcpuTask(v, { faults: [] });
          seen.unloaded = snap(root);
          yield* quiesce(kvm);
          seen.quiesced = snap(root);
        }),
        rr(),
      );
      expect(violationsOf(r)).toEqual([]);
      // Loaded: the vCPU's reference, plus the TDP MMU's own from 6.4.
      expect(seen.loaded).toEqual({
        count: f.persistentRoots ? 2 : 1,
        invalid: false,
        onList: true,
        freed: false,
      });
      if (f.persistentRoots) {
        // Persistent roots: the TDP MMU keeps the root valid and listed.
        expect(seen.unloaded).toEqual({ count: 1, invalid: false, onList: true, freed: false });
        expect(seen.quiesced).toEqual(seen.unloaded);
      } else if (f.defunctRoots) {
        // E3: the last put made the root defunct: invalid, resurrected to 1 for the queued worker.
        expect(seen.unloaded).toEqual({ count: 1, invalid: true, onList: true, freed: false });
        expect(seen.quiesced).toEqual({ count: 0, invalid: true, onList: false, freed: true });
      } else {
        // E2: the last put unlinked and zapped the root at once; the RCU callback frees it.
        expect(seen.unloaded.count).toBe(0);
        expect(seen.unloaded.onList).toBe(false);
        expect(seen.unloaded.invalid).toBe(false);
        expect(seen.quiesced.freed).toBe(true);
      }
    });

    it("a root is reused by role; persistent roots keep their mappings across unload (6.4+)", () => {
      const roots: KvmMmuPage[] = [];
      let stillMapped = false;
      const r = runProgram(
        rootsProgram({ kernel }, function* ({ kvm, vcpus: [v] }) {
          yield* vcpuTask(v, { faults: [{ gfn: 3 }] });
          yield* quiesce(kvm);
          const listed = peekEntries(kvm.tdp_mmu_roots);
          if (listed.length > 0) stillMapped = peekLeaf(kvm, listed[0], 3) !== null;
          yield* vcpuTask(v, { faults: [], unload: false });
          roots.push(v.root!);
          if (listed.length > 0) roots.push(listed[0]);
        }),
        rr(),
      );
      expect(violationsOf(r)).toEqual([]);
      if (f.persistentRoots) {
        expect(roots[0]).toBe(roots[1]);
        expect(stillMapped).toBe(true);
      } else {
        expect(roots.length).toBe(1);
      }
    });

    it("kvm_mmu_zap_all_fast invalidates and zaps every root, and the vCPU moves to a new one", () => {
      let old: KvmMmuPage | null = null;
      let after: Snap | null = null;
      let requested = 0;
      let fresh: KvmMmuPage | null = null;
      const r = runProgram(
        rootsProgram({ kernel }, function* ({ kvm, vcpus: [v] }) {
          yield* vcpuTask(v, { faults: [{ gfn: 1, write: true }, { gfn: 14 }], unload: false });
          old = v.root!;
          yield* mutex_lock(kvm.slots_lock);
          yield* kvm_mmu_zap_all_fast(kvm);
          yield* mutex_unlock(kvm.slots_lock);
          after = snap(old);
          requested = v.requests.v;
          // Entering the guest services the request and loads a fresh root.
          expect(yield* vcpu_enter_guest(v)).toBe(true);
          yield* vcpu_exit_guest(v);
          fresh = v.root;
          yield* vcpuTask(v, { faults: [] });
          yield* quiesce(kvm);
        }),
        rr(),
      );
      expect(violationsOf(r)).toEqual([]);
      expect(after!.invalid).toBe(true);
      expect(old!.spt.every((s) => s.v === 0)).toBe(true);
      const want = f.defunctRoots || f.persistentRoots ? KVM_REQ.MMU_FREE_OBSOLETE_ROOTS : KVM_REQ.MMU_RELOAD;
      expect(requested).toBe(1 << want);
      expect(fresh).not.toBe(old);
      expect(old!.kobj.freed).not.toBeNull();
    });

    it("VM teardown leaves no root, no page table and an empty list", () => {
      let live = -1;
      let listed = -1;
      const r = runProgram(
        rootsProgram({ kernel, vcpus: 2 }, function* ({ kvm, vcpus: [a, b] }) {
          yield* vcpuTask(a, { faults: [{ gfn: 0, write: true }, { gfn: 9 }], unload: false });
          b.smm = 1;
          yield* vcpuTask(b, { faults: [], unload: false });
          yield* mutex_lock(kvm.slots_lock);
          yield* kvm_mmu_zap_all_fast(kvm);
          yield* mutex_unlock(kvm.slots_lock);
          yield* vcpuTask(a, { faults: [{ gfn: 2 }], unload: false });
          yield* destroyVmTask(kvm);
          listed = peekEntries(kvm.tdp_mmu_roots).length;
          live = liveObjects(["tdp_root", "tdp_page"]).length;
        }),
        rr(),
      );
      expect(violationsOf(r)).toEqual([]);
      expect(listed).toBe(0);
      expect(live).toBe(0);
    });
  },
);
