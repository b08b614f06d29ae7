import type { LkmmWitness } from "./enumerate.js";

/**
 * A witness execution as text: per thread its events in program order (kind, annotation, location
 * and value), the write each read reads from, and each location's coherence order. It is a
 * candidate execution of the axiomatic model, not an interleaving: the LKMM has none to show.
 */
export function formatWitness(w: LkmmWitness, replay: string, file?: string): string {
  const src = new Map(w.rf.map(([wr, r]) => [r, wr]));
  const name = (id: number) => {
    const e = w.events[id];
    return e.thread < 0 ? `e${id} (initial ${e.loc})` : `e${id} (P${e.thread})`;
  };
  const lines = ["Witness: an execution the LKMM allows (events, rf, co)"];
  for (const e of w.events) {
    if (e.thread < 0) continue;
    const access = e.loc === undefined ? "" : `${e.loc}=${e.value}`;
    const from = src.has(e.id) ? `  rf from ${name(src.get(e.id)!)}` : "";
    lines.push(
      `  P${e.thread} e${e.id} ${`${e.kind}[${e.tag}]`.padEnd(20)} ${access.padEnd(8)} ${e.text}${from}`,
    );
  }
  for (const [loc, order] of Object.entries(w.co))
    lines.push(`  co ${loc}: ${order.map((id) => `e${id}`).join(" -> ")}`);
  lines.push(`  replay: tdplab replay '${replay}' --litmus ${file ?? "FILE.litmus"}`);
  return lines.join("\n");
}
