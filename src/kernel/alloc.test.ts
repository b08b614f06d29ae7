import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { ReplayScheduler, RoundRobinScheduler } from "../engine/scheduler.js";
import { type KObject, kfree, kobj_access, kzalloc, liveObjects } from "./alloc.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { bootMachine } from "./machine.js";
import { call_rcu, RcuHead, rcu_read_lock, rcu_read_unlock } from "./rcu.js";

function runOnce(p: Program, record = false) {
  return runProgram(p, { scheduler: new RoundRobinScheduler(), record });
}

/** Named model functions, so that reports carry kernel-style function names. */
const reader_fn = modelFn("reader_fn", function* (a: Atomic): Gen<number> {
  return yield* READ_ONCE(a);
});
const freer_fn = modelFn("freer_fn", function* (o: KObject): Gen<void> {
  yield* kfree(o);
});

describe("kzalloc, kfree and liveObjects", () => {
  it("tracks live allocations by kind", () => {
    const live: string[][] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const a = kzalloc("kvm_mmu_page", "root0");
      kzalloc("kvm_mmu_page", "root1");
      kzalloc("kvm", "kvm");
      spawn(
        "t",
        (function* () {
          live.push(liveObjects().map((o) => o.name));
          live.push(liveObjects(["kvm_mmu_page"]).map((o) => o.name));
          yield* kfree(a);
          live.push(liveObjects(["kvm_mmu_page"]).map((o) => o.name));
          live.push(liveObjects(["nothing"]).map((o) => o.name));
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(live).toEqual([["root0", "root1", "kvm"], ["root0", "root1"], ["root1"], []]);
  });

  it("a freed object records who freed it, where and when", () => {
    let freed: KObject["freed"] = null;
    runOnce(({ spawn }) => {
      bootMachine();
      const o = kzalloc("thing", "obj");
      spawn(
        "t",
        (function* () {
          yield* READ_ONCE(new Atomic("x"));
          yield* freer_fn(o);
          freed = o.freed;
        })(),
      );
    });
    expect(freed).toEqual({ task: "t", fn: "freer_fn", step: 1 });
  });
});

describe("use-after-free", () => {
  /** A reader reads a field of the object; a freer frees it. */
  const race: Program = ({ spawn }) => {
    bootMachine();
    const o = kzalloc("kvm_mmu_page", "root");
    const role = new Atomic("role", 0, o);
    spawn(
      "vcpu",
      (function* () {
        yield* reader_fn(role);
      })(),
    );
    spawn(
      "zapper",
      (function* () {
        yield* freer_fn(o);
      })(),
    );
  };

  it("is reported with the access site, the free site and the trace", () => {
    const all = enumerateAll(race, {}, undefined, true);
    expect(all.complete).toBe(true);
    const bad = all.results!.filter((r) => r.status === "violation");
    const good = all.results!.filter((r) => r.status === "ok");
    expect(bad.length).toBe(1);
    expect(good.length).toBe(1);
    // Replay the bad schedule with tracing on.
    const again = runProgram(race, {
      scheduler: new ReplayScheduler(bad[0].choices),
      record: true,
    });
    const v = again.violations[0];
    expect(v.invariant).toBe("use-after-free");
    expect(v.taskName).toBe("vcpu");
    expect(v.fn).toBe("reader_fn");
    expect(v.message).toBe(
      "use-after-free: vcpu in reader_fn did READ_ONCE on root.role, but root was freed by zapper in freer_fn at step 0",
    );
    expect(v.details).toMatchObject({
      object: "root",
      kind: "kvm_mmu_page",
      access: { task: "vcpu", fn: "reader_fn", what: "READ_ONCE on root.role", step: 1 },
      free: { task: "zapper", fn: "freer_fn", step: 0 },
    });
    expect(again.trace!.map((s) => `${again.taskNames[s.task]}:${s.fn}:${s.step}`)).toEqual([
      "zapper:freer_fn:kfree",
      "vcpu:reader_fn:READ_ONCE",
    ]);
    expect(v.step).toBe(again.trace!.length - 1);
  });

  it("plain fields read through kobj_access are checked too", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const o = kzalloc("kvm_mmu_page", "root");
      spawn(
        "t",
        (function* () {
          yield* kobj_access(o, "read root->gfn");
          yield* kfree(o);
          yield* kobj_access(o, "read root->gfn");
        })(),
      );
    });
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0].invariant).toBe("use-after-free");
    expect(r.violations[0].message).toContain("did read root->gfn");
  });

  it("freeing twice is a double free naming the first free", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const o = kzalloc("kvm_mmu_page", "root");
      spawn("a", freer_fn(o));
      spawn(
        "b",
        (function* () {
          yield* READ_ONCE(new Atomic("x"));
          yield* kfree(o);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("double-free");
    expect(r.violations[0].message).toBe(
      "double free of root in <task>; first freed by a in freer_fn at step 0",
    );
  });

  it("a write through a freed object is reported too", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const o = kzalloc("kvm_mmu_page", "root");
      const a = new Atomic("spte", 0, o);
      spawn(
        "t",
        (function* () {
          yield* kfree(o);
          yield* WRITE_ONCE(a, 1);
        })(),
      );
    });
    expect(r.violations[0].message).toContain("did WRITE_ONCE on root.spte");
  });
});

describe("RCU-deferred frees honour readers", () => {
  /**
   * The object is published through a pointer; a reader inside rcu_read_lock()
   * picks it up and reads it twice. The freer unpublishes it, then frees it via
   * call_rcu(), or at once.
   */
  function program(viaRcu: boolean): Program {
    return ({ spawn }) => {
      bootMachine();
      const o = kzalloc("kvm_mmu_page", "root");
      const role = new Atomic("role", 0, o);
      const head = new RcuHead(o);
      const slot = new Atomic("slot", 1);
      spawn(
        "reader",
        (function* () {
          yield* rcu_read_lock();
          if ((yield* READ_ONCE(slot)) === 1) {
            yield* reader_fn(role);
            yield* reader_fn(role);
          }
          yield* rcu_read_unlock();
        })(),
      );
      spawn(
        "freer",
        (function* () {
          yield* WRITE_ONCE(slot, 0);
          if (viaRcu) yield* call_rcu(head, () => freer_fn(o), "free root");
          else yield* freer_fn(o);
        })(),
      );
    };
  }

  it("no schedule produces a use-after-free when the free goes through call_rcu", () => {
    const r = enumerateAll(program(true));
    expect(r.complete).toBe(true);
    expect(r.executions).toBeGreaterThan(3);
    expect(r.firstViolation).toBeNull();
  });

  it("the same reader with a direct kfree hits a use-after-free in some schedule", () => {
    const r = enumerateAll(program(false));
    expect(r.firstViolation?.violations[0].invariant).toBe("use-after-free");
  });

  it("but a reader that is not inside rcu_read_lock() is not protected", () => {
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const o = kzalloc("kvm_mmu_page", "root");
      const role = new Atomic("role", 0, o);
      spawn(
        "reader",
        (function* () {
          yield* reader_fn(role);
          yield* reader_fn(role);
        })(),
      );
      spawn(
        "freer",
        call_rcu(new RcuHead(o), () => freer_fn(o), "free root"),
      );
    });
    const v = r.firstViolation?.violations[0];
    expect(v?.invariant).toBe("use-after-free");
    expect(v?.message).toContain("freed by rcu_cb:free root in freer_fn");
  });
});
