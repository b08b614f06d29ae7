import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { DEFAULT_COSTS } from "../engine/sim/cost-model.js";
import type { SimScenario } from "../scenarios/sim/types.js";
import { SimTraceDoc } from "../trace/sim-trace-schema.js";
import type { SimulateDoc } from "./commands/simulate.js";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

// The CLI is tested on fixture scenarios with known numbers (one closed-form, one on the real
// simulator), independently of the real scenarios' calibration. They exist only in this module
// graph (mocked), which a worker thread does not share: the plan runs in this thread.
// (simulate-real.test.ts and simulate-sigint.test.ts cover the worker thread.)
vi.stubEnv("TDPLAB_SIMULATE_IN_THREAD", "1");
vi.mock("../scenarios/sim/registry.js", async () => {
  const f = await import("./simulate-fixtures.js");
  return {
    SIM_SCENARIOS: f.FIXTURE_SCENARIOS,
    findSimScenario: (n: string, list: readonly SimScenario[] = f.FIXTURE_SCENARIOS) =>
      list.find((s) => s.name === n),
  };
});

async function run(...argv: string[]) {
  const out = memoryOut();
  const progress: string[] = [];
  out.progress = (t: string) => progress.push(t);
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n"), progress };
}

async function json(...argv: string[]): Promise<SimulateDoc> {
  const r = await run(...argv, "--json");
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as SimulateDoc;
}

const GiB = 2 ** 30;
const tmp = () => mkdtempSync(join(tmpdir(), "tdplab-sim-"));

