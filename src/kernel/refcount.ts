import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import type { KObject } from "./alloc.js";
import { drain_store_buffer, forwarded, plain_store } from "./memory.js";
import { commutingOp, op, Shared, touch } from "./shared.js";

/** INT_MIN / 2: where a misused refcount_t is parked so it can neither hit 0 nor overflow. */
export const REFCOUNT_SATURATED = -0x40000000;
const INT_MAX = 0x7fffffff;

/**
 * refcount_t as lib/refcount.c and include/linux/refcount.h define it (v5.11+):
 * a signed 32-bit count that saturates, with a WARN, instead of wrapping.
 */
export class Refcount extends Shared {
  v: number;
  constructor(name: string, init = 1, owner: KObject | null = null) {
    super(name, owner);
    this.v = init;
  }
}

type Saturation =
  | "saturated; leaking memory"
  | "addition on 0; use-after-free"
  | "underflow; use-after-free"
  | "decrement hit 0; leaking memory";

/**
 * refcount_warn_saturate(): park the count at REFCOUNT_SATURATED and WARN. The
 * kernel prints each kind of event once per boot (WARN_ONCE); the model reports
 * every event, because in a checked run each one is a bug of its own.
 */
function refcount_warn_saturate(r: Refcount, why: Saturation, old: number): void {
  r.v = REFCOUNT_SATURATED;
  host().report({
    invariant: "refcount",
    message: `refcount_t: ${why} (${r.name} was ${old}, in ${currentFn()})`,
    details: { refcount: r.name, old },
  });
}

function int32(v: number): number {
  return v | 0;
}

/** refcount_read(): the count as the kernel returns it, an unsigned int (a saturated count reads 0xc0000000). */
export function* refcount_read(r: Refcount): Gen<number> {
  yield op("read", r, "refcount_read");
  touch(r, "refcount_read");
  return (forwarded(r) ?? r.v) >>> 0;
}

/** refcount_set(): atomic_set(), a plain store (buffered under TSO). */
export function* refcount_set(r: Refcount, n: number): Gen<void> {
  yield* plain_store(r, "write", "refcount_set", n, () => {
    r.v = n;
  });
}

/** refcount_inc_not_zero(): take a reference unless the count is 0 (the object is dying). */
export function* refcount_inc_not_zero(r: Refcount): Gen<boolean> {
  // Two of these commute: neither changes whether the count is 0, which is all either returns.
  yield* drain_store_buffer("refcount_inc_not_zero");
  yield commutingOp("rmw", r, "refcount_inc_not_zero", "refcount-inc-not-zero");
  touch(r, "refcount_inc_not_zero");
  const old = r.v;
  if (old === 0) return false;
  r.v = int32(old + 1);
  if (old < 0 || old + 1 > INT_MAX) refcount_warn_saturate(r, "saturated; leaking memory", old);
  return true;
}

/** refcount_inc(): the caller must already hold a reference; incrementing from 0 is a use-after-free. */
export function* refcount_inc(r: Refcount): Gen<void> {
  yield* drain_store_buffer("refcount_inc");
  yield op("rmw", r, "refcount_inc");
  touch(r, "refcount_inc");
  const old = r.v;
  r.v = int32(old + 1);
  if (old === 0) refcount_warn_saturate(r, "addition on 0; use-after-free", old);
  else if (old < 0 || old + 1 > INT_MAX) refcount_warn_saturate(r, "saturated; leaking memory", old);
}

/** refcount_dec_and_test(): drop a reference; true when it was the last one. */
export function* refcount_dec_and_test(r: Refcount): Gen<boolean> {
  yield* drain_store_buffer("refcount_dec_and_test");
  yield op("rmw", r, "refcount_dec_and_test");
  touch(r, "refcount_dec_and_test");
  const old = r.v;
  r.v = int32(old - 1);
  if (old === 1) return true;
  if (old <= 0) refcount_warn_saturate(r, "underflow; use-after-free", old);
  return false;
}

/** refcount_dec(): drop a reference that must not be the last. */
export function* refcount_dec(r: Refcount): Gen<void> {
  yield* drain_store_buffer("refcount_dec");
  yield op("rmw", r, "refcount_dec");
  touch(r, "refcount_dec");
  const old = r.v;
  r.v = int32(old - 1);
  if (old <= 1) refcount_warn_saturate(r, "decrement hit 0; leaking memory", old);
}

/** refcount_dec_if_one(): the 1 -> 0 transition or nothing (one cmpxchg); true when it happened. */
export function* refcount_dec_if_one(r: Refcount): Gen<boolean> {
  yield* drain_store_buffer("refcount_dec_if_one");
  yield op("rmw", r, "refcount_dec_if_one");
  touch(r, "refcount_dec_if_one");
  if (r.v !== 1) return false;
  r.v = 0;
  return true;
}

/**
 * refcount_dec_not_one(): decrement *unless the count is 1* (then return false
 * and leave it). Seed 003 turns on this reading: it is not "decrement and
 * report whether the result is not 1". A count of 0 is an underflow: WARN,
 * leave it, return true. A saturated count is left alone and returns true.
 */
export function* refcount_dec_not_one(r: Refcount): Gen<boolean> {
  yield* drain_store_buffer("refcount_dec_not_one");
  yield op("rmw", r, "refcount_dec_not_one");
  touch(r, "refcount_dec_not_one");
  const val = r.v;
  if (val === REFCOUNT_SATURATED) return true;
  if (val === 1) return false;
  // The kernel computes val - 1 as unsigned: only val == 0 wraps upward.
  if (val === 0) {
    host().report({
      invariant: "refcount",
      message: `refcount_t: underflow; use-after-free (${r.name} was 0, in ${currentFn()})`,
      details: { refcount: r.name, old: 0 },
    });
    return true;
  }
  r.v = int32(val - 1);
  return true;
}
