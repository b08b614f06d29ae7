import type { SimTraceRun, SimTraceStep, SimTraceWait } from "../../src/trace/sim-trace-schema.js";
import { lockModeOf } from "./format.js";

/** A lock held on the virtual clock: from the start of the acquiring step to the start of the releasing one. */
export interface SimHold {
  readonly task: number;
  readonly name: string;
  readonly mode: "read" | "write" | "exclusive";
  readonly startNs: number;
  readonly endNs: number;
  /** Not released before the run ended. */
  readonly open: boolean;
}

/**
 * Lock holds from the step spans: the simulator makes an access take effect at the start of its
 * step, so a lock is held from the start of the step that took it to the start of the step that
 * released it.
 */
export function simHolds(run: SimTraceRun): SimHold[] {
  const open = new Map<string, SimTraceStep[]>();
  const out: SimHold[] = [];
  for (const s of run.steps) {
    const key = `${s.task}/${s.objName}`;
    if (s.kind === "acquire") {
      const l = open.get(key) ?? [];
      l.push(s);
      open.set(key, l);
    } else if (s.kind === "release") {
      const a = open.get(key)?.pop();
      if (a)
        out.push({
          task: s.task,
          name: s.objName,
          mode: lockModeOf(a.step),
          startNs: a.startNs,
          endNs: s.startNs,
          open: false,
        });
    }
  }
  for (const l of open.values())
    for (const a of l)
      out.push({
        task: a.task,
        name: a.objName,
        mode: lockModeOf(a.step),
        startNs: a.startNs,
        endNs: Math.max(run.virtualNs, a.startNs),
        open: true,
      });
  return out.sort((a, b) => a.startNs - b.startNs);
}

/** What each task was doing at time t, and the locks held and waited for then. */
export interface SimSnapshot {
  readonly tasks: readonly {
    readonly task: number;
    readonly running: SimTraceStep | null;
    readonly waiting: SimTraceWait | null;
  }[];
  readonly holds: readonly SimHold[];
  /** Waits in progress at t, by the object waited for. */
  readonly waitsByObj: ReadonlyMap<string, readonly SimTraceWait[]>;
}

const covers = (s: { startNs: number; endNs: number }, t: number) =>
  s.startNs <= t && (t < s.endNs || (s.startNs === s.endNs && s.startNs === t));

export function simSnapshot(run: SimTraceRun, holds: readonly SimHold[], t: number): SimSnapshot {
  const running = new Map<number, SimTraceStep>();
  for (const s of run.steps) {
    if (s.startNs > t) break;
    if (covers(s, t)) running.set(s.task, s);
  }
  const waiting = new Map<number, SimTraceWait>();
  const waitsByObj = new Map<string, SimTraceWait[]>();
  for (const w of run.waits) {
    if (w.startNs > t) break;
    if (!covers(w, t)) continue;
    waiting.set(w.task, w);
    const l = waitsByObj.get(w.objName) ?? [];
    l.push(w);
    waitsByObj.set(w.objName, l);
  }
  return {
    tasks: run.tasks.map((tk) => ({
      task: tk.id,
      running: running.get(tk.id) ?? null,
      waiting: running.has(tk.id) ? null : (waiting.get(tk.id) ?? null),
    })),
    holds: holds.filter((h) => h.startNs <= t && t < h.endNs),
    waitsByObj,
  };
}

/** A rectangle to draw on a row, in pixels; tiny spans merged so a long run draws in bounded time. */
export interface PxRect<T> {
  readonly x: number;
  readonly w: number;
  /** The span, or null for a merged bundle of sub-pixel spans. */
  readonly span: T | null;
  readonly count: number;
}

/**
 * The spans of one row (sorted by start) that intersect [t0, t1], in pixels at `pxPerNs`. Spans
 * narrower than a pixel that touch each other are merged into one rectangle.
 */
export function pxRects<T extends { startNs: number; endNs: number }>(
  spans: readonly T[],
  t0: number,
  t1: number,
  pxPerNs: number,
): PxRect<T>[] {
  const out: PxRect<T>[] = [];
  let bundle: { x: number; end: number; count: number } | null = null;
  const flush = () => {
    if (bundle)
      out.push({ x: bundle.x, w: Math.max(1, bundle.end - bundle.x), span: null, count: bundle.count });
    bundle = null;
  };
  for (const s of spans) {
    if (s.endNs < t0) continue;
    if (s.startNs > t1) break;
    const x = (Math.max(s.startNs, t0) - t0) * pxPerNs;
    const x1 = (Math.min(s.endNs, t1) - t0) * pxPerNs;
    if (x1 - x >= 1) {
      flush();
      out.push({ x, w: x1 - x, span: s, count: 1 });
      continue;
    }
    if (bundle && x <= bundle.end + 1) {
      bundle.end = Math.max(bundle.end, x1);
      bundle.count++;
    } else {
      flush();
      bundle = { x, end: x1, count: 1 };
    }
  }
  flush();
  return out;
}

/** Spans of one task, in start order. */
export function byTask<T extends { task: number }>(spans: readonly T[]): Map<number, T[]> {
  const m = new Map<number, T[]>();
  for (const s of spans) {
    const l = m.get(s.task) ?? [];
    l.push(s);
    m.set(s.task, l);
  }
  return m;
}

/** The next span index of `task` after `cursor` (or before it, with `back`), or null. */
export function simStepOfTask(run: SimTraceRun, cursor: number, task: number, back = false): number | null {
  const steps = run.steps;
  if (back) {
    for (let i = cursor - 1; i >= 0; i--) if (steps[i].task === task) return i;
    return null;
  }
  for (let i = cursor + 1; i < steps.length; i++) if (steps[i].task === task) return i;
  return null;
}
