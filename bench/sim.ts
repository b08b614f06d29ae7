/**
 * bench:sim — the simulator's cost on the largest tree `tdplab simulate defunct-root-zap` accepts
 * (2^16 leaves: ptesPerTable 16, rootLevel 4): wall time, peak RSS (sampled after each run) and
 * simulator events per wall second, for the sync (v5.17) and async (v5.18) runs.
 * `--json` prints one JSON object.
 */
import { defunctRootZap } from "../src/scenarios/sim/defunct-root-zap.js";

const json = process.argv.includes("--json");
const params = { ptesPerTable: 16, rootLevel: 4 as const, fill: 1 };

let peakRss = process.memoryUsage().rss;
const runs = (["v5.17", "v5.18"] as const).map((kernel) => {
  const t0 = performance.now();
  const r = defunctRootZap({ ...params, kernel });
  const wallMs = performance.now() - t0;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  return {
    label: r.label,
    kernel,
    leaves: r.metrics.leaves,
    events: r.metrics.events,
    wallMs: Math.round(wallMs),
    peakRssMb: Math.round(peakRss / 2 ** 20),
    eventsPerSec: Math.round(r.metrics.events / (wallMs / 1000)),
  };
});

if (json) console.log(JSON.stringify({ scenario: "defunct-root-zap", params, runs }, null, 2));
else console.table(runs);
