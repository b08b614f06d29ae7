import { describe, expect, it } from "vitest";
import { type BulkProfile, bulkAccess, ProfileRecorder, recordProfile } from "./bulk.js";
import { host } from "./host.js";
import type { Gen } from "./op.js";
import { runProgram } from "./runtime.js";
import { RoundRobinScheduler } from "./scheduler.js";
import { DEFAULT_COSTS } from "./sim/cost-model.js";
import { simulate } from "./sim/simulator.js";
import type { SimKernelView } from "./sim/view.js";

/** A view for programs with no kernel layer: nothing sleeps, everything is preemptible. */
const plainView: SimKernelView = {
  prepare() {},
  preemptible: () => true,
  switchedOut() {},
  sleepsWhenBlocked: () => false,
  isGracePeriodWait: () => false,
  queuedCallbacks: () => 0,
  runsAsSoftirq: () => false,
};

/** A block touching one object per iteration: a read and an rmw, plus a charged cost. */
function* block(objs: readonly number[]): Gen<void> {
  for (const o of objs) {
    yield { kind: "read", obj: o, fn: "blk", step: "load" };
    host().cost("tlb_flush", 2);
    yield { kind: "rmw", obj: o, fn: "blk", step: "xchg" };
  }
}

describe("bulk steps", () => {
  it("a recorder merges accesses by shape and counts costs; a bulk access replays them times over", () => {
    let outer: BulkProfile | null = null;
    runProgram(
      ({ spawn }) => {
        const a = [0, 1, 2].map((i) => host().newObject(`pt#${i}.spte[${i}]`));
        spawn(
          "t",
          (function* (): Gen<void> {
            const inner = new ProfileRecorder();
            yield* recordProfile(block(a), inner);
            expect(inner.invalid).toBeNull();
            const p = inner.profile();
            expect(p.steps).toBe(6);
            expect(p.parts.map((x) => x.count)).toEqual([3, 3]);
            expect(p.costs).toEqual([{ kind: "tlb_flush", units: 6 }]);
            const rec = new ProfileRecorder();
            yield* recordProfile(
              (function* (): Gen<void> {
                yield* block(a.slice(0, 1));
                yield bulkAccess(p, 4, a[0], "blk", "4 copies");
              })(),
              rec,
            );
            outer = rec.profile();
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    const o = outer as BulkProfile | null;
    expect(o?.steps).toBe(2 + 24);
    expect(o?.parts.map((x) => x.count)).toEqual([13, 13]);
    expect(o?.costs).toEqual([{ kind: "tlb_flush", units: 26 }]);
  });

  it("a block that had to wait, spawned or chose cannot stand for its copies", () => {
    const why: (string | null)[] = [];
    runProgram(
      ({ spawn }) => {
        const o = host().newObject("o");
        let open = false;
        spawn(
          "waiter",
          (function* (): Gen<void> {
            const rec = new ProfileRecorder();
            yield* recordProfile(
              (function* (): Gen<void> {
                yield { kind: "wait", obj: o, fn: "f", step: "wait", enabled: () => open };
              })(),
              rec,
            );
            why.push(rec.invalid);
            const rec2 = new ProfileRecorder();
            yield* recordProfile(
              (function* (): Gen<void> {
                yield { kind: "choose", n: 2, fn: "f", step: "pick" };
                yield { kind: "read", obj: o, fn: "f", step: "r" };
              })(),
              rec2,
            );
            why.push(rec2.invalid);
          })(),
        );
        spawn(
          "opener",
          (function* (): Gen<void> {
            yield { kind: "write", obj: o, fn: "g", step: "open" };
            open = true;
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(why[0]).toMatch(/waits at f\/wait/);
    expect(why[1]).toMatch(/chooses at f\/pick/);
  });

  it("the simulator prices a bulk access as its block and counts the steps it stands for", () => {
    const run = (summarise: boolean) =>
      simulate(
        ({ spawn }) => {
          const objs = [0, 1, 2, 3].map((i) => host().newObject(`sp#${i}(L1,gfn=0).spte[${i}]`));
          spawn(
            "t",
            (function* (): Gen<void> {
              const rec = new ProfileRecorder();
              yield* recordProfile(block(objs.slice(0, 1)), rec);
              if (summarise) yield bulkAccess(rec.profile(), 3, objs[1], "blk", "3 more");
              else yield* block(objs.slice(1));
            })(),
          );
        },
        { cpus: 2, preemption: "none", kernel: plainView },
      );
    const real = run(false);
    const bulk = run(true);
    const perBlock = DEFAULT_COSTS.spteReadNs + DEFAULT_COSTS.spteWriteNs + 2 * DEFAULT_COSTS.tlbFlushNs;
    expect(real.virtualNs).toBe(4 * perBlock);
    expect(bulk.virtualNs).toBe(real.virtualNs);
    expect(bulk.events).toBe(real.events);
    expect(bulk.stats.steps).toBe(real.stats.steps);
    expect(bulk.stats.bulkSteps).toBe(1);
  });
});
