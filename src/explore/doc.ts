import { TraceDoc } from "../trace/schema.js";
import { SimTraceDoc } from "../trace/sim-trace-schema.js";

/** What the explorer shows: a checker trace (steps, states) or timed simulator runs. */
export type ExplorerDoc =
  | { readonly kind: "check"; readonly doc: TraceDoc }
  | { readonly kind: "sim"; readonly doc: SimTraceDoc };

/** A document the schemas refuse, with the first offending field. */
export class DocError extends Error {
  override name = "DocError";
}

/**
 * Shared by the CLI (which checks a file before serving it) and the page (which checks what it
 * loaded). Validate a parsed JSON document with the same zod schemas the CLI writes and reads: a simulator
 * document says `kind: "sim"`; anything else must be a checker trace.
 */
export function parseExplorerDoc(json: unknown): ExplorerDoc {
  const isSim = typeof json === "object" && json !== null && (json as { kind?: unknown }).kind === "sim";
  const r = isSim ? SimTraceDoc.safeParse(json) : TraceDoc.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    const what = isSim ? "simulator trace" : "tdplab trace";
    throw new DocError(`not a ${what} (schema v1): ${i.path.join(".") || "(document)"}: ${i.message}`);
  }
  return isSim ? { kind: "sim", doc: r.data as SimTraceDoc } : { kind: "check", doc: r.data as TraceDoc };
}
