import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { kfree } from "../kernel/alloc.js";
import { type Atomic, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { KVM_BUG_ON, WARN_ON_ONCE } from "../kernel/warn.js";
import { KVM_RMAP_MANY, type KvmMmuMemoryCache, type KvmRmapHead, type PteListDesc } from "./rmap_context.js";
import { kvm_rmap_get, kvm_rmap_lock, kvm_rmap_unlock } from "./rmap_lock.js";
import type { Kvm } from "./types.js";

/*
 * pte_list_add / pte_list_remove (mmu.c, 6.15 after 9fb13ba6b5ff and
 * 4834eaded91e). Each one locks the rmap as a writer (the caller holds the
 * write mmu_lock), builds the new head word in a local, and publishes it with
 * the unlocking store. Descs reachable from the head are only changed while
 * the bit is held, so a lockless reader that holds the bit sees them frozen;
 * a desc that is not reachable yet (fresh from the cache) is private to the
 * writer and is filled in without shared accesses.
 */

/** kvm_mmu_memory_cache_alloc() (virt/kvm/kvm_main.c): take a zeroed desc from the vCPU's topped-up cache. */
export function kvm_mmu_memory_cache_alloc(cache: KvmMmuMemoryCache, head: KvmRmapHead): PteListDesc {
  // An empty cache is a caller bug; the kernel WARNs and falls back to a GFP_ATOMIC allocation.
  if (!WARN_ON_ONCE(cache.nobjs === 0, "!mc->nobjs")) cache.nobjs--;
  return head.ctx.allocDesc(head);
}

/** mmu_free_pte_list_desc() (mmu.c): kmem_cache_free() of the desc. */
export function* mmu_free_pte_list_desc(desc: PteListDesc): Gen<void> {
  yield* kfree(desc.kobj);
  desc.head.ctx.observer?.descFreed(desc);
}

/** A store to a field of a desc that may be reachable from its rmap. */
function* descStore(desc: PteListDesc, field: Atomic, val: number): Gen<void> {
  yield* WRITE_ONCE(field, val);
  desc.head.ctx.observer?.descWritten(desc, field.name);
}

/** KVM_BUG_ON_DATA_CORRUPTION(): without CONFIG_BUG_ON_DATA_CORRUPTION, a one-time WARN that bugs the VM. */
function KVM_BUG_ON_DATA_CORRUPTION(cond: boolean, kvm: Kvm, what: string): boolean {
  if (cond && !kvm.vm_bugged) KVM_BUG_ON(true, kvm, what);
  return cond;
}

/**
 * pte_list_add() (mmu.c, 6.15: 9fb13ba6b5ff + 4834eaded91e): add `sptep` to
 * the rmap. Returns how many SPTEs the rmap held before.
 */
export const pte_list_add = modelFn(
  "pte_list_add",
  function* (kvm: Kvm, cache: KvmMmuMemoryCache, sptep: Atomic, head: KvmRmapHead): Gen<number> {
    const ctx = head.ctx;
    const ptr = ctx.sptePtr(sptep);
    ctx.observer?.beginUpdate(head);
    const old = yield* kvm_rmap_lock(kvm, head);
    let next: number;
    let count = 0;
    if (old === 0) {
      // Empty: the head word becomes the SPTE pointer itself.
      next = ptr;
    } else if ((old & KVM_RMAP_MANY) === 0) {
      // One SPTE: move it and the new one into a fresh desc (private until published).
      const desc = kvm_mmu_memory_cache_alloc(cache, head);
      desc.sptes[0].v = old;
      desc.sptes[1].v = ptr;
      desc.spte_count.v = 2;
      desc.tail_count.v = 0;
      next = desc.ptr | KVM_RMAP_MANY;
      count = 1;
    } else {
      let desc = ctx.descAt(old & ~KVM_RMAP_MANY)!;
      const tail = yield* READ_ONCE(desc.tail_count);
      const n = yield* READ_ONCE(desc.spte_count);
      count = tail + n;
      if (n === ctx.pteListExt) {
        // The head desc is full; tail descs stay full, so a new head desc goes in front.
        desc = kvm_mmu_memory_cache_alloc(cache, head);
        desc.more.v = old & ~KVM_RMAP_MANY;
        desc.spte_count.v = 1;
        desc.tail_count.v = count;
        desc.sptes[0].v = ptr;
        next = desc.ptr | KVM_RMAP_MANY;
      } else {
        // Room in the head desc: it is reachable, so this store happens under the bit.
        yield* descStore(desc, desc.sptes[n], ptr);
        yield* descStore(desc, desc.spte_count, n + 1);
        next = old;
      }
    }
    yield* kvm_rmap_unlock(kvm, head, next);
    ctx.observer?.endUpdate(head, (s) => s.add(ptr));
    return count;
  },
);

/**
 * pte_list_desc_remove_entry() (mmu.c, 6.15: 9fb13ba6b5ff): drop slot `i` of
 * `desc` by moving the head desc's last SPTE into it, so tail descs stay full;
 * free the head desc if that emptied it. Edits the caller's head word in `val`.
 */
function* pte_list_desc_remove_entry(kvm: Kvm, val: { v: number }, desc: PteListDesc, i: number): Gen<void> {
  const ctx = desc.head.ctx;
  const headDesc = ctx.descAt(val.v & ~KVM_RMAP_MANY)!;
  const j = (yield* READ_ONCE(headDesc.spte_count)) - 1;
  // The head desc is never empty: it is freed by this very path as soon as it would be.
  if (KVM_BUG_ON_DATA_CORRUPTION(j < 0, kvm, "j < 0")) return;
  const last = yield* READ_ONCE(headDesc.sptes[j]);
  yield* descStore(desc, desc.sptes[i], last);
  yield* descStore(headDesc, headDesc.sptes[j], 0);
  yield* descStore(headDesc, headDesc.spte_count, j);
  if (j !== 0) return;
  // The head desc is now empty: the next desc becomes the head, or the rmap becomes empty.
  const more = yield* READ_ONCE(headDesc.more);
  val.v = more === 0 ? 0 : more | KVM_RMAP_MANY;
  yield* mmu_free_pte_list_desc(headDesc);
}

/** pte_list_remove() (mmu.c, 6.15: 9fb13ba6b5ff + 4834eaded91e): remove `sptep` from the rmap. */
export const pte_list_remove = modelFn(
  "pte_list_remove",
  function* (kvm: Kvm, sptep: Atomic, head: KvmRmapHead): Gen<void> {
    const ctx = head.ctx;
    const ptr = ctx.sptePtr(sptep);
    ctx.observer?.beginUpdate(head);
    const val = { v: yield* kvm_rmap_lock(kvm, head) };
    if (!KVM_BUG_ON_DATA_CORRUPTION(val.v === 0, kvm, "!rmap_val")) {
      if ((val.v & KVM_RMAP_MANY) === 0) {
        if (!KVM_BUG_ON_DATA_CORRUPTION(val.v !== ptr, kvm, "rmap_val != spte")) val.v = 0;
      } else {
        let found = false;
        let desc = ctx.descAt(val.v & ~KVM_RMAP_MANY);
        while (desc !== null && !found) {
          const n = yield* READ_ONCE(desc.spte_count);
          for (let i = 0; i < n; i++) {
            if ((yield* READ_ONCE(desc.sptes[i])) === ptr) {
              yield* pte_list_desc_remove_entry(kvm, val, desc, i);
              found = true;
              break;
            }
          }
          if (!found) desc = ctx.descAt(yield* READ_ONCE(desc.more));
        }
        KVM_BUG_ON_DATA_CORRUPTION(!found, kvm, "spte not in its rmap");
      }
    }
    yield* kvm_rmap_unlock(kvm, head, val.v);
    ctx.observer?.endUpdate(head, (s) => s.delete(ptr));
  },
);

/** pte_list_count() (mmu.c, 6.15): how many SPTEs the rmap holds (debug/stat use, no lock). */
export function* pte_list_count(head: KvmRmapHead): Gen<number> {
  const val = yield* kvm_rmap_get(head);
  if (val === 0) return 0;
  if ((val & KVM_RMAP_MANY) === 0) return 1;
  const desc = head.ctx.descAt(val & ~KVM_RMAP_MANY)!;
  const tail = yield* READ_ONCE(desc.tail_count);
  const n = yield* READ_ONCE(desc.spte_count);
  return tail + n;
}
