import type { LitmusTest } from "../parse.js";
import { type Sym, type ThreadPath, threadPaths } from "./events.js";
import { type Axiom, type Ev, type Execution, lkmmViolation } from "./model.js";

/**
 * Candidate executions of a litmus test, as herd7 forms them, and the ones the LKMM allows.
 *
 * A candidate is one control-flow path per thread (threadPaths), a reads-from (rf) choice for
 * every read among the writes to its location (the initial write included), and a coherence
 * order (co) per location with the initial write first. Values follow: a read returns its rf
 * source's value, and a write's value is a function of reads. The candidate is kept when the
 * values satisfy every guess its paths made (branches, cmpxchg outcomes, locks found free) and
 * linux-kernel.cat's axioms hold (lkmmViolation).
 *
 * Two reductions cut the enumeration, both checked against the unreduced one in the tests
 * (`brute: true`):
 * - co only orders a thread's own writes to a location as program order does: the reverse order
 *   is a cycle co ; po-loc, which the coherence axiom forbids. So co ranges over interleavings of
 *   the threads' write sequences rather than over all permutations.
 * - The coherence and atomicity axioms relate accesses to one location only, so each location's
 *   (co, rf) choices are filtered by them on their own before the locations are combined.
 */

export interface LkmmEvent {
  readonly id: number;
  /** -1 for an initial write. */
  readonly thread: number;
  readonly kind: "R" | "W" | "F";
  readonly tag: string;
  readonly loc?: string;
  /** The value read or written. */
  readonly value?: number;
  readonly text: string;
}

/** One allowed execution, as herd7 would draw it: its events, rf and co. */
export interface LkmmWitness {
  readonly events: readonly LkmmEvent[];
  /** [write, read] pairs. */
  readonly rf: readonly (readonly [number, number])[];
  /** Each location's writes in coherence order. */
  readonly co: Readonly<Record<string, readonly number[]>>;
  /** Which path of each thread, then which (co, rf) option of each location: what replays it. */
  readonly choice: readonly number[];
}

export interface LkmmOptions {
  /** Enumerate every permutation for co and check every axiom on whole executions only. */
  readonly brute?: boolean;
  /** Stop after this many candidates (the result then says complete: false). */
  readonly maxCandidates?: number;
}

export interface LkmmStates {
  /** Final states (every register and location, JSON with sorted keys), each with its first witness. */
  readonly states: ReadonlyMap<string, LkmmWitness>;
  /** Candidate executions examined, and how many the model allows. */
  readonly candidates: number;
  readonly executions: number;
  readonly complete: boolean;
  /** How many candidates each axiom ruled out (the first one violated). */
  readonly rejected: Readonly<Partial<Record<Axiom | "values", number>>>;
}

/** A thread path placed among the execution's events. */
interface Placed {
  readonly thread: number;
  readonly offset: number;
  readonly path: ThreadPath;
}

interface LocOption {
  readonly co: readonly number[];
  readonly rf: readonly (readonly [number, number])[];
}

/** Every allowed execution's final state, with a witness each. */
export function lkmmFinalStates(test: LitmusTest, opts: LkmmOptions = {}): LkmmStates {
  const paths = test.threads.map((t) => threadPaths(t));
  const states = new Map<string, LkmmWitness>();
  const rejected: Partial<Record<Axiom | "values", number>> = {};
  let candidates = 0;
  let executions = 0;
  let complete = true;
  const max = opts.maxCandidates ?? Number.POSITIVE_INFINITY;
  for (const pick of product(paths.map((p) => p.length))) {
    const built = build(
      test,
      pick.map((k, t) => paths[t][k]),
    );
    const options = built.locs.map((l) =>
      locOptions(built.events, l.writes, l.reads, built.rmw, opts.brute === true),
    );
    for (const locPick of product(options.map((o) => o.length))) {
      if (candidates >= max) {
        complete = false;
        break;
      }
      candidates++;
      const choice = [...pick, ...locPick];
      const r = judge(
        test,
        built,
        locPick.map((k, l) => options[l][k]),
      );
      if (typeof r === "string") {
        rejected[r] = (rejected[r] ?? 0) + 1;
        continue;
      }
      executions++;
      if (!states.has(r.key)) states.set(r.key, { ...r.witness, choice });
    }
    if (!complete) break;
  }
  return { states, candidates, executions, complete, rejected };
}

/**
 * The candidate a witness's `choice` names (path per thread, then (co, rf) option per location),
 * judged again: its witness, the axiom it violates, or why the choice does not fit the test.
 */
