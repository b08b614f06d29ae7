import { describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { Atomic, BitField, bitfield_load, bitfield_store, READ_ONCE, WRITE_ONCE, xchg } from "./atomic.js";
import { dporMatchesBruteForce } from "./brute-testkit.js";
import { bootMachine, type MemoryModel } from "./machine.js";
import { smp_mb } from "./memory.js";
import {
  Refcount,
  refcount_dec_and_test,
  refcount_inc_not_zero,
  refcount_read,
  refcount_set,
} from "./refcount.js";
import { RwLock, read_lock, read_unlock, write_lock, write_unlock } from "./rwlock.js";
import { Spinlock, spin_lock, spin_unlock } from "./spinlock.js";

/** Every final state of a two-or-more-task program under `model`, as DPOR reaches them. */
function finals(model: MemoryModel, build: (out: string[]) => readonly (() => Gen<void>)[]): string[] {
  const seen = new Set<string>();
  let last = "";
  const r = explore(
    ({ spawn }) => {
      bootMachine({ memoryModel: model });
      const out: string[] = [];
      const bodies = build(out);
      bodies.forEach((b, i) => {
        spawn(`t${i}`, b());
      });
      host().addCheck("final", () => {
        last = out.join(" ");
      });
    },
    { stopOnFirstViolation: false, onExecution: () => seen.add(last) },
  );
  expect(r.complete).toBe(true);
  return [...seen].sort();
}

/** SB: each task stores its flag, then loads the other's; "0 0" is the store-to-load reordering. */
function sb(fence: "none" | "smp_mb" | "xchg") {
  return (out: string[]) => {
    const x = new Atomic("x");
    const y = new Atomic("y");
    out.push("?", "?");
    const side = (i: number, mine: Atomic, theirs: Atomic) =>
      function* (): Gen<void> {
        if (fence === "xchg") yield* xchg(mine, 1);
        else yield* WRITE_ONCE(mine, 1);
        if (fence === "smp_mb") yield* smp_mb();
        out[i] = String(yield* READ_ONCE(theirs));
      };
    return [side(0, x, y), side(1, y, x)];
  };
}

describe("x86-TSO through the kernel primitives", () => {
  it("SB: TSO lets both loads miss the other store; SC does not", () => {
    expect(finals("sc", sb("none"))).toEqual(["0 1", "1 0", "1 1"]);
    expect(finals("tso", sb("none"))).toEqual(["0 0", "0 1", "1 0", "1 1"]);
  });

  it("SB with smp_mb() or xchg() stores: the reordering is gone", () => {
    expect(finals("tso", sb("smp_mb"))).toEqual(["0 1", "1 0", "1 1"]);
    expect(finals("tso", sb("xchg"))).toEqual(["0 1", "1 0", "1 1"]);
  });

  it("MP: stores reach memory in order, so a reader that sees the flag sees the data", () => {
    const mp = (out: string[]) => {
      const data = new Atomic("data");
      const flag = new Atomic("flag");
      out.push("?", "?");
      return [
        function* (): Gen<void> {
          yield* WRITE_ONCE(data, 1);
          yield* WRITE_ONCE(flag, 1);
        },
        function* (): Gen<void> {
          out[0] = String(yield* READ_ONCE(flag));
          out[1] = String(yield* READ_ONCE(data));
        },
      ];
    };
    expect(finals("tso", mp)).toEqual(["0 0", "0 1", "1 1"]);
  });

  it("a task reads its own buffered store (forwarding) before any other task can", () => {
    const fwd = (out: string[]) => {
      const x = new Atomic("x");
      const f = new BitField("f", 0, 1);
      const w = new Atomic("w");
      const r = new Refcount("r", 1);
      out.push("?", "?", "?", "?");
      return [
        function* (): Gen<void> {
          yield* WRITE_ONCE(x, 7);
          yield* bitfield_store(w, f, 1);
          yield* refcount_set(r, 5);
          out[0] = String(yield* READ_ONCE(x));
          out[1] = String(yield* bitfield_load(w, f));
          out[2] = String(yield* refcount_read(r));
        },
        function* (): Gen<void> {
          out[3] = String(yield* READ_ONCE(x));
        },
      ];
    };
    expect(finals("tso", fwd)).toEqual(["7 1 5 0", "7 1 5 7"]);
  });

  it("spin_unlock() is a buffered store: the next holder still sees the critical section's stores", () => {
    const handoff = (out: string[]) => {
      const l = new Spinlock("l");
      const data = new Atomic("data");
      out.push("?");
      return [
        function* (): Gen<void> {
          yield* spin_lock(l);
          yield* WRITE_ONCE(data, (yield* READ_ONCE(data)) + 1);
          yield* spin_unlock(l);
        },
        function* (): Gen<void> {
          yield* spin_lock(l);
          yield* WRITE_ONCE(data, (yield* READ_ONCE(data)) + 10);
          yield* spin_unlock(l);
        },
        function* (): Gen<void> {
          yield* spin_lock(l);
          out[0] = String(yield* READ_ONCE(data));
          yield* spin_unlock(l);
        },
      ];
    };
    expect(finals("tso", handoff)).toEqual(finals("sc", handoff));
    expect(finals("tso", handoff)).toEqual(["0", "1", "10", "11"]);
  });

  it("write_unlock() is buffered too; a reader never sees a half-done write section", () => {
    const rw = (out: string[]) => {
      const l = new RwLock("l");
      const a = new Atomic("a");
      const b = new Atomic("b");
      out.push("?");
      return [
        function* (): Gen<void> {
          yield* write_lock(l);
          yield* WRITE_ONCE(a, 1);
          yield* WRITE_ONCE(b, 1);
          yield* write_unlock(l);
        },
        function* (): Gen<void> {
          yield* read_lock(l);
          out[0] = `${yield* READ_ONCE(a)}${yield* READ_ONCE(b)}`;
          yield* read_unlock(l);
        },
      ];
    };
    expect(finals("tso", rw)).toEqual(["00", "11"]);
  });

  it("under sc no store is buffered: no store-buffer task is ever spawned", () => {
    let tasks = -1;
    explore(({ spawn }) => {
      bootMachine({ memoryModel: "sc" });
      const bodies = sb("none")([]);
      bodies.forEach((b, i) => {
        spawn(`t${i}`, b());
      });
      host().addCheck("tasks", () => {
        tasks = (host() as unknown as { tasks: unknown[] }).tasks.length;
      });
    }, {});
    expect(tasks).toBe(2);
  });
});

const OPS = [
  "store-x",
  "store-y",
  "load-x",
  "load-y",
  "xchg-x",
  "mb",
  "lock-section",
  "get",
  "put",
  "set-ref",
] as const;
type Op = (typeof OPS)[number];

function randomProgram(tasks: readonly (readonly Op[])[], probe: { last: string }): Program {
  return ({ spawn }) => {
    bootMachine({ memoryModel: "tso" });
    const x = new Atomic("x");
    const y = new Atomic("y");
    const l = new Spinlock("l");
    const ref = new Refcount("ref", 2);
    const seen: string[][] = tasks.map(() => []);
    tasks.forEach((ops, i) => {
      spawn(
        `t${i}`,
        (function* (): Gen<void> {
          const log = seen[i];
          for (const o of ops) {
            switch (o) {
              case "store-x":
                yield* WRITE_ONCE(x, i + 1);
                break;
              case "store-y":
                yield* WRITE_ONCE(y, i + 1);
                break;
              case "load-x":
                log.push(`x${yield* READ_ONCE(x)}`);
                break;
              case "load-y":
                log.push(`y${yield* READ_ONCE(y)}`);
                break;
              case "xchg-x":
                log.push(`X${yield* xchg(x, 10 + i)}`);
                break;
              case "mb":
                yield* smp_mb();
                break;
              case "lock-section":
                yield* spin_lock(l);
                yield* WRITE_ONCE(y, (yield* READ_ONCE(y)) * 2 + i);
                yield* spin_unlock(l);
                break;
              case "get":
                log.push(`g${yield* refcount_inc_not_zero(ref)}`);
                break;
              case "put":
                log.push(`p${yield* refcount_dec_and_test(ref)}`);
                break;
              case "set-ref":
                yield* refcount_set(ref, 1);
                break;
            }
          }
        })(),
      );
    });
    host().addCheck("final", () => {
      probe.last = `${x.v}|${y.v}|${ref.v}|${seen.map((s) => s.join(",")).join(";")}`;
    });
  };
}

describe("TSO store buffers as tasks, against brute force", () => {
  it("DPOR reaches every final state and violation that all schedules reach", () => {
    const { programs, schedules, executions } = dporMatchesBruteForce(OPS, 3, randomProgram, {
      numRuns: 60,
      seed: 17,
      maxSchedules: 20_000,
    });
    console.log(
      `[tso store buffers] ${programs} programs: ${schedules} schedules by brute force, ${executions} DPOR executions`,
    );
    expect(programs).toBeGreaterThanOrEqual(30);
  }, 600_000);
});
