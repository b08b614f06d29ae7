import type { LitmusTest } from "./parse.js";

/**
 * A digest of a parsed litmus test (FNV-1a in two 32-bit lanes over its canonical JSON): replay
 * strings carry it, and a replay refuses a test whose digest differs.
 */
export function testDigest(test: LitmusTest): string {
  const text = JSON.stringify({ ...test, init: [...test.init], conditionText: undefined });
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x811c9dc5 | 1) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

/** JSON as base64url, and back (null when it does not decode). */
export function encodeJson(prefix: string, value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let bin = "";
  for (const x of bytes) bin += String.fromCharCode(x);
  return prefix + btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeJson(prefix: string, text: string): unknown {
  try {
    const b64 = text.trim().slice(prefix.length).replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64);
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0))));
  } catch {
    return null;
  }
}
