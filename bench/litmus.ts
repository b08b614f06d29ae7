/**
 * bench:litmus — the litmus suite (litmus/*.litmus) under every memory model: wall time per
 * model and in total (the goal is at most 30 s for the whole suite), the slowest files, and
 * whether every result matched the file's expectation. `--json` prints one JSON object.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseLitmus } from "../src/litmus/parse.js";
import { MEMORY_MODELS, runLitmus } from "../src/litmus/run.js";

const json = process.argv.includes("--json");
const DIR = "litmus";
const files = readdirSync(DIR)
  .filter((f) => f.endsWith(".litmus"))
  .sort();
const perModel: Record<string, number> = {};
const rows: { file: string; model: string; ms: number; executions: number; matches: boolean }[] = [];
const t0 = performance.now();
for (const file of files) {
  const text = readFileSync(join(DIR, file), "utf8");
  const expected = /tdplab: sc=(\w+) tso=(\w+) lkmm=(\w+)/.exec(text);
  const test = parseLitmus(text);
  MEMORY_MODELS.forEach((model, i) => {
    const a = performance.now();
    const r = runLitmus(test, model);
    const ms = performance.now() - a;
    perModel[model] = (perModel[model] ?? 0) + ms;
    rows.push({ file, model, ms, executions: r.executions, matches: r.observation === expected?.[i + 1] });
  });
}
const totalMs = performance.now() - t0;
const mismatches = rows.filter((r) => !r.matches).map((r) => `${r.file} (${r.model})`);
const slowest = [...rows].sort((a, b) => b.ms - a.ms).slice(0, 5);
if (json) {
  console.log(
    JSON.stringify({
      files: files.length,
      totalMs: Math.round(totalMs),
      perModelMs: Object.fromEntries(Object.entries(perModel).map(([m, v]) => [m, Math.round(v)])),
      slowest: slowest.map((r) => ({
        file: r.file,
        model: r.model,
        ms: Math.round(r.ms),
        executions: r.executions,
      })),
      mismatches,
    }),
  );
} else {
  console.log(
    `litmus suite: ${files.length} files x ${MEMORY_MODELS.length} models in ${(totalMs / 1000).toFixed(1)} s (goal: 30 s)`,
  );
  for (const [m, v] of Object.entries(perModel)) console.log(`  ${m.padEnd(5)} ${(v / 1000).toFixed(1)} s`);
  console.log("slowest:");
  for (const r of slowest)
    console.log(`  ${r.file} (${r.model}): ${(r.ms / 1000).toFixed(2)} s, ${r.executions} executions`);
  console.log(
    mismatches.length === 0
      ? "every result matches its file's expectation"
      : `MISMATCH: ${mismatches.join(", ")}`,
  );
}
process.exitCode = mismatches.length === 0 ? 0 : 1;
