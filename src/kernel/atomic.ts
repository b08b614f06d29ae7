import type { Gen } from "../engine/op.js";
import type { KObject } from "./alloc.js";
import { drain_store_buffer, forwarded, plain_store } from "./memory.js";
import { op, Shared, touch } from "./shared.js";

/**
 * Bit helpers for words held as JS numbers. Values are unsigned integers below
 * 2^53, which covers every bit the model gives meaning to; bitwise operators
 * only see 32 bits, so the high half is handled arithmetically.
 */
const TWO32 = 0x100000000;

export function testBit(v: number, nr: number): boolean {
  if (nr < 32) return ((v >>> 0) & (1 << nr)) !== 0;
  return ((Math.floor(v / TWO32) >>> 0) & (1 << (nr - 32))) !== 0;
}

export function withBit(v: number, nr: number, on: boolean): number {
  if (testBit(v, nr) === on) return v;
  const bit = nr < 32 ? (1 << nr) >>> 0 : 2 ** nr;
  return on ? v + bit : v - bit;
}

/** Mask `v` with a mask below 2^53 (both unsigned). */
export function andMask(v: number, mask: number): number {
  const lo = ((v >>> 0) & (mask >>> 0)) >>> 0;
  const hi = ((Math.floor(v / TWO32) >>> 0) & (Math.floor(mask / TWO32) >>> 0)) >>> 0;
  return hi * TWO32 + lo;
}

/**
 * A field packed inside a word (a C bitfield such as role.invalid). It has no
 * atomic operations of its own: C cannot xchg a bitfield, and neither can the
 * model. Atomic updates go through the whole word (xchg/cmpxchg on the
 * Atomic), a plain store through bitfield_store, which is load+modify+store.
 */
export class BitField {
  readonly mask: number;
  constructor(
    readonly name: string,
    readonly shift: number,
    readonly width: number,
  ) {
    if (shift + width > 32) throw new RangeError(`bitfield ${name} does not fit in 32 bits`);
    this.mask = width === 32 ? 0xffffffff : ((1 << width) - 1) >>> 0;
  }
  get(word: number): number {
    return (((word >>> 0) >>> this.shift) & this.mask) >>> 0;
  }
  /** The word with this field replaced; bits outside the field, the high half of a 64-bit word included, are kept. */
  set(word: number, value: number): number {
    if (!Number.isInteger(value) || value < 0 || value > this.mask)
      throw new RangeError(`value ${value} does not fit bitfield ${this.name}`);
    const high = Math.floor(word / TWO32) * TWO32;
    const cleared = (word >>> 0) & ~((this.mask << this.shift) >>> 0);
    return high + ((cleared | ((value << this.shift) >>> 0)) >>> 0);
  }
}

/** A machine word accessed atomically (atomic_t, atomic64_t, atomic_long_t, or a word read with READ_ONCE). */
export class Atomic extends Shared {
  v: number;
  /** Ghost: the value the latest WRITE_ONCE() replaced. Only invariant checks read it, never the model. */
  overwritten = 0;
  constructor(name: string, init = 0, owner: KObject | null = null) {
    super(name, owner);
    this.v = init;
  }
}

/** The word a load of `a` by the running task returns: its own buffered store, else memory (memory.ts). */
function loaded(a: Atomic): number {
  return forwarded(a) ?? a.v;
}

/** READ_ONCE() / atomic_read(): one load (store-forwarded under TSO). */
export function* READ_ONCE(a: Atomic): Gen<number> {
  yield op("read", a, "READ_ONCE");
  touch(a, "READ_ONCE");
  return loaded(a);
}

/** WRITE_ONCE() / atomic_set(): one plain store (buffered under TSO). */
export function* WRITE_ONCE(a: Atomic, v: number): Gen<void> {
  yield* plain_store(a, "write", "WRITE_ONCE", v, () => {
    a.overwritten = a.v;
    a.v = v;
  });
}

/** xchg(): store `v`, return the old value, in one atomic step. */
export function* xchg(a: Atomic, v: number): Gen<number> {
  yield* drain_store_buffer("xchg");
  yield op("rmw", a, "xchg");
  touch(a, "xchg");
  const old = a.v;
  a.v = v;
  return old;
}