describe("tdplab simulate --json", () => {
  it("one document: schema, scenario, params with defaults, one run per label", async () => {
    const doc = await json("simulate", "fixture-formula");
    expect(doc.schemaVersion).toBe(1);
    expect(doc.tool).toMatch(/^tdplab /);
    expect(doc.scenario).toBe("fixture-formula");
    expect(doc.thread).toBe("002");
    expect(doc.params).toEqual({
      guestSize: GiB,
      vcpus: 1,
      fraction: 1,
      mode: "fast",
      busy: false,
      sigintAt: 0,
    });
    expect(doc.sweep).toBeNull();
    expect(doc.interrupted).toBe(false);
    expect(doc.runs.map((r) => [r.label, r.kernel])).toEqual([
      ["sync", "v5.17"],
      ["async", "v5.18"],
    ]);
    const leaves = GiB / 4096;
    expect(doc.runs[0].metrics).toEqual({
      leaves,
      freedBytes: (leaves / 512) * 4096,
      vcpuBlockedMs: (leaves * DEFAULT_COSTS.spteWriteNs) / 1e6,
      workerMs: null,
    });
    expect(doc.runs[1].metrics.vcpuBlockedMs).toBeCloseTo(0.051, 12);
    expect(doc.runs[0].params).toEqual(doc.params);
  });

  it("--set of every kind and a cost key; the cost reaches the scenario", async () => {
    const doc = await json(
      "simulate",
      "fixture-formula",
      "--set",
      "guestSize=64TiB",
      "--set",
      "vcpus=8",
      "--set",
      "mode=slow",
      "--set",
      "busy=true",
      "--set",
      "fraction=0.5",
      "--set",
      "spteWriteNs=2",
    );
    expect(doc.params).toMatchObject({
      guestSize: 64 * 2 ** 40,
      vcpus: 8,
      mode: "slow",
      busy: true,
      fraction: 0.5,
    });
    expect(doc.costs).toEqual({ spteWriteNs: 2 });
    expect(doc.runs[0].costs).toEqual({ spteWriteNs: 2 });
    const leaves = (64 * 2 ** 40) / 4096 / 2;
    expect(doc.runs[0].metrics.vcpuBlockedMs).toBe((leaves * 2 * 2) / 1e6);
  });

  it("--sweep: runs in sweep order, each run with its own params; a progress bar per point", async () => {
    const r = await run("simulate", "fixture-formula", "--sweep", "guestSize=1GiB..4GiB", "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as SimulateDoc;
    expect(doc.sweep).toEqual({ key: "guestSize", values: [GiB, 2 * GiB, 4 * GiB] });
    expect(doc.runs.map((x) => `${x.label}:${(x.params.guestSize as number) / GiB}`)).toEqual([
      "sync:1",
      "async:1",
      "sync:2",
      "async:2",
      "sync:4",
      "async:4",
    ]);
    expect(r.progress).toHaveLength(3);
    expect(r.progress[1]).toMatch(/^\[#{7}\.{13}\] 1\/3 {2}\d+\.\d s {2}guestSize=2GiB$/);
    expect(r.stderr).toMatch(/3 points, 6 runs in/);
    const sync = doc.runs.filter((x) => x.label === "sync").map((x) => x.metrics.vcpuBlockedMs as number);
    expect(sync[1]).toBe(2 * sync[0]);
  });

  it("a cost sweep keeps scenario params fixed and records the cost per run", async () => {
    const doc = await json("simulate", "fixture-formula", "--sweep", "spteWriteNs=1,2", "--kernel", "v5.17");
    expect(doc.kernel).toBe("v5.17");
    expect(doc.runs.map((x) => [x.label, x.costs])).toEqual([
      ["sync", { spteWriteNs: 1 }],
      ["sync", { spteWriteNs: 2 }],
    ]);
  });

  it("is deterministic: the same arguments print the same JSON", async () => {
    const args = ["simulate", "fixture-spinlock", "--sweep", "work=1,3", "--json"];
    const a = await run(...args);
    const b = await run(...args);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });
});

describe("tdplab simulate on the real simulator", () => {
  it("the waiter waits exactly for the holder's flushes, and a cost override changes that", async () => {
    const doc = await json("simulate", "fixture-spinlock", "--sweep", "work=1,2,4");
    const w = doc.runs.map((x) => x.metrics.waiterBlockedMs as number);
    const perUnit = (DEFAULT_COSTS.tlbFlushNs + DEFAULT_COSTS.writeNs) / 1e6;
    expect(w[1] - w[0]).toBeCloseTo(perUnit, 9);
    expect(w[2] - w[1]).toBeCloseTo(2 * perUnit, 9);
    const slow = await json("simulate", "fixture-spinlock", "--set", "work=2", "--set", "tlbFlushNs=1ms");
    expect(slow.runs[0].metrics.waiterBlockedMs).toBeCloseTo(
      w[1] + 2 * (1 - DEFAULT_COSTS.tlbFlushNs / 1e6),
      9,
    );
  });
});

describe("tdplab simulate human output", () => {
  it("a title with the fixed settings, then a table with the swept column and the headline first", async () => {
    const r = await run("simulate", "fixture-formula", "--sweep", "guestSize=1GiB,2GiB", "--set", "vcpus=2");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe("fixture-formula (seed 002): vcpus=2 fraction=1 mode=fast busy=false sigintAt=0B");
    expect(lines[1].split(/\s+/)).toEqual([
      "label",
      "kernel",
      "guestSize",
      "vcpuBlockedMs",
      "workerMs",
      "leaves",
      "freedBytes",
    ]);
    expect(lines).toHaveLength(2 + 1 + 4);
    expect(lines[3].split(/\s+/)).toEqual(["sync", "v5.17", "1GiB", "12.583", "-", "262144", "2MiB"]);
  });

  it("--help lists the registered scenarios with their parameters", async () => {
    const r = await run("simulate", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/fixture-formula \(seed 002\): closed-form/);
    expect(r.stdout).toMatch(/ {4}guestSize=1GiB \[size 4KiB..1PiB\] guest memory/);
    expect(r.stdout).toMatch(/ {4}mode=fast \[fast\|slow\] mode/);
    expect(r.stdout).toMatch(/Cost-model keys: spteReadNs, .*/);
    expect(r.stdout).toMatch(/metrics: waiterBlockedMs, events/);
  });
});

describe("tdplab simulate refusals (exit 2, message names what is allowed)", () => {
  const cases: [string[], RegExp][] = [
    [[], /name a scenario; known: fixture-formula, fixture-spinlock/],
    [["nope"], /unknown scenario 'nope'; known: fixture-formula, fixture-spinlock/],
    [
      ["fixture-formula", "--set", "nope=1"],
      /--set: unknown key 'nope'; parameters of fixture-formula: guestSize, vcpus.*cost-model keys/,
    ],
    [["fixture-formula", "--set", "guestSize=64TB"], /guestSize takes binary units/],
    [["fixture-formula", "--set", "vcpus=0"], /--set: vcpus must be an integer in 1..64; got '0'/],
    [["fixture-formula", "--set", "mode=medium"], /mode must be one of fast, slow/],
    [["fixture-formula", "--sweep", "vcpus=1,x"], /--sweep: vcpus must be an integer/],
    [["fixture-formula", "--kernel", "v9.1"], /--kernel: unknown kernel 'v9.1'; known: v5.17/],
    [
      ["fixture-formula", "--kernel", "v6.9"],
      /--kernel: fixture-formula has no run on v6.9; its runs are on v5.17, v5.18/,
    ],
    [["fixture-formula", "--plot", "x.jpg"], /--plot: 'x.jpg' must end in .svg or .png/],
    [
      ["fixture-formula", "--plot-metric", "nope"],
      /--plot-metric: fixture-formula has no metric 'nope'; metrics: vcpuBlockedMs/,
    ],
    [["fixture-formula", "--seed", "banana"], /--seed: seed must be a decimal or 0x-hex/],
    [["fixture-formula", "--perfetto", "x.json"], /--perfetto: fixture-formula returned no timeline/],
  ];
  for (const [args, msg] of cases) {
    it(args.join(" ") || "(no scenario)", async () => {
      const r = await run("simulate", ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      // Refused before anything ran (a missing timeline is only known after the runs).
      if (!args.includes("--perfetto")) expect(r.stdout).toBe("");
    });
  }
});

describe("tdplab simulate --plot", () => {
  it("writes an SVG with one path per run label, and a PNG", async () => {
    const dir = tmp();
    const svg = join(dir, "sub", "p.svg");
    const r = await run("simulate", "fixture-formula", "--sweep", "guestSize=1GiB..64GiB", "--plot", svg);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`wrote ${svg}`);
    const text = readFileSync(svg, "utf8");
    // Observable Plot draws each run label's line as a <g aria-label="line"> of its own.
    expect(text.match(/aria-label="line"><path d="M/g)).toHaveLength(2);
    expect(text).toContain("fixture-formula: vcpuBlockedMs vs guestSize");
    expect(text).toContain("64GiB");
    const png = join(dir, "p.png");
    const p = await run(
      "simulate",
      "fixture-formula",
      "--sweep",
      "mode=fast,slow",
      "--plot",
      png,
      "--plot-metric",
      "workerMs",
    );
    expect(p.code).toBe(0);
    expect(readFileSync(png).subarray(1, 4).toString("latin1")).toBe("PNG");
  });
});

describe("tdplab simulate interruption", () => {
  it("SIGINT between points: exit 130, the finished points are printed", async () => {
    const r = await run(
      "simulate",
      "fixture-formula",
      "--sweep",
      "guestSize=1GiB..8GiB",
      "--set",
      "sigintAt=2GiB",
      "--json",
    );
    expect(r.code).toBe(130);
    const doc = JSON.parse(r.stdout) as SimulateDoc;
    expect(doc.interrupted).toBe(true);
    expect(doc.runs.map((x) => (x.params.guestSize as number) / GiB)).toEqual([1, 1, 2, 2]);
    expect(r.stderr).toMatch(/interrupted after 2 of 4 points/);
    expect(process.listenerCount("SIGINT")).toBe(0);
  });
});

describe("tdplab simulate --perfetto", () => {
  it("writes the runs' timelines as Chrome Trace Event JSON, one process per run", async () => {
    const file = join(tmp(), "t.json");
    const r = await run("simulate", "fixture-spinlock", "--sweep", "work=1,2", "--perfetto", file);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`wrote ${file}: open it in https://ui.perfetto.dev`);
    const t = JSON.parse(readFileSync(file, "utf8")) as {
      traceEvents: { ph: string; name: string; args?: { name?: string } }[];
    };
    expect(t.traceEvents.some((e) => e.ph === "X")).toBe(true);
    const procs = t.traceEvents.filter((e) => e.name === "process_name").map((e) => e.args?.name);
    expect(procs).toEqual(["waiter work=1", "waiter work=2"]);
  });
});

describe("tdplab simulate --trace", () => {
  it("writes the explorer's sim trace: one run per record, valid against its schema", async () => {
    const file = join(tmp(), "sim.json");
    const r = await run("simulate", "fixture-spinlock", "--sweep", "work=1,2", "--trace", file);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`wrote ${file}`);
    const doc = SimTraceDoc.parse(JSON.parse(readFileSync(file, "utf8")));
    expect(doc.scenario).toBe("fixture-spinlock");
    expect(doc.runs.map((x) => [x.label, x.kernel])).toEqual([
      ["waiter work=1", "v6.9"],
      ["waiter work=2", "v6.9"],
    ]);
    expect(doc.runs[1].steps.length).toBeGreaterThan(doc.runs[0].steps.length);
  });
});
