import { parentPort, workerData } from "node:worker_threads";
import { BEACON } from "../../engine/beacon.js";
import { JobStalled } from "../../engine/explore/pool-watch.js";
import { SharedBeacon } from "../../engine/shared-beacon.js";
import { ScenarioError } from "../../scenarios/errors.js";
import { ReplayError } from "../../scenarios/replay.js";
import { ResolveError } from "../../scenarios/resolve.js";
import { SimParamError } from "../../scenarios/sim/params.js";
import { runJob, type WatchedJob } from "./jobs.js";
import type { WorkerMessage } from "./watchdog.js";

/**
 * A watched thread: publishes where its runs are through the beacon, so the thread that started it
 * can stop it even inside a task's code that never yields.
 */
const port = parentPort!;
const { job, beacon, stop, watchTasks } = workerData as {
  job: WatchedJob;
  beacon: SharedArrayBuffer;
  stop: SharedArrayBuffer;
  watchTasks: boolean;
};
// The beacon costs a few stores per step: only runs of the user's own code need it.
if (watchTasks) BEACON.current = new SharedBeacon(beacon);
const stopFlag = new Int32Array(stop);
const controller = new AbortController();
port.on("message", (m: { type?: string }) => {
  if (m?.type === "abort") controller.abort();
});
const post = (m: WorkerMessage) => port.postMessage(m);
try {
  const value = await runJob(job, controller.signal, () => Atomics.load(stopFlag, 0) !== 0, post);
  post({ type: "done", value });
} catch (e) {
  // Bad input stays the user's (exit 2) on the far side too; anything else is tdplab's.
  if (e instanceof JobStalled) post({ type: "stalled", ...e.stalled });
  else if (e instanceof ScenarioError) post({ type: "error", usage: true, message: e.report() });
  else if (e instanceof ResolveError || e instanceof ReplayError || e instanceof SimParamError)
    post({ type: "error", usage: true, message: e.message });
  else {
    const err = e instanceof Error ? e : new Error(String(e));
    post({ type: "error", usage: false, message: err.message, stack: err.stack });
  }
}
