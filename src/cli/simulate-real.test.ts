import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { SimulateDoc } from "./commands/simulate.js";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

/** `simulate` on the real timed scenarios (simulate.test.ts uses fixtures). */
async function json(...argv: string[]): Promise<SimulateDoc> {
  const out = memoryOut();
  const code = await main([...argv, "--json"], out);
  expect(out.stderr.join("\n")).not.toMatch(/error/);
  expect(code).toBe(0);
  return JSON.parse(out.stdout.join("\n")) as SimulateDoc;
}

describe("tdplab simulate --json: RCU", () => {
  it("RCU CPU stall warnings are in each run's rcuStalls: the worker's CPU, once forcing is off", async () => {
    // Forced every ~100 ms, no grace period is held up for 200 ms.
    const on = await json(
      "simulate",
      "teardown-wait",
      "--set",
      "guestSize=16GiB",
      "--set",
      "rcuStallNs=200ms",
    );
    expect(on.runs.every((r) => r.rcuStalls.length === 0)).toBe(true);
    const off = await json(
      "simulate",
      "teardown-wait",
      "--set",
      "guestSize=16GiB",
      "--set",
      "rcuStallNs=50ms",
      "--set",
      "rcuUrgentQsNs=0",
    );
    const idle = off.runs.find((r) => r.label === "none/idle")!;
    expect(idle.rcuStalls[0]).toMatchObject({ cpus: [1] });
    expect(idle.rcuStalls[0].atNs - idle.rcuStalls[0].gpStartNs).toBe(50e6);
    expect(off.runs.find((r) => r.label === "full/idle")!.rcuStalls).toEqual([]);
  });
});

describe("tdplab simulate: host-CPU occupancy", () => {
  it("--json carries each run's per-CPU busy fractions; the table is followed by them", async () => {
    const doc = await json("simulate", "unbound-zap-worker", "--set", "guestSize=1GiB");
    const bound = doc.runs.find((r) => r.label === "bound/none")!;
    expect(bound.perCpu).toHaveLength(1);
    const cpus = bound.perCpu[0];
    expect(cpus.map((c) => c.cpu)).toEqual([0, 1, 2, 3]);
    // The bound worker's CPU (cpus-2) is the busiest, and its figure is the run's metric's source.
    expect(Math.max(...cpus.map((c) => c.occupancy))).toBe(cpus[2].occupancy);
    expect(bound.metrics.rtCpuOccupancy).toBe(cpus[0].occupancy);
    for (const c of cpus) expect(c.busyNs).toBeGreaterThanOrEqual(c.execNs);
    const out = memoryOut();
    expect(await main(["simulate", "unbound-zap-worker", "--set", "guestSize=1GiB"], out)).toBe(0);
    const text = out.stdout.join("\n");
    expect(text).toMatch(/host-CPU occupancy \(busy fraction per CPU, spinning included\):/);
    expect(text).toMatch(new RegExp(`  bound/none v6\\.4: cpu0 ${(100 * cpus[0].occupancy).toFixed(1)}%`));
  });
});

/** The built CLI: a variant module outside the checkout imports "tdplab", which the CLI resolves. */
function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["dist/cli/bin.js", ...args], { encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe.runIf(existsSync("dist/cli/bin.js"))("tdplab simulate --variant", () => {
  const dir = mkdtempSync(join(tmpdir(), "tdplab-sim-variant-"));
  const variant = (name: string, body: string) => {
    const f = join(dir, `${name}.mjs`);
    writeFileSync(
      f,
      `import { defineVariant } from "tdplab";\nexport default defineVariant({ name: "${name}", description: "test", ${body} });\n`,
    );
    return f;
  };
  const doc = (...args: string[]): SimulateDoc => {
    const r = cli("simulate", ...args, "--json");
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as SimulateDoc;
  };

  it("a worker that never yields: even full preemption waits for the whole zap", () => {
    const f = variant(
      "never-yields",
      "overrides: { *tdp_mmu_iter_cond_resched(_original, _kvm, _iter, _flush, _shared) { return false; } }",
    );
    const merged = doc("teardown-wait", "--set", "guestSize=16GiB");
    const bad = doc("teardown-wait", "--set", "guestSize=16GiB", "--variant", f);
    const m = (d: SimulateDoc, l: string) => d.runs.find((r) => r.label === l)!.metrics;
    expect(m(merged, "full/idle").teardownWaitMs!).toBeLessThan(50);
    expect(m(bad, "full/idle").teardownWaitMs!).toBeGreaterThan(0.5 * m(bad, "full/idle").workerZapMs!);
  });

  it("a variant's features apply in every run, like --feature; an override no run calls is a warning", () => {
    const withFeatures = variant("feat", "features: { zapPasses: 'single' }, overrides: {}");
    const viaVariant = doc("teardown-wait", "--set", "guestSize=1GiB", "--variant", withFeatures);
    const viaFlag = doc("teardown-wait", "--set", "guestSize=1GiB", "--feature", "zapPasses=single");
    const preset = doc("teardown-wait", "--set", "guestSize=1GiB");
    const zap = (d: SimulateDoc) => d.runs.map((r) => r.metrics.workerZapMs);
    expect(zap(viaVariant)).toEqual(zap(viaFlag));
    expect(zap(viaFlag)).not.toEqual(zap(preset));
    const unused = variant(
      "unused",
      "overrides: { *kvm_rmap_lock(original, ...a) { return yield* original(...a); } }",
    );
    const warned = cli("simulate", "teardown-wait", "--set", "guestSize=1GiB", "--variant", unused);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toMatch(/the override of kvm_rmap_lock never ran/);
  });
});

describe("tdplab simulate --feature", () => {
  it("changes one commit in every run's kernel, says so in the header and the JSON, and rejects a bad flag", async () => {
    const single = await json(
      "simulate",
      "teardown-wait",
      "--set",
      "guestSize=1GiB",
      "--feature",
      "zapPasses=single",
    );
    const preset = await json("simulate", "teardown-wait", "--set", "guestSize=1GiB");
    expect(single.features).toEqual({ zapPasses: "single" });
    expect(preset.features).toBeNull();
    expect(single.runs.map((r) => r.metrics.events)).not.toEqual(preset.runs.map((r) => r.metrics.events));
    const text = memoryOut();
    expect(
      await main(
        ["simulate", "teardown-wait", "--set", "guestSize=1GiB", "--feature", "zapPasses=single"],
        text,
      ),
    ).toBe(0);
    expect(text.stdout.join("\n")).toContain("features: zapPasses=single");
    const bad = memoryOut();
    expect(await main(["simulate", "teardown-wait", "--feature", "zapPasess=single"], bad)).toBe(2);
    expect(bad.stderr.join("\n")).toMatch(/--feature zapPasess=single: unknown feature 'zapPasess'/);
  });
});
