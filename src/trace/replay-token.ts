import {
  decodeChoices,
  encodeChoices,
  fromBase64Url,
  ReplayFormatError,
  toBase64Url,
} from "../engine/replay-codec.js";

/**
 * A self-contained replay string: what to run and how to schedule it.
 *   tdp1.<base64url(JSON header)>.<v1 choice payload>
 * The header names the scenario (built-in name or file path), the kernel
 * preset, feature overrides, the variant and machine overrides; the payload is
 * the engine's choice sequence (replay-codec.ts).
 */
export interface ReplayHeader {
  /** Scenario: built-in name or a file path. */
  readonly s: string;
  /** Kernel preset. */
  readonly k: string;
  /** Feature overrides, NAME=value. */
  readonly f?: readonly string[];
  /** Variant (mutation) name or path. */
  readonly v?: string | null;
  /** Machine overrides (preemption, needResched, needReschedBudget). */
  readonly m?: Readonly<Record<string, string | number>>;
  /** Scenario parameters that differ from the scenario's defaults (--set). */
  readonly p?: Readonly<Record<string, number>>;
  /** When `s` is a file: the SHA-256 of its content (hex, first 16 digits); `s` is its base name. */
  readonly sh?: string;
  /** When `v` is a file: the same for the variant module. */
  readonly vh?: string;
  /** The depth bound (steps) that cut this run: a replay of a possible livelock stops there too. */
  readonly d?: number;
}

export interface ReplayToken {
  readonly header: ReplayHeader;
  readonly choices: readonly number[];
}

const PREFIX = "tdp1.";

export function encodeReplayToken(t: ReplayToken): string {
  const json = JSON.stringify(t.header);
  const bytes = Array.from(new TextEncoder().encode(json));
  const choices = encodeChoices(t.choices).slice("v1.".length);
  return `${PREFIX}${toBase64Url(bytes)}.${choices}`;
}

export function decodeReplayToken(text: string): ReplayToken {
  const s = text.trim();
  if (!s.startsWith(PREFIX)) {
    throw new ReplayFormatError(`a replay string starts with '${PREFIX}' (got '${s.slice(0, 12)}...')`);
  }
  const rest = s.slice(PREFIX.length);
  const dot = rest.indexOf(".");
  if (dot < 0) throw new ReplayFormatError("replay string has no choice payload after the header");
  let header: ReplayHeader;
  try {
    const json = new TextDecoder("utf-8", { fatal: true }).decode(
      new Uint8Array(fromBase64Url(rest.slice(0, dot))),
    );
    header = JSON.parse(json) as ReplayHeader;
  } catch (e) {
    if (e instanceof ReplayFormatError) throw e;
    throw new ReplayFormatError("replay string header is not valid");
  }
  if (
    typeof header !== "object" ||
    header === null ||
    typeof header.s !== "string" ||
    typeof header.k !== "string"
  ) {
    throw new ReplayFormatError("replay string header lacks the scenario or the kernel");
  }
  if (header.d !== undefined && !(Number.isInteger(header.d) && header.d >= 1)) {
    throw new ReplayFormatError("replay string header has a depth bound that is not a positive integer");
  }
  const choices = decodeChoices(`v1.${rest.slice(dot + 1)}`);
  return { header, choices };
}
