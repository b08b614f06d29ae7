/**
 * bench:sim — what the simulator costs on defunct-root-zap at 64 TiB (the A1 size): wall time, peak
 * RSS and simulated events per wall second, for the sync (v5.17) and the async (v5.18) run. Each
 * run is measured in a fresh child process, so its peak RSS is its own (process.resourceUsage()
 * .maxRSS, in KiB, read at the end of the child). "events" counts a bulk access over a summarised
 * subtree as the steps it stands for (what the materialised run would process), so eventsPerSec is
 * the equivalent rate; "bulkAccesses" says how many such accesses there were.
 *
 * With --largest it measures instead the largest configuration of every timed scenario (LARGEST
 * below: the published scale where the scenario reaches it, else the largest it accepts), each
 * point in a child process of its own: wall time, peak RSS and simulated events, against the
 * budget of 60 s and 1 GiB a run at published scale should keep.
 *
 *   npm run --silent bench:sim -- [--json] [--guest-size 64TiB]
 *   npm run --silent bench:sim -- --largest [--json] [--only NAME]
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { formatMetric } from "../src/cli/sim-table.js";
import { formatTable } from "../src/cli/table.js";
import { formatSize, parseSize } from "../src/scenarios/sim/params.js";

const RUNS = [
  { label: "sync", kernel: "v5.17" },
  { label: "async", kernel: "v5.18" },
] as const;

interface ChildReport {
  readonly label: string;
  readonly kernel: string;
  readonly wallMs: number;
  readonly peakRssMb: number;
  readonly events: number;
  readonly eventsPerSec: number;
  /** Bulk accesses executed (each tears down a summarised subtree and counts as its steps in events). */
  readonly bulkAccesses: number;
  readonly vcpuBlockedMs: number;
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

