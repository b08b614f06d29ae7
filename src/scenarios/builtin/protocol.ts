import type { Gen } from "../../engine/op.js";
import { read_lock, read_unlock } from "../../kernel/rwlock.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "../../mmu/kvm_destroy.js";
import { for_each_valid_tdp_mmu_root_yield_safe } from "../../mmu/tdp_mmu_iter_roots.js";
import { kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import type { Kvm, KvmMmuPage, Vcpu } from "../../mmu/types.js";
import { kvm_mmu_load, kvm_mmu_unload } from "../../mmu/vcpu.js";
import { destroyVmTask, memslotDeleteTask } from "../../mmu/workloads.js";
import type { Scenario, ScenarioParam } from "../define.js";
import { vmScenario } from "./vm.js";
import { check_walk_complete, validRootsNow } from "./walks.js";

/**
 * The whole root lifecycle of one kernel era as a reviewer would configure it for a model
 * checker (the configuration SPIN models of the protocol use): vCPUs that load a root, take a
 * write fault and unload, read-side walkers over the valid roots that drop mmu_lock after every
 * root, fast zaps (memslot deletions), the era's zap machinery (the tdp_mmu_zap_wq worker in
 * 5.18–6.5, the scheduled-root zap from 6.6), RCU, and VM teardown once every other user is done.
 */

const PARAMS: Readonly<Record<string, ScenarioParam>> = {
  vcpus: {
    default: 2,
    min: 1,
    max: 4,
    description: "vCPU threads, each doing `rounds` load/fault/unload rounds",
  },
  rounds: { default: 1, min: 1, max: 3, description: "load / write fault / unload rounds per vCPU" },
  walkers: {
    default: 2,
    min: 0,
    max: 3,
    description: "read-side walkers over valid roots, dropping mmu_lock after each root",
  },
  fastZaps: {
    default: 1,
    min: 0,
    max: 2,
    description: "memslot deletions (kvm_mmu_zap_all_fast), one slot each",
  },
};

/**
 * Guest of 16 gfns in two memslots of 8. In round r, vCPU i writes gfn 8*((i+r)%2) + i/2: the
 * vCPUs and the rounds alternate between the slots, so both fast zaps have mappings to remove.
 */
const SLOT_PAGES = 8;

function faultGfn(i: number, round: number): number {
  return ((i + round) % 2) * SLOT_PAGES + Math.floor(i / 2);
}

/** One vCPU thread: `rounds` times, kvm_mmu_load(), a write fault, kvm_mmu_unload(). */
function* vcpuRounds(vcpu: Vcpu, index: number, rounds: number): Gen<void> {
  kvm_get_kvm_at_spawn(vcpu.kvm);
  for (let r = 0; r < rounds; r++) {
    yield* kvm_mmu_load(vcpu);
    yield* kvm_tdp_mmu_page_fault(vcpu, faultGfn(index, r), true);
    yield* kvm_mmu_unload(vcpu);
  }
  yield* kvm_put_kvm(vcpu.kvm);
}

/**
 * A shared-mode walk over the valid roots (for_each_valid_tdp_mmu_root_yield_safe, as dirty
 * logging and the notifiers' range walks use it) that drops and retakes mmu_lock after every root:
 * the worst case of a yield, which is where roots can change under the walker. When it ends it
 * checks seed 001's completeness property: every root valid and referenced from start to end was
 * visited.
 */
function* yieldingWalker(kvm: Kvm): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  const before = validRootsNow(kvm);
  const visited = new Set<KvmMmuPage>();
  yield* read_lock(kvm.mmu_lock);
  yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, -1, true, function* (root) {
    visited.add(root);
    yield* read_unlock(kvm.mmu_lock);
    yield* read_lock(kvm.mmu_lock);
    return undefined;
  });
  yield* read_unlock(kvm.mmu_lock);
  check_walk_complete(before, visited);
  yield* kvm_put_kvm(kvm);
}

function protocolScenario(name: string, kernel: string, era: string): Scenario {
  return vmScenario({
    name,
    description:
      `The ${era} root lifecycle: ${PARAMS.vcpus.default} vCPUs each loading a root, write-faulting and unloading; ` +
      `${PARAMS.walkers.default} read-side walkers yielding after every root; a memslot deletion (fast zap); ` +
      "the era's zap machinery and RCU; VM teardown after every other user. Sizes are parameters (--set).",
    exercises:
      "every root invariant (refcounts, list membership, invalid roots zapped before the fast zap returns, " +
      "leaks at teardown, L1), lockdep, use-after-free and walk completeness, over the whole protocol at once.",
    defaultKernel: kernel,
    params: PARAMS,
    ptesPerTable: 2,
    memslotPages: SLOT_PAGES,
    vcpus: (params) => new Array<number>(params.vcpus ?? PARAMS.vcpus.default).fill(0),
    body: ({ kvm, vcpus, params, spawn }) => {
      kvm.memslots.push({
        id: 1,
        as_id: 0,
        base_gfn: SLOT_PAGES,
        npages: SLOT_PAGES,
        flags: 0,
        deleted: false,
      });
      const n = params.vcpus ?? PARAMS.vcpus.default;
      const rounds = params.rounds ?? PARAMS.rounds.default;
      for (let i = 0; i < n; i++) spawn(`vcpu${i}`, vcpuRounds(vcpus[i], i, rounds));
      const walkers = params.walkers ?? PARAMS.walkers.default;
      for (let i = 0; i < walkers; i++) spawn(`walker${i}`, yieldingWalker(kvm));
      const zaps = params.fastZaps ?? PARAMS.fastZaps.default;
      for (let i = 0; i < zaps; i++) spawn(`memslot-delete${i}`, memslotDeleteTask(kvm, kvm.memslots[i]));
      spawn("destroy-vm", destroyVmTask(kvm));
    },
  });
}

/** 5.18: defunct roots and the async zap worker (seeds 001, 002, 003). */
export const protocolV518 = protocolScenario("protocol-v5.18", "v5.18", "5.18–6.3");
/** 6.4: persistent roots, teardown invalidating under RCU (seed 000). */
export const protocolV64 = protocolScenario("protocol-v6.4", "v6.4", "6.4–6.5");
/** 6.6+: no worker; tdp_mmu_scheduled_root_to_zap zapped synchronously under the read lock. */
export const protocolV66 = protocolScenario("protocol-v6.6", "v6.6", "6.6+");
