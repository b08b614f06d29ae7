import { useEffect, useMemo, useRef } from "preact/hooks";
import type { TraceDoc } from "../../src/trace/schema.js";
import { fnHue } from "./format.js";
import { fnRuns, laneOrder, lockHolds } from "./lanes.js";

const ROW_H = 38;
const TOP = 20;

/**
 * One lane per task (grouped by lane kind), time = step index. Per lane: bars for the kernel
 * function a run of its steps is in (labelled), a mark per step (coloured by access kind; click to
 * move the cursor there), lock holds as a line under the lane from acquire to release. The
 * violating step is red and carries the invariant; the cursor is a highlighted column.
 */
export function Lanes(props: {
  doc: TraceDoc;
  cursor: number;
  task: number | null;
  onCursor: (i: number, task: number) => void;
  onTask: (t: number) => void;
}) {
  const { doc, cursor } = props;
  const order = useMemo(() => laneOrder(doc), [doc]);
  const runs = useMemo(() => fnRuns(doc), [doc]);
  const holds = useMemo(() => lockHolds(doc), [doc]);
  const n = doc.steps.length;
  const stepW = Math.max(14, Math.min(40, Math.floor(1000 / Math.max(1, n))));
  const width = n * stepW + 200;
  const height = TOP + order.length * ROW_H + 4;
  const row = new Map(order.map((t, r) => [t, r]));
  const x = (i: number) => i * stepW;
  const y = (task: number) => TOP + (row.get(task) ?? 0) * ROW_H;
  const vStep = doc.violation ? doc.violation.step : -1;
  const every = stepW >= 28 ? 1 : stepW >= 18 ? 5 : 10;
  const scroller = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const cx = x(cursor);
    if (cx < el.scrollLeft + 20 || cx > el.scrollLeft + el.clientWidth - 60)
      el.scrollLeft = Math.max(0, cx - el.clientWidth / 2);
  }, [cursor]);
  return (
    <div class="lanes" data-testid="lanes">
      <div class="lane-labels" style={{ paddingTop: `${TOP}px` }}>
        {order.map((t) => {
          const task = doc.tasks[t];
          return (
            <button
              type="button"
              key={t}
              class={`lane-label${props.task === t ? " selected" : ""}`}
              style={{ height: `${ROW_H}px` }}
              data-task={t}
              title={`select ${task.name} (n steps through it)`}
              onClick={() => props.onTask(t)}
            >
              <span class="task-name">{task.name}</span>
              {task.lane !== task.name && <span class="lane-kind">{task.lane}</span>}
            </button>
          );
        })}
      </div>
      <div class="lane-scroll" ref={scroller}>
        <svg width={width} height={height} class="lane-svg" role="img" aria-label="steps per task">
          <title>steps per task</title>
          {order.map((t, r) => (
            <rect
              key={`bg${t}`}
              x={0}
              y={TOP + r * ROW_H}
              width={width}
              height={ROW_H}
              class={props.task === t ? "row-bg selected" : r % 2 ? "row-bg odd" : "row-bg"}
            />
          ))}
          {Array.from({ length: Math.ceil(n / every) }, (_, k) => k * every).map((i) => (
            <text key={`ax${i}`} x={x(i) + stepW / 2} y={13} class="axis-label" text-anchor="middle">
              {i}
            </text>
          ))}
          <rect x={x(cursor)} y={0} width={stepW} height={height} class="cursor-col" />
          {runs.map((fr) => {
            const bx = x(fr.first) + 1;
            const bw = x(fr.last) + stepW - bx - 1;
            const hue = fnHue(fr.fn);
            return (
              <g key={`fn${fr.task}-${fr.first}`} class="fn-run">
                <rect
                  x={bx}
                  y={y(fr.task) + 3}
                  width={bw}
                  height={15}
                  rx={3}
                  style={{ fill: `hsl(${hue} 60% 90%)`, stroke: `hsl(${hue} 45% 55%)` }}
                >
                  <title>{`${fr.fn}() — steps ${fr.first}–${fr.last}`}</title>
                </rect>
                <svg x={bx + 2} y={y(fr.task) + 3} width={Math.max(0, bw - 4)} height={15}>
                  <title>{`${fr.fn}() — steps ${fr.first}–${fr.last}`}</title>
                  <text x={0} y={11} class="fn-label">
                    {fr.fn}
                  </text>
                </svg>
              </g>
            );
          })}
          {holds.map((h) => {
            const x0 = x(h.from) + stepW / 2;
            const x1 = x(h.to ?? n - 1) + stepW / 2;
            const hue = fnHue(h.name);
            return (
              <line
                key={`h${h.task}-${h.from}`}
                x1={x0}
                x2={Math.max(x1, x0 + 2)}
                y1={y(h.task) + ROW_H - 5}
                y2={y(h.task) + ROW_H - 5}
                class="hold"
                style={{ stroke: `hsl(${hue} 70% 40%)` }}
              >
                <title>{`${h.name} held (${h.mode}) from step ${h.from} to ${h.to ?? "the end"}`}</title>
              </line>
            );
          })}
          {doc.steps.map((s) => {
            const isV = s.i === vStep;
            const cls = `mark kind-${s.kind}${isV ? " violation" : ""}${s.i === cursor ? " current" : ""}`;
            const tip = `step ${s.i} · ${doc.tasks[s.task]?.name ?? s.task} · ${s.fn}(): ${s.step} ${doc.objects[s.obj] ?? ""}`;
            return (
              // biome-ignore lint/a11y/noStaticElementInteractions: the marks are also reachable by the keys and the slider
              <g
                key={`s${s.i}`}
                class="mark-g"
                data-step={s.i}
                onClick={(e) => {
                  e.stopPropagation();
                  props.onCursor(s.i, s.task);
                }}
              >
                <rect x={x(s.i) + 2} y={y(s.task) + 20} width={stepW - 4} height={10} rx={2} class={cls}>
                  <title>
                    {isV && doc.violation
                      ? `${tip}\n!! ${doc.violation.invariant}: ${doc.violation.message}`
                      : tip}
                  </title>
                </rect>
              </g>
            );
          })}
          {doc.violation && vStep >= 0 && vStep < n && (
            <text x={x(vStep) + stepW + 2} y={y(doc.steps[vStep].task) + 30} class="violation-label">
              {`!! ${doc.violation.invariant}`}
            </text>
          )}
        </svg>
      </div>
    </div>
  );
}
