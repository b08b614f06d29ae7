import type { PathEvent, Tag } from "./events.js";
import { Rel } from "./relation.js";

/**
 * The axioms of the Linux-kernel memory model over one candidate execution, computed from the
 * definitions in tools/memory-model/linux-kernel.cat of torvalds/linux (the version with
 * po-unlock-lock-po and rcu-order, blob eb5cc113dd2f), with lock.cat and linux-kernel.bell.
 * Every access a litmus test here can make is marked (there are no plain C accesses), so
 * [Marked] is the identity and the plain-access part of the model (data races,
 * plain-coherence) has nothing to check.
 * Names follow the .cat file; each function's comment says which of its relations it computes.
 */

export interface Ev extends PathEvent {
  /** -1 for an initial write. */
  readonly thread: number;
  /** Position in its thread's program order. */
  readonly index: number;
}

export interface Execution {
  readonly events: readonly Ev[];
  /** For each read, the write it reads from. */
  readonly rf: ReadonlyMap<number, number>;
  /** For each location, its writes in coherence order, the initial write first. */
  readonly co: ReadonlyMap<string, readonly number[]>;
  readonly rmw: readonly (readonly [number, number])[];
  readonly data: readonly (readonly [number, number])[];
  readonly ctrl: readonly (readonly [number, number])[];
}

export type Axiom = "coherence" | "atomic" | "happens-before" | "propagation" | "rcu";

/** The base relations of an execution: po, rf, co, fr, rmw, the dependencies, and event sets. */
export interface Base {
  readonly n: number;
  readonly po: Rel;
  readonly rf: Rel;
  readonly co: Rel;
  readonly fr: Rel;
  readonly rmw: Rel;
  readonly int: Rel;
  readonly ext: Rel;
  readonly poLoc: Rel;
  readonly data: Rel;
  readonly ctrl: Rel;
  /** [S] for the events satisfying `pred`. */
  readonly set: (pred: (e: Ev) => boolean) => Rel;
  readonly tag: (...tags: Tag[]) => Rel;
}

export function baseRelations(x: Execution): Base {
  const n = x.events.length;
  const ev = x.events;
  const po = Rel.where(
    n,
    (i, j) => ev[i].thread >= 0 && ev[i].thread === ev[j].thread && ev[i].index < ev[j].index,
  );
  const sameLoc = (i: number, j: number) => ev[i].loc !== undefined && ev[i].loc === ev[j].loc;
  const rf = Rel.of(
    n,
    [...x.rf].map(([r, w]) => [w, r] as const),
  );
  const co = Rel.empty(n);
  for (const order of x.co.values())
    for (let a = 0; a < order.length; a++)
      for (let b = a + 1; b < order.length; b++) co.add(order[a], order[b]);
  const set = (pred: (e: Ev) => boolean) => Rel.id(n, (i) => pred(ev[i]));
  const int = Rel.where(n, (i, j) => ev[i].thread === ev[j].thread);
  return {
    n,
    po,
    rf,
    co,
    // fr = rf^-1 ; co
    fr: rf.inverse().seq(co),
    rmw: Rel.of(n, x.rmw),
    int,
    ext: Rel.where(n, (i, j) => i !== j).minus(int),
    poLoc: po.inter(Rel.where(n, sameLoc)),
    data: Rel.of(n, x.data),
    ctrl: Rel.of(n, x.ctrl),
    set,
    tag: (...tags: Tag[]) => set((e) => tags.includes(e.tag)),
  };
}

/** coherence: acyclic (po-loc | rf | co | fr), sequential consistency per variable. */
export function coherent(b: Base): boolean {
  return b.poLoc.union(b.rf, b.co, b.fr).acyclic();
}

/** atomic: empty (rmw & (fre ; coe)): no other CPU's write comes between an RMW's read and write. */
export function atomic(b: Base): boolean {
  return b.rmw.inter(b.fr.inter(b.ext).seq(b.co.inter(b.ext))).isEmpty();
}

/** The ordering relations of linux-kernel.cat that hb, pb and rb are built from. */
export interface Orders {
  readonly hb: Rel;
  readonly pb: Rel;
  readonly prop: Rel;
  readonly strongFence: Rel;
}

