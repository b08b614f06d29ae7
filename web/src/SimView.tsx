import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { SimTraceDoc, SimTraceRun, SimTraceStep } from "../../src/trace/sim-trace-schema.js";
import { Controls } from "./Controls.js";
import { fnHue, formatNs, ticks } from "./format.js";
import { byTask, pxRects, simHolds, simSnapshot, simStepOfTask } from "./sim-model.js";
import { useKeys, useView } from "./use-view.js";

const ROW_H = 34;
const TOP = 24;

function laneOrder(run: SimTraceRun): number[] {
  const rank = new Map<string, number>();
  for (const t of run.tasks) if (!rank.has(t.lane)) rank.set(t.lane, rank.size);
  return [...run.tasks].sort((a, b) => rank.get(a.lane)! - rank.get(b.lane)! || a.id - b.id).map((t) => t.id);
}

/** Width of an element, following resizes. */
function useWidth(fallback: number): [(el: HTMLDivElement | null) => void, number] {
  const [w, setW] = useState(fallback);
  const obs = useRef<ResizeObserver | null>(null);
  const ref = useCallback((el: HTMLDivElement | null) => {
    obs.current?.disconnect();
    if (!el) return;
    setW(el.clientWidth || fallback);
    obs.current = new ResizeObserver(() => setW(el.clientWidth || fallback));
    obs.current.observe(el);
  }, []);
  return [ref, w];
}

/**
 * Timed simulator runs on their virtual-time axis: per task, its steps (coloured by kernel function),
 * its waits (spinning on a CPU, asleep, waiting for a CPU) and its lock holds (acquire to release).
 * The cursor walks the steps in time order; the panel shows what every task and lock was doing then.
 */
