import { host } from "../../engine/host.js";
import type { Task } from "../../engine/task.js";
import type { Atomic } from "../../kernel/atomic.js";
import { testBit } from "../../kernel/atomic.js";
import { ktask } from "../../kernel/machine.js";
import {
  KVM_RMAP_LOCKED,
  type KvmRmapHead,
  type PteListDesc,
  peekChain,
  type RmapContext,
  type RmapObserver,
} from "../rmap_context.js";
import { spte_ad_enabled } from "../rmap_spte.js";
import { is_shadow_present_pte, SPTE_BIT } from "../spte.js";

/**
 * Invariant 19 (kernel-protocol.md §5, 6.15 rmap lock), checked after every step.
 * Each sub-rule has its own name so a mutation's report says which rule broke.
 */
export const INV19 = {
  /** Two tasks held one rmap's KVM_RMAP_LOCKED bit at once. */
  mutex: "inv19-rmap-lock-mutex",
  /** The chain changed without the write mmu_lock and the bit (or an empty rmap under the write lock). */
  unlockedWrite: "inv19-rmap-lock-unlocked-write",
  /** A read-only locker stored back something other than the value it locked. */
  readonlyRestore: "inv19-rmap-lock-readonly-restore",
  /** An empty rmap carries KVM_RMAP_LOCKED. */
  emptyLocked: "inv19-rmap-lock-empty-locked",
  /** A desc was freed while another task held the bit, or a settled rmap reaches a freed desc. */
  descFreed: "inv19-rmap-lock-desc-freed",
  /** An SPTE added and never removed is no longer reachable from its rmap. */
  lostEntry: "inv19-rmap-lock-lost-entry",
  /** An SPTE removed (or never added) is reachable from an rmap. */
  staleEntry: "inv19-rmap-lock-stale-entry",
  /** A Dirty bit the CPU set on a present SPTE is gone (non-atomic A-bit clear). */
  lostDirty: "inv19-rmap-lock-lost-dirty",
} as const;

interface Holder {
  readonly task: Task;
  /** Locked without the write mmu_lock: a lockless (read-only) locker. */
  readonly readonly: boolean;
  /** The head word it locked, without the bit. */
  readonly saw: number;
}

type Event =
  | { kind: "lock"; head: KvmRmapHead; task: Task; other: Holder | undefined }
  | {
      kind: "store";
      head: KvmRmapHead;
      task: Task;
      writeLocked: boolean;
      holder: Holder | undefined;
      before: number;
      after: number;
    }
  | {
      kind: "desc";
      op: "write" | "free";
      what: string;
      desc: PteListDesc;
      task: Task;
      writeLocked: boolean;
      holder: Holder | undefined;
    };

/**
 * Ghost state of the rmap world and the invariant-19 checks over it. The model
 * reports what it did through RmapObserver; the checks compare that with the
 * lock state and the chains as they are in memory.
 */
export class RmapGhost implements RmapObserver {
  readonly holders = new Map<KvmRmapHead, Holder>();
  /** SPTE ptrs each rmap should hold, by the writers' completed updates. */
  readonly expected = new Map<KvmRmapHead, Set<number>>();
  /** Rmaps a writer is in the middle of updating (their chains are legitimately in flux). */
  readonly pending = new Map<KvmRmapHead, Task>();
  /** SPTEs whose Dirty bit the CPU set since KVM last wrote them. */
  readonly dirty = new Set<Atomic>();
  private events: Event[] = [];
  private readonly reported = new Set<string>();

  constructor(readonly ctx: RmapContext) {}

  private writeLocked(): boolean {
    const mmuLock = this.ctx.kvm.mmu_lock;
    return ktask().held.some((h) => h.lock.id === mmuLock.id && h.mode === "write");
  }

  // ---- RmapObserver ------------------------------------------------------

  locked(head: KvmRmapHead, saw: number): void {
    const task = host().current;
    this.events.push({ kind: "lock", head, task, other: this.holders.get(head) });
    this.holders.set(head, { task, readonly: !this.writeLocked(), saw });
  }

  headStored(head: KvmRmapHead, before: number, after: number): void {
    const task = host().current;
    const holder = this.holders.get(head);
    this.events.push({ kind: "store", head, task, writeLocked: this.writeLocked(), holder, before, after });
    if (holder !== undefined && holder.task === task) this.holders.delete(head);
  }

  descWritten(desc: PteListDesc, field: string): void {
    this.descEvent("write", desc, field);
  }

  descFreed(desc: PteListDesc): void {
    this.descEvent("free", desc, "kfree");
  }

  private descEvent(op: "write" | "free", desc: PteListDesc, what: string): void {
    this.events.push({
      kind: "desc",
      op,
      what,
      desc,
      task: host().current,
      writeLocked: this.writeLocked(),
      holder: this.holders.get(desc.head),
    });
  }

  beginUpdate(head: KvmRmapHead): void {
    this.pending.set(head, host().current);
  }

  endUpdate(head: KvmRmapHead, apply: (expected: Set<number>) => void): void {
    apply(this.expectedOf(head));
    this.pending.delete(head);
  }

  dirtySet(sptep: Atomic): void {
    this.dirty.add(sptep);
  }

  spteReset(sptep: Atomic): void {
    this.dirty.delete(sptep);
  }

  // ---- checks -------------------------------------------------------------

  expectedOf(head: KvmRmapHead): Set<number> {
    let s = this.expected.get(head);
    if (s === undefined) {
      s = new Set();
      this.expected.set(head, s);
    }
    return s;
  }

  private fail(invariant: string, key: string, message: string, details: Record<string, unknown>): void {
    const k = `${invariant}:${key}`;
    if (this.reported.has(k)) return;
    this.reported.add(k);
    host().report({ invariant, message, details });
  }

