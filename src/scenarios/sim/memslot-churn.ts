import { currentFn } from "../../engine/model-fn.js";
import type { Gen } from "../../engine/op.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { summariseLatencies } from "../../engine/sim/occupancy.js";
import { simulate } from "../../engine/sim/simulator.js";
import { Atomic, WRITE_ONCE } from "../../kernel/atomic.js";
import { kernelView } from "../../kernel/sim-view.js";
import { mutex_lock, mutex_unlock } from "../../kernel/spinlock.js";
import { kvm_set_memslot, type MemslotChange } from "../../mmu/kvm_set_memslot.js";
import { host_memory_backing, kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import { makeVcpu } from "../../mmu/testing.js";
import type { Kvm, Memslot, Vcpu } from "../../mmu/types.js";
import { IN_GUEST_MODE, vcpu_enter_guest, vcpu_exit_guest, vcpu_mode } from "../../mmu/vcpu.js";
import { guest_access } from "../../mmu/workloads.js";
import { FAST_ZAP_ROOT_LOAD_KERNELS, type FastZapRootLoadOutcome } from "./fast-zap-root-load.js";
import { latencyMetrics, RUN_END_METRICS } from "./metric-specs.js";
import { preemptionParam } from "./params.js";
import { buildPopulatedVm, leavesFor, PAGE_SIZE } from "./populated-vm.js";
import {
  runHooks,
  type SimParamSpec,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * Memslot churn with many slots. The guest's memory is `slots` memslots of `slotSize` each, laid
 * end to end and mapped by 4K SPTEs in the one shared TDP root before the run (compressed: a slot
 * is a range of the compressed tree, not an object per SPTE). `vcpus` vCPUs run in the guest, each
 * with a working set of `refaultPages` pages spread over all slots. A VMM thread changes the last
 * slot `cycles` times, each cycle a KVM_MR_MOVE to the other of two bases, a KVM_MR_DELETE and a
 * KVM_MR_CREATE at the base it had (kvm_set_memslot(), kvm_set_memslot.ts). On x86 from 5.17 to
 * 6.11, a move or a delete drops every mapping of the guest, not just the slot's: the fast zap
 * (kvm_mmu_zap_all_fast(), per era as in fast-zap-root-load: 5.17 zaps under the write lock, 5.18
 * hands the root to the worker, 6.6 zaps under the read lock, 6.9 also loads roots under the read
 * lock) kicks every vCPU, which reloads a root and refaults its whole working set, however far it
 * was from the changed slot. The guest is told of a change as a memory-hotplug driver would be:
 * it stops touching the slot before a move or delete and touches it again once the move or create
 * returned. Reported: per-operation latency (ioctl entry to return, median/p99/max over all
 * operations, and per kind), the vCPUs' stall (the kick to back in the guest) and the fault storm
 * after (EPT violations per vCPU per kick, and the time to rewrite the working set).
 */

type Kernel = (typeof FAST_ZAP_ROOT_LOAD_KERNELS)[number];

const VMM = "vmm";

/**
 * Largest guest (slots x slotSize) a point takes. The first zap of each run walks the whole
 * populated root, and 6.9's four-pass zap touches every SPTE as an event (fast-zap-root-load's
 * MAX_FOUR_PASS_BYTES); later zaps see only what was refaulted. 32768 slots x 128KiB (4GiB) with
 * 64 vCPUs took 47 s and 0.95 GiB for the four eras, 2GiB 32 s and 0.75 GiB.
 */
export const MAX_MEMSLOT_GUEST_BYTES = 2 * 2 ** 30;

/**
 * Price of synchronize_srcu_expedited() in kvm_swap_active_memslots() with vCPUs in the guest (no
 * SRCU readers to wait for): an assumption of tens of microseconds for an expedited SRCU grace
 * period, not fitted to any published figure. Costs' `extra.synchronize_srcu_expedited` overrides it
 * (the API only: --set takes plain cost keys).
 */
export const SRCU_EXPEDITED_NS = 30_000;

/** What the guest believes about its slots: the slot at each index, or null while unplugged. */
interface GuestView {
  readonly slots: (Memslot | null)[];
  readonly slotPages: number;
}

/** The gfn of the vCPU's k-th working-set page, or null when its slot is unplugged. */
function workingSetGfn(g: GuestView, k: number): number | null {
  const slot = g.slots[k % g.slots.length];
  if (slot === null) return null;
  return slot.base_gfn + (Math.floor(k / g.slots.length) % g.slotPages);
}

/**
 * Write the working set, faulting where it is not mapped, until each page is written: a fault
 * that returns to retry (a kick, an invalidated root) is retried, as the guest's access would be.
 * A page whose slot the guest unplugged meanwhile, or which moved, is left for the next pass.
 */
function* touch_working_set(vcpu: Vcpu, g: GuestView, first: number, pages: number): Gen<void> {
  for (let p = 0; p < pages; p++) {
    const gfn = workingSetGfn(g, first + p);
    if (gfn === null) continue;
    while (!(yield* guest_access(vcpu, gfn, true))) {
      yield* vcpu_exit_guest(vcpu);
      yield* kvm_tdp_mmu_page_fault(vcpu, gfn, true);
      while (!(yield* vcpu_enter_guest(vcpu))) {}
      if (workingSetGfn(g, first + p) !== gfn) break;
    }
  }
}

/** Per vCPU: when it was back in the guest after a kick, and when its working set was rewritten. */
interface VcpuMarks {
  readonly entered: Atomic;
  readonly refaulted: Atomic;
}

/** The vCPU: run the guest; on each kick leave, reload a root, rewrite the working set. */
function* vcpu_thread(
  vcpu: Vcpu,
  g: GuestView,
  marks: VcpuMarks,
  done: Atomic,
  o: { first: number; pages: number },
): Gen<void> {
  while (!(yield* vcpu_enter_guest(vcpu))) {}
  const mode = vcpu_mode(vcpu);
  for (let kick = 1; ; kick++) {
    yield {
      kind: "wait",
      obj: mode.id,
      objs: [...(mode.deps ?? []), done.id],
      fn: currentFn(),
      step: "guest runs until kicked",
      enabled: () => mode.v !== IN_GUEST_MODE || done.v !== 0,
    };
    if (mode.v === IN_GUEST_MODE) break;
    yield* vcpu_exit_guest(vcpu);
    while (!(yield* vcpu_enter_guest(vcpu))) {}
    yield* WRITE_ONCE(marks.entered, kick);
    yield* touch_working_set(vcpu, g, o.first, o.pages);
    yield* WRITE_ONCE(marks.refaulted, kick);
  }
  yield* vcpu_exit_guest(vcpu);
}

/** One KVM_SET_USER_MEMORY_REGION of the VMM thread: kvm_set_memory_region() takes slots_lock. */
function* set_memory_region(
  kvm: Kvm,
  old: Memslot | null,
  next: Memslot | null,
  change: MemslotChange,
): Gen<Memslot | null> {
  yield* mutex_lock(kvm.slots_lock);
  const slot = yield* kvm_set_memslot(kvm, old, next, change);
  yield* mutex_unlock(kvm.slots_lock);
  return slot;
}

/** The VMM thread: `cycles` times move, delete and create the last slot; marks each ioctl's entry and return. */
function* vmm_thread(
  kvm: Kvm,
  g: GuestView,
  o: { cycles: number; bases: readonly [number, number]; op: Atomic; done: Atomic },
): Gen<void> {
  const last = g.slots.length - 1;
  let slot = g.slots[last]!;
  let seq = 0;
  const ioctl = function* (old: Memslot | null, next: Memslot | null, change: MemslotChange) {
    yield* WRITE_ONCE(o.op, ++seq);
    const now = yield* set_memory_region(kvm, old, next, change);
    yield* WRITE_ONCE(o.op, ++seq);
    return now;
  };
  for (let c = 0; c < o.cycles; c++) {
    const base = o.bases[(c + 1) % 2];
    // The guest lets go of the slot before it moves and uses it again at its new base.
    g.slots[last] = null;
    slot = (yield* ioctl(slot, { ...slot, base_gfn: base, deleted: false }, "move"))!;
    g.slots[last] = slot;
    g.slots[last] = null;
    yield* ioctl(slot, null, "delete");
    slot = (yield* ioctl(null, { ...slot, deleted: false }, "create"))!;
    g.slots[last] = slot;
  }
  yield* WRITE_ONCE(o.done, 1);
}

const OPS: readonly MemslotChange[] = ["move", "delete", "create"];

/** Run one era at one point: metrics and the simulator's result, as fast-zap-root-load returns them. */
export function memslotChurn(
  kernel: Kernel,
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): FastZapRootLoadOutcome {
  const n = Number(params.vcpus);
  const nslots = Number(params.slots);
  const slotSize = Number(params.slotSize);
  const cycles = Number(params.cycles);
  const pages = Number(params.refaultPages);
  if (slotSize % PAGE_SIZE !== 0)
    throw new RangeError(`slotSize must be a multiple of 4KiB, not ${slotSize}`);
  const slotPages = slotSize / PAGE_SIZE;
  const guest = nslots * slotSize;
  if (guest > MAX_MEMSLOT_GUEST_BYTES) {
    throw new RangeError(
      `slots x slotSize = ${guest} bytes; at most ${MAX_MEMSLOT_GUEST_BYTES} (2GiB) fit a run of under a minute and 1GiB (e.g. slots=32768 slotSize=64KiB)`,
    );
  }
  const tree = {
    kernel,
    preemption: params.preemption as "none" | "voluntary" | "full",
    guestSize: guest,
    rootLevel: 4 as const,
    ptesPerTable: 512,
    materialise: false,
    runningVcpus: 0,
  };
  const leaves = leavesFor(tree);
  // The moved slot's second base lies just past the guest.
  const bases = [(nslots - 1) * slotPages, nslots * slotPages] as const;
  const at: Mark[] = [];
  const kicks: number[] = [];
  let kvmRef: Kvm | null = null;
  let kickedThisOp = false;
  // Per vCPU: its root when last seen, and when it first wrote its mode on each new root (entry).
  const vcpus = new Map<string, Vcpu>();
  const lastRoot = new Map<string, unknown>();
  const newRootEntries = new Map<string, number[]>();
  let faultsBefore = 0;
  let allocatedBefore = 0;
  let zappedBefore = 0;
  const result = simulate(
    ({ spawn }) => {
      const vm = buildPopulatedVm(tree);
      const kvm = vm.kvm;
      kvmRef = kvm;
      // KVM_SET_USER_MEMORY_REGION for each slot, before the run (not priced).
      kvm.memslots.length = 0;
      const g: GuestView = { slots: [], slotPages };
      for (let i = 0; i < nslots; i++) {
        const s: Memslot = {
          id: i,
          as_id: 0,
          base_gfn: i * slotPages,
          npages: slotPages,
          flags: 0,
          deleted: false,
        };
        kvm.memslots.push(s);
        g.slots.push(s);
      }
      // Resident on the host, both bases of the moved slot: a refault is KVM's work alone.
      host_memory_backing(kvm, 0, leaves + slotPages, { resident: true, hugepages: false });
      vm.root.tdp_mmu_root_count.v = n + (kvm.features.persistentRoots ? 1 : 0);
      faultsBefore = kvm.stats.faults;
      allocatedBefore = kvm.stats.rootsAllocated;
      zappedBefore = kvm.stats.sptesZapped;
      const done = new Atomic("vmm_done");
      for (let i = 0; i < n; i++) {
        const name = `vcpu${i}`;
        const marks = { entered: new Atomic(`${name}:entered`), refaulted: new Atomic(`${name}:refaulted`) };
        const vcpu = makeVcpu(kvm, vm.root);
        vcpus.set(name, vcpu);
        lastRoot.set(name, vm.root);
        newRootEntries.set(name, []);
        spawn(name, vcpu_thread(vcpu, g, marks, done, { first: i * pages, pages }));
      }
      spawn(VMM, vmm_thread(kvm, g, { cycles, bases, op: new Atomic("vmm:op"), done }));
    },
    {
      kernel: kernelView,
      // vCPUs on CPUs 0..n-1, the VMM thread on n, one more CPU for kworkers and RCU callbacks.
      cpus: n + 2,
      costs: { ...costs, extra: { synchronize_srcu_expedited: SRCU_EXPEDITED_NS, ...costs.extra } },
      preemption: tree.preemption,
      binding: (name) => (name.startsWith("vcpu") ? Number(name.slice(4)) : name === VMM ? n : null),
      seed: opts.seed ?? 0,
      ...runHooks(opts),
      timeline: opts.timeline,
      onStep: (s, name) => {
        // The first step of kvm_make_all_cpus_request() in each ioctl is its kick.
        if (name === VMM && s.fn === "kvm_make_all_cpus_request" && !kickedThisOp) {
          kicks.push(s.startNs);
          kickedThisOp = true;
        }
        if (name === VMM && s.objName === "vmm:op") kickedThisOp = false;
        const vcpu = vcpus.get(name);
        if (vcpu !== undefined && s.objName === vcpu_mode(vcpu).name && vcpu.root !== lastRoot.get(name)) {
          // The first mode write after a root load is vcpu_enter_guest()'s IN_GUEST_MODE.
          lastRoot.set(name, vcpu.root);
          newRootEntries.get(name)!.push(s.startNs);
        }
        if (s.step === "WRITE_ONCE" && (s.objName?.startsWith(`${name}:`) || s.objName === "vmm:op")) {
          at.push({ name, mark: s.objName.slice(name.length + 1), ns: s.startNs });
        }
      },
    },
  );
  if (result.status !== "ok" || kvmRef === null) {
    const why = result.violations[0]?.message ?? result.unfinished.join(", ");
    throw new Error(`memslot-churn: the run ended with status ${result.status}: ${why}`);
  }
  const kvm = kvmRef as Kvm;
  const metrics = churnMetrics(at, kicks, [...newRootEntries.values()]);
  return {
    result,
    metrics: {
      ...metrics,
      faultsPerReload:
        metrics.reloads === 0 ? null : (kvm.stats.faults - faultsBefore) / (metrics.reloads as number),
      rootsAllocated: kvm.stats.rootsAllocated - allocatedBefore,
      sptesZapped: kvm.stats.sptesZapped - zappedBefore,
      leaves,
      totalMs: result.virtualNs / 1e6,
      events: result.events,
    },
  };
}

/** A WRITE_ONCE mark of a task: `vcpuN:entered`, `vcpuN:refaulted` or the VMM's `op` (ioctl entry/return). */
interface Mark {
  readonly name: string;
  readonly mark: string;
  readonly ns: number;
}

const us = (ns: number | null | undefined) => (ns === null || ns === undefined ? null : ns / 1e3);

/** Latency metrics from the marks: per-ioctl latency, the vCPUs' stalls after kicks, refault time. */
function churnMetrics(
  at: readonly Mark[],
  kicks: readonly number[],
  entries: readonly (readonly number[])[],
): Record<string, number | null> {
  const opMarks = at.filter((m) => m.name === VMM).map((m) => m.ns);
  const byKind = new Map<MemslotChange, number[]>(OPS.map((k) => [k, []]));
  const all: number[] = [];
  for (let i = 0; i + 1 < opMarks.length; i += 2) {
    const d = opMarks[i + 1] - opMarks[i];
    all.push(d);
    byKind.get(OPS[(i / 2) % OPS.length])!.push(d);
  }
  // A vCPU's stall for a kick runs to its first entry on a root loaded after the kick (one load
  // may serve several kicks: a kick that lands while it refaults is handled at its next entry).
  const stalls: number[] = [];
  for (const mine of entries) {
    for (const k of kicks) {
      const e = mine.find((t) => t >= k);
      if (e !== undefined) stalls.push(e - k);
    }
  }
  const refaults: number[] = [];
  const vcpuNames = new Set(at.filter((m) => m.name !== VMM).map((m) => m.name));
  for (const v of vcpuNames) {
    const mine = at.filter((m) => m.name === v);
    const entered = mine.filter((m) => m.mark === "entered").map((m) => m.ns);
    const refaulted = mine.filter((m) => m.mark === "refaulted").map((m) => m.ns);
    for (let j = 0; j < Math.min(entered.length, refaulted.length); j++)
      refaults.push(refaulted[j] - entered[j]);
  }
  const op = summariseLatencies(all);
  const st = summariseLatencies(stalls);
  const median = (k: MemslotChange) => us(summariseLatencies(byKind.get(k)!)?.medianNs);
  return {
    opMedianUs: us(op?.medianNs),
    opP99Us: us(op?.p99Ns),
    opMaxUs: us(op?.maxNs),
    moveMedianUs: median("move"),
    deleteMedianUs: median("delete"),
    createMedianUs: median("create"),
    stallMedianUs: us(st?.medianNs),
    stallP99Us: us(st?.p99Ns),
    stallMaxUs: us(st?.maxNs),
    refaultUs: refaults.length === 0 ? null : refaults.reduce((a, b) => a + b, 0) / refaults.length / 1e3,
    kicks: kicks.length,
    reloads: entries.reduce((a, e) => a + e.length, 0),
  };
}

const PARAMS: readonly SimParamSpec[] = [
  {
    name: "slots",
    kind: "int",
    default: 64,
    min: 1,
    max: 32768,
    doc: "memslots, laid end to end (KVM_USER_MEM_SLOTS is 32764 on x86; 32768 as the issue asks)",
  },
  {
    name: "slotSize",
    kind: "size",
    default: 16 * 2 ** 20,
    min: PAGE_SIZE,
    max: 2 * 2 ** 30,
    doc: "bytes per memslot, mapped by 4K SPTEs before the run (slots x slotSize <= 2GiB)",
  },
  {
    name: "vcpus",
    kind: "int",
    default: 4,
    min: 1,
    max: 64,
    doc: "vCPUs, each on a host CPU of its own (128 x 4GiB took 69 s and 1.5GiB; vCPU scaling of root loads is fast-zap-root-load's)",
  },
  {
    name: "cycles",
    kind: "int",
    default: 4,
    min: 1,
    max: 100,
    doc: "move + delete + create cycles of the last slot",
  },
  {
    name: "refaultPages",
    kind: "int",
    default: 64,
    min: 0,
    max: 4096,
    doc: "pages each vCPU writes after each kick (its working set, spread over all slots)",
  },
  preemptionParam("voluntary"),
];

export const memslotChurnScenario: SimScenario = {
  name: "memslot-churn",
  thread: null,
  summary:
    "memslot create, move and delete with many slots: per-ioctl latency, the vCPUs' stall (kick to back in the guest) and the refault storm after, per era (each move or delete fast-zaps every slot's mappings: 5.17 sync, 5.18 worker, 6.6 read lock, 6.9 roots under the read lock)",
  params: PARAMS,
  metrics: [
    ...latencyMetrics("op", "over all ioctls (move, delete, create) of entry to return"),
    { key: "moveMedianUs", unit: "us", doc: "median KVM_MR_MOVE" },
    { key: "deleteMedianUs", unit: "us", doc: "median KVM_MR_DELETE" },
    { key: "createMedianUs", unit: "us", doc: "median KVM_MR_CREATE" },
    ...latencyMetrics("stall", "over vCPUs and kicks of kick to first entry on a new root"),
    { key: "refaultUs", unit: "us", doc: "mean time to rewrite the working set after a kick" },
    {
      key: "faultsPerReload",
      unit: "count",
      doc: "EPT violations per vCPU root load after a kick (the fault storm)",
    },
    { key: "kicks", unit: "count", doc: "fast zaps that kicked the vCPUs" },
    { key: "reloads", unit: "count", doc: "vCPU entries on a newly loaded root" },
    { key: "rootsAllocated", unit: "count", doc: "TDP roots allocated during the run" },
    {
      key: "sptesZapped",
      unit: "count",
      doc: "SPTEs zapped during the run (every slot's, not only the changed one's)",
    },
    { key: "leaves", unit: "count", doc: "4K leaf SPTEs in the root before the run" },
    ...RUN_END_METRICS,
  ],
  headline: "stallP99Us",
  run(params: SimParams, costs: Partial<CostModel>, opts: SimRunOptions = {}): SimScenarioRun[] {
    return FAST_ZAP_ROOT_LOAD_KERNELS.map((kernel) => {
      const o = memslotChurn(kernel, params, costs, opts);
      return { label: kernel, kernel, params, metrics: o.metrics, results: [o.result] };
    });
  },
};
