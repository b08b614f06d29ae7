import fc from "fast-check";
import { enumerateAll } from "../enumerate.js";
import { host } from "../host.js";
import type { AccessOp, Gen } from "../op.js";
import type { Program, RunObserver } from "../runtime.js";
import type { Task } from "../task.js";
import { explore } from "./explore.js";

/**
 * Small random concurrent programs and a brute-force oracle for them, used to
 * validate the explorers: the oracle enumerates every schedule and classifies
 * each execution by its Mazurkiewicz trace.
 */

export type OpSpec =
  | { readonly k: "read" | "write" | "rmw"; readonly o: number }
  | { readonly k: "lock" | "unlock"; readonly l: number }
  /** A blind add to x_o in commutativity class "add": it commutes with other adds, nothing else. */
  | { readonly k: "add"; readonly o: number }
  /**
   * Read how many plain writes x_o has had, as a read in class "add": the adds leave that count
   * alone, so the read commutes with them and conflicts with every plain access of x_o.
   */
  | { readonly k: "peekw"; readonly o: number }
  /** Reader side of a reader-writer lock on l: entry and exit commute with other readers'. */
  | { readonly k: "rdlock" | "rdunlock"; readonly l: number }
  | { readonly k: "choose"; readonly n: number }
  /** Complete c_c (AccessOp.completes); a program completes each completion object at most once. */
  | { readonly k: "complete"; readonly c: number }
  /** Wait until c_c is complete (AccessOp.awaits), reading x_o as well. */
  | { readonly k: "await"; readonly c: number; readonly o: number }
  /** Read c_c without waiting: a plain read of whether it is complete. */
  | { readonly k: "peek"; readonly c: number }
  /** Read x_o and report "bad-read" (stopping the run) when the value is divisible by `mod`. */
  | { readonly k: "assert"; readonly o: number; readonly mod: number }
  | { readonly k: "spawn"; readonly body: readonly OpSpec[] };

export interface ProgSpec {
  readonly objects: number;
  readonly locks: number;
  /** Completion objects c_0.. (one-shot events that waits await). */
  readonly completions?: number;
  readonly tasks: readonly (readonly OpSpec[])[];
  /** Report a violation "bad-final" when every task is done and value 0 is divisible by this. */
  readonly badModulo?: number;
}

const memOp = (objects: number, adds = false): fc.Arbitrary<OpSpec> =>
  fc.record({
    k: adds
      ? fc.constantFrom(
          "read" as const,
          "write" as const,
          "rmw" as const,
          "add" as const,
          "add" as const,
          "peekw" as const,
        )
      : fc.constantFrom("read" as const, "write" as const, "rmw" as const),
    o: fc.integer({ min: 0, max: objects - 1 }),
  });

const assertOp = (objects: number): fc.Arbitrary<OpSpec> =>
  fc.record({
    k: fc.constant("assert" as const),
    o: fc.integer({ min: 0, max: objects - 1 }),
    mod: fc.integer({ min: 2, max: 4 }),
  });

const completionOp = (objects: number, completions: number): fc.Arbitrary<OpSpec> =>
  fc.oneof(
    fc.record({ k: fc.constant("complete" as const), c: fc.integer({ min: 0, max: completions - 1 }) }),
    fc.record({
      k: fc.constant("await" as const),
      c: fc.integer({ min: 0, max: completions - 1 }),
      o: fc.integer({ min: 0, max: objects - 1 }),
    }),
    fc.record({ k: fc.constant("peek" as const), c: fc.integer({ min: 0, max: completions - 1 }) }),
  );

function completesOnce(tasks: readonly (readonly OpSpec[])[]): boolean {
  const seen = new Set<number>();
  const walk = (ops: readonly OpSpec[]): boolean => {
    for (const o of ops) {
      if (o.k === "spawn" && !walk(o.body)) return false;
      if (o.k !== "complete") continue;
      if (seen.has(o.c)) return false;
      seen.add(o.c);
    }
    return true;
  };
  return tasks.every(walk);
}

