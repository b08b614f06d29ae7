import { describe, expect, it } from "vitest";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { bootMachine } from "../kernel/machine.js";
import { Spinlock, spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { WARN_ON } from "../kernel/warn.js";
import { enumerateAll } from "./enumerate.js";
import type { Program } from "./runtime.js";

function counter(locked: boolean): Program {
  return ({ spawn }) => {
    bootMachine();
    const x = new Atomic("x");
    const l = new Spinlock("l");
    let done = 0;
    const inc = function* () {
      if (locked) yield* spin_lock(l);
      const v = yield* READ_ONCE(x);
      yield* WRITE_ONCE(x, v + 1);
      if (locked) yield* spin_unlock(l);
      done++;
      if (done === 2) WARN_ON(x.v !== 2, "lost update");
    };
    spawn("a", inc());
    spawn("b", inc());
  };
}

describe("smoke", () => {
  it("finds the lost update without a lock and none with it", () => {
    const bad = enumerateAll(counter(false));
    expect(bad.complete).toBe(true);
    expect(bad.firstViolation?.violations[0].message).toContain("lost update");
    const good = enumerateAll(counter(true));
    expect(good.complete).toBe(true);
    expect(good.firstViolation).toBeNull();
  });
});
