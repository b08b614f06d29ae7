import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TraceDoc } from "../trace/schema.js";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

interface Ev {
  ph: string;
  name: string;
  ts: number;
  tid: number;
  id?: number;
  args?: Record<string, unknown>;
}

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

describe("replay", () => {
  it("prints states with --json and draws them with --perfetto: counters, root slices, flows", async () => {
    const c = await run("check", "seed-002-zap-worker", "--variant", "zap-all-fast-without-flush");
    expect(c.code).toBe(1);
    const replay = /replay: (tdp1\.\S+)/.exec(c.stdout)![1];
    const dir = mkdtempSync(join(tmpdir(), "tdplab-replay-"));
    const file = join(dir, "r.json");
    const r = await run("replay", replay, "--json", "--perfetto", file);
    expect(r.code).toBe(1);
    const doc = TraceDoc.parse(JSON.parse(r.stdout));
    expect(doc.states).toHaveLength(doc.steps.length);
    const ev = (JSON.parse(readFileSync(file, "utf8")) as { traceEvents: Ev[] }).traceEvents;
    // The last "roots" sample is the last state's count of live and invalid roots.
    const last = doc.states!.at(-1)!;
    const roots = ev.filter((e) => e.ph === "C" && e.name === "roots").at(-1)!;
    expect(roots.args).toEqual({
      live: last.roots.filter((x) => !x.freed).length,
      invalid: last.roots.filter((x) => !x.freed && x.invalid).length,
    });
    expect(ev.some((e) => e.ph === "C" && e.name === "root#1" && typeof e.args?.refcount === "number")).toBe(
      true,
    );
    expect(ev.filter((e) => e.ph === "b" && e.name === "root#1")).toHaveLength(1);
    expect(ev.filter((e) => e.ph === "e" && e.name === "root#1")).toHaveLength(1);
    const flows = ev.filter((e) => e.ph === "s");
    expect(flows.length).toBeGreaterThan(0);
    for (const s of flows) expect(ev.filter((e) => e.ph === "f" && e.id === s.id)).toHaveLength(1);
  });
});
