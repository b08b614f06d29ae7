import { useEffect, useMemo, useRef } from "preact/hooks";
import { relevantSteps } from "../../src/trace/race-diagram.js";
import type { TraceDoc } from "../../src/trace/schema.js";
import { messageOf } from "./format.js";

type Row =
  | { kind: "fn"; i: number; task: number; fn: string; key: string }
  | { kind: "step"; i: number; task: number; text: string; key: string };

/**
 * The race diagram of a commit message, one column per task: the steps the violation depends on
 * (src/trace/race-diagram.ts relevantSteps, the same slice `tdplab check` prints), with function
 * headers. Rows up to the cursor are shown as done, the latest one as current; click a row to go there.
 */
export function RaceDiagram(props: {
  doc: TraceDoc;
  cursor: number;
  onCursor: (i: number, task: number) => void;
}) {
  const { doc, cursor } = props;
  const { cols, rows } = useMemo(() => {
    const steps = relevantSteps(doc);
    const cols = [...new Set(steps.map((s) => s.task))].sort((a, b) => a - b);
    const rows: Row[] = [];
    const lastFn = new Map<number, string>();
    for (const s of steps) {
      if (lastFn.get(s.task) !== s.fn) {
        rows.push({ kind: "fn", i: s.i, task: s.task, fn: s.fn, key: `f${s.i}` });
        lastFn.set(s.task, s.fn);
      }
      rows.push({
        kind: "step",
        i: s.i,
        task: s.task,
        text: `${s.step} ${doc.objects[s.obj] ?? `#${s.obj}`}`,
        key: `s${s.i}`,
      });
    }
    return { cols, rows };
  }, [doc]);
  const current = rows.reduce((best, r) => (r.kind === "step" && r.i <= cursor ? r.i : best), -1);
  const vStep = doc.violation?.step ?? -1;
  // Keep the current row in view inside the diagram's own scroll area (not the page's).
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    const row = el?.querySelector<HTMLElement>("tr.current");
    if (!el || !row) return;
    const top = row.offsetTop - el.clientHeight / 2;
    if (row.offsetTop < el.scrollTop || row.offsetTop + row.offsetHeight > el.scrollTop + el.clientHeight)
      el.scrollTop = Math.max(0, top);
  }, [current]);
  return (
    <div class="race" data-testid="race-diagram" ref={box}>
      <h2>Race diagram</h2>
      {rows.length === 0 ? (
        <p class="muted">no steps</p>
      ) : (
        <table>
          <thead>
            <tr>
              {cols.map((t) => (
                <th key={t}>{doc.tasks[t]?.name ?? `T${t}`}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => {
              // A function header belongs to the step under it.
              const state =
                r.kind === "step" && r.i === current ? "current" : r.i <= cursor ? "done" : "future";
              return (
                <tr
                  key={r.key}
                  class={`${r.kind} ${state}${r.kind === "step" && r.i === vStep ? " violation" : ""}`}
                  data-step={r.kind === "step" ? r.i : undefined}
                  onClick={() => props.onCursor(r.i, r.task)}
                >
                  {cols.map((t) =>
                    t !== r.task ? (
                      <td key={t} />
                    ) : r.kind === "fn" ? (
                      <td key={t} class="fn">{`${r.fn}()`}</td>
                    ) : (
                      <td key={t} title={`step ${r.i}`}>
                        <span class="step-no">{r.i}</span> {r.i === vStep ? "!! " : ""}
                        {r.text}
                      </td>
                    ),
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {doc.violation && (
        <p class="race-violation">
          !! {doc.violation.invariant}: {messageOf(doc.violation)}
        </p>
      )}
    </div>
  );
}
