import { host } from "../engine/host.js";
import type { AccessOp, Gen, Yielded } from "../engine/op.js";
import { conflicts } from "../engine/op.js";
import type { Program, RunObserver, RunOptions, RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import type { Scheduler } from "../engine/scheduler.js";
import type { Task } from "../engine/task.js";
import type { Atomic } from "../kernel/atomic.js";
import { bootMachine, type MachineConfig } from "../kernel/machine.js";
import type { Features } from "./features.js";
import { ghost_sp_linked, register_page_table_checks } from "./invariants/pages.js";
import { kvm_create_vm, kvm_vcpu_create, pagesPerHpage, tdp_mmu_alloc_sp } from "./kvm.js";
import { presetByName } from "./presets.js";
import { ROLE, tdpRootRole } from "./role.js";
import {
  is_last_spte,
  is_shadow_present_pte,
  make_leaf_spte,
  make_nonleaf_spte,
  spte_to_pfn,
} from "./spte.js";
import { SPTE_INDEX } from "./tdp_iter.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";

/**
 * Helpers for tests of the page-table code: build a VM and roots by hand in a
 * program's setup (where nothing can yield), inspect trees without ops, and
 * explore schedules with sleep-set reduction.
 */

export interface TestVmOptions {
  /** Kernel preset (default v6.9). */
  readonly kernel?: string;
  readonly features?: Partial<Features>;
  readonly ptes?: number;
  readonly rootLevel?: 4 | 5;
  readonly memslotPages?: number;
  readonly machine?: Partial<MachineConfig>;
  /** Register the page-table invariant checks (default true). */
  readonly checks?: boolean;
  /** The NX huge page mitigation with this recovery ratio (default: off). */
  readonly nxRecoveryRatio?: number;
}

/** Boot the machine and create a VM (call from a program's setup). */
/**
 * The run's env key for feature values that win over the preset and the caller's own (the simulator's
 * --feature): a run configured from outside, whatever VM its scenario builds.
 */
export const FEATURE_OVERRIDES_ENV = "mmu.featureOverrides";

export function makeVm(o: TestVmOptions = {}): Kvm {
  bootMachine(o.machine ?? {});
  const forced = host().env.get(FEATURE_OVERRIDES_ENV) as Partial<Features> | undefined;
  const features = { ...presetByName(o.kernel ?? "v6.9").features, ...o.features, ...forced } as Features;
  const kvm = kvm_create_vm({
    features,
    rootLevel: o.rootLevel ?? 4,
    ptesPerTable: o.ptes ?? 2,
    memslotPages: o.memslotPages,
    nxHugePages: o.nxRecoveryRatio === undefined ? undefined : { recoveryRatio: o.nxRecoveryRatio },
  });
  if (o.checks ?? true) register_page_table_checks(kvm);
  return kvm;
}

/**
 * A TDP root built by hand, as the root allocator would leave it: role of a
 * TDP vCPU, `refcount` references, off the root list (the tests here do not
 * walk roots). Setup-time only.
 */
export function makeRoot(kvm: Kvm, refcount = 1, smm = 0): KvmMmuPage {
  const root = tdp_mmu_alloc_sp(kvm, tdpRootRole(kvm.geometry.rootLevel, smm), 0, null, true);
  root.tdp_mmu_root_count.v = refcount;
  return root;
}

/** A vCPU with `root` loaded (its reference is counted in the root's refcount by the caller). */
export function makeVcpu(kvm: Kvm, root: KvmMmuPage): Vcpu {
  const v = kvm_vcpu_create(kvm);
  v.root = root;
  return v;
}

/**
 * Install, at setup time, a leaf for gfn at `level` in `root`, creating and
 * linking the page tables above it as kvm_tdp_mmu_map would.
 */
export function populate(
  kvm: Kvm,
  root: KvmMmuPage,
  gfn: number,
  level = 1,
  opts: { pfn?: number; accessed?: boolean; writable?: boolean; dirty?: boolean } = {},
): void {
  let sp = root;
  for (let l = root.level; l > level; l--) {
    const sptep = sp.spt[SPTE_INDEX(kvm, gfn, l)];
    if (!is_shadow_present_pte(sptep.v)) {
      const base = gfn - (gfn % pagesPerHpage(kvm.geometry, l));
      const role = ROLE.level.set(root.role.v, l - 1);
      const child = tdp_mmu_alloc_sp(kvm, role, base, sptep, false);
      sptep.v = make_nonleaf_spte(child.pageId);
      ghost_sp_linked(kvm, child);
      kvm.tdp_mmu_pages.v++;
    } else if (is_last_spte(sptep.v, l)) {
      throw new Error(`populate: a huge leaf at level ${l} already maps gfn ${gfn}`);
    }
    sp = kvm.pages.get(spte_to_pfn(sptep.v))!;
  }
  const n = pagesPerHpage(kvm.geometry, level);
  const base = gfn - (gfn % n);
  sp.spt[SPTE_INDEX(kvm, gfn, level)].v = make_leaf_spte({
    pfn: opts.pfn ?? 0x10000 + base,
    level,
    writable: opts.writable ?? true,
    accessed: opts.accessed ?? true,
    dirty: opts.dirty ?? false,
  });
}

export interface LeafView {
  readonly level: number;
  readonly spte: number;
  readonly pfn: number;
}

/** The present leaf mapping gfn in `root`, read without ops (for assertions). */
export function peekLeaf(kvm: Kvm, root: KvmMmuPage, gfn: number): LeafView | null {
  let sp: KvmMmuPage | undefined = root;
  for (let l = root.level; l >= 1 && sp !== undefined; l--) {
    const v = sp.spt[SPTE_INDEX(kvm, gfn, l)].v;
    if (!is_shadow_present_pte(v)) return null;
    if (is_last_spte(v, l)) return { level: l, spte: v, pfn: spte_to_pfn(v) };
    sp = kvm.pages.get(spte_to_pfn(v));
  }
  return null;
}

/** The SPTE word of the present leaf mapping gfn in `root` (no ops), or null. */
export function peekLeafSptep(kvm: Kvm, root: KvmMmuPage, gfn: number): Atomic | null {
  let sp: KvmMmuPage | undefined = root;
  for (let l = root.level; l >= 1 && sp !== undefined; l--) {
    const sptep: Atomic = sp.spt[SPTE_INDEX(kvm, gfn, l)];
    if (!is_shadow_present_pte(sptep.v)) return null;
    if (is_last_spte(sptep.v, l)) return sptep;
    sp = kvm.pages.get(spte_to_pfn(sptep.v));
  }
  return null;
}

/** Every present leaf reachable from `root`: [gfn, level, spte]. */
export function peekLeaves(kvm: Kvm, root: KvmMmuPage): [number, number, number][] {
  const out: [number, number, number][] = [];
  const walk = (sp: KvmMmuPage) => {
    for (let i = 0; i < sp.spt.length; i++) {
      const v = sp.spt[i].v;
      if (!is_shadow_present_pte(v)) continue;
      const gfn = sp.gfn + i * pagesPerHpage(kvm.geometry, sp.level);
      if (is_last_spte(v, sp.level)) out.push([gfn, sp.level, v]);
      else {
        const child = kvm.pages.get(spte_to_pfn(v));
        if (child !== undefined) walk(child);
      }
    }
  };
  walk(root);
  return out;
}

/** Live non-root page tables of the VM. */
export function tablePages(kvm: Kvm): KvmMmuPage[] {
  return [...kvm.pages.values()].filter((p) => !p.isRoot);
}

/** Drive a generator that only makes accesses (no spawn/choose) to completion, at setup time. */
export function drive<R>(g: Gen<R>): R {
  let r = g.next();
  while (!r.done) {
    const y: Yielded = r.value;
    if (y.kind === "spawn" || y.kind === "choose")
      throw new Error(`drive(): cannot handle ${y.kind} at setup`);
    r = g.next(undefined);
  }
  return r.value;
}

// ---- sleep-set exploration ---------------------------------------------------

function writes(op: AccessOp): boolean {
  return op.kind !== "read" && op.kind !== "wait";
}

/** Two accesses that do not commute: same object with a write, or a write to an object the other reads. */
export function dependent(a: AccessOp, b: AccessOp): boolean {
  if (a.obj === b.obj && conflicts(a.kind, b.kind)) return true;
  if (writes(a) && b.objs?.includes(a.obj)) return true;
  if (writes(b) && a.objs?.includes(b.obj)) return true;
  return false;
}

class Redundant extends Error {}

interface TaskNode {
  readonly kind: "task";
  readonly ids: readonly number[];
  readonly ops: ReadonlyMap<number, AccessOp>;
  readonly sleep: ReadonlyMap<number, AccessOp>;
  readonly tried: number[];
}

interface ValueNode {
  readonly kind: "value";
  readonly n: number;
  current: number;
}

type Node = TaskNode | ValueNode;

export interface ExploreOptions extends Omit<RunOptions, "scheduler" | "observer"> {
  readonly maxExecutions?: number;
  readonly stopOnFirst?: boolean;
}

export interface ExploreResult {
  /** Runs that went to the end. */
  readonly executions: number;
  /** Runs cut short because they only repeated an explored trace. */
  readonly pruned: number;
  readonly complete: boolean;
  readonly firstViolation: RunResult | null;
}

/**
 * Stateless depth-first exploration of every schedule up to commuting
 * independent accesses (Godefroid's sleep sets): each Mazurkiewicz trace of the
 * program is run at least once, so every access-level event (WARN, use-after-free,
 * lockdep, leaks at the end) that some schedule produces is found. Checks of the
 * global state between steps see the states of the explored representatives only.
 * `visit` sees every complete run.
 */
export function exploreSleepSets(
  program: Program,
  opts: ExploreOptions = {},
  visit?: (r: RunResult) => void,
): ExploreResult {
  const path: Node[] = [];
  let executions = 0;
  let pruned = 0;
  let firstViolation: RunResult | null = null;
  const max = opts.maxExecutions ?? 1_000_000;

  for (;;) {
    let pos = 0;
    let sleep = new Map<number, AccessOp>();
    let chosenAt: TaskNode | null = null;

    const scheduler: Scheduler = {
      pickTask(enabled: readonly Task[]): Task {
        const depth = pos++;
        let node = path[depth] as TaskNode | undefined;
        if (node === undefined) {
          const ops = new Map<number, AccessOp>();
          for (const t of enabled) ops.set(t.id, t.pending!);
          const pick = enabled.find((t) => !sleep.has(t.id));
          if (pick === undefined) throw new Redundant();
          node = {
            kind: "task",
            ids: enabled.map((t) => t.id),
            ops,
            sleep: new Map(sleep),
            tried: [pick.id],
          };
          path.push(node);
        }
        chosenAt = node;
        const id = node.tried[node.tried.length - 1];
        const t = enabled.find((x) => x.id === id);
        if (t === undefined) throw new Error(`exploreSleepSets: task ${id} not enabled on replay`);
        return t;
      },
      pickValue(n: number): number {
        const depth = pos++;
        let node = path[depth] as ValueNode | undefined;
        if (node === undefined) {
          node = { kind: "value", n, current: 0 };
          path.push(node);
        }
        return node.current;
      },
    };

    const observer: RunObserver = {
      onStep(_index, task, op) {
        let base: Map<number, AccessOp>;
        if (chosenAt !== null) {
          base = new Map(chosenAt.sleep);
          for (const id of chosenAt.tried.slice(0, -1)) base.set(id, chosenAt.ops.get(id)!);
          chosenAt = null;
        } else {
          base = sleep;
          if (base.has(task.id)) throw new Redundant();
        }
        const next = new Map<number, AccessOp>();
        for (const [id, o] of base) if (id !== task.id && !dependent(o, op)) next.set(id, o);
        sleep = next;
      },
    };

    let result: RunResult | null = null;
    try {
      result = runProgram(program, { ...opts, scheduler, observer });
    } catch (e) {
      if (!(e instanceof Redundant)) throw e;
      pruned++;
    }
    if (result !== null) {
      executions++;
      visit?.(result);
      if (result.status === "violation" && firstViolation === null) {
        firstViolation = result;
        if (opts.stopOnFirst) return { executions, pruned, complete: false, firstViolation };
      }
    }
    if (executions + pruned >= max) return { executions, pruned, complete: false, firstViolation };

    // Backtrack to the deepest node with an alternative left.
    for (;;) {
      const node = path[path.length - 1];
      if (node === undefined) return { executions, pruned, complete: true, firstViolation };
      if (node.kind === "value") {
        if (node.current + 1 < node.n) {
          node.current++;
          break;
        }
      } else {
        const next = node.ids.find((id) => !node.sleep.has(id) && !node.tried.includes(id));
        if (next !== undefined) {
          node.tried.push(next);
          break;
        }
      }
      path.pop();
    }
  }
}
