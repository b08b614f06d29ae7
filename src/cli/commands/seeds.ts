import type { Command } from "@commander-js/extra-typings";
import { runSeeds, type SeedRow } from "../../scenarios/seed-report.js";
import type { SetExit } from "../commands.js";
import { EXIT, UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { intFlag } from "../options.js";
import { formatTable } from "../table.js";

export const SEEDS_SCHEMA_VERSION = 1;

export function formatSeedTable(rows: readonly SeedRow[], markdown = false): string {
  return formatTable(
    [
      "thread",
      "design",
      "scenario",
      "kernel",
      "memory",
      "expected",
      "verdict",
      "invariant",
      "executions",
      "time",
      "replay",
    ],
    rows.map((r) => [
      r.thread,
      r.variant,
      r.scenario,
      r.kernel,
      r.memoryModel,
      r.expected,
      `${r.verdict}${r.matches ? "" : " (!)"}`,
      r.invariant ?? "-",
      `${r.executions}${r.complete ? "" : "+"}`,
      `${(r.elapsedMs / 1000).toFixed(1)} s`,
      r.replay ? (markdown ? `\`${r.replay.slice(0, 24)}…\`` : r.replay) : "-",
    ]),
    markdown,
  );
}

/** `tdplab seeds`: every design the seed threads debate, checked, as one table. */
export function registerSeeds(program: Command, out: Out, setExit: SetExit): void {
  program
    .command("seeds")
    .description(
      "check every design the five seed threads debate and compare each verdict with its expectation",
    )
    .option("--thread <ids>", "only these threads, e.g. 001,003")
    .option(
      "--time-limit <s>",
      "per-design budget in seconds (none by default: verdicts never depend on load)",
    )
    .option("--json", "print {schemaVersion, seeds: [row, ...]}")
    .option("--markdown", "print the table as Markdown")
    .action(async (o) => {
      const threads = o.thread?.split(",").map((t) => t.trim().padStart(3, "0"));
      if (threads?.some((t) => !/^00[0-4]$/.test(t)))
        throw new UsageError(`--thread takes ids 000..004, not '${o.thread}'`);
      const limit = intFlag("--time-limit", o.timeLimit, 1);
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once("SIGINT", onSigint);
      let rows: SeedRow[];
      try {
        rows = await runSeeds({
          threads,
          timeLimitMs: limit === undefined ? undefined : limit * 1000,
          signal: controller.signal,
          onRow: (r, i, n) => out.progress(`[${i}/${n}] ${r.thread} ${r.variant}: ${r.verdict}`),
        });
      } finally {
        process.removeListener("SIGINT", onSigint);
      }
      out.endProgress();
      const interrupted = controller.signal.aborted;
      if (o.json) out.data(JSON.stringify({ schemaVersion: SEEDS_SCHEMA_VERSION, seeds: rows }, null, 2));
      else {
        out.data(formatSeedTable(rows, o.markdown === true));
        const bad = rows.filter((r) => !r.matches);
        out.data("");
        out.data(
          interrupted
            ? `interrupted: ${rows.length} designs checked (the last one cut short), the rest not started`
            : bad.length === 0
              ? `all ${rows.length} verdicts match their expectations`
              : `${bad.length} of ${rows.length} verdicts differ from their expectations: ${bad.map((r) => `${r.thread}/${r.variant}`).join(", ")}`,
        );
      }
      setExit(interrupted ? EXIT.interrupted : rows.every((r) => r.matches) ? EXIT.ok : EXIT.violation);
    });
}