export function SimView(props: { doc: SimTraceDoc }) {
  const { doc } = props;
  const count = useCallback((r: number) => doc.runs[r]?.steps.length ?? 0, [doc]);
  const view = useView(count, { task: null, runs: doc.runs.length });
  const run = doc.runs[view.run];
  const [win, setWin] = useState<{ run: number; t0: number; t1: number } | null>(null);
  const end = Math.max(1, run?.virtualNs ?? 1, ...(run ? [run.steps.at(-1)?.endNs ?? 0] : []));
  const t0 = win && win.run === view.run ? win.t0 : 0;
  const t1 = win && win.run === view.run ? win.t1 : end;
  const model = useMemo(() => {
    if (!run) return null;
    const holds = simHolds(run);
    const index = new Map<SimTraceStep, number>(run.steps.map((s, i) => [s, i]));
    return {
      order: laneOrder(run),
      steps: byTask(run.steps),
      waits: byTask(run.waits),
      holds,
      holdsByTask: byTask(holds),
      index,
    };
  }, [run]);
  const n = run?.steps.length ?? 0;
  const cursorStep = run?.steps[view.cursor];
  const tCursor = cursorStep?.startNs ?? 0;
  const nextOfTask = (back: boolean) =>
    view.moveCursor((cursor, task) =>
      !run || task === null ? null : simStepOfTask(run, cursor, task, back),
    );
  useKeys({
    step: (d) => view.moveCursor((cursor) => cursor + d),
    home: () => view.setCursor(0),
    end: () => view.setCursor(n - 1),
    nextOfTask,
  });
  // Keep the cursor inside the window: pan (same zoom) when it leaves.
  useEffect(() => {
    if (!cursorStep || (tCursor >= t0 && tCursor <= t1)) return;
    const span = t1 - t0;
    const a = Math.max(0, Math.min(end - span, tCursor - span / 2));
    setWin({ run: view.run, t0: a, t1: a + span });
  }, [tCursor]);
  const [measure, width] = useWidth(1000);
  if (!run || !model) return <p class="notice">This simulator trace has no runs.</p>;
  const plotW = Math.max(200, width - 8);
  const pxPerNs = plotW / Math.max(1e-9, t1 - t0);
  const X = (t: number) => (t - t0) * pxPerNs;
  const height = TOP + model.order.length * ROW_H + 4;
  const zoom = (f: number) => {
    const span = Math.min(end, Math.max(10, (t1 - t0) / f));
    const c = cursorStep ? tCursor : (t0 + t1) / 2;
    const a = Math.max(0, Math.min(end - span, c - span / 2));
    setWin({ run: view.run, t0: a, t1: a + span });
  };
  const snap = simSnapshot(run, model.holds, tCursor);
  const name = (id: number) => run.tasks[id]?.name ?? `T${id}`;
  const lockNames = [
    ...new Set([
      ...snap.holds.map((h) => h.name),
      ...[...snap.waitsByObj.keys()].filter((o) => model.holds.some((h) => h.name === o)),
    ]),
  ];
  return (
    <div class="sim-view">
      <div class="run-info">
        <span class="scenario" data-testid="scenario">
          {doc.scenario}
        </span>
        <span class="tag">simulator</span>
        <span class="runs">
          {doc.runs.map((r, i) => (
            <button
              type="button"
              key={`${i}`}
              class={i === view.run ? "run-tab selected" : "run-tab"}
              data-run={i}
              onClick={() => view.setRun(i)}
            >
              {r.label}
              {r.kernel ? ` (${r.kernel})` : ""}
              {r.status !== "ok" ? ` — ${r.status}` : ""}
            </button>
          ))}
        </span>
      </div>
      <Controls
        cursor={view.cursor}
        count={n}
        onCursor={view.setCursor}
        onNextOfTask={() => nextOfTask(false)}
        taskName={view.task === null ? null : name(view.task)}
        label={`t = ${formatNs(tCursor)} · step ${view.cursor} of ${Math.max(0, n - 1)} · run ends at ${formatNs(run.virtualNs)}`}
      />
      <div class="zoom">
        <button type="button" onClick={() => zoom(2)}>
          zoom in
        </button>
        <button type="button" onClick={() => zoom(0.5)}>
          zoom out
        </button>
        <button type="button" onClick={() => setWin(null)}>
          fit
        </button>
        <span class="muted">
          {formatNs(t0)} – {formatNs(t1)}
        </span>
        <span class="legend">
          <span class="sw spin" /> spinning <span class="sw sleep" /> asleep <span class="sw runqueue" />{" "}
          waiting for a CPU <span class="sw hold" /> lock held (a colour per lock)
        </span>
      </div>
      {cursorStep && (
        <div class="step-detail" data-testid="step-detail">
          <span class="step-no">{formatNs(cursorStep.startNs)}</span>
          <span class="task-name">{name(cursorStep.task)}</span>
          <span class="muted">cpu{cursorStep.cpu}</span>
          <span class={`kind kind-${cursorStep.kind}`}>{cursorStep.kind}</span>
          <span class="mono">
            {cursorStep.fn}(): {cursorStep.step}
          </span>
          <span class="mono obj">{cursorStep.objName}</span>
          <span class="muted">
            {formatNs(cursorStep.endNs - cursorStep.startNs)}
            {cursorStep.weight > 1 ? `, ${cursorStep.weight} steps in bulk` : ""}
          </span>
        </div>
      )}
      <div class="lanes" data-testid="lanes">
        <div class="lane-labels" style={{ paddingTop: `${TOP}px` }}>
          {model.order.map((t) => (
            <button
              type="button"
              key={t}
              class={`lane-label${view.task === t ? " selected" : ""}`}
              style={{ height: `${ROW_H}px` }}
              data-task={t}
              title={`select ${name(t)} (n steps through it)`}
              onClick={() => view.setTask(t)}
            >
              <span class="task-name">{name(t)}</span>
              <span class="lane-kind">
                {run.tasks[t]?.cpu === null ? "any CPU" : `cpu${run.tasks[t]?.cpu}`}
              </span>
            </button>
          ))}
        </div>
        <div class="lane-scroll" ref={measure}>
          <svg width={plotW} height={height} class="lane-svg" role="img" aria-label="virtual time per task">
            <title>virtual time per task</title>
            <defs>
              <pattern
                id="hatch-spin"
                width="6"
                height="6"
                patternUnits="userSpaceOnUse"
                patternTransform="rotate(45)"
              >
                <rect width="6" height="6" fill="#fde2e2" />
                <rect width="3" height="6" fill="#dc2626" />
              </pattern>
              <pattern
                id="hatch-sleep"
                width="6"
                height="6"
                patternUnits="userSpaceOnUse"
                patternTransform="rotate(45)"
              >
                <rect width="6" height="6" fill="#e0ecfd" />
                <rect width="2" height="6" fill="#3b82f6" />
              </pattern>
              <pattern
                id="hatch-runqueue"
                width="6"
                height="6"
                patternUnits="userSpaceOnUse"
                patternTransform="rotate(-45)"
              >
                <rect width="6" height="6" fill="#f1f2f4" />
                <rect width="2" height="6" fill="#9ca3af" />
              </pattern>
            </defs>
            {model.order.map((t, r) => (
              <rect
                key={`bg${t}`}
                x={0}
                y={TOP + r * ROW_H}
                width={plotW}
                height={ROW_H}
                class={view.task === t ? "row-bg selected" : r % 2 ? "row-bg odd" : "row-bg"}
              />
            ))}
            {ticks(t0, t1, Math.max(2, Math.floor(plotW / 110))).map((t) => (
              <g key={`t${t}`}>
                <line x1={X(t)} x2={X(t)} y1={TOP - 4} y2={height} class="tick" />
                <text x={X(t) + 2} y={14} class="axis-label">
                  {formatNs(t)}
                </text>
              </g>
            ))}
            {model.order.map((t, r) => {
              const y = TOP + r * ROW_H;
              return (
                <g key={`row${t}`}>
                  {pxRects(model.waits.get(t) ?? [], t0, t1, pxPerNs).map((p) => (
                    <rect
                      key={`w${p.x}`}
                      x={p.x}
                      y={y + 8}
                      width={p.w}
                      height={10}
                      class={`wait ${p.span ? p.span.kind : "bundle"}`}
                    >
                      <title>
                        {p.span
                          ? `${p.span.kind} ${formatNs(p.span.endNs - p.span.startNs)} for ${p.span.fn}(): ${p.span.step} ${p.span.objName}`
                          : `${p.count} short waits`}
                      </title>
                    </rect>
                  ))}
                  {pxRects(model.steps.get(t) ?? [], t0, t1, pxPerNs).map((p) => {
                    const idx = p.span ? model.index.get(p.span) : undefined;
                    return (
                      // biome-ignore lint/a11y/noStaticElementInteractions: the keys and the slider reach every step too
                      <rect
                        key={`s${p.x}`}
                        x={p.x}
                        y={y + 4}
                        width={p.w}
                        height={18}
                        class={`span${idx === view.cursor ? " current" : ""}`}
                        data-step={idx}
                        style={{ fill: p.span ? `hsl(${fnHue(p.span.fn)} 55% 70%)` : "#8a8f99" }}
                        onClick={() => {
                          if (idx !== undefined) view.setCursor(idx);
                          view.setTask(t);
                        }}
                      >
                        <title>
                          {p.span
                            ? `${p.span.fn}(): ${p.span.step} ${p.span.objName} · ${formatNs(p.span.startNs)} +${formatNs(p.span.endNs - p.span.startNs)}${p.span.weight > 1 ? ` · ${p.span.weight} steps` : ""}`
                            : `${p.count} short steps`}
                        </title>
                      </rect>
                    );
                  })}
                  {pxRects(model.holdsByTask.get(t) ?? [], t0, t1, pxPerNs).map((p) => (
                    <rect
                      key={`h${p.x}`}
                      x={p.x}
                      y={y + 25}
                      width={p.w}
                      height={4}
                      class="hold-span"
                      style={{ fill: p.span ? `hsl(${fnHue(p.span.name)} 70% 40%)` : "#555" }}
                    >
                      <title>
                        {p.span
                          ? `${p.span.name} held (${p.span.mode}) for ${formatNs(p.span.endNs - p.span.startNs)}${p.span.open ? " (never released)" : ""}`
                          : `${p.count} short holds`}
                      </title>
                    </rect>
                  ))}
                </g>
              );
            })}
            {cursorStep && <line x1={X(tCursor)} x2={X(tCursor)} y1={0} y2={height} class="cursor-line" />}
          </svg>
        </div>
      </div>
      <div class="state" data-testid="state-panel">
        <p class="state-caption">At t = {formatNs(tCursor)}</p>
        <section class="state-section" data-section="tasks">
          <h3>Tasks</h3>
          <table>
            <thead>
              <tr>
                <th>task</th>
                <th>doing</th>
              </tr>
            </thead>
            <tbody>
              {snap.tasks.map((s) => (
                <tr key={s.task}>
                  <td>{name(s.task)}</td>
                  <td class="mono">
                    {s.running
                      ? `running on cpu${s.running.cpu}: ${s.running.fn}(): ${s.running.step} ${s.running.objName}`
                      : s.waiting
                        ? `${s.waiting.kind === "spin" ? `spinning on cpu${s.waiting.cpu}` : s.waiting.kind === "sleep" ? "asleep" : "waiting for a CPU"} before ${s.waiting.fn}(): ${s.waiting.step} ${s.waiting.objName}`
                        : "—"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section class="state-section" data-section="locks">
          <h3>Locks</h3>
          {lockNames.length === 0 ? (
            <p class="muted">none held</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>lock</th>
                  <th>holders (mode, since)</th>
                  <th>waiters</th>
                </tr>
              </thead>
              <tbody>
                {lockNames.map((l) => (
                  <tr key={l}>
                    <td class="mono">{l}</td>
                    <td>
                      {snap.holds
                        .filter((h) => h.name === l)
                        .map((h) => `${name(h.task)} (${h.mode}, ${formatNs(h.startNs)})`)
                        .join(", ") || "—"}
                    </td>
                    <td>
                      {(snap.waitsByObj.get(l) ?? []).map((w) => `${name(w.task)} (${w.kind})`).join(", ") ||
                        "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </div>
  );
}
