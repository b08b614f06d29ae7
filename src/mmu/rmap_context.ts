import { host } from "../engine/host.js";
import { type KObject, kzalloc } from "../kernel/alloc.js";
import { Atomic } from "../kernel/atomic.js";
import type { Kvm } from "./types.js";

/**
 * Shadow-MMU reverse maps (arch/x86/kvm/mmu/mmu.c, 6.15). A gfn's rmap head is
 * one word: 0 (empty), a pointer to the single SPTE that maps the gfn, or a
 * pointer to a chain of pte_list_desc blocks with bit 0 set. From 6.15 bit 1 is
 * a lock bit, so lockless agers can pin the chain while they walk it.
 *
 * C pointers are modelled as numeric ids, multiples of 4 so bits 0-1 stay free,
 * handed out by an RmapContext that also remembers what each id names. Ids are
 * never reused, so a stale pointer always resolves to the (maybe freed) object
 * it used to name, and touching a freed desc is a use-after-free report.
 */

/** KVM_RMAP_MANY (bit 0 of rmap_head->val): the rest of the word points at a pte_list_desc. */
export const KVM_RMAP_MANY = 1;
/** KVM_RMAP_LOCKED (bit 1, 6.15 4834eaded91e): the chain is pinned by a locker. */
export const KVM_RMAP_LOCKED = 2;
/** Bits of the head word that are flags rather than pointer bits. */
export const KVM_RMAP_FLAGS = KVM_RMAP_MANY | KVM_RMAP_LOCKED;
/** PTE_LIST_EXT in the kernel: 14 sptes per desc (a desc is 128 bytes on 64-bit). */
export const KERNEL_PTE_LIST_EXT = 14;
/** The model's default: 3, so chains of several descs form with a handful of SPTEs. */
export const PTE_LIST_EXT_DEFAULT = 3;

/** struct kvm_rmap_head: `val` is an atomic_long_t from 6.15 (a plain unsigned long before). */
export class KvmRmapHead {
  readonly val: Atomic;
  constructor(
    readonly ctx: RmapContext,
    readonly name: string,
    owner: KObject | null,
  ) {
    this.val = new Atomic(`${name}.val`, 0, owner);
  }
}

/**
 * struct pte_list_desc. Every field is a word owned by the desc's allocation,
 * so an access after mmu_free_pte_list_desc() is reported as a use-after-free.
 * The head desc (the one the rmap word points at) is the only one that may be
 * partly full; tail descs are always full, and tail_count counts the sptes in
 * all descs after this one.
 */
export interface PteListDesc {
  /** The pointer value a head word or a `more` field holds for this desc. */
  readonly ptr: number;
  readonly kobj: KObject;
  /** Next desc of the chain (a desc ptr) or 0. */
  readonly more: Atomic;
  readonly spte_count: Atomic;
  readonly tail_count: Atomic;
  /** SPTE pointers; unused slots hold 0 (NULL). */
  readonly sptes: readonly Atomic[];
  /** Ghost: the rmap this desc was allocated for (descs never move between rmaps). */
  readonly head: KvmRmapHead;
}

/** struct kvm_mmu_memory_cache for pte_list_desc objects: topped up before mmu_lock is taken. */
export interface KvmMmuMemoryCache {
  readonly name: string;
  nobjs: number;
}

/** kvm_mmu_topup_memory_cache(): fill the cache while sleeping is allowed (task-local). */
export function kvm_mmu_topup_memory_cache(cache: KvmMmuMemoryCache, min: number): void {
  if (cache.nobjs < min) cache.nobjs = min;
}

/**
 * Hooks through which the rmap model tells the invariant-19 checker what it
 * did. Only ghost bookkeeping: nothing the model reads back.
 */
export interface RmapObserver {
  /** A locker's try_cmpxchg set KVM_RMAP_LOCKED; `saw` is the value without the bit. */
  locked(head: KvmRmapHead, saw: number): void;
  /** A store to the head word replaced `before` with `after`. */
  headStored(head: KvmRmapHead, before: number, after: number): void;
  /** A store to a field of a desc already reachable from its rmap. */
  descWritten(desc: PteListDesc, field: string): void;
  descFreed(desc: PteListDesc): void;
  /** A writer starts changing the rmap's contents (pte_list_add / remove / zap_all). */
  beginUpdate(head: KvmRmapHead): void;
  /** The writer published its change; `apply` edits the set of SPTE ptrs the rmap should hold. */
  endUpdate(head: KvmRmapHead, apply: (expected: Set<number>) => void): void;
  /** The CPU set the Dirty bit of this SPTE (hardware A/D assist). */
  dirtySet(sptep: Atomic): void;
  /** The SPTE got a new value from KVM (set or cleared): forget hardware dirty state. */
  spteReset(sptep: Atomic): void;
}

export interface RmapContextOptions {
  /** Sptes per desc (PTE_LIST_EXT); at least 2. */
  readonly pteListExt?: number;
  /** Allocation owning the rmap heads (the memslot's rmap array); none by default. */
  readonly owner?: KObject | null;
}

const FIRST_PTR = 0x100;
const PTR_STEP = 4;

/**
 * One VM's rmap world for a run: the pointer registry (SPTE words and descs by
 * id), the heads, the desc geometry, and the observer the invariants install.
 */