/** A task body: memory ops, optionally a data choice, optionally one lock section. */
function taskOps(
  objects: number,
  locks: number,
  withChoice: boolean,
  maxOps: number,
  asserts = false,
  adds = false,
  readLocks = false,
  completions = 0,
): fc.Arbitrary<OpSpec[]> {
  const base = asserts
    ? fc.oneof({ weight: 4, arbitrary: memOp(objects, adds) }, { weight: 1, arbitrary: assertOp(objects) })
    : memOp(objects, adds);
  const op =
    completions > 0
      ? fc.oneof({ weight: 3, arbitrary: base }, { weight: 2, arbitrary: completionOp(objects, completions) })
      : base;
  return fc
    .tuple(
      fc.array(op, { minLength: 1, maxLength: maxOps }),
      withChoice
        ? fc.option(fc.tuple(fc.nat(), fc.integer({ min: 2, max: 3 })), { freq: 3 })
        : fc.constant(null),
      locks > 0
        ? fc.option(fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.boolean()), { freq: 2 })
        : fc.constant(null),
    )
    .map(([ops, ch, lk]) => {
      const out: OpSpec[] = ops.slice();
      if (ch !== null) out.splice(ch[0] % (out.length + 1), 0, { k: "choose", n: ch[1] });
      if (lk !== null) {
        const a = lk[0] % out.length;
        const b = a + (lk[1] % (out.length - a));
        const shared = readLocks && lk[3];
        out.splice(b + 1, 0, { k: shared ? "rdunlock" : "unlock", l: lk[2] % locks });
        out.splice(a, 0, { k: shared ? "rdlock" : "lock", l: lk[2] % locks });
      }
      return out;
    });
}

export interface GenOptions {
  readonly minTasks?: number;
  readonly maxTasks?: number;
  readonly maxOps?: number;
  readonly maxObjects?: number;
  readonly locks?: number;
  readonly choices?: boolean;
  readonly spawns?: boolean;
  readonly violations?: boolean;
  /** Blind adds in commutativity class "add". */
  readonly adds?: boolean;
  /** Some lock sections take the lock as readers (commuting entry and exit). */
  readonly readLocks?: boolean;
  /** Completion objects (up to this many), each completed at most once, awaited and peeked at. */
  readonly completions?: number;
  /** Upper bound on the total number of ops (keeps brute force small). Default 9. */
  readonly maxTotalOps?: number;
}

function countOps(ops: readonly OpSpec[]): number {
  let n = 0;
  for (const o of ops) n += o.k === "spawn" ? countOps(o.body) : 1;
  return n;
}

export function progSpec(g: GenOptions = {}): fc.Arbitrary<ProgSpec> {
  const locks = g.locks ?? 0;
  return fc.integer({ min: 1, max: g.maxObjects ?? 3 }).chain((objects) =>
    fc
      .record({
        tasks: fc.array(
          taskOps(
            objects,
            locks,
            g.choices ?? false,
            g.maxOps ?? 4,
            g.violations ?? false,
            g.adds ?? false,
            g.readLocks ?? false,
            g.completions ?? 0,
          ),
          {
            minLength: g.minTasks ?? 2,
            maxLength: g.maxTasks ?? 4,
          },
        ),
        child: g.spawns
          ? fc.option(
              taskOps(
                objects,
                locks,
                false,
                2,
                false,
                g.adds ?? false,
                g.readLocks ?? false,
                g.completions ?? 0,
              ),
              {
                freq: 2,
              },
            )
          : fc.constant(null),
        badModulo: g.violations ? fc.option(fc.integer({ min: 2, max: 5 }), { freq: 2 }) : fc.constant(null),
      })
      .map(({ tasks, child, badModulo }) => {
        const ts = tasks.map((t) => t.slice());
        if (child !== null) ts[0].splice(1, 0, { k: "spawn", body: child });
        return {
          objects,
          locks,
          tasks: ts,
          ...(g.completions ? { completions: g.completions } : {}),
          ...(badModulo === null ? {} : { badModulo }),
        };
      })
      .filter((p) => p.tasks.reduce((n, t) => n + countOps(t), 0) <= (g.maxTotalOps ?? 9))
      .filter((p) => completesOnce(p.tasks)),
  );
}

