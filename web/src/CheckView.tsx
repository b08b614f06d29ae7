import { useCallback, useState } from "preact/hooks";
import type { TraceDoc } from "../../src/trace/schema.js";
import { Controls } from "./Controls.js";
import { messageOf } from "./format.js";
import { Lanes } from "./Lanes.js";
import { stepOfTask } from "./lanes.js";
import { RaceDiagram } from "./RaceDiagram.js";
import { StatePanel } from "./StatePanel.js";
import { useKeys, useView } from "./use-view.js";

function RunInfo(props: { doc: TraceDoc }) {
  const r = props.doc.run;
  const [copied, setCopied] = useState(false);
  return (
    <div class="run-info">
      <span class="scenario" data-testid="scenario">
        {r.scenario}
      </span>
      <span class="tag">kernel {r.kernel}</span>
      {r.variant && <span class="tag">variant {r.variant}</span>}
      {r.features.map((f) => (
        <span class="tag" key={f}>
          {f}
        </span>
      ))}
      {r.strategy && <span class="tag muted">{r.strategy}</span>}
      <span class="replay">
        <code title="tdplab replay '…' reproduces this run">{props.doc.replay}</code>
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard
              ?.writeText(`tdplab replay '${props.doc.replay}'`)
              .then(() => setCopied(true));
          }}
        >
          {copied ? "copied" : "copy replay"}
        </button>
      </span>
    </div>
  );
}

/** A checker trace: lanes and race diagram side by side, the step under the cursor, and the state after it. */
export function CheckView(props: { doc: TraceDoc }) {
  const { doc } = props;
  const n = doc.steps.length;
  const count = useCallback(() => n, [n]);
  const v = doc.violation;
  const defaultTask = v && v.task >= 0 ? v.task : (doc.steps[0]?.task ?? null);
  const view = useView(count, { task: defaultTask, runs: 1 });
  const vStep = v ? Math.min(Math.max(v.step, 0), n - 1) : null;
  const nextOfTask = (back: boolean) =>
    view.moveCursor((cursor, task) => (task === null ? null : stepOfTask(doc, cursor, task, back)));
  useKeys({
    step: (d) => view.moveCursor((cursor) => cursor + d),
    home: () => view.setCursor(0),
    end: () => view.setCursor(n - 1),
    nextOfTask,
    violation: vStep === null ? undefined : () => view.setCursor(vStep),
  });
  const s = doc.steps[view.cursor];
  const goTo = (i: number, task: number) => {
    view.setCursor(i);
    view.setTask(task);
  };
  return (
    <div class="check-view">
      <RunInfo doc={doc} />
      {v && (
        <div class="violation-banner" data-testid="violation">
          <strong>
            !! {v.invariant}: {messageOf(v)}
          </strong>
          <span>
            {" "}
            — step {v.step}, {v.taskName} in {v.fn}()
          </span>
          {vStep !== null && (
            <button type="button" onClick={() => goTo(vStep, doc.steps[vStep].task)}>
              go to the violation (v)
            </button>
          )}
        </div>
      )}
      <Controls
        cursor={view.cursor}
        count={n}
        onCursor={view.setCursor}
        onNextOfTask={() => nextOfTask(false)}
        taskName={view.task === null ? null : (doc.tasks[view.task]?.name ?? `T${view.task}`)}
        label={`step ${view.cursor} of ${Math.max(0, n - 1)}`}
        violation={vStep !== null}
      />
      {s ? (
        <div class={`step-detail${s.i === vStep ? " at-violation" : ""}`} data-testid="step-detail">
          <span class="step-no">#{s.i}</span>
          <span class="task-name">{doc.tasks[s.task]?.name ?? `T${s.task}`}</span>
          <span class={`kind kind-${s.kind}`}>{s.kind}</span>
          <span class="mono">
            {s.fn}(): {s.step}
          </span>
          <span class="mono obj">{doc.objects[s.obj] ?? `#${s.obj}`}</span>
          {s.i === vStep && v && <span class="bad">violates {v.invariant}</span>}
        </div>
      ) : (
        <div class="step-detail">this trace has no steps</div>
      )}
      <div class="main">
        <Lanes doc={doc} cursor={view.cursor} task={view.task} onCursor={goTo} onTask={view.setTask} />
        <RaceDiagram doc={doc} cursor={view.cursor} onCursor={goTo} />
      </div>
      <StatePanel doc={doc} cursor={view.cursor} />
    </div>
  );
}
