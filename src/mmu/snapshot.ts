import type { Task } from "../engine/task.js";
import type { Machine } from "../kernel/machine.js";
import {
  type AnyLock,
  snapshotLocks,
  snapshotRcu,
  snapshotTasks,
  snapshotWorkqueue,
} from "../kernel/snapshot.js";
import type { WorkStruct } from "../kernel/workqueue.js";
import type { RootState, TraceState } from "../trace/state-schema.js";
import { roleAsId, roleInvalid } from "./role.js";
import { is_last_spte, is_shadow_present_pte, spte_to_pfn } from "./spte.js";
import { freedSps, sp_by_id } from "./tdp_iter.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/**
 * The MMU side of a trace state, and the whole state of a run. Like the kernel snapshots these
 * are observers: they read the model's JS objects without yielding, and change nothing.
 */

/** Where kvm_create_vm() and bootMachine() leave the run's VM and kernel (kvm.ts, machine.ts). */
const KVM_KEY = "mmu.kvm";
const MACHINE_KEY = "kernel.machine";

/** Every page the VM ever allocated, live or freed, in allocation order. */
function allPages(kvm: Kvm): KvmMmuPage[] {
  const seen = new Set<KvmMmuPage>(kvm.pages.values());
  for (const sp of freedSps(kvm)) seen.add(sp);
  return [...seen].sort((a, b) => a.pageId - b.pageId);
}

/**
 * Non-root page tables reachable from `root` through present non-leaf SPTEs, and present leaf
 * SPTEs under it. A freed table still linked from a live one is counted: it is what a walker would
 * reach. Each table is counted once even if two SPTEs name it. It reads sp.spt, which builds the
 * SPTE words of a lazily represented page (compressed.ts, timed runs only): snapshots are for
 * checker runs, whose pages are all materialised.
 */
export function countUnder(kvm: Kvm, root: KvmMmuPage): { pageTables: number; leaves: number } {
  let pageTables = 0;
  let leaves = 0;
  const seen = new Set<KvmMmuPage>([root]);
  const stack = [root];
  while (stack.length > 0) {
    const sp = stack.pop()!;
    for (const a of sp.spt) {
      const spte = a.v;
      if (!is_shadow_present_pte(spte)) continue;
      if (is_last_spte(spte, sp.level)) {
        leaves++;
        continue;
      }
      const child = sp_by_id(kvm, spte_to_pfn(spte));
      if (child === undefined || seen.has(child)) continue;
      seen.add(child);
      pageTables++;
      stack.push(child);
    }
  }
  return { pageTables, leaves };
}

/** The vCPU slots that reference `root`: "vcpuN" for the loaded root, "vcpuN.prev_roots[i]" for a cached one. */
function referencesTo(kvm: Kvm, root: KvmMmuPage): string[] {
  const out: string[] = [];
  for (const v of kvm.vcpus) {
    if (v.root === root) out.push(`vcpu${v.vcpu_id}`);
    v.prev_roots.forEach((p, i) => {
      if (p === root) out.push(`vcpu${v.vcpu_id}.prev_roots[${i}]`);
    });
  }
  return out;
}

/** The era-specific state a root carries besides its role and count. */
function rootFlags(root: KvmMmuPage): string[] {
  const flags: string[] = [];
  if (root.tdp_mmu_scheduled_root_to_zap) flags.push("scheduled_to_zap");
  const w = root.tdp_mmu_async_work;
  if (w?.pending) flags.push("work_queued");
  if (w !== null && w.runningOn !== -1) flags.push("work_running");
  if (root.rcu_head.queued) flags.push("rcu_queued");
  return flags;
}

/** Every root the VM ever allocated, freed ones included, oldest first. */
export function snapshotRoots(kvm: Kvm): RootState[] {
  return allPages(kvm)
    .filter((sp) => sp.isRoot)
    .map((sp) => {
      const role = sp.role.v;
      return {
        name: sp.kobj.name,
        level: sp.level,
        asId: roleAsId(role),
        invalid: roleInvalid(role),
        role,
        refcount: sp.tdp_mmu_root_count.v,
        onList: sp.link.onList,
        freed: sp.kobj.freed !== null,
        ...countUnder(kvm, sp),
        flags: rootFlags(sp),
        heldBy: referencesTo(kvm, sp),
      };
    });
}

/** Non-root page-table pages (what kvm->arch.tdp_mmu_pages counts), live and freed. */
export function snapshotPages(kvm: Kvm): TraceState["pages"] {
  let live = 0;
  let freed = 0;
  for (const sp of allPages(kvm)) {
    if (sp.isRoot) continue;
    if (sp.kobj.freed === null) live++;
    else freed++;
  }
  return { live, freed };
}

/** What an observer of a run can reach: its environment and its tasks (a Runtime is one). */
export interface RunView {
  readonly env: ReadonlyMap<string, unknown>;
  readonly tasks: readonly Task[];
}

/**
 * The state of a run right now: the VM's roots and pages, its locks (and any other lock a task
 * holds), RCU, the zap workqueue and every task. A run without a VM (a kernel-only program) gets
 * empty MMU parts. Call it between steps, with the run's engine active (a pending op's `enabled`
 * may ask it).
 */
export function snapshotRun(run: RunView): TraceState {
  const kvm = run.env.get(KVM_KEY) as Kvm | undefined;
  const m = run.env.get(MACHINE_KEY) as Machine | undefined;
  const locks: AnyLock[] = kvm ? [kvm.mmu_lock, kvm.slots_lock, kvm.tdp_mmu_pages_lock] : [];
  const workqueues: TraceState["workqueues"] = [];
  const wq = kvm?.tdp_mmu_zap_wq ?? null;
  if (kvm && wq !== null) {
    const items: WorkStruct[] = [];
    for (const sp of allPages(kvm)) if (sp.tdp_mmu_async_work !== null) items.push(sp.tdp_mmu_async_work);
    workqueues.push(snapshotWorkqueue(wq, items));
  }
  return {
    roots: kvm ? snapshotRoots(kvm) : [],
    locks: snapshotLocks(run.tasks, locks),
    rcu: m
      ? snapshotRcu(m, run.tasks)
      : { readers: [], pendingCallbacks: [], waiters: [], runningCallbacks: [] },
    workqueues,
    tasks: snapshotTasks(run.tasks),
    pages: kvm ? snapshotPages(kvm) : { live: 0, freed: 0 },
  };
}
