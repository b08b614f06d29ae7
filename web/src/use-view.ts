import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { formatHash, parseHash, type ViewState } from "./url.js";

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export interface View {
  readonly cursor: number;
  readonly task: number | null;
  readonly run: number;
  setCursor(i: number): void;
  /**
   * Move the cursor relative to where it is when the update applies (not where it was at the last
   * render), so that keys pressed faster than the page renders all count. null: stay.
   */
  moveCursor(f: (cursor: number, task: number | null) => number | null): void;
  setTask(t: number | null): void;
  setRun(r: number): void;
}

/**
 * The cursor, the selected task and run, kept in the URL hash (replaceState, so stepping does not
 * flood the history) and read back when the hash changes (a pasted link).
 */
export function useView(
  steps: (run: number) => number,
  defaults: { task: number | null; runs: number },
): View {
  const fromHash = (): { cursor: number; task: number | null; run: number } => {
    const h: ViewState = parseHash(location.hash);
    const run = clamp(h.run ?? 0, 0, Math.max(0, defaults.runs - 1));
    const n = steps(run);
    return { run, cursor: clamp(h.cursor ?? 0, 0, Math.max(0, n - 1)), task: h.task ?? defaults.task };
  };
  const [v, setV] = useState(fromHash);
  useEffect(() => {
    const onHash = () => setV(fromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  });
  useEffect(() => {
    const hash = formatHash({ cursor: v.cursor, task: v.task, run: defaults.runs > 1 ? v.run : null });
    if (hash !== location.hash)
      history.replaceState(null, "", `${location.pathname}${location.search}${hash}`);
  }, [v.cursor, v.task, v.run]);
  const setCursor = useCallback(
    (i: number) => setV((o) => ({ ...o, cursor: clamp(i, 0, Math.max(0, steps(o.run) - 1)) })),
    [steps],
  );
  const moveCursor = useCallback(
    (f: (cursor: number, task: number | null) => number | null) =>
      setV((o) => {
        const i = f(o.cursor, o.task);
        return i === null ? o : { ...o, cursor: clamp(i, 0, Math.max(0, steps(o.run) - 1)) };
      }),
    [steps],
  );
  const setTask = useCallback((t: number | null) => setV((o) => ({ ...o, task: t })), []);
  const setRun = useCallback((r: number) => setV((o) => ({ ...o, run: r, cursor: 0 })), []);
  return { ...v, setCursor, moveCursor, setTask, setRun };
}

/**
 * The explorer's keys: ←/→ one step, Home/End the ends, n the next step of the selected task
 * (N: the previous one), v the violation. Keys typed into a text field are left alone; on the
 * slider, the arrows and Home/End are the slider's own.
 */
export function useKeys(handlers: {
  step(d: number): void;
  home(): void;
  end(): void;
  nextOfTask(back: boolean): void;
  violation?: () => void;
}): void {
  // The listener is added once and calls the latest handlers.
  const latest = useRef(handlers);
  latest.current = handlers;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const handlers = latest.current;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target as HTMLElement | null;
      const tag = t?.tagName;
      if (tag === "TEXTAREA" || (tag === "INPUT" && (t as HTMLInputElement).type !== "range")) return;
      const onSlider = tag === "INPUT";
      switch (e.key) {
        case "ArrowRight":
          if (!onSlider) handlers.step(1);
          break;
        case "ArrowLeft":
          if (!onSlider) handlers.step(-1);
          break;
        case "Home":
          if (!onSlider) handlers.home();
          break;
        case "End":
          if (!onSlider) handlers.end();
          break;
        case "n":
          handlers.nextOfTask(false);
          break;
        case "N":
          handlers.nextOfTask(true);
          break;
        case "v":
          if (!handlers.violation) return;
          handlers.violation();
          break;
        default:
          return;
      }
      if (!onSlider || e.key === "n" || e.key === "N" || e.key === "v") e.preventDefault();
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, []);
}
