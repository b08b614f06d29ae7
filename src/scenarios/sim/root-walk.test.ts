import { describe, expect, it } from "vitest";
import { ROOT_WALK_DESIGNS, type RootWalkDesign, rootWalk, runRootWalk } from "./root-walk.js";
import type { SimParams } from "./types.js";

/**
 * Scenario 3 (seed 001): the walk designs of tdp_mmu_next_root() under a fast zap that lands while
 * the walker holds a root. What the thread argues, as numbers: ending the walk is enough for a walk
 * over valid roots (all roots are invalidated together, so nothing valid is left behind it), while
 * restarting or going on FIFO also visits the roots vCPUs built after the invalidation; on the
 * mmu_notifier's walk, which must reach invalid roots too, ending early leaves mappings behind and
 * restarting never ends.
 */

const defaults: SimParams = Object.fromEntries(rootWalk.params.map((p) => [p.name, p.default]));

function runAll(over: Record<string, string | number>) {
  const params = { ...defaults, ...over };
  return Object.fromEntries(ROOT_WALK_DESIGNS.map((d) => [d, runRootWalk(d, params)])) as Record<
    RootWalkDesign,
    ReturnType<typeof runRootWalk>
  >;
}

describe("root-walk (seed 001)", () => {
  const wrprot = runAll({ walk: "wrprot" });

  it("write-protect walk: the deletion lands mid-walk and every design completes without skipping a valid root", () => {
    for (const d of ROOT_WALK_DESIGNS) {
      const m = wrprot[d].metrics;
      expect(wrprot[d].results?.[0].status, d).toBe("ok");
      expect(m.invalidationsDuringWalk, d).toBe(1);
      expect(m.walkDone, d).toBe(1);
      expect(m.skipped, d).toBe(0);
      expect(m.revisits, d).toBe(0);
    }
  });

  it("terminate ends where merged goes on past invalid roots: both visit only the roots before the zap", () => {
    const at = defaults.triggerAt as number;
    expect(wrprot.terminate.metrics.visits).toBe(at);
    expect(wrprot.merged.metrics.visits).toBe(at);
    expect(wrprot.terminate.metrics.newRootsVisited).toBe(0);
  });

  it("restart and FIFO also visit the root the kicked vCPUs built after the zap, so they visit more", () => {
    for (const d of ["restart", "fifo"] as const) {
      expect(wrprot[d].metrics.newRootsVisited, d).toBe(1);
      expect(wrprot[d].metrics.visits, d).toBeGreaterThan(wrprot.terminate.metrics.visits as number);
      expect(wrprot[d].metrics.walkMs, d).toBeGreaterThanOrEqual(wrprot.terminate.metrics.walkMs as number);
    }
  });

  it("control: without a deletion every design visits every root once, in the same time", () => {
    const none = runAll({ walk: "wrprot", invalidations: 0, memory: 2 * 2 ** 20 });
    for (const d of ROOT_WALK_DESIGNS) {
      expect(none[d].metrics.visits, d).toBe(defaults.roots);
      expect(none[d].metrics.walkMs, d).toBeCloseTo(none.merged.metrics.walkMs as number, 3);
    }
  });

  it("mmu_notifier walk (all roots): terminate leaves invalid roots mapping the range, restart never ends", () => {
    const unmap = runAll({ walk: "unmap" });
    for (const d of ["merged", "fifo"] as const) {
      expect(unmap[d].results?.[0].status, d).toBe("ok");
      expect(unmap[d].metrics.skipped, d).toBe(0);
      expect(unmap[d].metrics.revisits, d).toBe(0);
    }
    // FIFO meets the new root at the tail; merged (new roots at the head) does not.
    expect(unmap.fifo.metrics.newRootsVisited).toBe(1);
    expect(unmap.merged.metrics.newRootsVisited).toBe(0);
    const t = unmap.terminate;
    expect(t.results?.[0].status).toBe("violation");
    expect(t.results?.[0].violations[0].invariant).toMatch(/notifier-complete/);
    expect(t.metrics.skipped).toBeGreaterThan(0);
    // Restart: the previous root is invalid on every call, so the walk starts over for ever.
    const r = unmap.restart;
    expect(r.results?.[0].status).toBe("event-limit");
    expect(r.metrics.walkDone).toBe(0);
    expect(r.metrics.revisits).toBeGreaterThan(1000);
  }, 30_000);

  it("refuses more materialised roots than fit a minute (roots x memory > 256MiB), naming the budget", () => {
    const p = {
      ...Object.fromEntries(rootWalk.params.map((x) => [x.name, x.default])),
      roots: 16,
      memory: 2 ** 30,
    };
    expect(() => rootWalk.run(p, {})).toThrow(/at most 268435456 \(256MiB\)/);
  });
});
