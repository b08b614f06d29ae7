import { vcpuRoundsTask, yieldingRootWalkTask } from "../../mmu/protocol_tasks.js";
import { destroyVmTask, memslotDeleteTask } from "../../mmu/workloads.js";
import type { Scenario, ScenarioParam } from "../define.js";
import { vmScenario } from "./vm.js";

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
  hardware: {
    default: 0,
    min: 0,
    max: 1,
    description:
      "1: the vCPUs' writes go through the modelled CPU (EPT walk, Accessed/Dirty, a TLB per vCPU tagged by root frame)",
  },
  workers: {
    default: 0,
    min: 0,
    max: 3,
    description:
      "max_active of tdp_mmu_zap_wq (5.18-6.5; no effect from 6.6): 0 is the kernel's default, 1 zaps one root at a time",
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
    zapMaxActive: (params) => params.workers ?? PARAMS.workers.default,
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
      const hardware = (params.hardware ?? PARAMS.hardware.default) === 1;
      for (let i = 0; i < n; i++) {
        const gfns = Array.from({ length: rounds }, (_, r) => faultGfn(i, r));
        spawn(`vcpu${i}`, vcpuRoundsTask(vcpus[i], gfns, { hardware }));
      }
      const walkers = params.walkers ?? PARAMS.walkers.default;
      for (let i = 0; i < walkers; i++) spawn(`walker${i}`, yieldingRootWalkTask(kvm));
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
