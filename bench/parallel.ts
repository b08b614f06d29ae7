/**
 * bench:parallel — one check run with 1 job, with 2 jobs (worker threads) with the adaptive split
 * and at fixed split depths, and on a Redis queue with 2 local `tdplab worker` processes:
 * executions (which must be equal), wall time, speed-up, and CPU time (user + system, every thread
 * and process of the run), because on a shared machine wall time alone says little. The default
 * check takes about 10-20 s with one job. Needs redis-server for the queue rows.
 * `--json` prints one JSON object; `-- ARGS…` replaces the check arguments (add `--time-limit S`
 * there to compare how much each configuration explores in the same time).
 *
 * On a shared machine wall times say little: every row also has the load average when it started
 * and its executions per CPU-second, and `eff` is that rate relative to one job (1.0: the parallel
 * run spends no more CPU per execution, so on N idle cores it would run N times as fast). The CLI
 * runs from dist/ when it was built (`npm run build`: what users run, no TypeScript loader in
 * every thread), else from the sources through tsx; `--source` forces the sources.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { startRedis, tdplab, until } from "../src/cli/test-procs.js";

const json = process.argv.includes("--json");
const dash = process.argv.indexOf("--", 2);
const CHECK =
  dash >= 0
    ? process.argv.slice(dash + 1)
    : ["check", "protocol-v5.18", "--set", "vcpus=1", "--set", "walkers=0", "--set", "fastZaps=1"];
const BASE = [...CHECK, "--strategy", "dpor", "--checkpoint-every", "0", "--json"];
const fromDist = existsSync("dist/cli/bin.js") && !process.argv.includes("--source");
const CLI = fromDist ? ["dist/cli/bin.js"] : ["--import", "tsx", "src/cli/bin.ts"];
const TICK = 100; // clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK)

interface Row {
  readonly config: string;
  readonly executions: number;
  readonly wallS: number;
  readonly cpuS: number;
  /** 1-minute load average when the row started. */
  readonly load: number;
  speedup?: number;
  /** Executions per CPU-second, relative to the first row's. */
  eff?: number;
}

/** A CLI run under /usr/bin/time: its JSON document, wall and CPU seconds (threads included). */
function timed(args: readonly string[]): {
  doc: { stats: { executions: number } };
  wallS: number;
  cpuS: number;
} {
  const r = spawnSync("/usr/bin/time", ["-f", "TIME %e %U %S", process.execPath, ...CLI, ...args], {
    encoding: "utf8",
  });
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (m === null) throw new Error(`bench: no timing from ${args.join(" ")}:\n${r.stderr}`);
  return { doc: JSON.parse(r.stdout), wallS: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]) };
}

/** CPU seconds a live process (all its threads) has used so far. */
function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / TICK;
}

const rows: Row[] = [];
const add = (config: string, r: ReturnType<typeof timed>, extraCpu = 0, load = loadavg()[0]) => {
  rows.push({ config, executions: r.doc.stats.executions, wallS: r.wallS, cpuS: r.cpuS + extraCpu, load });
  if (!json) console.error(`measured ${config}`);
};
const row = (config: string, args: readonly string[]) => {
  const load = loadavg()[0];
  add(config, timed(args), 0, load);
};
row("1 job", BASE);
row("2 jobs, adaptive", [...BASE, "--jobs", "2"]);
for (const d of [4, 40]) row(`2 jobs, split ${d}`, [...BASE, "--jobs", "2", "--split-depth", `${d}`]);

if (spawnSync("redis-server", ["--version"]).status === 0) {
  const redis = await startRedis();
  const procs = [0, 1].map(() => tdplab(["worker", "--queue", redis.url, "--concurrency", "1"]));
  for (const p of procs) await until(() => p.stderr.includes("tdplab worker"), 60_000, "a worker");
  const workers = procs.map((p) => p.child);
  const url = redis.url;
  for (const d of [undefined, 40]) {
    const before = workers.reduce((s, w) => s + cpuOf(w.pid!), 0);
    const load = loadavg()[0];
    const r = timed([...BASE, "--queue", url, ...(d === undefined ? [] : ["--split-depth", `${d}`])]);
    const name = `queue, 2 workers, ${d === undefined ? "adaptive" : `split ${d}`}`;
    add(name, r, workers.reduce((s, w) => s + cpuOf(w.pid!), 0) - before, load);
  }
  for (const w of workers) w.kill("SIGKILL");
  redis.proc.child.kill("SIGKILL");
} else if (!json) console.error("redis-server not installed: no queue rows");

const base = rows[0];
const rate = (r: Row) => r.executions / r.cpuS;
for (const r of rows) {
  // Time-limited rows explore different amounts: compare executions per wall second then.
  r.speedup = Number((r.executions / r.wallS / (base.executions / base.wallS)).toFixed(2));
  r.eff = Number((rate(r) / rate(base)).toFixed(2));
}
if (json)
  console.log(
    JSON.stringify({ check: CHECK, cli: fromDist ? "dist" : "source", rows, node: process.version }),
  );
else {
  console.log(`${CHECK.join(" ")}, dpor (CLI from ${fromDist ? "dist/" : "sources, through tsx"})`);
  console.log("config                        executions    wall s   cpu s  speed-up  exec/cpu-s   eff  load");
  for (const r of rows)
    console.log(
      `${r.config.padEnd(29)} ${String(r.executions).padStart(10)} ${r.wallS.toFixed(1).padStart(9)} ${r.cpuS.toFixed(1).padStart(7)} ${String(r.speedup).padStart(9)} ${rate(r).toFixed(0).padStart(11)} ${r.eff!.toFixed(2).padStart(5)} ${r.load.toFixed(1).padStart(5)}`,
    );
}
process.exit(0);