  /** Everything after one step: what the step did, then the state it left. */
  check(): void {
    const events = this.events;
    this.events = [];
    // Settled-state checks first: they name the damage (a lost entry, a lost
    // D bit); the per-event rule checks below name its cause.
    this.checkChains();
    this.checkDirty();
    for (const e of events) this.checkEvent(e);
  }

  private checkChains(): void {
    const ctx = this.ctx;
    for (const head of ctx.heads) {
      if (head.val.v === KVM_RMAP_LOCKED) {
        this.fail(INV19.emptyLocked, head.name, `${head.name} is empty but KVM_RMAP_LOCKED is set`, {
          head: head.name,
          holder: this.holders.get(head)?.task.name,
        });
      }
      if (this.pending.has(head)) continue;
      const chain = peekChain(head);
      if (chain.freed !== null) {
        this.fail(
          INV19.descFreed,
          head.name,
          `${head.name} reaches ${chain.freed.kobj.name}, which was freed`,
          {
            head: head.name,
            desc: chain.freed.kobj.name,
            freedBy: chain.freed.kobj.freed,
          },
        );
        continue;
      }
      const want = this.expectedOf(head);
      const have = new Set(chain.sptes);
      for (const p of want) {
        if (!have.has(p)) {
          this.fail(
            INV19.lostEntry,
            `${head.name}:${p}`,
            `${ctx.describePtr(p)} was added to ${head.name} and never removed, but the rmap no longer reaches it`,
            { head: head.name, spte: ctx.describePtr(p), chain: chain.sptes.map((x) => ctx.describePtr(x)) },
          );
        }
      }
      for (const p of have) {
        if (!want.has(p)) {
          this.fail(
            INV19.staleEntry,
            `${head.name}:${p}`,
            `${head.name} reaches ${ctx.describePtr(p)}, which is not (or no longer) in it`,
            { head: head.name, spte: ctx.describePtr(p), chain: chain.sptes.map((x) => ctx.describePtr(x)) },
          );
        }
      }
    }
  }

  private checkDirty(): void {
    for (const sptep of this.dirty) {
      const v = sptep.v;
      if (is_shadow_present_pte(v) && spte_ad_enabled(v) && !testBit(v, SPTE_BIT.dirty)) {
        this.fail(INV19.lostDirty, sptep.name, `the CPU set D in ${sptep.name}, and it is now clear`, {
          spte: sptep.name,
          value: v,
        });
      }
    }
  }

  private checkEvent(e: Event): void {
    const ctx = this.ctx;
    const requireBit = ctx.kvm.features.locklessAging;
    if (e.kind === "lock") {
      if (e.other !== undefined && e.other.task !== e.task) {
        this.fail(
          INV19.mutex,
          `${e.head.name}:${e.other.task.name}:${e.task.name}`,
          `${e.task.name} locked ${e.head.name} while ${e.other.task.name} held it`,
          { head: e.head.name, tasks: [e.other.task.name, e.task.name] },
        );
      }
      return;
    }
    if (e.kind === "store") {
      const { head, task, holder, before, after } = e;
      const what = `${task.name} stored ${ctx.describePtr(after)} to ${head.name} (was ${ctx.describePtr(before)})`;
      const details = { head: head.name, task: task.name, before, after, holder: holder?.task.name };
      const key = `${head.name}:store:${task.name}:${before}->${after}`;
      if (holder !== undefined && holder.task !== task) {
        this.fail(INV19.unlockedWrite, key, `${what} while ${holder.task.name} held the bit`, details);
      } else if (holder?.readonly) {
        if (after !== holder.saw) {
          this.fail(
            INV19.readonlyRestore,
            key,
            `${what}, but it locked the rmap read-only at ${ctx.describePtr(holder.saw)}`,
            details,
          );
        }
      } else if (holder === undefined && (before & ~KVM_RMAP_LOCKED) !== (after & ~KVM_RMAP_LOCKED)) {
        // No one held the bit: only the write-lock holder, and only on an empty rmap (or before 6.15).
        const ok = e.writeLocked && (before === 0 || !requireBit);
        if (!ok) {
          const why = e.writeLocked ? "without the rmap bit" : "without the write mmu_lock";
          this.fail(INV19.unlockedWrite, key, `${what} ${why}`, details);
        }
      }
      return;
    }
    const { desc, task, holder } = e;
    const head = desc.head;
    const details = { head: head.name, desc: desc.kobj.name, task: task.name, holder: holder?.task.name };
    const act = e.op === "free" ? `freed ${desc.kobj.name}` : `wrote ${e.what}`;
    const key = `${head.name}:${task.name}:${act}`;
    if (holder !== undefined && holder.task !== task) {
      const name = e.op === "free" ? INV19.descFreed : INV19.unlockedWrite;
      this.fail(
        name,
        key,
        `${task.name} ${act} of ${head.name} while ${holder.task.name} held the bit`,
        details,
      );
    } else if (!e.writeLocked) {
      this.fail(
        INV19.unlockedWrite,
        key,
        `${task.name} ${act} of ${head.name} without the write mmu_lock`,
        details,
      );
    } else if (requireBit && holder === undefined) {
      this.fail(
        INV19.unlockedWrite,
        key,
        `${task.name} ${act} of ${head.name} without the rmap bit`,
        details,
      );
    }
  }
}

/** Install invariant 19 for this rmap world: the ghost observer and the after-step check. */
export function installRmapInvariants(ctx: RmapContext): RmapGhost {
  const g = new RmapGhost(ctx);
  ctx.observer = g;
  host().addCheck("inv19-rmap-lock", () => g.check());
  return g;
}
