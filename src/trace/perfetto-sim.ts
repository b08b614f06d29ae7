import type { SimResult, SimStepSpan, SimWaitSpan } from "../engine/sim/simulator.js";
import type { ChromeTrace } from "./perfetto.js";

/**
 * Timed simulator runs as Chrome Trace Event JSON (ui.perfetto.dev), on the virtual clock: ts and
 * dur are virtual microseconds (ns / 1000). Each run is a process named by its label, each task a
 * thread of it (tid = task id + 1), and on each thread:
 * - one complete ("X") slice per stretch of consecutive steps in the same kernel function
 *   (cat "fn"; args: steps, the CPU, the first and last step);
 * - one complete slice per wait: "spin", "sleep" or "runqueue", named after the access waited for
 *   (cat "wait"); a wait never overlaps a step of its task, so it sits between two function slices
 *   or inside one.
 * Lock holds are async slices ("b"/"e", cat "lock") named after the lock, one track per lock and
 * holder (holds of different locks by one task cross, which thread slices cannot): a hold runs
 * from the start of the step that took the lock to the start of the step that released it, which
 * is when the simulator makes each take effect.
 */

export interface SimRunForTrace {
  readonly label: string;
  readonly result: SimResult;
}

const tid = (task: number) => task + 1;
const us = (ns: number) => ns / 1000;

export function simPerfetto(runs: readonly SimRunForTrace[]): ChromeTrace {
  const ev: unknown[] = [];
  const lockIds = { next: 1 };
  runs.forEach((run, k) => {
    const pid = k + 1;
    const r = run.result;
    ev.push({ ph: "M", pid, tid: 0, name: "process_name", args: { name: run.label } });
    ev.push({ ph: "M", pid, tid: 0, name: "process_sort_index", args: { sort_index: k } });
    r.perTask.forEach((t, id) => {
      const name = t.cpu === null ? t.name : `${t.name} (cpu${t.cpu})`;
      ev.push({ ph: "M", pid, tid: tid(id), name: "thread_name", args: { name } });
      ev.push({ ph: "M", pid, tid: tid(id), name: "thread_sort_index", args: { sort_index: id } });
    });
    const tl = r.timeline;
    if (tl === undefined) {
      throw new Error(`simPerfetto: run '${run.label}' has no timeline (simulate with timeline: true)`);
    }
    const byTask = groupByTask(tl.steps);
    for (const [task, steps] of byTask) ev.push(...functionSlices(pid, task, steps));
    ev.push(...waitSlices(pid, tl.waits, byTask));
    ev.push(...lockHolds(pid, tl.steps, r.virtualNs, r.perTask, lockIds));
  });
  return { traceEvents: ev, displayTimeUnit: "ns" };
}

/** Steps per task, each list in time order. */
function groupByTask(steps: readonly SimStepSpan[]): Map<number, SimStepSpan[]> {
  const m = new Map<number, SimStepSpan[]>();
  for (const s of steps) {
    let l = m.get(s.task);
    if (l === undefined) {
      l = [];
      m.set(s.task, l);
    }
    l.push(s);
  }
  for (const l of m.values()) l.sort((a, b) => a.startNs - b.startNs);
  return m;
}

/** One slice per run of consecutive steps of one task in the same function. */
function functionSlices(pid: number, task: number, steps: readonly SimStepSpan[]): unknown[] {
  const ev: unknown[] = [];
  let i = 0;
  while (i < steps.length) {
    const first = steps[i];
    let j = i;
    let weight = 0;
    const cpus = new Set<number>();
    while (j < steps.length && steps[j].fn === first.fn) {
      weight += steps[j].weight;
      cpus.add(steps[j].cpu);
      j++;
    }
    const last = steps[j - 1];
    ev.push({
      ph: "X",
      pid,
      tid: tid(task),
      ts: us(first.startNs),
      dur: us(last.endNs - first.startNs),
      name: first.fn,
      cat: "fn",
      args: {
        steps: weight,
        cpu: [...cpus].join(","),
        first: `${first.step} ${first.objName}`,
        last: `${last.step} ${last.objName}`,
      },
    });
    i = j;
  }
  return ev;
}

