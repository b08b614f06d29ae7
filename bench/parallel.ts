/**
 * bench:parallel — one check run with 1 job, with 2 jobs (worker threads) with the adaptive split
 * and at fixed split depths, and on a Redis queue with 2 local `tdplab worker` processes:
 * executions (which must be equal), wall time, speed-up, and CPU time (user + system, every thread
 * and process of the run), because on a shared machine wall time alone says little. The default
 * check takes about 10-20 s with one job. Needs redis-server for the queue rows.
 * `--json` prints one JSON object; `-- ARGS…` replaces the check arguments.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { startRedis, tdplab, until } from "../src/cli/test-procs.js";

const json = process.argv.includes("--json");
const dash = process.argv.indexOf("--");
const CHECK =
  dash >= 0
    ? process.argv.slice(dash + 1)
    : ["check", "protocol-v5.18", "--set", "vcpus=1", "--set", "walkers=0", "--set", "fastZaps=1"];
const BASE = [...CHECK, "--strategy", "dpor", "--checkpoint-every", "0", "--json"];
const CLI = ["--import", "tsx", "src/cli/bin.ts"];
const TICK = 100; // clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK)

interface Row {
  readonly config: string;
  readonly executions: number;
  readonly wallS: number;
  readonly cpuS: number;
  speedup?: number;
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
const add = (config: string, r: ReturnType<typeof timed>, extraCpu = 0) => {
  rows.push({ config, executions: r.doc.stats.executions, wallS: r.wallS, cpuS: r.cpuS + extraCpu });
  if (!json) console.error(`measured ${config}`);
};
add("1 job", timed(BASE));
add("2 jobs, adaptive", timed([...BASE, "--jobs", "2"]));
for (const d of [4, 40]) add(`2 jobs, split ${d}`, timed([...BASE, "--jobs", "2", "--split-depth", `${d}`]));

if (spawnSync("redis-server", ["--version"]).status === 0) {
  const redis = await startRedis();
  const procs = [0, 1].map(() => tdplab(["worker", "--queue", redis.url, "--concurrency", "1"]));
  for (const p of procs) await until(() => p.stderr.includes("tdplab worker"), 60_000, "a worker");
  const workers = procs.map((p) => p.child);
  const url = redis.url;
  for (const d of [undefined, 40]) {
    const before = workers.reduce((s, w) => s + cpuOf(w.pid!), 0);
    const r = timed([...BASE, "--queue", url, ...(d === undefined ? [] : ["--split-depth", `${d}`])]);
    const name = `queue, 2 workers, ${d === undefined ? "adaptive" : `split ${d}`}`;
    add(name, r, workers.reduce((s, w) => s + cpuOf(w.pid!), 0) - before);
  }
  for (const w of workers) w.kill("SIGKILL");
  redis.proc.child.kill("SIGKILL");
} else if (!json) console.error("redis-server not installed: no queue rows");

const base = rows[0].wallS;
for (const r of rows) r.speedup = Number((base / r.wallS).toFixed(2));
if (json) console.log(JSON.stringify({ check: CHECK, rows, node: process.version }));
else {
  console.log(`${CHECK.join(" ")}, dpor`);
  console.log("config                        executions    wall s   cpu s  speed-up");
  for (const r of rows)
    console.log(
      `${r.config.padEnd(29)} ${String(r.executions).padStart(10)} ${r.wallS.toFixed(1).padStart(9)} ${r.cpuS.toFixed(1).padStart(7)} ${String(r.speedup).padStart(9)}`,
    );
}
process.exit(0);
