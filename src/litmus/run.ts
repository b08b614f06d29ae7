import { explore } from "../engine/explore/explore.js";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { type LkmmWitness, lkmmFinalStates } from "./lkmm/enumerate.js";
import { formatWitness } from "./lkmm/format.js";
import { lkmmReplayString } from "./lkmm/replay.js";
import {
  conditionAtoms,
  type LitmusCond,
  type LitmusExpr,
  type LitmusStmt,
  type LitmusTest,
  type Operand,
  RCU_KINDS,
  returnsOld,
} from "./parse.js";
import { OperationalRcu } from "./rcu-operational.js";
import { formatSchedule, type ScheduleWitness, scheduleWitness } from "./schedule.js";

/**
 * Running a litmus test: every execution of its threads under a memory model, explored by the same
 * engine (DPOR) that checks the MMU model, and the set of final states it reaches.
 *
 * - sc: sequential consistency. Every access is visible to all threads when it runs.
 * - tso: x86-TSO, operationally (Owens, Sarkar, Sewell, "A better x86 memory model: x86-TSO",
 *   TPHOLs 2009). Each thread has a FIFO store buffer: a store enters it, a store-buffer task drains
 *   the oldest entry to memory at any later point, and a load takes the youngest buffered store to
 *   its location, else memory. smp_mb() and every locked RMW (xchg, cmpxchg, the atomic_*() RMWs)
 *   wait until the thread's buffer is empty; the RMW then acts on memory. smp_rmb(), smp_wmb(),
 *   smp_mb__before_atomic()/after_atomic() and barrier() are compiler barriers on x86, and
 *   acquire/release accesses are plain ones, which is what x86 gives them. spin_lock() is a
 *   locked RMW taken when the lock word is 0, spin_unlock() a release store of 0.
 *
 * A drain is two steps, the write to memory and the removal from the buffer. Between them the
 * buffer and memory hold the same value for that entry, and the only reader of the buffer's entries
 * is its own thread, which forwards the youngest one, so no thread can tell the two steps from one.
 */
export type MemoryModel = "sc" | "tso" | "lkmm";

export const MEMORY_MODELS: readonly MemoryModel[] = ["sc", "tso", "lkmm"];

/** The models run operationally on the engine; lkmm is axiomatic (src/litmus/lkmm/). */
export type OperationalModel = Exclude<MemoryModel, "lkmm">;
export const OPERATIONAL_MODELS: readonly OperationalModel[] = ["sc", "tso"];

export interface LitmusState {
  /** The observed values: the registers and locations the condition names ("0:r0", "x"). */
  readonly values: Readonly<Record<string, number>>;
  /** The condition's proposition (without its quantifier) holds in this state. */
  readonly satisfies: boolean;
}

export interface LitmusResult {
  readonly name: string;
  readonly model: MemoryModel;
  readonly quantifier: LitmusTest["quantifier"];
  readonly condition: string;
  /** Distinct final states over the observed values, sorted. */
  readonly states: readonly LitmusState[];
  readonly positive: number;
  readonly negative: number;
  /** How often the proposition holds: Never, Sometimes or Always (herd7's Observation). */
  readonly observation: "Never" | "Sometimes" | "Always";
  /** The quantified condition is true of this model (herd7's Ok / No). */
  readonly ok: boolean;
  readonly executions: number;
  /** Every execution was explored; otherwise the states are a subset and the verdict is not final. */
  readonly complete: boolean;
  /**
   * An execution reaching the first state that satisfies the condition, or null when none does,
   * with its replay string: under lkmm the candidate execution (events, rf, co), under sc and tso
   * the engine's schedule.
   */
  readonly witness: (LkmmWitness & { readonly replay: string }) | ScheduleWitness | null;
}

interface Buffered {
  readonly loc: string;
  readonly v: number;
}