/** Final states of a program's runs, reported through a side channel. */
export interface Probe {
  /** State at the end of the last run (values, task locals, who is blocked). */
  last: string;
}

/**
 * Build the program. Shared values change only inside access steps; each task
 * keeps a local accumulator of what it read and chose, so every reordering of
 * dependent steps can show in the final state.
 */
export function buildProgram(spec: ProgSpec, probe?: Probe): Program {
  return ({ spawn }) => {
    const h = host();
    const objIds: number[] = [];
    const vals: number[] = [];
    const plainWrites: number[] = [];
    for (let i = 0; i < spec.objects; i++) {
      objIds.push(h.newObject(`x${i}`));
      vals.push(i + 1);
      plainWrites.push(0);
    }
    const lockIds: number[] = [];
    const holders: number[] = [];
    const readers: number[] = [];
    for (let i = 0; i < spec.locks; i++) {
      lockIds.push(h.newObject(`l${i}`));
      holders.push(-1);
      readers.push(0);
    }
    const doneIds: number[] = [];
    const done: boolean[] = [];
    for (let i = 0; i < (spec.completions ?? 0); i++) {
      doneIds.push(h.newObject(`c${i}`));
      done.push(false);
    }
    const locals = new Map<string, number>();
    let live = 0;
    const body = function* (name: string, ops: readonly OpSpec[], tid: number): Gen<void> {
      live++;
      let acc = tid;
      let shift = 0;
      let kids = 0;
      for (const op of ops) {
        switch (op.k) {
          case "read": {
            const o = (op.o + shift) % spec.objects;
            yield { kind: "read", obj: objIds[o], fn: name, step: `read x${o}` };
            acc = (acc * 7 + vals[o]) % 1000003;
            break;
          }
          case "write": {
            const o = (op.o + shift) % spec.objects;
            yield { kind: "write", obj: objIds[o], fn: name, step: `write x${o}` };
            vals[o] = (acc * 3 + tid + 1) % 1000003;
            plainWrites[o]++;
            break;
          }
          case "rmw": {
            const o = (op.o + shift) % spec.objects;
            yield { kind: "rmw", obj: objIds[o], fn: name, step: `rmw x${o}` };
            const old = vals[o];
            vals[o] = (old * 5 + tid + 2) % 1000003;
            plainWrites[o]++;
            acc = (acc * 11 + old) % 1000003;
            break;
          }
          case "add": {
            const o = (op.o + shift) % spec.objects;
            yield { kind: "rmw", obj: objIds[o], fn: name, step: `add x${o}`, commute: "add" };
            vals[o] = (vals[o] + tid + 1) % 1000003;
            break;
          }
          case "peekw": {
            const o = (op.o + shift) % spec.objects;
            yield { kind: "read", obj: objIds[o], fn: name, step: `peek writes of x${o}`, commute: "add" };
            acc = (acc * 13 + plainWrites[o]) % 1000003;
            break;
          }
          case "rdlock": {
            const l = op.l;
            // The attempt commutes with other readers' (it changes nothing a reader looks at);
            // behind a writer the reader waits in a plain, blocking acquire.
            yield { kind: "acquire", obj: lockIds[l], fn: name, step: `read_lock l${l}`, commute: "reader" };
            if (holders[l] === -1) {
              readers[l]++;
            } else {
              yield {
                kind: "acquire",
                obj: lockIds[l],
                fn: name,
                step: `read_lock l${l} slowpath`,
                enabled: () => holders[l] === -1,
              };
              readers[l]++;
            }
            break;
          }
          case "rdunlock": {
            yield {
              kind: "release",
              obj: lockIds[op.l],
              fn: name,
              step: `read_unlock l${op.l}`,
              commute: "reader",
            };
            readers[op.l]--;
            break;
          }
          case "assert": {
            const o = (op.o + shift) % spec.objects;
            yield { kind: "read", obj: objIds[o], fn: name, step: `assert x${o}` };
            acc = (acc * 7 + vals[o]) % 1000003;
            if (vals[o] % op.mod === 0) h.report({ invariant: "bad-read", message: `x${o} = ${vals[o]}` });
            break;
          }
          case "lock": {
            const l = op.l;
            yield {
              kind: "acquire",
              obj: lockIds[l],
              fn: name,
              step: `lock l${l}`,
              enabled: () => holders[l] === -1 && readers[l] === 0,
            };
            holders[l] = tid;
            break;
          }
          case "unlock": {
            yield { kind: "release", obj: lockIds[op.l], fn: name, step: `unlock l${op.l}` };
            holders[op.l] = -1;
            break;
          }
          case "complete": {
            yield { kind: "write", obj: doneIds[op.c], fn: name, step: `complete c${op.c}`, completes: true };
            done[op.c] = true;
            break;
          }
          case "await": {
            const o = (op.o + shift) % spec.objects;
            yield {
              kind: "wait",
              obj: objIds[o],
              objs: [doneIds[op.c]],
              fn: name,
              step: `await c${op.c}, read x${o}`,
              enabled: () => done[op.c],
              awaits: [doneIds[op.c]],
            };
            acc = (acc * 7 + vals[o]) % 1000003;
            break;
          }
          case "peek": {
            yield { kind: "read", obj: doneIds[op.c], fn: name, step: `peek c${op.c}` };
            acc = (acc * 17 + (done[op.c] ? 1 : 0)) % 1000003;
            break;
          }
          case "choose": {
            const v = (yield { kind: "choose", n: op.n, fn: name, step: "choose" }) as number;
            acc = (acc * 13 + v + 1) % 1000003;
            shift += v;
            break;
          }
          case "spawn": {
            const cname = `${name}.${kids++}`;
            yield { kind: "spawn", name: cname, body: body(cname, op.body, tid * 10 + kids) };
            break;
          }
        }
      }
      locals.set(name, acc);
      live--;
    };
    spec.tasks.forEach((ops, i) => {
      spawn(`t${i}`, body(`t${i}`, ops, i + 1));
    });
    const snapshot = (): string =>
      `${vals.join(",")}|${[...locals.entries()]
        .sort()
        .map(([k, v]) => `${k}=${v}`)
        .join(",")}|${holders.join(",")}|${readers.join(",")}|${done.join(",")}`;
    if (probe) probe.last = snapshot();
    h.addCheck("final", () => {
      if (probe) probe.last = snapshot();
      if (live === 0 && spec.badModulo !== undefined && vals[0] % spec.badModulo === 0) {
        host().report({ invariant: "bad-final", message: `x0 = ${vals[0]}` });
      }
    });
  };
}

