import type { Host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { RcuKind } from "./parse.js";

/**
 * RCU for the operational models (sc, tso) of litmus tests: the grace-period guarantee, that a
 * synchronize_rcu() returns only after every read-side critical section that was running when it
 * started has ended (Documentation/RCU/whatisRCU.rst). A non-preemptible kernel's rcu_read_lock()
 * and rcu_read_unlock() emit no instruction, so they order nothing on their own; the guarantee
 * comes from the grace period, which on x86 means the reader's CPU passed a quiescent state (a
 * context switch: a full barrier) before the grace period ends. Under TSO, therefore, a reader's
 * section counts as ended only once the stores it buffered before rcu_read_unlock() reached
 * memory, every other CPU's stores buffered when the grace period started reach memory before it
 * ends, and synchronize_rcu() is itself a full barrier (it drains its own buffer).
 */
export class OperationalRcu {
  private readonly depth: number[];
  /** Per thread, the stores it had buffered when each of its outermost sections ended. */
  private readonly exits: number[][];
  private readonly objs: number[];

  constructor(
    h: Host,
    threads: number,
    /** Under TSO: stores a thread has put in its buffer, and stores drained from it, so far. */
    private readonly buffers: { pushed: number[]; drained: number[]; objs: number[] } | null,
  ) {
    this.depth = Array.from({ length: threads }, () => 0);
    this.exits = Array.from({ length: threads }, () => []);
    this.objs = Array.from({ length: threads }, (_, t) => h.newObject(`P${t}.rcu`));
  }

  /** Thread `t` runs `kind`; `fence` waits for its store buffer to drain (a no-op under SC). */
  *step(t: number, kind: RcuKind, fence: (fn: string) => Gen<void>): Gen<void> {
    // State changes come after the yield: the code before a yield runs when the step is announced,
    // the code after it when the scheduler runs the step.
    if (kind === "rcu_read_lock") {
      if (this.depth[t] === 0)
        yield { kind: "write", obj: this.objs[t], fn: kind, step: "enter a read-side critical section" };
      this.depth[t]++;
      return;
    }
    if (kind === "rcu_read_unlock") {
      if (this.depth[t] === 0)
        throw new Error(`P${t}: rcu_read_unlock() outside a read-side critical section`);
      if (this.depth[t] === 1) {
        yield { kind: "write", obj: this.objs[t], fn: kind, step: "leave the read-side critical section" };
        this.exits[t].push(this.buffers?.pushed[t] ?? 0);
      }
      this.depth[t]--;
      return;
    }
    if (this.buffers !== null) yield* fence(kind);
    // The readers inside a section now, and how many sections each has finished; under TSO also
    // every CPU's buffered stores so far, which the grace period reads with the sections.
    const b = this.buffers;
    yield {
      kind: "read",
      obj: this.objs[0],
      objs: [...this.objs.slice(1), ...(b?.objs ?? [])],
      fn: kind,
      step: "start a grace period",
    };
    const waitFor = this.depth.flatMap((d, u) => (d > 0 ? [{ u, ended: this.exits[u].length }] : []));
    // Every other CPU outside a section passes a quiescent state (a full barrier) after the grace
    // period starts, so the stores it had buffered by then reach memory before it ends.
    const drains = b
      ? this.depth.flatMap((d, u) => (d === 0 && u !== t ? [{ u, mark: b.pushed[u] }] : []))
      : [];
    for (const { u, ended } of waitFor) {
      yield {
        kind: "wait",
        obj: this.objs[u],
        objs: b ? [b.objs[u]] : undefined,
        fn: kind,
        step: `wait for P${u}'s read-side critical section`,
        enabled: () => this.exits[u].length > ended && (b === null || b.drained[u] >= this.exits[u][ended]),
      };
    }
    for (const { u, mark } of drains) {
      yield {
        kind: "wait",
        obj: b!.objs[u],
        fn: kind,
        step: `wait for P${u}'s quiescent state`,
        enabled: () => b!.drained[u] >= mark,
      };
    }
  }
}