/** The engine program of `test` under `model`; `sink.values` holds the final state of the last run. */
export function litmusProgram(
  test: LitmusTest,
  model: OperationalModel,
  sink: { values: Record<string, number> | null },
): Program {
  return ({ spawn }) => {
    const h = host();
    sink.values = null;
    const mem = new Map<string, { readonly obj: number; v: number }>();
    for (const [loc, v] of test.init) mem.set(loc, { obj: h.newObject(loc), v });
    const regsOf: Map<string, number>[] = [];
    // Every thread (and, under TSO, its store-buffer task) ends by calling finish(); counted up front,
    // as a thread with no access finishes while it is being spawned.
    let live = test.threads.length * (model === "tso" ? 2 : 1);
    const finish = () => {
      if (--live > 0) return;
      const values: Record<string, number> = {};
      regsOf.forEach((regs, i) => {
        for (const [r, v] of regs) values[`${i}:${r}`] = v;
      });
      for (const [loc, m] of mem) values[loc] = m.v;
      sink.values = values;
    };
    const tso = model === "tso";
    const bufObjs = test.threads.map((th) => (tso ? h.newObject(`P${th.index}.store_buffer`) : -1));
    // Stores each thread has buffered and drained so far: what a grace period waits for under TSO.
    const counts = { pushed: bufObjs.map(() => 0), drained: bufObjs.map(() => 0), objs: bufObjs };
    const rcu = usesRcu(test) ? new OperationalRcu(h, test.threads.length, tso ? counts : null) : null;
    for (const th of test.threads) {
      const regs = new Map<string, number>(th.regs.map((r) => [r, 0]));
      regsOf.push(regs);
      const buf: Buffered[] = [];
      const bufObj = bufObjs[th.index];
      const state = { done: false };
      const val = (o: Operand): number => ("const" in o ? o.const : (regs.get(o.reg) ?? 0));
      const drained = () => buf.length === 0;
      function* thread(): Gen<void> {
        for (const s of th.stmts) yield* step(s);
        if (tso) {
          // The thread's end is what lets its store-buffer task finish once the buffer is empty.
          yield { kind: "write", obj: bufObj, fn: `P${th.index}`, step: "exit" };
          state.done = true;
        }
        finish();
      }
      function* fence(fn: string): Gen<void> {
        yield { kind: "wait", obj: bufObj, fn, step: "wait for the store buffer to drain", enabled: drained };
      }
      function* step(s: LitmusStmt): Gen<void> {
        switch (s.op) {
          case "set":
            regs.set(s.reg, val(s.value));
            return;
          case "store": {
            const v = val(s.value);
            const m = mem.get(s.loc)!;
            if (tso) {
              yield {
                kind: "write",
                obj: bufObj,
                fn: s.kind,
                step: `${s.kind}(${s.loc}, ${v}) into the store buffer`,
              };
              buf.push({ loc: s.loc, v });
              counts.pushed[th.index]++;
            } else {
              yield { kind: "write", obj: m.obj, fn: s.kind, step: `${s.kind}(${s.loc}, ${v})` };
              m.v = v;
            }
            return;
          }
          case "load": {
            const m = mem.get(s.loc)!;
            yield {
              kind: "read",
              obj: m.obj,
              objs: tso ? [bufObj] : undefined,
              fn: s.kind,
              step: `${s.kind}(${s.loc})`,
            };
            let v = m.v;
            for (let i = buf.length - 1; i >= 0; i--) {
              if (buf[i].loc === s.loc) {
                v = buf[i].v;
                break;
              }
            }
            regs.set(s.reg, v);
            return;
          }
          case "if":
            for (const t of condHolds(s.cond, val) ? s.thenArm : s.elseArm) yield* step(t);
            return;
          case "fence":
            if (s.kind === "rcu_read_lock" || s.kind === "rcu_read_unlock" || s.kind === "synchronize_rcu")
              yield* rcu!.step(th.index, s.kind, fence);
            else if (tso && s.kind === "smp_mb") yield* fence(s.kind);
            return;
          case "lock": {
            // spin_lock(): a locked RMW on x86 (it drains the buffer), taken when the lock word is 0.
            if (tso) yield* fence("spin_lock");
            const m = mem.get(s.loc)!;
            yield {
              kind: "acquire",
              obj: m.obj,
              objs: tso ? [bufObj] : undefined,
              fn: "spin_lock",
              step: `spin_lock(${s.loc})`,
              enabled: () => m.v === 0,
            };
            m.v = 1;
            return;
          }
          case "unlock":
            // spin_unlock(): a release store of 0, which on x86 is a plain (buffered) store.
            yield* step({ op: "store", kind: "smp_store_release", loc: s.loc, value: { const: 0 } });
            return;
          case "rmw": {
            if (tso) yield* fence(s.kind);
            const m = mem.get(s.loc)!;
            yield {
              kind: "rmw",
              obj: m.obj,
              objs: tso ? [bufObj] : undefined,
              fn: s.kind,
              step: `${s.kind}(${s.loc})`,
            };
            const old = m.v;
            const operand = val(s.value);
            let next = old;
            switch (s.kind) {
              case "xchg":
                next = operand;
                break;
              case "cmpxchg":
                next = old === val(s.expected!) ? operand : old;
                break;
              default:
                next = /sub|dec/.test(s.kind) ? old - operand : old + operand;
            }
            m.v = next;
            if (s.reg !== undefined) regs.set(s.reg, returnsOld(s.kind) ? old : next);
            return;
          }
        }
      }
      spawn(`P${th.index}`, thread());
      if (tso) {
        spawn(
          `P${th.index}.store_buffer`,
          (function* drainer(): Gen<void> {
            for (;;) {
              yield {
                kind: "wait",
                obj: bufObj,
                fn: "store buffer",
                step: "wait for a store",
                enabled: () => buf.length > 0 || state.done,
              };
              if (buf.length === 0) break;
              const head = buf[0];
              const m = mem.get(head.loc)!;
              yield {
                kind: "write",
                obj: m.obj,
                objs: [bufObj],
                fn: "store buffer",
                step: `drain ${head.loc} = ${head.v} to memory`,
              };
              m.v = head.v;
              yield { kind: "write", obj: bufObj, fn: "store buffer", step: "remove the drained store" };
              buf.shift();
              counts.drained[th.index]++;
            }
            finish();
          })(),
        );
      }
    }
  };
}