// ---- brute-force oracle ------------------------------------------------------

interface Ev {
  readonly task: string;
  readonly w: number;
  /** Commutativity class of the write, or "". */
  readonly c: string;
  readonly r: readonly number[];
  label: string;
  readonly spawnedAt: number;
}

/** Lexicographic normal form of the execution's trace: a canonical key of its class. */
export function traceKey(evs: readonly Ev[]): string {
  const n = evs.length;
  const preds: number[][] = [];
  const lastOf = new Map<string, number>();
  for (let j = 0; j < n; j++) {
    const e = evs[j];
    const p: number[] = [];
    const prevSame = lastOf.get(e.task);
    if (prevSame !== undefined) p.push(prevSame);
    else if (e.spawnedAt >= 0) p.push(e.spawnedAt);
    for (let i = 0; i < j; i++) {
      const x = evs[i];
      if (x.task === e.task) continue;
      const sameClass = x.c !== "" && x.c === e.c && x.w === e.w;
      const dep =
        (x.w >= 0 && ((x.w === e.w && !sameClass) || e.r.includes(x.w))) || (e.w >= 0 && x.r.includes(e.w));
      if (dep) p.push(i);
    }
    preds.push(p);
    lastOf.set(e.task, j);
  }
  const done = new Array<boolean>(n).fill(false);
  const out: string[] = [];
  for (let emitted = 0; emitted < n; emitted++) {
    let best = -1;
    for (let j = 0; j < n; j++) {
      if (done[j] || !preds[j].every((i) => done[i])) continue;
      if (best < 0 || evs[j].task < evs[best].task) best = j;
    }
    done[best] = true;
    out.push(`${evs[best].task}:${evs[best].label}`);
  }
  return out.join(" ");
}

