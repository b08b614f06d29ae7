import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { loadWebAssets } from "../../explore/assets.js";
import type { ExplorerDoc } from "../../explore/doc.js";
import { ExploreError } from "../../explore/errors.js";
import { selfContainedHtml } from "../../explore/html.js";
import { loadExplorerFile } from "../../explore/load.js";
import { traceFromReplay } from "../../explore/replay-trace.js";
import { startExploreServer } from "../../explore/server.js";
import type { ReplayFiles } from "../../scenarios/replay.js";
import type { SetExit } from "../commands.js";
import { EXIT, UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { intFlag } from "../options.js";

/** Explorer errors are the user's input errors: message, exit 2. */
async function userErrors<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ExploreError) throw new UsageError(e.message);
    throw e;
  }
}

/** Resolves on Ctrl-C (or when `signal` aborts): the server stays up until then. */
export function untilInterrupted(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.removeListener("SIGINT", done);
      process.removeListener("SIGTERM", done);
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Serve `doc` on 127.0.0.1 until Ctrl-C. Links with another replay string are regenerated from
 * built-in scenarios and variants, and from the scenario file and variant module the server was
 * given (their hashes must match what the string recorded).
 */
export async function serveExplorer(
  out: Out,
  doc: ExplorerDoc,
  port: number | undefined,
  stream: "data" | "info",
  signal?: AbortSignal,
  files: ReplayFiles = {},
): Promise<void> {
  const server = await userErrors(() =>
    startExploreServer({ doc, port, regenerate: (r) => traceFromReplay(r, files) }),
  );
  const url =
    doc.kind === "check" ? `${server.url}?replay=${encodeURIComponent(doc.doc.replay)}` : server.url;
  out[stream](url);
  out.info("explorer: serving on 127.0.0.1 only; press Ctrl-C to stop");
  await untilInterrupted(signal);
  await server.close();
}

/** `tdplab explore`: the browser trace explorer, served locally or written as one HTML file. */
export function registerExplore(program: Command, out: Out, setExit: SetExit): void {
  program
    .command("explore")
    .description("step through a trace in the browser: served on 127.0.0.1, or written as one HTML file")
    .argument("<trace>", "trace.json from check --out / replay --json / simulate --trace, or a replay string")
    .option("--port <n>", "port to listen on (default 7357, or any free port if it is taken; 0: any)")
    .option("--html <file>", "write one self-contained HTML file with the trace embedded, and exit")
    .option(
      "--scenario <file>",
      "the scenario file a replay string was recorded on (checked by content hash)",
    )
    .option(
      "--variant <file>",
      "the variant module a replay string was recorded on (checked by content hash)",
    )
    .addHelpText(
      "after",
      `
Examples:
  tdplab check seed-003-put-root --variant put-root-dec-not-one-set-zero --out out/
  tdplab explore out/seed-003-put-root.trace.json          serve it; open the printed URL
  tdplab explore 'tdp1.eyJz….AgEB'                          the trace of a replay string
  tdplab explore out/seed-003-put-root.trace.json --html race.html   one file to attach to a mail

Keys: ←/→ step, Home/End, n next step of the selected task (N previous), v the violation.`,
    )
    .action(async (arg, o) => {
      const port = intFlag("--port", o.port, 0);
      if (port !== undefined && port > 65535) throw new UsageError(`--port takes 0..65535, not '${o.port}'`);
      const doc: ExplorerDoc = await userErrors(async () =>
        arg.trim().startsWith("tdp1.")
          ? { kind: "check", doc: await traceFromReplay(arg, { scenario: o.scenario, variant: o.variant }) }
          : loadExplorerFile(arg),
      );
      if (o.html) {
        const html = await userErrors(() => selfContainedHtml(doc.doc, loadWebAssets()));
        try {
          mkdirSync(dirname(resolve(o.html)), { recursive: true });
          writeFileSync(o.html, html);
        } catch (e) {
          throw new UsageError(`--html: cannot write '${o.html}': ${(e as Error).message}`);
        }
        out.data(o.html);
        out.info(
          `wrote ${o.html} (${Math.round(html.length / 1024)} KiB): open it in a browser, or attach it`,
        );
        setExit(EXIT.ok);
        return;
      }
      await serveExplorer(out, doc, port, "data", undefined, { scenario: o.scenario, variant: o.variant });
      setExit(EXIT.ok);
    });
}