export function orders(b: Base): Orders {
  const { po, n } = b;
  const M = b.set((e) => e.kind !== "F");
  const R = b.set((e) => e.kind === "R");
  const W = b.set((e) => e.kind === "W");
  const RMW = b.set((e) => e.rmw);
  // lock.cat puts spin_lock()'s read among the acquires and spin_unlock() among the releases.
  const acquire = b.set((e) => e.tag === "acquire" || e.tag === "lkr");
  const release = b.set((e) => e.tag === "release" || e.tag === "ul");
  const fencerel = (...tags: Tag[]) => Rel.seqAll(po, b.tag(...tags), po);
  const poOpt = po.opt();
  const rfe = b.rf.inter(b.ext);
  const rfi = b.rf.inter(b.int);

  // acq-po, po-rel, po-unlock-lock-po: an unlock followed by a lock that reads from it, or by a
  // later lock of the same CPU (of any lock).
  const acqPo = Rel.seqAll(acquire, po, M);
  const poRel = Rel.seqAll(M, po, release);
  const poUnlockLockPo = Rel.seqAll(po, b.tag("ul"), po.union(b.rf), b.tag("lkr"), po);
  // rmb ignores the reads of non-value-returning RMWs (R4rmb); wmb orders writes.
  const r4rmb = R.minus(b.tag("noreturn"));
  const rmb = Rel.seqAll(r4rmb, fencerel("rmb"), r4rmb);
  const wmb = Rel.seqAll(W, fencerel("wmb"), W);
  // mb: smp_mb(), and smp_mb__{before,after}_atomic() next to an RMW, after_spinlock,
  // after_unlock_lock.
  const mb = Rel.seqAll(M, fencerel("mb"), M).union(
    Rel.seqAll(M, fencerel("before-atomic"), RMW, poOpt, M),
    Rel.seqAll(M, poOpt, RMW, fencerel("after-atomic"), M),
    Rel.seqAll(M, poOpt, b.tag("lkw"), fencerel("after-spinlock"), M),
    Rel.seqAll(M, po, b.tag("ul"), b.co.union(po), b.tag("lkw"), fencerel("after-unlock-lock"), M),
  );
  // gp: po ; [Sync-rcu] ; po?
  const gp = Rel.seqAll(po, b.tag("sync-rcu"), poOpt);
  const strongFence = mb.union(gp);
  const nonrwFence = strongFence.union(poRel, acqPo);
  const fence = nonrwFence.union(wmb, rmb);

  // ppo: to-r | to-w | fence | (po-unlock-lock-po & int). No addr dependencies exist here
  // (no pointers), so dep is data, to-r is dep ; rfi and to-w drops its addr ; [Plain] ; wmb term.
  const rwdep = b.data.union(b.ctrl).seq(W);
  const overwrite = b.co.union(b.fr);
  const toW = rwdep.union(overwrite.inter(b.int));
  const toR = b.data.seq(rfi);
  const ppo = toR.union(toW, fence, poUnlockLockPo.inter(b.int));

  // cumul-fence = A-cumul(strong-fence | po-rel) | wmb | po-unlock-lock-po,
  // with A-cumul(r) = rfe? ; r.
  const aCumul = (r: Rel) => rfe.opt().seq(r);
  const cumulFence = aCumul(strongFence.union(poRel)).union(wmb, poUnlockLockPo);
  // prop = (overwrite & ext)? ; cumul-fence* ; rfe?
  const prop = Rel.seqAll(overwrite.inter(b.ext).opt(), cumulFence.star(), rfe.opt());
  // hb = ppo | rfe | ((prop \ id) & int)
  const hb = ppo.union(rfe, prop.minus(Rel.id(n)).inter(b.int));
  // pb = prop ; strong-fence ; hb*
  const pb = Rel.seqAll(prop, strongFence, hb.star());
  return { hb, pb, prop, strongFence };
}

/**
 * rcu-rscs of linux-kernel.bell: each rcu_read_lock() paired with the rcu_read_unlock() that
 * closes it, innermost first, per thread in program order.
 */
export function rcuSections(x: Execution): [number, number][] {
  const pairs: [number, number][] = [];
  const open = new Map<number, number[]>();
  for (const [i, e] of [...x.events.entries()].sort(
    ([, a], [, b]) => a.thread - b.thread || a.index - b.index,
  )) {
    if (e.tag === "rcu-lock") {
      const stack = open.get(e.thread) ?? [];
      stack.push(i);
      open.set(e.thread, stack);
    } else if (e.tag === "rcu-unlock") {
      const lock = open.get(e.thread)?.pop();
      if (lock !== undefined) pairs.push([lock, i]);
    }
  }
  return pairs;
}

/**
 * rb = prop ; rcu-fence ; hb* ; pb*, with rcu-fence = po ; rcu-order ; po?, where rcu-order is the
 * least relation holding grace periods, and sequences of grace periods and read-side critical
 * sections joined by rcu-link with at least as many of the first as of the second
 * (linux-kernel.cat's recursive definition, without SRCU).
 */
export function rcuRb(b: Base, x: Execution, o: Orders): Rel {
  const { po, n } = b;
  const rcuGp = b.tag("sync-rcu");
  const rscsi = Rel.of(n, rcuSections(x)).inverse();
  const hbStar = o.hb.star();
  const pbStar = o.pb.star();
  // rcu-link = po? ; hb* ; pb* ; prop ; po
  const link = Rel.seqAll(po.opt(), hbStar, pbStar, o.prop, po);
  let order = rcuGp.union(Rel.seqAll(rcuGp, link, rscsi), Rel.seqAll(rscsi, link, rcuGp));
  for (;;) {
    const grown = order.union(
      Rel.seqAll(rcuGp, link, order, link, rscsi),
      Rel.seqAll(rscsi, link, order, link, rcuGp),
      Rel.seqAll(order, link, order),
    );
    if (grown.equals(order)) break;
    order = grown;
  }
  const rcuFence = Rel.seqAll(po, order, po.opt());
  return Rel.seqAll(o.prop, rcuFence, hbStar, pbStar);
}

/** The first LKMM axiom the execution violates, in the .cat file's order, or null if it is allowed. */
export function lkmmViolation(x: Execution): Axiom | null {
  const b = baseRelations(x);
  if (!coherent(b)) return "coherence";
  if (!atomic(b)) return "atomic";
  const o = orders(b);
  if (!o.hb.acyclic()) return "happens-before";
  if (!o.pb.acyclic()) return "propagation";
  if (x.events.some((e) => e.tag === "sync-rcu") && !rcuRb(b, x, o).irreflexive()) return "rcu";
  return null;
}
