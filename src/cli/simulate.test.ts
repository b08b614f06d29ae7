import { describe, expect, it } from "vitest";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

interface Doc {
  schemaVersion: number;
  scenario: string;
  params: Record<string, unknown>;
  runs: {
    label: string;
    kernel: string;
    params: { ptesPerTable: number; costs: Record<string, number> };
    metrics: Record<string, number | null>;
  }[];
}

describe("tdplab simulate defunct-root-zap", () => {
  it("--json: one document with a sync (v5.17) and an async (v5.18) run", async () => {
    const r = await run("simulate", "defunct-root-zap", "--set", "ptesPerTable=2", "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.schemaVersion).toBe(1);
    expect(doc.scenario).toBe("defunct-root-zap");
    expect(doc.params).toMatchObject({ ptesPerTable: 2, rootLevel: 4, fill: 1 });
    expect(doc.runs.map((x) => [x.label, x.kernel])).toEqual([
      ["sync", "v5.17"],
      ["async", "v5.18"],
    ]);
    for (const x of doc.runs) {
      expect(Object.keys(x.metrics).sort()).toEqual(
        [
          "events",
          "leaves",
          "pageTables",
          "remoteTlbFlushes",
          "vcpuBlockedMs",
          "virtualNs",
          "workerZapMs",
        ].sort(),
      );
      expect(x.metrics.leaves).toBe(16);
      expect(x.metrics.pageTables).toBe(1 + 2 + 4 + 8);
    }
    expect(doc.runs[0].metrics.workerZapMs).toBeNull();
    expect(doc.runs[1].metrics.workerZapMs).toBeGreaterThan(0);
  });

  it("sweep: sync blocks the vCPU longer than async, and longer as the tables grow", async () => {
    const r = await run("simulate", "defunct-root-zap", "--sweep", "ptesPerTable=2,4,8", "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.runs.map((x) => `${x.label}:${x.params.ptesPerTable}`)).toEqual([
      "sync:2",
      "async:2",
      "sync:4",
      "async:4",
      "sync:8",
      "async:8",
    ]);
    const sync = doc.runs.filter((x) => x.label === "sync").map((x) => x.metrics.vcpuBlockedMs as number);
    const async = doc.runs.filter((x) => x.label === "async").map((x) => x.metrics.vcpuBlockedMs as number);
    for (let i = 0; i < sync.length; i++) expect(sync[i]).toBeGreaterThan(async[i]);
    for (let i = 1; i < sync.length; i++) expect(sync[i]).toBeGreaterThan(sync[i - 1]);
  });

  it("a cost override changes the figures (no remote flush → shorter sync block)", async () => {
    const base = JSON.parse(
      (await run("simulate", "defunct-root-zap", "--set", "ptesPerTable=2", "--json")).stdout,
    );
    const r = await run(
      "simulate",
      "defunct-root-zap",
      "--set",
      "ptesPerTable=2",
      "--set",
      "tlbFlushNs=0",
      "--json",
    );
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.runs[0].params.costs).toEqual({ tlbFlushNs: 0 });
    expect(doc.runs[0].metrics.vcpuBlockedMs).toBeLessThan(base.runs[0].metrics.vcpuBlockedMs);
  });

  it("human output: a table with the swept column", async () => {
    const r = await run("simulate", "defunct-root-zap", "--sweep", "ptesPerTable=2,4");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0].split(/\s+/)).toEqual([
      "label",
      "kernel",
      "ptesPerTable",
      "vcpuBlockedMs",
      "workerZapMs",
      "leaves",
    ]);
    expect(lines.length).toBe(2 + 4);
  });

  it("bad keys, values, sizes and scenarios exit 2 with a message naming what is allowed", async () => {
    const bad = await run("simulate", "defunct-root-zap", "--set", "nope=1");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown key 'nope'.*ptesPerTable.*tlbFlushNs/);
    const val = await run("simulate", "defunct-root-zap", "--set", "rootLevel=3");
    expect(val.code).toBe(2);
    expect(val.stderr).toMatch(/rootLevel must be 4 or 5/);
    const sweepVal = await run("simulate", "defunct-root-zap", "--sweep", "ptesPerTable=2,x");
    expect(sweepVal.code).toBe(2);
    const big = await run("simulate", "defunct-root-zap", "--set", "ptesPerTable=64");
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/at most 65536.*compressed page-table representation/);
    const tick = await run("simulate", "defunct-root-zap", "--set", "tickNs=0");
    expect(tick.code).toBe(2);
    const unknown = await run("simulate", "no-such-scenario");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/known: defunct-root-zap/);
  });

  it("is deterministic: the same arguments print the same JSON", async () => {
    const args = [
      "simulate",
      "defunct-root-zap",
      "--sweep",
      "ptesPerTable=2,4",
      "--set",
      "fill=0.5",
      "--json",
    ];
    const a = await run(...args);
    const b = await run(...args);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });
});
