import type { LitmusCond, LitmusStmt, LitmusTest, Operand } from "./parse.js";
import { returnsOld } from "./parse.js";

/** A thread's statements with if/else turned into jumps: what a program counter indexes. */
type Flat =
  | Exclude<LitmusStmt, { op: "if" }>
  | { readonly op: "branch"; readonly cond: LitmusCond; readonly ifFalse: number }
  | { readonly op: "jump"; readonly to: number };

function flatten(stmts: readonly LitmusStmt[], out: Flat[] = []): Flat[] {
  for (const s of stmts) {
    if (s.op !== "if") {
      out.push(s);
      continue;
    }
    const branch = out.length;
    out.push({ op: "jump", to: -1 });
    flatten(s.thenArm, out);
    const jump = out.length;
    out.push({ op: "jump", to: -1 });
    out[branch] = { op: "branch", cond: s.cond, ifFalse: out.length };
    flatten(s.elseArm, out);
    out[jump] = { op: "jump", to: out.length };
  }
  return out;
}

/**
 * An independent x86-TSO (and SC) interpreter for litmus tests, written directly from the
 * operational model (per-thread FIFO store buffers, forwarding, drains at any time, fences and
 * locked RMWs on an empty buffer): a breadth-first search over whole machine states, with no
 * engine, no DPOR and no store-buffer tasks. It exists to check the engine's version against.
 * Returns every reachable final state, all registers and locations, as sorted JSON strings.
 */
export function referenceFinalStates(test: LitmusTest, model: "sc" | "tso"): Set<string> {
  interface M {
    pcs: number[];
    regs: Record<string, number>[];
    bufs: [string, number][][];
    mem: Record<string, number>;
    /** RCU: section nesting, and the count of stores each thread had pushed when each section ended. */
    depth: number[];
    exits: number[][];
    pushed: number[];
    drained: number[];
    /**
     * A thread inside synchronize_rcu(): the readers it waits for, with their sections ended then,
     * or -1 - (stores pushed then) for a CPU outside a section whose buffer must drain that far.
     */
    gp: ([number, number][] | null)[];
  }
  const code = test.threads.map((t) => flatten(t.stmts));
  const start: M = {
    depth: test.threads.map(() => 0),
    exits: test.threads.map(() => []),
    pushed: test.threads.map(() => 0),
    drained: test.threads.map(() => 0),
    gp: test.threads.map(() => null),
    pcs: test.threads.map(() => 0),
    regs: test.threads.map((t) => Object.fromEntries(t.regs.map((r) => [r, 0]))),
    bufs: test.threads.map(() => []),
    mem: Object.fromEntries(test.init),
  };
  const key = (m: M) => JSON.stringify(m);
  const seen = new Set<string>([key(start)]);
  const queue: M[] = [start];
  const finals = new Set<string>();
  const push = (m: M) => {
    const k = key(m);
    if (!seen.has(k)) {
      seen.add(k);
      queue.push(m);
    }
  };
  while (queue.length > 0) {
    const m = queue.shift()!;
    let moved = false;
    code.forEach((stmts, i) => {
      // A drain of the oldest buffered store.
      if (m.bufs[i].length > 0) {
        const n = structuredClone(m);
        const [loc, v] = n.bufs[i].shift()!;
        n.mem[loc] = v;
        n.drained[i]++;
        push(n);
        moved = true;
      }
      if (m.pcs[i] >= stmts.length) return;
      const s = stmts[m.pcs[i]];
      const n = structuredClone(m);
      const next = exec(n, i, s, m.pcs[i]);
      if (next !== false) {
        n.pcs[i] = next === true ? n.pcs[i] + 1 : next;
        push(n);
        moved = true;
      }
    });
    const finished = m.pcs.every((pc, i) => pc >= code[i].length) && m.bufs.every((b) => b.length === 0);
    if (!moved && finished) {
      const values: Record<string, number> = {};
      m.regs.forEach((regs, i) => {
        for (const [r, v] of Object.entries(regs)) values[`${i}:${r}`] = v;
      });
      for (const [loc, v] of Object.entries(m.mem)) values[loc] = v;
      finals.add(JSON.stringify(Object.fromEntries(Object.entries(values).sort())));
    }
  }
  return finals;

  /**
   * Run statement `s` of thread i on n: true to go on to the next one, a number to jump there,
   * false when it cannot run yet (a fence on a non-empty buffer, a grace period not over).
   */
  function exec(n: M, i: number, s: Flat, pc: number): boolean | number {
    const regs = n.regs[i];
    const val = (o: Operand) => ("const" in o ? o.const : regs[o.reg]);
    const tso = model === "tso";
    switch (s.op) {
      case "branch":
        return (val(s.cond.left) === val(s.cond.right)) === (s.cond.op === "==") ? true : s.ifFalse;
      case "jump":
        return s.to;
      case "set":
        regs[s.reg] = val(s.value);
        return true;
      case "store":
        if (tso) {
          n.bufs[i].push([s.loc, val(s.value)]);
          n.pushed[i]++;
        } else n.mem[s.loc] = val(s.value);
        return true;
      case "load": {
        const b = n.bufs[i].filter(([l]) => l === s.loc);
        regs[s.reg] = b.length > 0 ? b[b.length - 1][1] : n.mem[s.loc];
        return true;
      }
      case "fence":
        if (s.kind === "rcu_read_lock") n.depth[i]++;
        else if (s.kind === "rcu_read_unlock") {
          if (--n.depth[i] === 0) n.exits[i].push(n.pushed[i]);
        } else if (s.kind === "synchronize_rcu") {
          if (tso && n.bufs[i].length > 0) return false;
          const gp = n.gp[i];
          if (gp === null) {
            // Start the grace period; the statement runs again until it is over. It waits for the
            // readers inside a section to leave it (their stores drained), and under TSO for every
            // other CPU's stores buffered now to drain (its quiescent state is a full barrier).
            n.gp[i] = n.depth.flatMap((d, u): [number, number][] =>
              d > 0 ? [[u, n.exits[u].length]] : tso && u !== i ? [[u, -1 - n.pushed[u]]] : [],
            );
            return pc;
          }
          const over = gp.every(([u, ended]) =>
            ended < 0
              ? n.drained[u] >= -1 - ended
              : n.exits[u].length > ended && n.drained[u] >= n.exits[u][ended],
          );
          if (!over) return false;
          n.gp[i] = null;
          return true;
        }
        return !(tso && s.kind === "smp_mb" && n.bufs[i].length > 0);
      case "lock":
        if ((tso && n.bufs[i].length > 0) || n.mem[s.loc] !== 0) return false;
        n.mem[s.loc] = 1;
        return true;
      case "unlock":
        if (tso) {
          n.bufs[i].push([s.loc, 0]);
          n.pushed[i]++;
        } else n.mem[s.loc] = 0;
        return true;
      case "rmw": {
        if (tso && n.bufs[i].length > 0) return false;
        const old = n.mem[s.loc];
        const v = val(s.value);
        const next =
          s.kind === "xchg"
            ? v
            : s.kind === "cmpxchg"
              ? old === val(s.expected!)
                ? v
                : old
              : /sub|dec/.test(s.kind)
                ? old - v
                : old + v;
        n.mem[s.loc] = next;
        if (s.reg !== undefined) regs[s.reg] = returnsOld(s.kind) ? old : next;
        return true;
      }
    }
  }
}