/** In the child: one run, measured, as one JSON line on stdout. */
async function child(kernel: "v5.17" | "v5.18", guestSize: number): Promise<void> {
  const { defunctRootZap } = await import("../src/scenarios/sim/defunct-root-zap.js");
  const t0 = performance.now();
  const o = defunctRootZap({ kernel, guestSize });
  const wallMs = performance.now() - t0;
  const report: ChildReport = {
    label: o.label,
    kernel,
    wallMs: Math.round(wallMs),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    events: o.metrics.events,
    eventsPerSec: Math.round(o.metrics.events / (wallMs / 1000)),
    bulkAccesses: o.result.stats.bulkSteps,
    vcpuBlockedMs: o.metrics.vcpuBlockedMs,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function parent(guestSize: number, json: boolean): void {
  const self = fileURLToPath(import.meta.url);
  const runs = RUNS.map(({ label, kernel }) => {
    // process.execArgv carries tsx's loader, so the child runs this file the same way.
    const r = spawnSync(
      process.execPath,
      [...process.execArgv, self, "--child", kernel, "--guest-size", String(guestSize)],
      { encoding: "utf8", maxBuffer: 1 << 20 },
    );
    if (r.status !== 0) {
      process.stderr.write(r.stderr);
      throw new Error(`bench:sim: the ${label} run exited with ${r.status ?? r.signal}`);
    }
    const line = r.stdout.trim().split("\n").at(-1) ?? "";
    return JSON.parse(line) as ChildReport;
  });
  const doc = { scenario: "defunct-root-zap", guestSize: formatSize(guestSize), runs };
  if (json) {
    console.log(JSON.stringify(doc, null, 2));
    return;
  }
  console.log(`defunct-root-zap at ${doc.guestSize}, one child process per run`);
  console.log(
    formatTable(
      ["label", "kernel", "wallMs", "peakRssMb", "events", "eventsPerSec", "bulkAccesses", "vcpuBlockedMs"],
      runs.map((r) => [
        r.label,
        r.kernel,
        String(r.wallMs),
        String(r.peakRssMb),
        String(r.events),
        String(r.eventsPerSec),
        String(r.bulkAccesses),
        formatMetric(r.vcpuBlockedMs, "ms"),
      ]),
    ),
  );
}

/**
 * The largest configuration of each scenario, as --set strings. 512 vCPUs with 16 GiB each where
 * the scenario is compressed; dirty-log at its page-pass budget (it simulates every access).
 */
const LARGEST: Readonly<Record<string, readonly string[]>> = {
  "defunct-root-zap": ["guestSize=64TiB", "cpus=512"],
  // One of the four runs: all four at 64TiB take about 110 s (runs=all is four such points).
  "teardown-wait": ["guestSize=64TiB", "runs=none/idle"],
  // Materialised roots: 16 x 1GiB took over 200 s, so the scenario refuses more than 256MiB in all.
  "root-walk": ["roots=16", "memory=16MiB"],
  "lockless-aging": ["vcpus=512"],
  "dirty-log": ["vcpus=64", "bytes=16MiB", "iterations=2"],
  "mmu-stress": [
    "kernel=v5.17",
    "vcpus=512",
    "memory=8TiB",
    "slotSize=1TiB",
    "populate=prefault",
    "stages=reset",
  ],
  "unbound-zap-worker": ["cpus=512", "guestSize=8TiB"],
  "fast-zap-root-load": ["vcpus=512", "memPerVcpu=16GiB"],
  // 512 x 16GiB took 156 s and 1.6 GiB (a freed root is zapped whole): the scenario takes up to 1TiB.
  "root-churn": ["vcpus=64", "memPerVcpu=16GiB", "toggles=4", "refaultPages=16"],
  // Listed tables are zapped SPTE by SPTE and the timeline is kept: up to 64GiB.
  "nx-recovery": ["vcpus=64", "memPerVcpu=1GiB"],
  // The most slots at the largest guest it takes (2GiB); 128 vCPUs x 4GiB took 69 s and 1.5GiB.
  "memslot-churn": ["slots=32768", "slotSize=64KiB", "vcpus=64"],
};

interface LargestReport {
  readonly scenario: string;
  readonly settings: string;
  readonly runs: number;
  readonly wallMs: number;
  readonly peakRssMb: number;
  readonly events: number;
}

/** In the child: the scenario's largest point, measured, as one JSON line on stdout. */
async function largestChild(name: string): Promise<void> {
  const { findSimScenario } = await import("../src/scenarios/sim/registry.js");
  const { planSimulation } = await import("../src/scenarios/sim/params.js");
  const { runPlan } = await import("../src/scenarios/sim/run-plan.js");
  const scenario = findSimScenario(name);
  if (scenario === undefined) throw new Error(`bench:sim: no scenario ${name}`);
  const plan = planSimulation(scenario, { set: LARGEST[name] });
  const t0 = performance.now();
  const out = await runPlan(plan);
  const wallMs = performance.now() - t0;
  const report: LargestReport = {
    scenario: name,
    settings: LARGEST[name].join(" "),
    runs: out.records.length,
    wallMs: Math.round(wallMs),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    events: out.records.reduce((a, r) => a + (r.run.results ?? []).reduce((b, x) => b + x.events, 0), 0),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function largestParent(json: boolean, only: string | undefined): Promise<void> {
  return import("../src/scenarios/sim/registry.js").then(({ SIM_SCENARIOS }) => {
    const missing = SIM_SCENARIOS.filter((s) => LARGEST[s.name] === undefined).map((s) => s.name);
    if (missing.length > 0) throw new Error(`bench:sim: no largest configuration for ${missing.join(", ")}`);
    const self = fileURLToPath(import.meta.url);
    const names = SIM_SCENARIOS.map((s) => s.name).filter((n) => only === undefined || n === only);
    const rows: LargestReport[] = [];
    for (const name of names) {
      const r = spawnSync(process.execPath, [...process.execArgv, self, "--largest-child", name], {
        encoding: "utf8",
        maxBuffer: 1 << 20,
      });
      if (r.status !== 0) {
        process.stderr.write(r.stderr);
        throw new Error(`bench:sim: ${name} exited with ${r.status ?? r.signal}`);
      }
      rows.push(JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "") as LargestReport);
      if (!json) process.stderr.write(`${name}: ${rows.at(-1)!.wallMs} ms\n`);
    }
    if (json) {
      console.log(JSON.stringify({ largest: rows }, null, 2));
      return;
    }
    console.log(
      "largest configuration of each scenario, one child process per scenario (budget: 60 s, 1 GiB)",
    );
    console.log(
      formatTable(
        ["scenario", "settings", "runs", "wallMs", "peakRssMb", "events", "in budget"],
        rows.map((r) => [
          r.scenario,
          r.settings,
          String(r.runs),
          String(r.wallMs),
          String(r.peakRssMb),
          String(r.events),
          r.wallMs <= 60_000 && r.peakRssMb <= 1024 ? "yes" : "no",
        ]),
      ),
    );
  });
}

const sizeText = flag("--guest-size") ?? "64TiB";
const guestSize = parseSize(sizeText);
if (guestSize === null || guestSize <= 0) {
  process.stderr.write(`bench:sim: --guest-size takes a size such as 64TiB, not '${sizeText}'\n`);
  process.exit(2);
}
const childKernel = flag("--child");
const largestName = flag("--largest-child");
if (largestName !== undefined) await largestChild(largestName);
else if (process.argv.includes("--largest"))
  await largestParent(process.argv.includes("--json"), flag("--only"));
else if (childKernel === "v5.17" || childKernel === "v5.18") await child(childKernel, guestSize);
else parent(guestSize, process.argv.includes("--json"));
