import type { LitmusStmt, LitmusTest, Operand } from "./parse.js";
import { returnsOld } from "./parse.js";

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
  }
  const start: M = {
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
    test.threads.forEach((th, i) => {
      // A drain of the oldest buffered store.
      if (m.bufs[i].length > 0) {
        const n = structuredClone(m);
        const [loc, v] = n.bufs[i].shift()!;
        n.mem[loc] = v;
        push(n);
        moved = true;
      }
      if (m.pcs[i] >= th.stmts.length) return;
      const s = th.stmts[m.pcs[i]];
      const n = structuredClone(m);
      if (exec(n, i, s)) {
        n.pcs[i]++;
        push(n);
        moved = true;
      }
    });
    const finished =
      m.pcs.every((pc, i) => pc >= test.threads[i].stmts.length) && m.bufs.every((b) => b.length === 0);
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

  /** Run statement `s` of thread i on n; false when it cannot run yet (a fence on a non-empty buffer). */
  function exec(n: M, i: number, s: LitmusStmt): boolean {
    const regs = n.regs[i];
    const val = (o: Operand) => ("const" in o ? o.const : regs[o.reg]);
    const tso = model === "tso";
    switch (s.op) {
      case "set":
        regs[s.reg] = val(s.value);
        return true;
      case "store":
        if (tso) n.bufs[i].push([s.loc, val(s.value)]);
        else n.mem[s.loc] = val(s.value);
        return true;
      case "load": {
        const b = n.bufs[i].filter(([l]) => l === s.loc);
        regs[s.reg] = b.length > 0 ? b[b.length - 1][1] : n.mem[s.loc];
        return true;
      }
      case "fence":
        return !(tso && s.kind === "smp_mb" && n.bufs[i].length > 0);
      case "lock":
        if ((tso && n.bufs[i].length > 0) || n.mem[s.loc] !== 0) return false;
        n.mem[s.loc] = 1;
        return true;
      case "unlock":
        if (tso) n.bufs[i].push([s.loc, 0]);
        else n.mem[s.loc] = 0;
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