export function lkmmCandidate(
  test: LitmusTest,
  choice: readonly number[],
): { witness: LkmmWitness } | { rejected: Axiom | "values" } | { invalid: string } {
  const paths = test.threads.map((t) => threadPaths(t));
  if (choice.length < paths.length)
    return { invalid: `it names ${choice.length} choices, fewer than the threads` };
  const pick = choice.slice(0, paths.length);
  const bad = pick.findIndex((k, t) => !Number.isInteger(k) || k < 0 || k >= paths[t].length);
  if (bad >= 0)
    return { invalid: `P${bad} has ${paths[bad].length} control-flow paths, not path ${pick[bad]}` };
  const built = build(
    test,
    pick.map((k, t) => paths[t][k]),
  );
  const options = built.locs.map((l) => locOptions(built.events, l.writes, l.reads, built.rmw, false));
  const locPick = choice.slice(paths.length);
  if (locPick.length !== options.length)
    return {
      invalid: `it names ${locPick.length} location choices; the test has ${options.length} locations`,
    };
  const badLoc = locPick.findIndex((k, l) => !Number.isInteger(k) || k < 0 || k >= options[l].length);
  if (badLoc >= 0) return { invalid: `location ${built.locs[badLoc].loc} has no option ${locPick[badLoc]}` };
  const r = judge(
    test,
    built,
    locPick.map((k, l) => options[l][k]),
  );
  return typeof r === "string" ? { rejected: r } : { witness: { ...r.witness, choice } };
}

/** The events of one choice of paths: initial writes first, then each thread's. */
function build(test: LitmusTest, chosen: readonly ThreadPath[]) {
  const events: Ev[] = [];
  const locNames = [...test.init.keys()];
  for (const [loc, v] of test.init)
    events.push({
      kind: "W",
      tag: "init",
      loc,
      rmw: false,
      value: { deps: [], at: () => v },
      data: [],
      ctrl: [],
      text: `${loc} = ${v}`,
      thread: -1,
      index: 0,
    });
  const placed: Placed[] = [];
  const rmw: [number, number][] = [];
  const data: [number, number][] = [];
  const ctrl: [number, number][] = [];
  chosen.forEach((path, thread) => {
    const offset = events.length;
    placed.push({ thread, offset, path });
    path.events.forEach((e, index) => {
      events.push({ ...e, value: e.value && shift(e.value, offset), thread, index });
      for (const d of e.data) data.push([d + offset, offset + index]);
      for (const c of e.ctrl) ctrl.push([c + offset, offset + index]);
    });
    for (const [r, w] of path.rmw) rmw.push([r + offset, w + offset]);
  });
  const locs = locNames.map((loc) => ({
    loc,
    writes: events.flatMap((e, i) => (e.kind === "W" && e.loc === loc ? [i] : [])),
    reads: events.flatMap((e, i) => (e.kind === "R" && e.loc === loc ? [i] : [])),
  }));
  return { events, placed, rmw, data, ctrl, locs };
}

type Built = ReturnType<typeof build>;

/** A path-local value read through the execution's event numbering. */
function shift(s: Sym, offset: number): Sym {
  return { deps: s.deps.map((d) => d + offset), at: (rv) => s.at((e) => rv(e + offset)) };
}

/** Every (co, rf) choice for one location that its own coherence and atomicity allow. */
function locOptions(
  events: readonly Ev[],
  writes: readonly number[],
  reads: readonly number[],
  rmw: readonly (readonly [number, number])[],
  brute: boolean,
): LocOption[] {
  const [init, ...rest] = writes;
  const orders = brute ? permutations(rest) : interleavings(rest, events);
  const out: LocOption[] = [];
  for (const order of orders) {
    const co = [init, ...order];
    for (const pick of product(reads.map(() => co.length))) {
      const rf = reads.map((r, k) => [co[pick[k]], r] as const);
      if (brute || locConsistent(events, co, rf, rmw)) out.push({ co, rf });
    }
  }
  return out;
}

/**
 * coherence and atomic restricted to one location: with only that location's accesses, acyclic
 * (po-loc | rf | co | fr) is the per-location order "every read returns a write no older than
 * what its thread already saw or wrote, and no later one" (explanation.txt, SEQUENTIAL
 * CONSISTENCY PER VARIABLE), checked here as the cycle it is.
 */
function locConsistent(
  events: readonly Ev[],
  co: readonly number[],
  rf: readonly (readonly [number, number])[],
  rmw: readonly (readonly [number, number])[],
): boolean {
  const pos = new Map(co.map((w, k) => [w, k]));
  const src = new Map(rf.map(([w, r]) => [r, w]));
  // Each access's place in co: a write's own, a read's its source's (reads sit just after it).
  const ids = [...co, ...rf.map(([, r]) => r)];
  const k = ids.length;
  const at = new Map(ids.map((e, i) => [e, i]));
  const edges: number[][] = ids.map(() => []);
  const edge = (a: number, b: number) => edges[at.get(a)!].push(at.get(b)!);
  for (let a = 0; a < co.length - 1; a++) edge(co[a], co[a + 1]);
  for (const [w, r] of rf) {
    edge(w, r);
    const next = co[pos.get(w)! + 1];
    if (next !== undefined) edge(r, next); // fr to the co-successor (and on, through co)
  }
  for (const a of ids)
    for (const b of ids)
      if (
        a !== b &&
        events[a].thread >= 0 &&
        events[a].thread === events[b].thread &&
        events[a].index < events[b].index
      )
        edge(a, b);
  if (!acyclicGraph(k, edges)) return false;
  for (const [r, w] of rmw) {
    const from = src.get(r);
    if (from === undefined || !pos.has(w)) continue;
    for (let p = pos.get(from)! + 1; p < pos.get(w)!; p++)
      if (events[co[p]].thread !== events[r].thread) return false;
  }
  return true;
}

