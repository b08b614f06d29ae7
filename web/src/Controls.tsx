import type { ComponentChildren } from "preact";

/** Step buttons, the slider and the position; the keys do the same (see the hint). */
export function Controls(props: {
  cursor: number;
  count: number;
  onCursor: (i: number) => void;
  onNextOfTask: () => void;
  taskName: string | null;
  label: ComponentChildren;
  /** The trace has a violation (the v key). */
  violation?: boolean;
}) {
  const { cursor, count, onCursor } = props;
  const last = Math.max(0, count - 1);
  return (
    <div class="controls">
      <button type="button" title="first step (Home)" onClick={() => onCursor(0)} disabled={cursor <= 0}>
        |◀
      </button>
      <button
        type="button"
        title="previous step (←)"
        onClick={() => onCursor(cursor - 1)}
        disabled={cursor <= 0}
      >
        ◀
      </button>
      <input
        type="range"
        class="slider"
        aria-label="cursor"
        min={0}
        max={last}
        value={cursor}
        onInput={(e) => onCursor(Number((e.currentTarget as HTMLInputElement).value))}
      />
      <button
        type="button"
        title="next step (→)"
        onClick={() => onCursor(cursor + 1)}
        disabled={cursor >= last}
      >
        ▶
      </button>
      <button type="button" title="last step (End)" onClick={() => onCursor(last)} disabled={cursor >= last}>
        ▶|
      </button>
      <button
        type="button"
        title="next step of the selected task (n; N goes back)"
        onClick={props.onNextOfTask}
        disabled={props.taskName === null}
      >
        n: next of {props.taskName ?? "(select a task)"}
      </button>
      <span class="position" data-testid="position">
        {props.label}
      </span>
      <span class="keys">← → Home End · n / N{props.violation ? " · v violation" : ""}</span>
    </div>
  );
}
