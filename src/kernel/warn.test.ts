import { describe, expect, it } from "vitest";
import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { Atomic, READ_ONCE } from "./atomic.js";
import { bootMachine } from "./machine.js";
import { BUG, BUG_ON, KVM_BUG_ON, KVM_MMU_WARN_ON, WARN, WARN_ON, WARN_ON_ONCE } from "./warn.js";

function run(p: Program, stopOnViolation = false) {
  return runProgram(p, { scheduler: new RoundRobinScheduler(), stopOnViolation, record: true });
}

/** One task running `body` inside a named model function, after one unrelated step. */
function task(body: () => void, cfg: Parameters<typeof bootMachine>[0] = {}): Program {
  const kvm_test_fn = modelFn("kvm_test_fn", function* (): Gen<void> {
    yield* READ_ONCE(new Atomic("x"));
    body();
  });
  return ({ spawn }) => {
    bootMachine(cfg);
    spawn("vcpu", kvm_test_fn());
  };
}

describe("WARN_ON, WARN_ON_ONCE, WARN", () => {
  it("WARN_ON returns its condition and records a violation with task, function and step", () => {
    const ret: boolean[] = [];
    const r = run(
      task(() => {
        ret.push(WARN_ON(false, "quiet"));
        ret.push(WARN_ON(true, "root->role.invalid", { root: "r0" }));
      }),
    );
    expect(ret).toEqual([false, true]);
    expect(r.violations).toHaveLength(1);
    const v = r.violations[0];
    expect(v).toMatchObject({
      invariant: "WARN",
      message: "WARN_ON(root->role.invalid) in kvm_test_fn",
      taskName: "vcpu",
      fn: "kvm_test_fn",
      step: 0,
      details: { root: "r0" },
    });
    // The trace leading to it is the run's trace, up to the step that warned.
    expect(r.trace!.map((s) => s.step)).toEqual(["READ_ONCE"]);
  });

  it("WARN_ON warns every time; WARN_ON_ONCE once per call site and run, returning its condition each time", () => {
    const ret: boolean[] = [];
    const r = run(
      task(() => {
        WARN_ON(true, "a");
        WARN_ON(true, "a");
        ret.push(WARN_ON_ONCE(true, "b"), WARN_ON_ONCE(true, "b"), WARN_ON_ONCE(false, "c"));
        WARN_ON_ONCE(true, "d");
      }),
    );
    expect(ret).toEqual([true, true, false]);
    expect(r.violations.map((v) => v.message)).toEqual([
      "WARN_ON(a) in kvm_test_fn",
      "WARN_ON(a) in kvm_test_fn",
      "WARN_ON_ONCE(b) in kvm_test_fn",
      "WARN_ON_ONCE(d) in kvm_test_fn",
    ]);
  });

  it("WARN carries a formatted message", () => {
    const r = run(task(() => WARN(true, "root r0 has count 0")));
    expect(r.violations[0].message).toBe("WARN in kvm_test_fn: root r0 has count 0");
  });

  it("by default the run stops at the first violation", () => {
    const r = run(
      task(() => {
        WARN_ON(true, "first");
        WARN_ON(true, "second");
      }),
      true,
    );
    expect(r.status).toBe("violation");
    expect(r.violations.map((v) => v.message)).toEqual(["WARN_ON(first) in kvm_test_fn"]);
  });
});

describe("KVM_BUG_ON", () => {
  it("warns once, marks the VM bugged, and returns its condition", () => {
    const kvm = { vm_bugged: false };
    const ret: boolean[] = [];
    const bugged: boolean[] = [];
    const r = run(
      task(() => {
        ret.push(KVM_BUG_ON(false, kvm, "quiet"));
        bugged.push(kvm.vm_bugged);
        ret.push(KVM_BUG_ON(true, kvm, "!is_tdp_mmu_page(root)"));
        bugged.push(kvm.vm_bugged);
        // Already bugged: no second warning, still true.
        ret.push(KVM_BUG_ON(true, kvm, "root->role.invalid == 0"));
      }),
    );
    expect(ret).toEqual([false, true, true]);
    expect(bugged).toEqual([false, true]);
    expect(r.violations.map((v) => `${v.invariant}: ${v.message}`)).toEqual([
      "KVM_BUG_ON: KVM_BUG_ON(!is_tdp_mmu_page(root)) in kvm_test_fn",
    ]);
  });

  it("marks every VM it fires on, but warns once per call site", () => {
    const a = { vm_bugged: false };
    const b = { vm_bugged: false };
    const r = run(
      task(() => {
        KVM_BUG_ON(true, a, "same site");
        KVM_BUG_ON(true, b, "same site");
        KVM_BUG_ON(true, b, "other site");
      }),
    );
    expect([a.vm_bugged, b.vm_bugged]).toEqual([true, true]);
    // b is already bugged when the other site fires on it.
    expect(r.violations.map((v) => v.message)).toEqual(["KVM_BUG_ON(same site) in kvm_test_fn"]);
  });
});

describe("KVM_MMU_WARN_ON", () => {
  it("is WARN_ON_ONCE with CONFIG_KVM_PROVE_MMU", () => {
    const ret: boolean[] = [];
    const r = run(
      task(
        () => {
          ret.push(
            KVM_MMU_WARN_ON(true, "level < PG_LEVEL_4K"),
            KVM_MMU_WARN_ON(true, "level < PG_LEVEL_4K"),
          );
        },
        { proveMmu: true },
      ),
    );
    expect(ret).toEqual([true, true]);
    expect(r.violations.map((v) => v.message)).toEqual([
      "KVM_MMU_WARN_ON(level < PG_LEVEL_4K) in kvm_test_fn",
    ]);
  });

  it("is compiled out (never true, never reported) without it", () => {
    const ret: boolean[] = [];
    const r = run(task(() => ret.push(KVM_MMU_WARN_ON(true, "x")), { proveMmu: false }));
    expect(ret).toEqual([false]);
    expect(r.violations).toEqual([]);
  });
});

describe("BUG and BUG_ON", () => {
  it("BUG kills the task: the code after it never runs", () => {
    let after = false;
    const r = run(
      task(() => {
        BUG("SPTE changed PFN");
        after = true;
      }),
    );
    expect(after).toBe(false);
    expect(r.violations[0]).toMatchObject({
      invariant: "BUG",
      message: "BUG: SPTE changed PFN in kvm_test_fn",
      taskName: "vcpu",
    });
  });

  it("BUG_ON(false) does nothing; BUG_ON(true) is BUG", () => {
    const r = run(
      task(() => {
        BUG_ON(false, "fine");
        BUG_ON(true, "!root");
      }),
    );
    expect(r.violations.map((v) => v.message)).toEqual(["BUG: BUG_ON(!root) in kvm_test_fn"]);
  });
});
