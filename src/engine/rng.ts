/**
 * SplitMix64 (Steele, Lea, Flood 2014), the generator Vigna recommends for
 * seeding. It is ours so that replay seeds survive dependency upgrades; it is
 * computed on two 32-bit halves because BigInt is far too slow per step.
 * Golden vectors in rng.test.ts pin the output bit for bit.
 */

const GOLDEN_HI = 0x9e3779b9;
const GOLDEN_LO = 0x7f4a7c15;

/** (ah:al) * (bh:bl) mod 2^64, returned through the out array. */
function mul64(ah: number, al: number, bh: number, bl: number, out: [number, number]): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const hi = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ah, bl) + Math.imul(al, bh);
  out[0] = hi >>> 0;
  out[1] = lo;
}

export interface RngState {
  readonly hi: number;
  readonly lo: number;
}

export class SplitMix64 {
  private hi: number;
  private lo: number;
  private readonly tmp: [number, number] = [0, 0];

  constructor(seed: bigint | number) {
    const s = BigInt.asUintN(64, BigInt(seed));
    this.hi = Number(s >> 32n);
    this.lo = Number(s & 0xffffffffn);
  }

  getState(): RngState {
    return { hi: this.hi, lo: this.lo };
  }

  setState(s: RngState): void {
    this.hi = s.hi >>> 0;
    this.lo = s.lo >>> 0;
  }

  /** Next 64-bit output as [hi, lo] 32-bit halves. */
  next64(out: [number, number] = [0, 0]): [number, number] {
    // state += golden gamma
    const lo = this.lo + GOLDEN_LO;
    const carry = lo > 0xffffffff ? 1 : 0;
    this.lo = lo >>> 0;
    this.hi = (this.hi + GOLDEN_HI + carry) >>> 0;
    let zh = this.hi;
    let zl = this.lo;
    const t = this.tmp;
    // z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9
    let xl = (zl ^ ((zl >>> 30) | (zh << 2))) >>> 0;
    let xh = (zh ^ (zh >>> 30)) >>> 0;
    mul64(xh, xl, 0xbf58476d, 0x1ce4e5b9, t);
    zh = t[0];
    zl = t[1];
    // z = (z ^ (z >>> 27)) * 0x94d049bb133111eb
    xl = (zl ^ ((zl >>> 27) | (zh << 5))) >>> 0;
    xh = (zh ^ (zh >>> 27)) >>> 0;
    mul64(xh, xl, 0x94d049bb, 0x133111eb, t);
    zh = t[0];
    zl = t[1];
    // z ^ (z >>> 31)
    out[1] = (zl ^ ((zl >>> 31) | (zh << 1))) >>> 0;
    out[0] = (zh ^ (zh >>> 31)) >>> 0;
    return out;
  }

  nextBigInt(): bigint {
    const [h, l] = this.next64();
    return (BigInt(h) << 32n) | BigInt(l);
  }

  /** Uniform 32-bit unsigned integer (the high half of the 64-bit output). */
  nextU32(): number {
    return this.next64(this.tmp)[0];
  }

  /** Uniform integer in [0, n), n in [1, 2^32], by rejection so it is exactly uniform. */
  nextInt(n: number): number {
    if (n <= 1) return 0;
    const limit = Math.floor(0x100000000 / n) * n;
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const [h, l] = this.next64(this.tmp);
    return ((h >>> 5) * 67108864 + (l >>> 6)) / 9007199254740992;
  }
}

/** Parse a seed given as decimal or 0x-hex; throws RangeError on anything else. */
export function parseSeed(text: string): bigint {
  const t = text.trim();
  // Digits are not capped here, so that a too-large seed gets the range message below.
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(t)) {
    throw new RangeError(`seed must be a decimal or 0x-hex 64-bit integer, got '${text}'`);
  }
  const v = BigInt(t);
  if (v > 0xffffffffffffffffn) throw new RangeError(`seed '${text}' does not fit in 64 bits`);
  return v;
}

export function formatSeed(seed: bigint): string {
  return `0x${seed.toString(16).padStart(16, "0")}`;
}
