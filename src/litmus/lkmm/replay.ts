import { ReplayFormatError } from "../../engine/replay-codec.js";
import { decodeJson, encodeJson, testDigest } from "../digest.js";
import type { LitmusTest } from "../parse.js";
import { type LkmmWitness, lkmmCandidate } from "./enumerate.js";

/**
 * Replay strings for LKMM witnesses. An LKMM execution is not a schedule of the engine (the model
 * is axiomatic: there is no interleaving that produces it), so its string names the candidate
 * execution instead: `lkmm1.<base64url(JSON {t: test name, h: test digest, c: choice})>`, where
 * the choice picks each thread's control-flow path and each location's (co, rf) option in the
 * enumeration order of enumerate.ts. Replaying judges that candidate again and prints it.
 */
const PREFIX = "lkmm1.";

interface Header {
  readonly t: string;
  readonly h: string;
  readonly c: readonly number[];
}

export function lkmmReplayString(test: LitmusTest, w: LkmmWitness): string {
  const header: Header = { t: test.name, h: testDigest(test), c: w.choice };
  return encodeJson(PREFIX, header);
}

export function isLkmmReplay(s: string): boolean {
  return s.trim().startsWith(PREFIX);
}

/** The witness a string names, judged again on `test`; a ReplayFormatError says why it does not fit. */
export function replayLkmm(text: string, test: LitmusTest): LkmmWitness {
  const header = decodeJson(PREFIX, text) as Header | null;
  if (header === null)
    throw new ReplayFormatError("not an lkmm1 replay string (its payload does not decode)");
  if (typeof header?.t !== "string" || typeof header.h !== "string" || !Array.isArray(header.c))
    throw new ReplayFormatError("not an lkmm1 replay string (its header lacks t, h or c)");
  if (header.t !== test.name || header.h !== testDigest(test))
    throw new ReplayFormatError(
      `the string was recorded on litmus test ${header.t} (digest ${header.h}), not on this file's ${test.name} (digest ${testDigest(test)})`,
    );
  const r = lkmmCandidate(test, header.c);
  if ("invalid" in r) throw new ReplayFormatError(`the string does not fit ${test.name}: ${r.invalid}`);
  if ("rejected" in r)
    throw new ReplayFormatError(`the execution it names is not allowed by the LKMM (${r.rejected} axiom)`);
  return r.witness;
}
