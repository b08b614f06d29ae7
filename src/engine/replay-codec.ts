/**
 * Compact, versioned encoding of a run's choice sequence: `v1.` followed by
 * base64url of unsigned LEB128 varints. Runs of one repeated value are common
 * (a task keeps running), so the payload is (value, runLength) pairs.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

export const REPLAY_PREFIX = "v1.";

export class ReplayFormatError extends Error {
  override name = "ReplayFormatError";
}

function pushVarint(out: number[], v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`cannot encode ${v} as a varint`);
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

export function toBase64Url(bytes: readonly number[]): string {
  let s = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63];
  }
  return s;
}

export function fromBase64Url(s: string): number[] {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const d = c < 128 ? DECODE[c] : -1;
    if (d < 0)
      throw new ReplayFormatError(`invalid character '${s[i]}' at offset ${i} of the replay payload`);
    acc = (acc << 6) | d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
    }
  }
  if (s.length % 4 === 1) throw new ReplayFormatError("truncated replay payload");
  return out;
}

/** Encode a choice sequence as `v1.<base64url>`. */
export function encodeChoices(choices: readonly number[]): string {
  const bytes: number[] = [];
  let i = 0;
  while (i < choices.length) {
    const v = choices[i];
    let j = i + 1;
    while (j < choices.length && choices[j] === v) j++;
    pushVarint(bytes, v);
    pushVarint(bytes, j - i);
    i = j;
  }
  return REPLAY_PREFIX + toBase64Url(bytes);
}

/** Decode `v1.<base64url>`; throws ReplayFormatError with a precise reason. */
export function decodeChoices(text: string): number[] {
  if (!text.startsWith(REPLAY_PREFIX)) {
    const dot = text.indexOf(".");
    const ver = dot > 0 ? text.slice(0, dot) : text.slice(0, 8);
    throw new ReplayFormatError(`unsupported replay version '${ver}' (this tdplab reads '${REPLAY_PREFIX}')`);
  }
  const bytes = fromBase64Url(text.slice(REPLAY_PREFIX.length));
  const out: number[] = [];
  let pos = 0;
  const readVarint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (pos >= bytes.length) throw new ReplayFormatError("replay payload ends inside a number");
      const b = bytes[pos++];
      v += (b & 0x7f) * mul;
      if (!Number.isSafeInteger(v)) throw new ReplayFormatError("replay payload has an oversized number");
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  };
  while (pos < bytes.length) {
    const value = readVarint();
    const run = readVarint();
    if (run === 0) throw new ReplayFormatError("replay payload has an empty run");
    if (out.length + run > 50_000_000) throw new ReplayFormatError("replay payload is implausibly long");
    for (let k = 0; k < run; k++) out.push(value);
  }
  return out;
}
