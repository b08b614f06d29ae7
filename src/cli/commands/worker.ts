import { availableParallelism, tmpdir } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { runQueueWorker } from "../../engine/explore/queue/worker.js";
import { landProgram } from "../../scenarios/ship.js";
import type { SetExit } from "../commands.js";
import { EXIT } from "../exit-codes.js";
import type { Out } from "../io.js";
import { intFlag } from "../options.js";
import { QUEUE_VERSION, queueFlags } from "../queue-flags.js";
import { STOP_SIGNALS, signalExit } from "../signals.js";

/** `tdplab worker`: run the items of `tdplab check --queue` runs, on this machine, until stopped. */
export function registerWorker(program: Command, out: Out, setExit: SetExit): void {
  program
    .command("worker")
    .description(
      "run the work items of distributed checks (tdplab check --queue) from a Redis queue until stopped",
    )
    .requiredOption(
      "--queue <url>",
      "the Redis of the queue: redis://[USER:PASS@]HOST:PORT[/DB] or rediss://… (TLS)",
    )
    .option("--queue-name <name>", "the queue's name on that Redis (default tdplab)")
    .option(
      "--concurrency <n>",
      "items run at once, each on a thread of its own (default: this machine's CPUs)",
    )
    .option(
      "--lock-duration <s>",
      "seconds after which an item whose worker stopped answering (killed, cut off) is run by another worker",
      "30",
    )
    .option(
      "--cache <dir>",
      "where scenario and variant files shipped by coordinators are written (by content hash)",
    )
    .option("--verbose", "log every item's start and end")
    .action(async (o) => {
      const { target, queueName } = queueFlags(o.queue, o.queueName);
      const concurrency = intFlag("--concurrency", o.concurrency, 1) ?? availableParallelism();
      const lockDurationMs = (intFlag("--lock-duration", o.lockDuration, 1) ?? 30) * 1000;
      const dir = o.cache === undefined ? join(tmpdir(), "tdplab-worker", "programs") : resolvePath(o.cache);
      const controller = new AbortController();
      let stopSignal: NodeJS.Signals | null = null;
      // The first signal finishes the items in hand (their results are not lost); a second one leaves
      // them to the stalled-job recovery of the other workers and exits now.
      const onSignal = (sig: NodeJS.Signals) => {
        if (stopSignal !== null) process.exit(signalExit(sig));
        stopSignal = sig;
        out.info(`${sig}: finishing the items in hand (${sig} again to leave them to other workers)`);
        controller.abort();
      };
      for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
      try {
        const s = await runQueueWorker({
          target,
          queueName,
          version: QUEUE_VERSION,
          concurrency,
          lockDurationMs,
          resolveProgram: async (payload) => landProgram(payload, dir),
          log: (line) => out.info(line),
          verbose: o.verbose === true,
          signal: controller.signal,
        });
        out.info(
          `worker stopped: ${s.items} item${s.items === 1 ? "" : "s"}, ${s.executions} executions${s.refused > 0 ? `, ${s.refused} refused (another tdplab version)` : ""}`,
        );
      } finally {
        for (const sig of STOP_SIGNALS) process.removeListener(sig, onSignal);
      }
      setExit(stopSignal === null ? EXIT.ok : signalExit(stopSignal));
    });
}