/**
 * Waits as slices on their task's thread, clipped to the gap between the task's steps around them
 * so that they nest under (or sit between) the function slices.
 */
function waitSlices(
  pid: number,
  waits: readonly SimWaitSpan[],
  byTask: ReadonlyMap<number, readonly SimStepSpan[]>,
): unknown[] {
  const ev: unknown[] = [];
  for (const w of waits) {
    const steps = byTask.get(w.task) ?? [];
    let start = w.startNs;
    let end = w.endNs;
    // The task's last step before the wait and its first step from the wait's start on.
    const next = firstAtOrAfter(steps, w.startNs);
    if (next > 0) start = Math.max(start, steps[next - 1].endNs);
    if (next < steps.length) end = Math.min(end, steps[next].startNs);
    if (end <= start) continue;
    ev.push({
      ph: "X",
      pid,
      tid: tid(w.task),
      ts: us(start),
      dur: us(end - start),
      name: `${w.kind} ${w.objName}`,
      cat: "wait",
      args: { kind: w.kind, fn: w.fn, step: w.step, obj: w.objName, cpu: w.cpu },
    });
  }
  return ev;
}

/** Index of the first step starting at or after `ns` (steps in time order). */
function firstAtOrAfter(steps: readonly SimStepSpan[], ns: number): number {
  let lo = 0;
  let hi = steps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (steps[mid].startNs < ns) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

type Mode = "read" | "write" | "exclusive";

interface Held {
  startNs: number;
  readonly mode: Mode;
  readonly step: string;
}

function modeOf(step: string): Mode {
  if (step.startsWith("read_lock")) return "read";
  if (step.startsWith("write_lock")) return "write";
  return "exclusive";
}

/**
 * Lock holds from the acquire and release steps, per task and lock object: an acquire pushes a
 * hold, a slowpath acquire (rwlock.ts: the same acquisition going on after it queued) moves the
 * current hold's start to itself, a release pops. A trylock whose lock is acquired again before
 * any release must have failed (a spinlock cannot be taken twice by one task) and is dropped, and
 * so is one left open when the run ends; any other hold left open ends with the run.
 */
function lockHolds(
  pid: number,
  steps: readonly SimStepSpan[],
  endNs: number,
  perTask: SimResult["perTask"],
  ids: { next: number },
): unknown[] {
  const ev: unknown[] = [];
  const held = new Map<string, Held[]>();
  const trackIds = new Map<string, number>();
  const emit = (task: number, lock: string, h: Held, endAt: number) => {
    const key = `${task}\u0000${lock}`;
    let id = trackIds.get(key);
    if (id === undefined) {
      id = ids.next++;
      trackIds.set(key, id);
    }
    const args = { holder: perTask[task]?.name ?? `task ${task}`, mode: h.mode };
    ev.push({ ph: "b", cat: "lock", id, pid, tid: tid(task), ts: us(h.startNs), name: lock, args });
    ev.push({ ph: "e", cat: "lock", id, pid, tid: tid(task), ts: us(endAt), name: lock });
  };
  const ordered = [...steps].sort((a, b) => a.startNs - b.startNs || a.task - b.task);
  for (const s of ordered) {
    if (s.kind !== "acquire" && s.kind !== "release") continue;
    const key = `${s.task}\u0000${s.objName}`;
    let stack = held.get(key);
    if (stack === undefined) {
      stack = [];
      held.set(key, stack);
    }
    const top = stack.at(-1);
    if (s.kind === "release") {
      const h = stack.pop();
      if (h !== undefined) emit(s.task, s.objName, h, s.startNs);
    } else if (s.step.includes("slowpath") && top !== undefined) {
      top.startNs = s.startNs;
    } else {
      if (top?.step.includes("trylock")) stack.pop();
      stack.push({ startNs: s.startNs, mode: modeOf(s.step), step: s.step });
    }
  }
  for (const [key, stack] of held) {
    const [task, lock] = key.split("\u0000");
    for (const h of stack) if (!h.step.includes("trylock")) emit(Number(task), lock, h, endNs);
  }
  return ev;
}
