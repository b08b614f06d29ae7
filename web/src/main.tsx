import { render } from "preact";
import { DocError, type ExplorerDoc, parseExplorerDoc } from "../../src/explore/doc.js";
import { CheckView } from "./CheckView.js";
import { SimView } from "./SimView.js";
import { replayParam, withReplay } from "./url.js";
import "./style.css";

interface Loaded {
  readonly doc: ExplorerDoc;
  /** Something the reader should know about what is shown (e.g. a link for another trace). */
  readonly notice: string | null;
}

/** Put the replay string in the address bar, so that the link reproduces this trace. */
function showReplayInUrl(replay: string): void {
  try {
    history.replaceState(
      null,
      "",
      `${location.pathname}${withReplay(location.search, replay)}${location.hash}`,
    );
  } catch {
    // Some file: URLs refuse a changed query; the page works without it.
  }
}

/**
 * The trace comes from the page itself (a self-contained file written by `tdplab explore --html`)
 * or from the server: the trace it was started on, or the one a `?replay=` link names, which the
 * server regenerates with the same code path as `tdplab replay`.
 */
async function load(): Promise<Loaded> {
  const replay = replayParam(location.search);
  const embedded = document.getElementById("tdplab-trace");
  if (embedded) {
    const doc = parseExplorerDoc(JSON.parse(embedded.textContent ?? "null"));
    if (doc.kind === "check" && replay !== null && replay !== doc.doc.replay)
      return {
        doc,
        notice:
          "This link names another replay string than the trace saved in this file; the saved trace is shown. Open the link on a `tdplab explore` server to regenerate it.",
      };
    if (doc.kind === "check" && replay === null) showReplayInUrl(doc.doc.replay);
    return { doc, notice: null };
  }
  const res = await fetch(
    replay === null ? "trace.json" : `trace.json?replay=${encodeURIComponent(replay)}`,
    {
      cache: "no-store",
    },
  );
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const msg = (body as { error?: unknown } | null)?.error;
    throw new DocError(typeof msg === "string" ? msg : `the server answered ${res.status}`);
  }
  const doc = parseExplorerDoc(body);
  if (doc.kind === "check" && replay === null) showReplayInUrl(doc.doc.replay);
  return { doc, notice: null };
}

function App(props: Loaded) {
  const { doc, notice } = props;
  document.title = `tdplab · ${doc.kind === "check" ? doc.doc.run.scenario : doc.doc.scenario}`;
  return (
    <>
      <header class="top">
        <h1>tdplab explorer</h1>
        <span class="muted">
          {doc.kind === "check"
            ? `${doc.doc.steps.length} steps · ${doc.doc.tasks.length} tasks`
            : `${doc.doc.runs.length} simulator run${doc.doc.runs.length === 1 ? "" : "s"}`}
        </span>
      </header>
      {notice && <p class="notice">{notice}</p>}
      {doc.kind === "check" ? <CheckView doc={doc.doc} /> : <SimView doc={doc.doc} />}
    </>
  );
}

const root = document.getElementById("app")!;
load().then(
  (l) => render(<App {...l} />, root),
  (e: unknown) =>
    render(
      <div class="load-error" data-testid="load-error">
        <h1>tdplab explorer</h1>
        <p>Cannot show this trace: {e instanceof Error ? e.message : String(e)}</p>
      </div>,
      root,
    ),
);
