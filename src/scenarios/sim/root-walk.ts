import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import type { Gen } from "../../engine/op.js";
import type { Program } from "../../engine/runtime.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { simulate } from "../../engine/sim/simulator.js";
import { Atomic, WRITE_ONCE } from "../../kernel/atomic.js";
import { list_add_rcu, list_add_tail_rcu } from "../../kernel/rculist.js";
import { kernelView, simMachineConfig } from "../../kernel/sim-view.js";
import { ghost_root_published } from "../../mmu/invariants/roots.js";
import { tdp_mmu_alloc_sp } from "../../mmu/kvm.js";
import {
  kvm_mmu_notifier_invalidate_range_end,
  kvm_mmu_notifier_invalidate_range_start,
} from "../../mmu/mmu_notifier.js";
import { ROLE, roleInvalid, tdpRootRole } from "../../mmu/role.js";
import { PG_LEVEL_4K } from "../../mmu/tdp_iter.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { host_memory_backing } from "../../mmu/tdp_mmu_map.js";
import { tdp_mmu_root_set_owner } from "../../mmu/tdp_mmu_root.js";
import { drive, makeVcpu, makeVm, peekLeaves, populate } from "../../mmu/testing.js";
import type { Kvm, KvmMmuPage, Memslot } from "../../mmu/types.js";
import { kvm_mmu_slot_remove_write_access, memslotDeleteTask, vcpuGuestTask } from "../../mmu/workloads.js";
import type { AnyOverride, Variant } from "../define.js";
import { fifoWalk, restartOnInvalid, terminateOnInvalid } from "../variants/seed-001.js";
import {
  runHooks,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * Scenario 3 (seed 001), timed: a yield-friendly walk over the TDP roots while memslot deletions
 * invalidate every root underneath it, under the four designs of tdp_mmu_next_root() the thread
 * weighs:
 * - "merged": mainline, go on from the previous root even if it became invalid (list_del_rcu keeps
 *   its ->next), new roots published at the head;
 * - "terminate": Sean's patch 17/28, end the walk when the previous root became invalid;
 * - "restart": the code that patch replaced in the v1 series, start again from the head;
 * - "fifo": Ben's suggestion, new roots at the tail so that a walk that goes on meets them.
 * The designs are the checker's variants (src/scenarios/variants/seed-001.ts) applied as overrides;
 * a counting wrapper around tdp_mmu_next_root() notes which roots the walker visits.
 *
 * Setup (free, before time 0): `roots` valid roots with distinct roles (the role bits vCPUs in
 * different paging modes get: cr0_wp, efer_nx, smep/smap_andnot_wp), each mapping all of slot 0 with
 * dirty, writable 4K leaves and held by one vCPU that is in the guest. The walker starts at time 0;
 * memslot deletion j fires when the walker begins its visit number `triggerAt + j - 1` (or at once
 * when the walk is over), so invalidation lands while the walker holds a root. A kicked vCPU exits,
 * reloads into a new root and faults its share of slot 0 into it.
 */

export const ROOT_WALK_DESIGNS = ["merged", "terminate", "restart", "fifo"] as const;
export type RootWalkDesign = (typeof ROOT_WALK_DESIGNS)[number];

const DESIGN_VARIANT: Readonly<Record<RootWalkDesign, Variant | null>> = {
  merged: null,
  terminate: terminateOnInvalid,
  restart: restartOnInvalid,
  fifo: fifoWalk,
};

const WALKER = "walker";
const PAGE = 4096;

/** What the counting wrapper and the walker note during one run (ghost state: never read by the model). */
interface WalkLog {
  /** Roots the walker got from tdp_mmu_next_root(), in order. */
  readonly visits: KvmMmuPage[];
  /** Page ids at or above this were allocated during the run (new roots). */
  firstNewPageId: number;
  done: boolean;
  /** Roots on the list when the walk began that it owed a visit and never made. */
  skipped: number;
  invalidationsDuringWalk: number;
  finished: number;
  /** Per deletion: the visit number it waits for, and the word the walker's probe sets then. */
  readonly triggers: { readonly at: number; readonly word: Atomic; fired: boolean }[];
  kvm: Kvm | null;
  readonly setupRoots: KvmMmuPage[];
}

/** Role of setup root i: the default TDP role with some paging-mode bits flipped (all in address space 0). */
function setupRootRole(rootLevel: number, i: number): number {
  let w = tdpRootRole(rootLevel, 0);
  w = ROLE.cr0_wp.set(w, 1 - (i & 1));
  w = ROLE.efer_nx.set(w, 1 - ((i >> 1) & 1));
  w = ROLE.smep_andnot_wp.set(w, (i >> 2) & 1);
  w = ROLE.smap_andnot_wp.set(w, (i >> 3) & 1);
  return w;
}

interface RootWalkConfig {
  readonly design: RootWalkDesign;
  readonly kernel: string;
  readonly walk: "wrprot" | "unmap";
  readonly roots: number;
  readonly pages: number;
  readonly invalidations: number;
  readonly triggerAt: number;
  readonly preemption: "none" | "voluntary" | "full";
}

/** The walk itself: the update the walker applies to every root it visits. */
function* theWalk(kvm: Kvm, slot: Memslot, c: RootWalkConfig): Gen<void> {
  if (c.walk === "wrprot") {
    // Dirty-log enable without PML: write-protect the slot in every valid root, read lock, yielding.
    yield* kvm_mmu_slot_remove_write_access(kvm, slot, PG_LEVEL_4K);
  } else {
    // An mmu_notifier invalidation of the whole slot: every root, invalid ones too, write lock.
    yield* kvm_mmu_notifier_invalidate_range_start(kvm, slot.base_gfn, slot.base_gfn + slot.npages);
    yield* kvm_mmu_notifier_invalidate_range_end(kvm, slot.base_gfn, slot.base_gfn + slot.npages);
  }
}

/** Roots listed at the start that the walk never visited and still owed a visit (now). */
function skippedRoots(log: WalkLog, c: RootWalkConfig): number {
  const kvm = log.kvm;
  if (kvm === null) return 0;
  return log.setupRoots.filter((r) => !log.visits.includes(r) && owed(kvm, r, c)).length;
}

/** Whether root r still owed the walk a visit when it ended. */
function owed(kvm: Kvm, r: KvmMmuPage, c: RootWalkConfig): boolean {
  if (r.kobj.freed !== null) return false;
  if (c.walk === "wrprot") return !roleInvalid(r.role.v);
  return peekLeaves(kvm, r).some(([gfn]) => gfn < c.pages);
}

function program(c: RootWalkConfig, log: WalkLog): Program {
  return ({ spawn }) => {
    const kvm = makeVm({
      kernel: c.kernel,
      ptes: 512,
      rootLevel: 4,
      memslotPages: c.pages,
      // A production kernel: no CONFIG_KVM_PROVE_MMU.
      machine: { ...simMachineConfig(c.preemption), proveMmu: false },
      checks: false,
    });
    kvm_mmu_init_tdp_mmu(kvm);
    // Guest memory the host has resident, mapped with 4K pages (so every root maps it with 4K leaves).
    host_memory_backing(kvm, 0, c.pages, { resident: true, hugepages: false });
    // One small slot per invalidation, above slot 0; deleting it fast-zaps every root.
    const extra: Memslot[] = [];
    for (let j = 1; j <= c.invalidations; j++) {
      const s: Memslot = {
        id: j,
        as_id: 0,
        base_gfn: c.pages + (j - 1) * 512,
        npages: 512,
        flags: 0,
        deleted: false,
      };
      kvm.memslots.push(s);
      extra.push(s);
    }
    const fifo = c.design === "fifo";
    const setupRoots = log.setupRoots;
    log.kvm = kvm;
    for (let i = 0; i < c.roots; i++) {
      const root = tdp_mmu_alloc_sp(kvm, setupRootRole(kvm.geometry.rootLevel, i), 0, null, true);
      tdp_mmu_root_set_owner(kvm, root);
      root.tdp_mmu_root_count.v = 1; // the vCPU's reference
      drive(
        fifo ? list_add_tail_rcu(root.link, kvm.tdp_mmu_roots) : list_add_rcu(root.link, kvm.tdp_mmu_roots),
      );
      ghost_root_published(kvm, root);
      for (let gfn = 0; gfn < c.pages; gfn++) populate(kvm, root, gfn, 1, { dirty: true });
      setupRoots.push(root);
    }
    log.firstNewPageId = kvm.nextPageId;
    const stop = new Atomic("scenario.stop", 0, null);
    for (let j = 1; j <= c.invalidations; j++) {
      log.triggers.push({
        at: c.triggerAt + j - 1,
        word: new Atomic(`scenario.trigger${j}`, 0, null),
        fired: false,
      });
    }
    const share = Math.floor(c.pages / c.roots);
    setupRoots.forEach((root, i) => {
      const ws = [];
      for (let g = i * share; g < (i + 1) * share; g++) ws.push({ gfn: g, write: true });
      spawn(`vcpu${i}`, vcpuGuestTask(makeVcpu(kvm, root), { workingSet: ws, stop }));
    });
    const users = 1 + c.invalidations;
    function* finish(): Gen<void> {
      if (++log.finished === users) yield* WRITE_ONCE(stop, 1);
    }
    spawn(
      WALKER,
      (function* (): Gen<void> {
        yield* theWalk(kvm, kvm.memslots[0], c);
        log.done = true;
        log.skipped = skippedRoots(log, c);
        for (const t of log.triggers) yield* fire(t);
        yield* finish();
      })(),
    );
    extra.forEach((slot, k) => {
      const trig = log.triggers[k];
      spawn(
        `memslot-delete${k + 1}`,
        (function* (): Gen<void> {
          // The ioctl arrives while the walker is on its visit number `at` (or after the walk).
          yield {
            kind: "wait",
            obj: trig.word.id,
            fn: currentFn(),
            step: `wait for the walker's visit ${trig.at}`,
            enabled: () => trig.word.v !== 0,
          };
          if (!log.done) log.invalidationsDuringWalk++;
          yield* memslotDeleteTask(kvm, slot);
          yield* finish();
        })(),
      );
    });
  };
}

/** The walker's probe: one plain store to a deletion's trigger word, which wakes that deletion. */
function* fire(t: WalkLog["triggers"][number]): Gen<void> {
  if (t.fired) return;
  t.fired = true;
  yield* WRITE_ONCE(t.word, 1);
}

/** tdp_mmu_next_root() as the design has it, noting each root the walker task gets. */
function countingNextRoot(design: AnyOverride | undefined, log: WalkLog): AnyOverride {
  return function* (orig: (...a: unknown[]) => Gen<KvmMmuPage | null>, ...args: unknown[]) {
    const r: KvmMmuPage | null = design === undefined ? yield* orig(...args) : yield* design(orig, ...args);
    if (r !== null && host().current.name === WALKER) {
      log.visits.push(r);
      for (const t of log.triggers) if (t.at === log.visits.length) yield* fire(t);
    }
    return r;
  };
}

export interface RootWalkOutcome extends SimScenarioRun {
  readonly log: Readonly<WalkLog>;
}

/** One design at one parameter point. Deterministic. */
export function runRootWalk(
  design: RootWalkDesign,
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): RootWalkOutcome {
  const c: RootWalkConfig = {
    design,
    kernel: String(params.kernel),
    walk: params.walk === "unmap" ? "unmap" : "wrprot",
    roots: Number(params.roots),
    pages: Math.max(512, Math.floor(Number(params.memory) / PAGE)),
    invalidations: Number(params.invalidations),
    triggerAt: Number(params.triggerAt),
    preemption: params.preemption as RootWalkConfig["preemption"],
  };
  const log: WalkLog = {
    visits: [],
    firstNewPageId: 0,
    done: false,
    skipped: 0,
    invalidationsDuringWalk: 0,
    finished: 0,
    triggers: [],
    kvm: null,
    setupRoots: [],
  };
  const variant = DESIGN_VARIANT[design];
  // A user's variant (simulate --variant) first; the design this run stands for wins where both
  // override a function, and the walk counter wraps whichever tdp_mmu_next_root() is in force.
  const overrides = new Map<string, Function>([
    ...(opts.overrides ?? []),
    ...Object.entries(variant?.overrides ?? {}),
  ]);
  overrides.set(
    "tdp_mmu_next_root",
    countingNextRoot(
      (variant?.overrides?.tdp_mmu_next_root ?? opts.overrides?.get("tdp_mmu_next_root")) as never,
      log,
    ),
  );
  const R = c.roots;
  const result = simulate(program(c, log), {
    kernel: kernelView,
    cpus: R + 2,
    preemption: c.preemption,
    // vCPUs on their own CPUs, the walker on the next; ioctls, kworkers and RCU callbacks share the last.
    binding: (n) => (n.startsWith("vcpu") ? Number(n.slice(4)) : n === WALKER ? R : R + 1),
    costs,
    ...runHooks(opts),
    overrides,
    seed: opts.seed ?? 1,
    // A walk that never ends (restart on an all-roots walk) is cut off well after a normal one would end.
    maxEvents: 64 * c.roots * c.pages + 200_000,
    timeline: opts.timeline,
  });
  const walker = result.perTask.find((t) => t.name === WALKER);
  const walkNs =
    walker?.doneNs != null && walker.firstStepNs != null ? walker.doneNs - walker.firstStepNs : null;
  const distinct = new Set(log.visits).size;
  return {
    label: design,
    kernel: c.kernel,
    params,
    metrics: {
      walkMs: walkNs === null ? null : walkNs / 1e6,
      visits: log.visits.length,
      distinctRoots: distinct,
      revisits: log.visits.length - distinct,
      newRootsVisited: new Set(log.visits.filter((r) => r.pageId >= log.firstNewPageId)).size,
      walkDone: log.done ? 1 : 0,
      skipped: log.done ? log.skipped : skippedRoots(log, c),
      invalidationsDuringWalk: log.invalidationsDuringWalk,
      violations: result.violations.length,
      virtualMs: result.virtualNs / 1e6,
    },
    results: [result],
    log,
  };
}

function designsOf(p: SimParams): readonly RootWalkDesign[] {
  return p.design === "all" ? ROOT_WALK_DESIGNS : [p.design as RootWalkDesign];
}

/**
 * Materialised SPTEs (roots x memory) a run may build: every root is a real tree of model objects
 * (the walk must see the roots change under it, so they cannot be compressed), and 16 roots x 1GiB
 * took over 200 s; 256MiB of them stays within a minute and 1 GiB of RSS.
 */
export const MAX_MATERIALISED_ROOTS_BYTES = 256 * 2 ** 20;

export const rootWalk: SimScenario = {
  name: "root-walk",
  thread: "001",
  summary:
    "a yield-friendly root walk under concurrent fast zaps: merged (go on), terminate, restart and FIFO " +
    "designs of tdp_mmu_next_root(); roots visited, revisited, skipped, and walk time",
  params: [
    {
      name: "design",
      kind: "enum",
      values: ["all", ...ROOT_WALK_DESIGNS],
      default: "all",
      doc: "which tdp_mmu_next_root() designs to run (each is one labelled run)",
    },
    {
      name: "kernel",
      kind: "enum",
      values: ["v5.17", "v5.18"],
      default: "v5.17",
      doc: "v5.17: the seed's era (fast zap gifts references, last put zaps); v5.18: async zap worker",
    },
    {
      name: "walk",
      kind: "enum",
      values: ["wrprot", "unmap"],
      default: "wrprot",
      doc:
        "wrprot: dirty-log enable's write-protect walk (valid roots, read lock); unmap: an mmu_notifier " +
        "invalidation of slot 0 (all roots, invalid ones too, write lock)",
    },
    {
      name: "roots",
      kind: "int",
      default: 4,
      min: 1,
      max: 16,
      doc: "valid roots (one vCPU each) at the start",
    },
    {
      name: "memory",
      kind: "size",
      default: 8 * 2 ** 20,
      min: 2 * 2 ** 20,
      max: 2 ** 30,
      doc:
        "slot 0, mapped with 4K leaves in every root (materialised: each root costs ~memory/4K SPTE " +
        "objects, so keep roots x memory under ~64MiB for runs of seconds)",
    },
    {
      name: "invalidations",
      kind: "int",
      default: 1,
      min: 0,
      max: 8,
      doc: "memslot deletions (kvm_mmu_zap_all_fast) fired during the walk",
    },
    {
      name: "triggerAt",
      kind: "int",
      default: 2,
      min: 1,
      max: 64,
      doc: "deletion j fires when the walker begins its visit number triggerAt + j - 1",
    },
    {
      name: "preemption",
      kind: "enum",
      values: ["none", "voluntary", "full"],
      default: "full",
      doc: "full: rwlock_needbreak() works, so the walker yields to the deletion's write lock",
    },
  ],
  metrics: [
    { key: "walkMs", unit: "ms", doc: "walker's first step to its end" },
    {
      key: "walkDone",
      unit: "count",
      doc: "1 if the walk returned; 0 if a violation stopped the run or the walk never ended (livelock)",
    },
    { key: "visits", unit: "count", doc: "roots tdp_mmu_next_root() handed the walker" },
    { key: "distinctRoots", unit: "count", doc: "different roots among the visits" },
    { key: "revisits", unit: "count", doc: "visits of a root the walk had visited already" },
    { key: "newRootsVisited", unit: "count", doc: "roots created during the run that the walk visited" },
    {
      key: "skipped",
      unit: "count",
      doc:
        "roots listed when the walk began that it never visited but still owed a visit at its end " +
        "(wrprot: still valid; unmap: still mapping slot 0); counted when the run stopped if it did not end",
    },
    { key: "invalidationsDuringWalk", unit: "count", doc: "deletions that began before the walk ended" },
    { key: "violations", unit: "count", doc: "invariant violations (the run stops at the first)" },
    { key: "virtualMs", unit: "ms", doc: "end of the last task (RCU callbacks included)" },
  ],
  headline: "walkMs",
  run(params: SimParams, costs: Partial<CostModel>, opts?: SimRunOptions): SimScenarioRun[] {
    const total = Number(params.roots) * Number(params.memory);
    if (total > MAX_MATERIALISED_ROOTS_BYTES) {
      throw new RangeError(
        `roots x memory = ${total} bytes of materialised SPTEs; at most ${MAX_MATERIALISED_ROOTS_BYTES} (256MiB) fit a run of about a minute (e.g. roots=16 memory=16MiB)`,
      );
    }
    return designsOf(params).map((d) => {
      const { log: _log, ...run } = runRootWalk(d, params, costs, opts);
      return run;
    });
  },
};