/** Whether the test calls any RCU primitive. */
export function usesRcu(test: LitmusTest): boolean {
  const any = (stmts: readonly LitmusStmt[]): boolean =>
    stmts.some((s) =>
      s.op === "fence"
        ? (RCU_KINDS as readonly string[]).includes(s.kind)
        : s.op === "if" && (any(s.thenArm) || any(s.elseArm)),
    );
  return test.threads.some((t) => any(t.stmts));
}

/** Whether an if's condition holds, given the thread's register values. */
export function condHolds(c: LitmusCond, val: (o: Operand) => number): boolean {
  return (val(c.left) === val(c.right)) === (c.op === "==");
}

/** Whether `e` holds in the final state `values`. */
export function holds(e: LitmusExpr, values: Readonly<Record<string, number>>): boolean {
  switch (e.op) {
    case "and":
      return holds(e.left, values) && holds(e.right, values);
    case "or":
      return holds(e.left, values) || holds(e.right, values);
    case "not":
      return !holds(e.arg, values);
    case "reg":
      return values[`${e.thread}:${e.reg}`] === e.value;
    case "loc":
      return values[e.loc] === e.value;
    case "true":
      return true;
  }
}

export interface LitmusOptions {
  /** Stop after this many executions (the result then says complete: false). */
  readonly maxExecutions?: number;
  /** "dpor" (default) or "exhaustive" (every schedule: the brute force DPOR is checked against). */
  readonly strategy?: "dpor" | "exhaustive";
}

/**
 * Every final state the engine reaches for `test` under `model`: all registers ("N:reg") and
 * locations, as JSON with sorted keys.
 */
export function finalStates(
  test: LitmusTest,
  model: MemoryModel,
  opts: LitmusOptions = {},
): {
  readonly states: ReadonlySet<string>;
  readonly executions: number;
  readonly complete: boolean;
  readonly witnesses?: ReadonlyMap<string, LkmmWitness>;
  readonly schedules?: ReadonlyMap<string, readonly number[]>;
} {
  if (model === "lkmm") {
    const r = lkmmFinalStates(test, {
      maxCandidates: opts.maxExecutions,
      brute: opts.strategy === "exhaustive",
    });
    return {
      states: new Set(r.states.keys()),
      executions: r.executions,
      complete: r.complete,
      witnesses: r.states,
    };
  }
  const sink: { values: Record<string, number> | null } = { values: null };
  const states = new Set<string>();
  // The first schedule that reached each state: its witness.
  const schedules = new Map<string, readonly number[]>();
  const r = explore(litmusProgram(test, model, sink), {
    strategy: opts.strategy ?? "dpor",
    stopOnFirstViolation: false,
    maxExecutions: opts.maxExecutions,
    onExecution: (run) => {
      if (run.blocked || sink.values === null) return;
      const key = JSON.stringify(Object.fromEntries(Object.entries(sink.values).sort()));
      states.add(key);
      if (!schedules.has(key)) schedules.set(key, run.choices);
    },
  });
  return { states, executions: r.executions, complete: r.complete, schedules };
}

