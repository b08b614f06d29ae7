/**
 * bench:sim — what the simulator costs on defunct-root-zap at 64 TiB (the A1 size): wall time, peak
 * RSS and simulated events per wall second, for the sync (v5.17) and the async (v5.18) run. Each
 * run is measured in a fresh child process, so its peak RSS is its own (process.resourceUsage()
 * .maxRSS, in KiB, read at the end of the child). "events" counts a bulk access over a summarised
 * subtree as the steps it stands for (what the materialised run would process), so eventsPerSec is
 * the equivalent rate; "bulkAccesses" says how many such accesses there were.
 *
 *   npm run --silent bench:sim -- [--json] [--guest-size 64TiB]
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

const sizeText = flag("--guest-size") ?? "64TiB";
const guestSize = parseSize(sizeText);
if (guestSize === null || guestSize <= 0) {
  process.stderr.write(`bench:sim: --guest-size takes a size such as 64TiB, not '${sizeText}'\n`);
  process.exit(2);
}
const childKernel = flag("--child");
if (childKernel === "v5.17" || childKernel === "v5.18") await child(childKernel, guestSize);
else parent(guestSize, process.argv.includes("--json"));
