import { memoryOut } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { decodeReplay, traceFromReplay } from "../../src/explore/replay-trace.js";
import { encodeReplayToken } from "../../src/trace/replay-token.js";
import type { TraceDoc } from "../../src/trace/schema.js";

/** Thread 003's unsafe design: refcount_dec_not_one(), then refcount_set(0) and free. */
const CHECK = [
  "check",
  "seed-003-put-root",
  "--kernel",
  "v5.18",
  "--variant",
  "put-root-dec-not-one-set-zero",
];

/** The checker's shrunk counterexample (a refcount underflow on the root about to be freed). */
export async function checkedCounterexample(): Promise<TraceDoc> {
  const out = memoryOut();
  const code = await main([...CHECK, "--json"], out);
  if (code !== 1) throw new Error(`expected a violation from ${CHECK.join(" ")}, got exit ${code}`);
  return JSON.parse(out.stdout.join("\n")).violation.trace as TraceDoc;
}

/**
 * The use-after-free form of the same race: the counterexample's schedule, with the RCU callback
 * that frees the root run before the last step (the second walker's put of the root it still holds).
 * The checker reports the underflow first, because the shrunk schedule puts the root one step
 * before its RCU callback; letting the callback run makes the put touch freed memory.
 */
export async function useAfterFreeTrace(): Promise<{ uaf: TraceDoc; checked: TraceDoc }> {
  const checked = await checkedCounterexample();
  const token = decodeReplay(checked.replay);
  const rcu = checked.tasks.find((t) => t.lane === "rcu" && t.name.includes("root#"));
  if (!rcu) throw new Error("the counterexample has no RCU callback freeing the root");
  const head = token.choices.slice(0, -1);
  const last = token.choices.at(-1)!;
  for (let k = 1; k <= 6; k++) {
    const replay = encodeReplayToken({
      header: token.header,
      choices: [...head, ...Array(k).fill(rcu.id), last],
    });
    const doc = await traceFromReplay(replay).catch(() => null);
    if (doc?.violation?.invariant === "use-after-free") return { uaf: doc, checked };
  }
  throw new Error("no schedule of the counterexample's form ends in a use-after-free");
}
