import { beforeAll, describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { programFor, recordTraceDoc, runCheck } from "../scenarios/check.js";
import { overridesOf } from "../scenarios/define.js";
import { resolveScenario, resolveVariant, runConfigFor } from "../scenarios/resolve.js";
import { TraceDoc } from "../trace/schema.js";

const RUN = { scenario: "test", kernel: "v5.18", features: [], variant: null };
const DEC_NOT_ONE = "put-root-dec-not-one-set-zero";

/** A step's label, "<task name>: <fn>: <step> <object>". */
function label(doc: TraceDoc, i: number): string {
  const s = doc.steps[i];
  return `${doc.tasks[s.task].name}: ${s.fn}: ${s.step} ${doc.objects[s.obj]}`;
}

describe("states of seed 003's use-after-free (dec_not_one, then set(0))", () => {
  let doc: TraceDoc;

  beforeAll(async () => {
    const scenario = await resolveScenario("seed-003-put-root");
    const variant = await resolveVariant(DEC_NOT_ONE);
    const config = runConfigFor(scenario, variant, { kernel: "v5.18" });
    const program = programFor({ scenario, config, variant });
    const overrides = overridesOf(variant);
    // The design breaks two ways; find a schedule where the root is really freed under walker-b
    // before anything else goes wrong. Runs go on past a violation: a search that cuts runs at
    // the first one need not reach every kind of first violation, only some violation.
    let uaf: readonly number[] | null = null;
    explore(program, {
      strategy: "dpor",
      stopOnFirstViolation: false,
      stopRunAtViolation: false,
      overrides,
      onExecution: (r) => {
        if (uaf === null && r.violations[0]?.invariant === "use-after-free") uaf = r.choices;
      },
    });
    expect(uaf).not.toBeNull();
    doc = recordTraceDoc(program, uaf!, { overrides, run: RUN, replay: "tdp1.test" }).doc;
  });

  it("has one state per step", () => {
    expect(doc.violation?.invariant).toBe("use-after-free");
    expect(doc.states).toHaveLength(doc.steps.length);
    expect(doc.initialState?.roots).toEqual([]);
  });

  it("shows the root freed, with its count, at the violating step", () => {
    const v = doc.violation!;
    expect(v.details.object).toBe("root#1");
    const root = doc.states![v.step].roots.find((r) => r.name === "root#1")!;
    expect(root).toMatchObject({ freed: true, invalid: true, onList: false, refcount: 0, level: 4, asId: 0 });
    expect(label(doc, v.step)).toMatch(/^walker-b: kvm_tdp_mmu_put_root: refcount_dec_not_one/);
  });

  it("turns freed exactly at the kfree, after the list_del and the call_rcu", () => {
    const kfree = doc.steps.findIndex((s) => doc.objects[s.obj] === "root#1" && s.step === "kfree");
    expect(kfree).toBeGreaterThan(0);
    const at = (i: number) => doc.states![i].roots.find((r) => r.name === "root#1")!;
    expect(at(kfree - 1).freed).toBe(false);
    expect(at(kfree).freed).toBe(true);
    expect(doc.tasks[doc.steps[kfree].task].name).toBe("rcu_cb:free root#1");
    const callRcu = doc.steps.findIndex((s) => s.step === "call_rcu");
    expect(at(callRcu).flags).toContain("rcu_queued");
    expect(doc.states![callRcu].rcu.pendingCallbacks).toEqual(["free root#1"]);
    // walker-b still holds mmu_lock for read while the root goes away under it.
    const lock = doc.states![kfree].locks.find((l) => l.name === "kvm.mmu_lock")!;
    const walkerB = doc.tasks.find((t) => t.name === "walker-b")!.id;
    expect(lock.holders).toContainEqual({ task: walkerB, mode: "read" });
  });

  it("survives a JSON round trip through the trace schema", () => {
    const parsed = TraceDoc.parse(JSON.parse(JSON.stringify(doc)));
    expect(parsed).toEqual(doc);
    expect(TraceDoc.safeParse({ ...doc, states: [{ roots: [] }] }).success).toBe(false);
  });
});

describe("states of seed 002 (zap worker), round robin", () => {
  let doc: TraceDoc;
  const find = (re: RegExp) => doc.steps.findIndex((_, i) => re.test(label(doc, i)));

  beforeAll(async () => {
    const scenario = await resolveScenario("seed-002-zap-worker");
    const config = runConfigFor(scenario, null, {});
    const program = programFor({ scenario, config, variant: null });
    const r = runProgram(program, { scheduler: new RoundRobinScheduler(), record: true });
    doc = recordTraceDoc(program, r.choices, { overrides: new Map(), run: RUN, replay: "tdp1.test" }).doc;
  });

  it("counts the page tables and leaves under the root, and the VM's pages", () => {
    const faultDone = find(/^prologue: kvm_tdp_mmu_page_fault: read_unlock/);
    const st = doc.states![faultDone];
    const root = st.roots[0];
    expect(root).toMatchObject({ name: "root#1", refcount: 1, onList: true, heldBy: ["vcpu0"] });
    expect(root.leaves).toBe(1);
    expect(root.pageTables).toBeGreaterThan(0);
    expect(st.pages).toEqual({ live: root.pageTables, freed: 0 });
    const last = doc.states!.at(-1)!;
    expect(last.roots[0]).toMatchObject({ freed: true, pageTables: 0, leaves: 0, heldBy: [] });
    expect(last.pages).toEqual({ live: 0, freed: root.pageTables });
  });

  it("follows the zap work item from queue_work to its kworker", () => {
    // queue_work() is two steps: PENDING on the item, then the insertion (__queue_work) that
    // puts it in flight and starts the kworker.
    const q = find(/^vcpu0: tdp_mmu_schedule_zap_root: __queue_work /);
    const pendingAt = find(/^vcpu0: tdp_mmu_schedule_zap_root: queue_work /);
    expect(pendingAt).toBeLessThan(q);
    expect(doc.states![pendingAt].workqueues[0]).toMatchObject({
      items: [{ name: "root#1.tdp_mmu_async_work", pending: true, running: false }],
      inFlight: 0,
    });
    expect(doc.states![q].roots[0].flags).toContain("work_queued");
    expect(doc.states![q].workqueues[0]).toMatchObject({
      name: "kvm",
      items: [{ name: "root#1.tdp_mmu_async_work", pending: true, running: false }],
      inFlight: 1,
    });
    const run = find(/: process_one_work: clear PENDING/);
    const kworker = doc.steps[run].task;
    expect(doc.tasks[kworker].parent).toBe(doc.steps[q].task);
    expect(doc.tasks[kworker].spawnStep).toBe(q);
    expect(doc.states![run].roots[0].flags).toContain("work_running");
    expect(doc.states![run].workqueues[0].items).toEqual([
      { name: "root#1.tdp_mmu_async_work", pending: false, running: true, worker: kworker },
    ]);
    expect(doc.states![run].tasks[kworker]).toMatchObject({ status: "runnable" });
    const last = doc.states!.at(-1)!;
    expect(last.workqueues[0]).toMatchObject({ items: [], inFlight: 0, destroyed: true, destroying: true });
  });

  it("shows who holds and who waits for mmu_lock", () => {
    const waitingWriter = find(/^memslot-delete: kvm_mmu_zap_all_fast: write_lock slowpath: set _QW_WAITING/);
    const lock = doc.states![waitingWriter].locks.find((l) => l.name === "kvm.mmu_lock")!;
    const vcpu = doc.tasks.find((t) => t.name === "vcpu0")!.id;
    const memslot = doc.tasks.find((t) => t.name === "memslot-delete")!.id;
    expect(lock.holders).toEqual([{ task: vcpu, mode: "write" }]);
    expect(lock.waiters).toEqual([{ task: memslot, mode: "write" }]);
    expect(doc.states![waitingWriter].tasks[memslot].status).toBe("blocked");
    expect(doc.states![waitingWriter].tasks[vcpu].held).toContain("kvm.mmu_lock (write)");
  });
});

describe("check's counterexample", () => {
  it("carries the state after every step, and spawn sites", async () => {
    const scenario = await resolveScenario("seed-003-put-root");
    const variant = await resolveVariant(DEC_NOT_ONE);
    const config = runConfigFor(scenario, variant, { kernel: "v5.18" });
    const out = runCheck({
      scenario,
      variant,
      variantRef: DEC_NOT_ONE,
      config,
      featureFlags: [],
      machineFlags: {},
      explore: { strategy: "dpor", stopOnFirstViolation: true },
      shrinkBudget: 100,
    });
    const trace = out.counterexample!.trace;
    expect(trace.states).toHaveLength(trace.steps.length);
    expect(trace.initialState).toBeDefined();
    expect(trace.tasks.every((t) => t.parent !== undefined && t.spawnStep !== undefined)).toBe(true);
    const v = trace.violation!;
    expect(trace.states![v.step].roots.map((r) => r.name)).toContain("root#1");
    expect(TraceDoc.parse(JSON.parse(JSON.stringify(trace)))).toEqual(trace);
  });
});