export class RmapContext {
  readonly kvm: Kvm;
  readonly pteListExt: number;
  readonly heads: KvmRmapHead[] = [];
  /** ptr -> SPTE word. */
  readonly sptes = new Map<number, Atomic>();
  /** ptr -> desc (kept after free: a stale pointer still names it). */
  readonly descs = new Map<number, PteListDesc>();
  observer: RmapObserver | null = null;
  private readonly ptrOf = new Map<Atomic, number>();
  private readonly owner: KObject | null;
  private nextPtr = FIRST_PTR;

  constructor(kvm: Kvm, opts: RmapContextOptions = {}) {
    const ext = opts.pteListExt ?? PTE_LIST_EXT_DEFAULT;
    if (!Number.isInteger(ext) || ext < 2 || ext > KERNEL_PTE_LIST_EXT) {
      throw new RangeError(`pteListExt must be an integer in [2, ${KERNEL_PTE_LIST_EXT}], got ${ext}`);
    }
    this.kvm = kvm;
    this.pteListExt = ext;
    this.owner = opts.owner ?? null;
    host().env.set(RMAP_ENV_KEY, this);
  }

  private allocPtr(): number {
    const p = this.nextPtr;
    this.nextPtr += PTR_STEP;
    return p;
  }

  /** A new, empty rmap head (slot->arch.rmap[level][idx]). */
  newHead(name: string): KvmRmapHead {
    const h = new KvmRmapHead(this, name, this.owner);
    this.heads.push(h);
    return h;
  }

  /** A new SPTE word, registered so rmaps can point at it. */
  newSpte(name: string, init = 0, owner: KObject | null = null): Atomic {
    const a = new Atomic(name, init, owner);
    this.sptePtr(a);
    return a;
  }

  /** The pointer value of an SPTE word (registers words created elsewhere, e.g. sp->spt[i]). */
  sptePtr(sptep: Atomic): number {
    let p = this.ptrOf.get(sptep);
    if (p === undefined) {
      p = this.allocPtr();
      this.ptrOf.set(sptep, p);
      this.sptes.set(p, sptep);
    }
    return p;
  }

  /** Dereference an SPTE pointer (0 is NULL). */
  spteAt(ptr: number): Atomic | null {
    if (ptr === 0) return null;
    const a = this.sptes.get(ptr);
    if (a === undefined) throw new Error(`rmap: ${ptr} is not an SPTE pointer`);
    return a;
  }

  /** Dereference a desc pointer (flag bits already stripped; 0 is NULL). */
  descAt(ptr: number): PteListDesc | null {
    if (ptr === 0) return null;
    const d = this.descs.get(ptr);
    if (d === undefined) throw new Error(`rmap: ${ptr} is not a pte_list_desc pointer`);
    return d;
  }

  /** A zeroed desc from the slab (kmem_cache_zalloc of pte_list_desc_cache). Not yet visible to anyone. */
  allocDesc(head: KvmRmapHead): PteListDesc {
    const ptr = this.allocPtr();
    const kobj = kzalloc("pte_list_desc", `desc@${ptr.toString(16)}`);
    const sptes: Atomic[] = [];
    for (let i = 0; i < this.pteListExt; i++) sptes.push(new Atomic(`sptes[${i}]`, 0, kobj));
    const d: PteListDesc = {
      ptr,
      kobj,
      more: new Atomic("more", 0, kobj),
      spte_count: new Atomic("spte_count", 0, kobj),
      tail_count: new Atomic("tail_count", 0, kobj),
      sptes,
      head,
    };
    this.descs.set(ptr, d);
    return d;
  }

  /** Name of the thing a pointer value names, for messages. */
  describePtr(ptr: number): string {
    if (ptr === 0) return "NULL";
    const base = ptr & ~KVM_RMAP_FLAGS;
    if ((ptr & KVM_RMAP_MANY) !== 0) return `${this.descs.get(base)?.kobj.name ?? `?${base}`}|MANY`;
    return this.sptes.get(base)?.name ?? `?${base}`;
  }
}

const RMAP_ENV_KEY = "mmu.rmap";

/** The rmap context of the running program, if it made one. */
export function rmapContext(): RmapContext | undefined {
  return host().env.get(RMAP_ENV_KEY) as RmapContext | undefined;
}

/** What a chain holds right now, read without ops (for checks and tests, never for the model). */
export interface ChainSnapshot {
  /** SPTE pointers in walk order. */
  readonly sptes: number[];
  /** Descs in walk order (head desc first). */
  readonly descs: PteListDesc[];
  /** First freed desc the chain reaches, if any. */
  readonly freed: PteListDesc | null;
  readonly locked: boolean;
}

/** Peek at a head's chain as a debugger would; stops at a freed desc. */
export function peekChain(head: KvmRmapHead): ChainSnapshot {
  const ctx = head.ctx;
  const raw = head.val.v;
  const locked = (raw & KVM_RMAP_LOCKED) !== 0;
  const val = raw & ~KVM_RMAP_LOCKED;
  const sptes: number[] = [];
  const descs: PteListDesc[] = [];
  if (val === 0) return { sptes, descs, freed: null, locked };
  if ((val & KVM_RMAP_MANY) === 0) return { sptes: [val], descs, freed: null, locked };
  let d = ctx.descAt(val & ~KVM_RMAP_MANY);
  while (d !== null) {
    if (d.kobj.freed !== null) return { sptes, descs, freed: d, locked };
    if (descs.includes(d)) throw new Error(`rmap: cycle in the chain of ${head.name}`);
    descs.push(d);
    const n = d.spte_count.v;
    for (let i = 0; i < n && i < d.sptes.length; i++) sptes.push(d.sptes[i].v);
    d = ctx.descAt(d.more.v);
  }
  return { sptes, descs, freed: null, locked };
}
