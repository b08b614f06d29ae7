import type { TraceDoc } from "../../src/trace/schema.js";
import { lockModeOf } from "./format.js";

type Step = TraceDoc["steps"][number];

/** A stretch of one task's consecutive steps in the same kernel function (other tasks may interleave). */
export interface FnRun {
  readonly task: number;
  readonly fn: string;
  readonly first: number;
  readonly last: number;
  readonly steps: readonly number[];
}

/** A lock held by a task from its acquiring step to its releasing step (null: still held at the end). */
export interface LockHold {
  readonly task: number;
  readonly obj: number;
  readonly name: string;
  readonly mode: "read" | "write" | "exclusive";
  readonly from: number;
  readonly to: number | null;
}

/**
 * Row order of the lanes: tasks grouped by their lane (in the order lanes first appear: vCPUs,
 * workers, zappers, notifiers, RCU callbacks as the scenario spawned them), then by id.
 */
export function laneOrder(doc: TraceDoc): number[] {
  const laneRank = new Map<string, number>();
  for (const t of doc.tasks) if (!laneRank.has(t.lane)) laneRank.set(t.lane, laneRank.size);
  return [...doc.tasks]
    .sort((a, b) => laneRank.get(a.lane)! - laneRank.get(b.lane)! || a.id - b.id)
    .map((t) => t.id);
}

export function fnRuns(doc: TraceDoc): FnRun[] {
  const open = new Map<number, { fn: string; steps: number[] }>();
  const out: FnRun[] = [];
  const close = (task: number) => {
    const r = open.get(task);
    if (r) out.push({ task, fn: r.fn, first: r.steps[0], last: r.steps.at(-1)!, steps: r.steps });
  };
  for (const s of doc.steps) {
    const r = open.get(s.task);
    if (r && r.fn === s.fn) r.steps.push(s.i);
    else {
      close(s.task);
      open.set(s.task, { fn: s.fn, steps: [s.i] });
    }
  }
  for (const task of open.keys()) close(task);
  return out.sort((a, b) => a.first - b.first);
}

/** Lock holds from the acquire/release steps (an acquire is the step that took the lock). */
export function lockHolds(doc: TraceDoc): LockHold[] {
  const open = new Map<string, { step: Step; mode: LockHold["mode"] }[]>();
  const out: LockHold[] = [];
  for (const s of doc.steps) {
    const key = `${s.task}/${s.obj}`;
    if (s.kind === "acquire") {
      const stack = open.get(key) ?? [];
      stack.push({ step: s, mode: lockModeOf(s.step) });
      open.set(key, stack);
    } else if (s.kind === "release") {
      const a = open.get(key)?.pop();
      if (a)
        out.push({
          task: s.task,
          obj: s.obj,
          name: doc.objects[s.obj] ?? `#${s.obj}`,
          mode: a.mode,
          from: a.step.i,
          to: s.i,
        });
    }
  }
  for (const stack of open.values())
    for (const a of stack)
      out.push({
        task: a.step.task,
        obj: a.step.obj,
        name: doc.objects[a.step.obj] ?? `#${a.step.obj}`,
        mode: a.mode,
        from: a.step.i,
        to: null,
      });
  return out.sort((a, b) => a.from - b.from);
}

/** Locks held after step `cursor`, derived from the steps (for traces recorded without states). */
export function heldAt(holds: readonly LockHold[], cursor: number): LockHold[] {
  return holds.filter((h) => h.from <= cursor && (h.to === null || h.to > cursor));
}

/** The next step of `task` after `cursor` (null if none); with `back`, the previous one. */
export function stepOfTask(doc: TraceDoc, cursor: number, task: number, back = false): number | null {
  if (back) {
    for (let i = cursor - 1; i >= 0; i--) if (doc.steps[i].task === task) return i;
    return null;
  }
  for (let i = cursor + 1; i < doc.steps.length; i++) if (doc.steps[i].task === task) return i;
  return null;
}
