import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { BUILTIN_SCENARIOS } from "./builtin/index.js";
import { BUILTIN_VARIANTS } from "./variants/index.js";

/** SHA-256 of a file's content, hex, first 16 digits: what replay strings and checkpoints record. */
export function contentHash(path: string): string {
  return contentHashOf(readFileSync(path));
}

/** The same hash of content in hand (a file shipped to a queue's workers). */
export function contentHashOf(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 16);
}

export function isBuiltinScenarioName(ref: string): boolean {
  return BUILTIN_SCENARIOS.some((s) => s.name === ref);
}

export function isBuiltinVariantName(ref: string): boolean {
  return BUILTIN_VARIANTS.some((v) => v.name === ref);
}
