import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import type { Atomic } from "../kernel/atomic.js";
import { bootMachine, type MachineConfig } from "../kernel/machine.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import type { Features } from "./features.js";
import { installRmapInvariants, type RmapGhost } from "./invariants/rmap.js";
import { kvm_create_vm } from "./kvm.js";
import { presetByName } from "./presets.js";
import { pte_list_add } from "./pte_list.js";
import {
  type KvmMmuMemoryCache,
  type KvmRmapHead,
  kvm_mmu_topup_memory_cache,
  RmapContext,
} from "./rmap_context.js";
import { mmu_spte_set, spteWithAdDisabled } from "./rmap_spte.js";
import { make_leaf_spte } from "./spte.js";
import type { Kvm } from "./types.js";

/**
 * Small concurrent programs over one VM's rmaps, for the checker and tests: a
 * setup task fills the rmaps under the write mmu_lock using the real
 * pte_list_add (no choice points while it runs alone), then spawns the tasks
 * under test.
 */

export interface RmapWorld {
  readonly kvm: Kvm;
  readonly ctx: RmapContext;
  readonly ghost: RmapGhost;
  readonly heads: KvmRmapHead[];
  readonly sptes: Atomic[];
  /** A pte_list_desc cache per writer, topped up generously. */
  cache(): KvmMmuMemoryCache;
}

export interface RmapTask {
  readonly name: string;
  readonly body: (w: RmapWorld) => Gen<void>;
}

export interface RmapScenario {
  /** Kernel preset (default v6.15). */
  readonly kernel?: string;
  readonly features?: Partial<Features>;
  readonly machine?: Partial<MachineConfig>;
  readonly pteListExt?: number;
  readonly heads?: number;
  readonly sptes?: number;
  /** Initial contents: for each head, the indices of the SPTEs it maps (set present first). */
  readonly initial?: readonly (readonly number[])[];
  /** Make these initial SPTEs A/D-disabled leaves. */
  readonly adDisabled?: readonly number[];
  readonly tasks: readonly RmapTask[];
  /** Runs in setup after the world exists: e.g. to look at it after the run. */
  readonly onWorld?: (w: RmapWorld) => void;
}

/** A present, writable, accessed 4K leaf for SPTE `i`. */
export function leafFor(i: number, writable = true): number {
  return make_leaf_spte({ pfn: 0x100 + i, level: 1, writable, accessed: true });
}

export function rmapProgram(s: RmapScenario): Program {
  return ({ spawn }) => {
    bootMachine(s.machine ?? {});
    const features = { ...presetByName(s.kernel ?? "v6.15").features, ...s.features };
    const kvm = kvm_create_vm({ features, ptesPerTable: 2 });
    const ctx = new RmapContext(kvm, { pteListExt: s.pteListExt });
    const ghost = installRmapInvariants(ctx);
    const heads: KvmRmapHead[] = [];
    for (let i = 0; i < (s.heads ?? 1); i++) heads.push(ctx.newHead(`rmap${i}`));
    const sptes: Atomic[] = [];
    for (let i = 0; i < (s.sptes ?? 0); i++) sptes.push(ctx.newSpte(`spte${i}`));
    let caches = 0;
    const world: RmapWorld = {
      kvm,
      ctx,
      ghost,
      heads,
      sptes,
      cache: () => {
        const c: KvmMmuMemoryCache = { name: `cache${caches++}`, nobjs: 0 };
        kvm_mmu_topup_memory_cache(c, 8);
        return c;
      },
    };
    s.onWorld?.(world);
    const adOff = new Set(s.adDisabled ?? []);
    spawn(
      "setup",
      (function* (): Gen<void> {
        if (s.initial !== undefined) {
          const cache = world.cache();
          yield* write_lock(kvm.mmu_lock);
          for (let h = 0; h < s.initial.length; h++) {
            for (const i of s.initial[h]) {
              // A/D-disabled leaves are read-only here: aging them exercises access tracking alone.
              const v = adOff.has(i) ? spteWithAdDisabled(leafFor(i, false)) : leafFor(i);
              yield* mmu_spte_set(ctx, sptes[i], v);
              yield* pte_list_add(kvm, cache, sptes[i], heads[h]);
            }
          }
          yield* write_unlock(kvm.mmu_lock);
        }
        for (const t of s.tasks) yield { kind: "spawn", name: t.name, body: t.body(world) };
      })(),
    );
  };
}

/** What an exploration of every schedule found. */
export interface Exploration {
  readonly executions: number;
  readonly complete: boolean;
  /** Executions reporting each invariant. */
  readonly counts: ReadonlyMap<string, number>;
  /** The first execution reporting each invariant. */
  readonly examples: ReadonlyMap<string, RunResult>;
  /** The invariant of each execution's first violation, counted. */
  readonly firsts: ReadonlyMap<string, number>;
}

/**
 * Every schedule of `program` (enumerateAll). With `stopOnViolation` (the
 * default) each run ends at its first violation, which also prunes the tree.
 */
export function exploreAll(
  program: Program,
  opts: { overrides?: ReadonlyMap<string, Function>; stopOnViolation?: boolean; maxExecutions?: number } = {},
): Exploration {
  const counts = new Map<string, number>();
  const firsts = new Map<string, number>();
  const examples = new Map<string, RunResult>();
  const r = enumerateAll(
    program,
    {
      overrides: opts.overrides,
      stopOnViolation: opts.stopOnViolation ?? true,
      maxExecutions: opts.maxExecutions,
    },
    (res) => {
      if (res.violations.length === 0) return;
      const f = res.violations[0].invariant;
      firsts.set(f, (firsts.get(f) ?? 0) + 1);
      for (const inv of new Set(res.violations.map((v) => v.invariant))) {
        counts.set(inv, (counts.get(inv) ?? 0) + 1);
        if (!examples.has(inv)) examples.set(inv, res);
      }
    },
  );
  return { executions: r.executions, complete: r.complete, counts, examples, firsts };
}

class Found extends Error {
  constructor(readonly result: RunResult) {
    super("found");
  }
}

/**
 * Depth-first search over schedules for a run satisfying `want`, with every
 * violation of a run kept (runs do not stop at the first one): shows the
 * consequence of a broken rule, not only the rule. Null if none within `max`.
 */
export function searchSchedules(
  program: Program,
  want: (r: RunResult) => boolean,
  opts: { overrides?: ReadonlyMap<string, Function>; maxExecutions?: number } = {},
): { result: RunResult | null; executions: number } {
  let executions = 0;
  try {
    const r = enumerateAll(
      program,
      { overrides: opts.overrides, stopOnViolation: false, maxExecutions: opts.maxExecutions ?? 50_000 },
      (res) => {
        executions++;
        if (want(res)) throw new Found(res);
      },
    );
    return { result: null, executions: r.executions };
  } catch (e) {
    if (e instanceof Found) return { result: e.result, executions };
    throw e;
  }
}