/** cmpxchg(): store `v` if the word equals `expected`; returns the old value. */
export function* cmpxchg(a: Atomic, expected: number, v: number): Gen<number> {
  yield* drain_store_buffer("cmpxchg");
  yield op("rmw", a, "cmpxchg");
  touch(a, "cmpxchg");
  const old = a.v;
  if (old === expected) a.v = v;
  return old;
}

/** try_cmpxchg(): like cmpxchg, but says whether it succeeded and hands back what it saw. */
export function* try_cmpxchg(a: Atomic, expected: number, v: number): Gen<{ ok: boolean; old: number }> {
  yield* drain_store_buffer("try_cmpxchg");
  yield op("rmw", a, "try_cmpxchg");
  touch(a, "try_cmpxchg");
  const old = a.v;
  const ok = old === expected;
  if (ok) a.v = v;
  return { ok, old };
}

/** atomic_fetch_add(): add and return the old value. */
export function* atomic_fetch_add(a: Atomic, d: number): Gen<number> {
  yield* drain_store_buffer("atomic_fetch_add");
  yield op("rmw", a, "atomic_fetch_add");
  touch(a, "atomic_fetch_add");
  const old = a.v;
  a.v = old + d;
  return old;
}

/** atomic_fetch_sub(): subtract and return the old value. */
export function* atomic_fetch_sub(a: Atomic, d: number): Gen<number> {
  yield* drain_store_buffer("atomic_fetch_sub");
  yield op("rmw", a, "atomic_fetch_sub");
  touch(a, "atomic_fetch_sub");
  const old = a.v;
  a.v = old - d;
  return old;
}

/** atomic64_fetch_andnot(): clear the bits of `mask` and return the old value, in one atomic step. */
export function* atomic_fetch_andnot(a: Atomic, mask: number): Gen<number> {
  yield* drain_store_buffer("atomic_fetch_andnot");
  yield op("rmw", a, "atomic_fetch_andnot");
  touch(a, "atomic_fetch_andnot");
  const old = a.v;
  a.v = old - andMask(old, mask);
  return old;
}

/** set_bit(): atomic OR of one bit. */
export function* set_bit(nr: number, a: Atomic): Gen<void> {
  yield* drain_store_buffer("set_bit");
  yield op("rmw", a, "set_bit");
  touch(a, "set_bit");
  a.v = withBit(a.v, nr, true);
}

/** clear_bit(): atomic AND-NOT of one bit. */
export function* clear_bit(nr: number, a: Atomic): Gen<void> {
  yield* drain_store_buffer("clear_bit");
  yield op("rmw", a, "clear_bit");
  touch(a, "clear_bit");
  a.v = withBit(a.v, nr, false);
}

/** test_and_set_bit(): set one bit, return whether it was already set. */
export function* test_and_set_bit(nr: number, a: Atomic): Gen<boolean> {
  yield* drain_store_buffer("test_and_set_bit");
  yield op("rmw", a, "test_and_set_bit");
  touch(a, "test_and_set_bit");
  const was = testBit(a.v, nr);
  a.v = withBit(a.v, nr, true);
  return was;
}

/** test_and_clear_bit(): clear one bit, return whether it was set. */
export function* test_and_clear_bit(nr: number, a: Atomic): Gen<boolean> {
  yield* drain_store_buffer("test_and_clear_bit");
  yield op("rmw", a, "test_and_clear_bit");
  touch(a, "test_and_clear_bit");
  const was = testBit(a.v, nr);
  a.v = withBit(a.v, nr, false);
  return was;
}

/** test_bit(): one load. */
export function* test_bit(nr: number, a: Atomic): Gen<boolean> {
  yield op("read", a, "test_bit");
  touch(a, "test_bit");
  return testBit(loaded(a), nr);
}

/** Read a bitfield: one load of the containing word. */
export function* bitfield_load(a: Atomic, f: BitField): Gen<number> {
  yield op("read", a, `load ${f.name}`);
  touch(a, `load ${f.name}`);
  return f.get(loaded(a));
}

/**
 * A plain C bitfield store (`root->role.invalid = true`): the compiler loads the
 * containing word, changes the field and stores the word back, so a concurrent
 * update of any other bit in between is lost. Two steps, not one.
 */
export function* bitfield_store(a: Atomic, f: BitField, value: number): Gen<void> {
  yield op("read", a, `load for ${f.name} store`);
  touch(a, `load for ${f.name} store`);
  const word = f.set(loaded(a), value);
  yield* plain_store(a, "write", `store ${f.name}`, word, () => {
    a.v = word;
  });
}