/** The witness of final state `key`: the LKMM execution, or the engine's schedule, that reached it. */
function witnessOf(
  test: LitmusTest,
  model: MemoryModel,
  key: string,
  all: ReturnType<typeof finalStates>,
): LitmusResult["witness"] {
  if (model === "lkmm") {
    const w = all.witnesses?.get(key);
    return w ? { ...w, replay: lkmmReplayString(test, w) } : null;
  }
  const choices = all.schedules?.get(key);
  return choices ? scheduleWitness(test, model, choices) : null;
}

/** Explore every execution of `test` under `model` and collect its final states. */
export function runLitmus(test: LitmusTest, model: MemoryModel, opts: LitmusOptions = {}): LitmusResult {
  const keys = new Set([
    ...conditionAtoms(test.condition).map((a) => (a.op === "reg" ? `${a.thread}:${a.reg}` : a.loc)),
    ...(test.locations ?? []),
  ]);
  const all = finalStates(test, model, opts);
  const finals = new Map<string, Record<string, number>>();
  let witness: LitmusResult["witness"] = null;
  for (const text of [...all.states].sort()) {
    const values = JSON.parse(text) as Record<string, number>;
    const shown = keys.size === 0 ? Object.keys(values) : [...keys].sort();
    const observed: Record<string, number> = {};
    for (const k of shown) observed[k] = values[k];
    // Two final states with the same observed values may differ in whether an unobserved part
    // satisfies the condition only if the condition reads it, which it then observes: one suffices.
    finals.set(JSON.stringify(observed), values);
    if (witness === null && holds(test.condition, values)) witness = witnessOf(test, model, text, all);
  }
  const states = [...finals.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, values]) => ({
      values: JSON.parse(k) as Record<string, number>,
      satisfies: holds(test.condition, values),
    }));
  const positive = states.filter((s) => s.satisfies).length;
  const negative = states.length - positive;
  const observation = positive === 0 ? "Never" : negative === 0 ? "Always" : "Sometimes";
  const ok =
    test.quantifier === "exists"
      ? positive > 0
      : test.quantifier === "~exists"
        ? positive === 0
        : negative === 0;
  return {
    name: test.name,
    model,
    quantifier: test.quantifier,
    condition: test.conditionText,
    states,
    positive,
    negative,
    observation,
    ok,
    executions: all.executions,
    complete: all.complete,
    witness,
  };
}

/** The result as herd7 users read it: the states, then Ok/No, witnesses and the observation. */
export function formatLitmus(r: LitmusResult, file?: string): string {
  const lines = [
    `Test ${r.name} (${r.model})${r.complete ? "" : " INCOMPLETE"}`,
    `States ${r.states.length}`,
  ];
  for (const s of r.states) {
    const cells = Object.entries(s.values).map(([k, v]) => `${k}=${v};`);
    lines.push(`${cells.join(" ")}${s.satisfies ? "  <- satisfies the condition" : ""}`);
  }
  lines.push(
    r.ok ? "Ok" : "No",
    `Witnesses`,
    `Positive: ${r.positive} Negative: ${r.negative}`,
    `Condition ${r.condition}`,
    `Observation ${r.name} ${r.observation} ${r.positive} ${r.negative}`,
    `(${r.executions} executions${r.complete ? ", every one explored" : "; cut before the end: not a verdict"})`,
  );
  if (r.witness && "steps" in r.witness) lines.push(formatSchedule(r.witness, file));
  else if (r.witness) lines.push(formatWitness(r.witness, r.witness.replay, file));
  else if (r.witness === null)
    lines.push(
      r.complete
        ? "Witness: no allowed execution satisfies the condition"
        : "Witness: none among the executions examined",
    );
  return lines.join("\n");
}