function acyclicGraph(k: number, edges: readonly number[][]): boolean {
  const state = new Uint8Array(k); // 0 new, 1 on the stack, 2 done
  const visit = (v: number): boolean => {
    state[v] = 1;
    for (const u of edges[v]) {
      if (state[u] === 1) return false;
      if (state[u] === 0 && !visit(u)) return false;
    }
    state[v] = 2;
    return true;
  };
  for (let v = 0; v < k; v++) if (state[v] === 0 && !visit(v)) return false;
  return true;
}

class ValueCycle extends Error {}

/** Values, guesses and axioms of one candidate: its final state and witness, or why it is out. */
function judge(
  test: LitmusTest,
  b: Built,
  chosen: readonly LocOption[],
): { key: string; witness: Omit<LkmmWitness, "choice"> } | Axiom | "values" {
  const rf = new Map<number, number>();
  const co = new Map<string, readonly number[]>();
  chosen.forEach((o, l) => {
    co.set(b.locs[l].loc, o.co);
    for (const [w, r] of o.rf) rf.set(r, w);
  });
  const x: Execution = { events: b.events, rf, co, rmw: b.rmw, data: b.data, ctrl: b.ctrl };
  // Values: a read returns its source's value, a write computes its own from reads. A dependency
  // cycle (thin air) is an hb cycle of data and rfe edges, so the axioms reject it; that is asserted.
  const written = new Map<number, number | null>();
  const readValue = (r: number): number => writeValue(rf.get(r)!);
  const writeValue = (w: number): number => {
    const known = written.get(w);
    if (known === null) throw new ValueCycle();
    if (known !== undefined) return known;
    written.set(w, null);
    const v = b.events[w].value!.at(readValue);
    written.set(w, v);
    return v;
  };
  let guessesHold: boolean;
  try {
    guessesHold = b.placed.every((p) =>
      p.path.constraints.every(
        (c) => (shift(c.left, p.offset).at(readValue) === shift(c.right, p.offset).at(readValue)) === c.equal,
      ),
    );
    for (const w of rf.values()) writeValue(w);
    for (const order of co.values()) for (const w of order) writeValue(w);
  } catch (e) {
    if (!(e instanceof ValueCycle)) throw e;
    const why = lkmmViolation(x);
    if (why === null) throw new Error(`internal: an allowed execution of ${test.name} has a value cycle`);
    return why;
  }
  if (!guessesHold) return "values";
  const why = lkmmViolation(x);
  if (why !== null) return why;
  const values: Record<string, number> = {};
  for (const p of b.placed)
    for (const [reg, s] of p.path.regs) values[`${p.thread}:${reg}`] = shift(s, p.offset).at(readValue);
  for (const [loc, order] of co) values[loc] = writeValue(order[order.length - 1]);
  const key = JSON.stringify(Object.fromEntries(Object.entries(values).sort()));
  const events = b.events.map((e, id) => ({
    id,
    thread: e.thread,
    kind: e.kind,
    tag: e.tag,
    loc: e.loc,
    value: e.kind === "W" ? writeValue(id) : e.kind === "R" ? readValue(id) : undefined,
    text: e.text,
  }));
  return {
    key,
    witness: {
      events,
      rf: [...rf].map(([r, w]) => [w, r] as const).sort((a, c) => a[1] - c[1]),
      co: Object.fromEntries(co),
    },
  };
}

/** Every index vector below `sizes`, the last index fastest. */
function* product(sizes: readonly number[]): Generator<number[]> {
  if (sizes.some((s) => s === 0)) return;
  const idx = sizes.map(() => 0);
  for (;;) {
    yield [...idx];
    let k = sizes.length - 1;
    while (k >= 0 && ++idx[k] === sizes[k]) idx[k--] = 0;
    if (k < 0) return;
  }
}

function* permutations<T>(xs: readonly T[]): Generator<T[]> {
  if (xs.length <= 1) {
    yield [...xs];
    return;
  }
  for (let i = 0; i < xs.length; i++)
    for (const rest of permutations([...xs.slice(0, i), ...xs.slice(i + 1)])) yield [xs[i], ...rest];
}

/** Orders of `writes` that keep each thread's writes in program order. */
function* interleavings(writes: readonly number[], events: readonly Ev[]): Generator<number[]> {
  const byThread = new Map<number, number[]>();
  for (const w of writes) byThread.set(events[w].thread, [...(byThread.get(events[w].thread) ?? []), w]);
  const seqs = [...byThread.values()].map((s) => s.sort((a, c) => events[a].index - events[c].index));
  const heads = seqs.map(() => 0);
  const out: number[] = [];
  function* go(): Generator<number[]> {
    if (out.length === writes.length) {
      yield [...out];
      return;
    }
    for (let s = 0; s < seqs.length; s++) {
      if (heads[s] === seqs[s].length) continue;
      out.push(seqs[s][heads[s]++]);
      yield* go();
      heads[s]--;
      out.pop();
    }
  }
  yield* go();
}