/** A violation's identity for comparing explorers: invariant, message and task. */
export function violationKey(v: { invariant: string; message: string; taskName: string }): string {
  return `${v.invariant}|${v.taskName}|${v.message}`;
}

export interface BruteResult {
  readonly executions: number;
  readonly traces: Set<string>;
  readonly finals: Set<string>;
  readonly invariants: Set<string>;
}

/** Every schedule of the program, classified by trace, with the set of final states. */
export function bruteForce(spec: ProgSpec, stopOnViolation = true, maxExecutions = 200_000): BruteResult {
  const probe: Probe = { last: "" };
  const inner = buildProgram(spec, probe);
  let evs: Ev[] = [];
  let spawnedAt = new Map<number, number>();
  let setupLabel: number[] = [];
  let cur: Task | null = null;
  const program: Program = (ctx) => {
    evs = [];
    spawnedAt = new Map();
    setupLabel = [];
    inner(ctx);
  };
  const observer: RunObserver = {
    onSpawn(child: Task) {
      spawnedAt.set(child.id, evs.length - 1);
    },
    onStep(_i: number, task: Task, op: AccessOp) {
      cur = task;
      // A read in a class counts as a write of it, as the checker's footprints have it.
      const write = (op.kind !== "read" && op.kind !== "wait") || op.commute !== undefined;
      void _i;
      evs.push({
        task: task.name,
        w: write ? op.obj : -1,
        c: op.commute ?? "",
        r: write ? (op.objs ?? []) : [op.obj, ...(op.objs ?? [])],
        label: "",
        spawnedAt: task.steps === 0 ? (spawnedAt.get(task.id) ?? -1) : -1,
      });
    },
    onChoice(index: number, _task: Task, _op, _n, value: number) {
      if (index < 0) setupLabel.push(value);
      else {
        const e = evs[index];
        e.label = e.label === "" ? `${value}` : `${e.label},${value}`;
      }
    },
  };
  void cur;
  const traces = new Set<string>();
  const finals = new Set<string>();
  const invariants = new Set<string>();
  const r = enumerateAll(program, { maxExecutions, observer, stopOnViolation }, (res) => {
    traces.add(`${setupLabel.join(",")}#${traceKey(evs)}`);
    finals.add(probe.last);
    for (const v of res.violations) invariants.add(violationKey(v));
  });
  if (!r.complete) throw new Error("brute force did not finish");
  return { executions: r.executions, traces, finals, invariants };
}

/** A program's final states (as its probe reports them) and violations, by brute force and by DPOR. */
export interface BothWays {
  readonly brute: { readonly finals: string[]; readonly violations: string[]; readonly executions: number };
  readonly dpor: {
    readonly finals: string[];
    readonly violations: string[];
    readonly executions: number;
    readonly complete: boolean;
  };
}

/**
 * Run `program` under every schedule and under DPOR (runs go on past violations), collecting the
 * final state the probe holds after each complete execution and each violation, keyed by `key`.
 * Null when brute force needs more than `maxExecutions` schedules: too big for an oracle.
 */
export function bothWays(
  program: Program,
  probe: Probe,
  maxExecutions: number,
  key: (v: { invariant: string; message: string }) => string,
): BothWays | null {
  const bruteFinals = new Set<string>();
  const bruteInv = new Set<string>();
  const b = enumerateAll(program, { maxExecutions, stopOnViolation: false }, (r) => {
    bruteFinals.add(probe.last);
    for (const v of r.violations) bruteInv.add(key(v));
  });
  if (!b.complete) return null;
  const finals = new Set<string>();
  const inv = new Set<string>();
  const r = explore(program, {
    stopOnFirstViolation: false,
    onExecution: (x) => {
      if (x.blocked) return;
      finals.add(probe.last);
      for (const v of x.violations) inv.add(key(v));
    },
  });
  return {
    brute: { finals: [...bruteFinals].sort(), violations: [...bruteInv].sort(), executions: b.executions },
    dpor: {
      finals: [...finals].sort(),
      violations: [...inv].sort(),
      executions: r.executions,
      complete: r.complete,
    },
  };
}
