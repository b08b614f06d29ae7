import { list_add_rcu } from "../../kernel/rculist.js";
import { simMachineConfig } from "../../kernel/sim-view.js";
import { populate_compressed } from "../../mmu/compressed.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { tdp_mmu_root_set_owner } from "../../mmu/tdp_mmu_root.js";
import { drive, makeRoot, makeVcpu, makeVm, populate } from "../../mmu/testing.js";
import type { Kvm, KvmMmuPage, Vcpu } from "../../mmu/types.js";
import type { SimParamSpec, SimParams } from "./types.js";

/**
 * The VM most timed scenarios start from: one TDP root on the root list, populated before the run
 * with 4K leaves for the first guestSize bytes of guest memory (what a guest that touched all of its
 * memory leaves behind), either materialised (one model object per SPTE word, to check the
 * compressed tree against) or compressed (src/mmu/compressed.ts). Setup-time only: nothing here is
 * priced.
 */

export const PAGE_SIZE = 4096;

/** Largest guest the materialised tree is allowed to build (2^18 leaves, ~0.5 GiB of JS objects). */
export const MAX_MATERIALISED_BYTES = 2 ** 30;

export interface PopulatedVmOptions {
  readonly kernel: string;
  readonly preemption: "none" | "voluntary" | "full";
  readonly rootLevel: 4 | 5;
  readonly ptesPerTable: number;
  readonly guestSize: number;
  readonly materialise: boolean;
  /** vCPUs in guest mode throughout (they only make remote TLB flushes dearer). */
  readonly runningVcpus: number;
}

export interface PopulatedVm {
  readonly kvm: Kvm;
  readonly root: KvmMmuPage;
  readonly leaves: number;
  /** Page tables under the root at the start, the root included. */
  readonly pageTables: number;
  readonly running: readonly Vcpu[];
}

/** The parameters every populated-VM scenario shares. */
export const POPULATED_VM_PARAMS: readonly SimParamSpec[] = [
  {
    name: "guestSize",
    kind: "size",
    default: 64 * 2 ** 40,
    doc: "guest memory mapped with 4K SPTEs before the run (a multiple of 4KiB)",
    min: PAGE_SIZE,
  },
  { name: "rootLevel", kind: "int", default: 4, doc: "TDP root level: 4 or 5", min: 4, max: 5 },
  {
    name: "ptesPerTable",
    kind: "int",
    default: 512,
    doc: "entries per page table (the kernel's is 512)",
    min: 2,
    max: 512,
  },
  {
    name: "materialise",
    kind: "bool",
    default: false,
    doc: `build every SPTE as a model object instead of the compressed tree (guestSize <= 1GiB)`,
  },
  {
    name: "runningVcpus",
    kind: "int",
    default: 0,
    doc: "other vCPUs in guest mode during the run (each adds an IPI to every remote TLB flush)",
    min: 0,
    max: 1024,
  },
];

/** The tree options of POPULATED_VM_PARAMS from a parameter point, `defaults` for those absent. */
export function populatedVmOptionsOf(
  params: SimParams,
  defaults: Omit<PopulatedVmOptions, "kernel" | "preemption">,
): Omit<PopulatedVmOptions, "kernel" | "preemption"> {
  const num = (k: string, dflt: number): number =>
    typeof params[k] === "number" ? (params[k] as number) : dflt;
  const level = num("rootLevel", defaults.rootLevel);
  return {
    guestSize: num("guestSize", defaults.guestSize),
    rootLevel: level === 5 ? 5 : 4,
    ptesPerTable: num("ptesPerTable", defaults.ptesPerTable),
    materialise: typeof params.materialise === "boolean" ? params.materialise : defaults.materialise,
    runningVcpus: num("runningVcpus", defaults.runningVcpus),
  };
}

/** Leaves for `guestSize`, checked against the tree's capacity. Throws RangeError with the reason. */
export function leavesFor(
  o: Pick<PopulatedVmOptions, "guestSize" | "rootLevel" | "ptesPerTable" | "materialise">,
): number {
  if (!(o.guestSize > 0 && o.guestSize % PAGE_SIZE === 0)) {
    throw new RangeError(`guestSize must be a positive multiple of 4KiB, not ${o.guestSize}`);
  }
  const leaves = o.guestSize / PAGE_SIZE;
  const cap = o.ptesPerTable ** o.rootLevel;
  if (leaves > cap) {
    throw new RangeError(
      `guestSize ${o.guestSize} needs ${leaves} leaves; a level-${o.rootLevel} root of ${o.ptesPerTable}-entry tables maps ${cap}`,
    );
  }
  if (o.materialise && o.guestSize > MAX_MATERIALISED_BYTES) {
    throw new RangeError(
      `materialise=true is limited to guestSize <= 1GiB (${MAX_MATERIALISED_BYTES} bytes)`,
    );
  }
  return leaves;
}

/** Build the VM and its populated root (call from a program's setup). */
export function buildPopulatedVm(o: PopulatedVmOptions): PopulatedVm {
  const leaves = leavesFor(o);
  const kvm = makeVm({
    kernel: o.kernel,
    ptes: o.ptesPerTable,
    rootLevel: o.rootLevel,
    machine: { ...simMachineConfig(o.preemption), proveMmu: false },
    checks: false,
  });
  kvm_mmu_init_tdp_mmu(kvm);
  const root = makeRoot(kvm, 1);
  tdp_mmu_root_set_owner(kvm, root);
  drive(list_add_rcu(root.link, kvm.tdp_mmu_roots));
  const before = kvm.tdp_mmu_pages.v;
  if (o.materialise) for (let gfn = 0; gfn < leaves; gfn++) populate(kvm, root, gfn);
  else populate_compressed(kvm, root, leaves);
  const running: Vcpu[] = [];
  for (let i = 0; i < o.runningVcpus; i++) {
    // Running on another root in another address space as far as this scenario goes: they hold no
    // reference to `root` and only answer flush IPIs.
    const v = makeVcpu(kvm, root);
    v.root = null;
    v.inGuest = true;
    running.push(v);
  }
  return { kvm, root, leaves, pageTables: kvm.tdp_mmu_pages.v - before + 1, running };
}
