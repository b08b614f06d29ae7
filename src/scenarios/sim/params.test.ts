import { describe, expect, it } from "vitest";
import { MACHINE_OVERRIDES_ENV } from "../../kernel/machine.js";
import {
  formatSize,
  humanSize,
  machineSettingsOf,
  parseDuration,
  parseSize,
  planSimulation,
  SimParamError,
} from "./params.js";
import { runHooks, type SimScenario } from "./types.js";

const scenario: SimScenario = {
  name: "demo",
  thread: null,
  summary: "a scenario that only declares parameters",
  params: [
    { name: "guestSize", kind: "size", default: 2 ** 30, doc: "memory", min: 4096, max: 2 ** 50 },
    { name: "vcpus", kind: "int", default: 1, doc: "vCPUs", min: 1, max: 256 },
    { name: "fill", kind: "number", default: 1, doc: "fraction", min: 0, max: 1 },
    {
      name: "preemption",
      kind: "enum",
      default: "none",
      doc: "model",
      values: ["none", "voluntary", "full"],
    },
    { name: "busy", kind: "bool", default: false, doc: "other task" },
  ],
  metrics: [{ key: "t", unit: "ms", doc: "time" }],
  headline: "t",
  run: () => [],
};
const withKernel: SimScenario = {
  ...scenario,
  params: [
    ...scenario.params,
    { name: "kernel", kind: "enum", default: "v5.18", doc: "k", values: ["v5.17", "v5.18"] },
  ],
};

function err(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SimParamError);
    return (e as Error).message;
  }
  throw new Error("no error");
}

describe("sizes", () => {
  it("parse binary suffixes, plain bytes and fractions that land on whole bytes", () => {
    expect(parseSize("64TiB")).toBe(64 * 2 ** 40);
    expect(parseSize("1GiB")).toBe(2 ** 30);
    expect(parseSize("1gib")).toBe(2 ** 30);
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize("4096B")).toBe(4096);
    expect(parseSize("1.5KiB")).toBe(1536);
    expect(parseSize("2PiB")).toBe(2 * 2 ** 50);
    expect(parseSize("1.5B")).toBeNull();
    expect(parseSize("64TB")).toBeNull();
    expect(parseSize("-1GiB")).toBeNull();
    expect(parseSize("")).toBeNull();
  });
  it("format in the largest exact unit, and round-trip", () => {
    expect(formatSize(64 * 2 ** 40)).toBe("64TiB");
    expect(formatSize(1536)).toBe("1536B");
    expect(formatSize(3 * 2 ** 29)).toBe("1536MiB");
    for (const s of ["1GiB", "64TiB", "4KiB", "3B", "1PiB"]) expect(formatSize(parseSize(s)!)).toBe(s);
    expect(humanSize(1.5 * 2 ** 30)).toBe("1.5GiB");
  });
  it("durations take ns, us, ms, s", () => {
    expect(parseDuration("73us")).toBe(73_000);
    expect(parseDuration("73000")).toBe(73_000);
    expect(parseDuration("1.5ms")).toBe(1_500_000);
    expect(parseDuration("2s")).toBe(2e9);
    expect(parseDuration("1e3")).toBe(1000);
    expect(parseDuration("fast")).toBeNull();
  });
});

describe("planSimulation", () => {
  it("defaults, --set of every kind, and cost keys", () => {
    const p = planSimulation(scenario, {
      set: ["guestSize=64TiB", "vcpus=8", "fill=0.5", "preemption=full", "busy=yes", "tlbFlushNs=10us"],
    });
    expect(p.params).toEqual({
      guestSize: 64 * 2 ** 40,
      vcpus: 8,
      fill: 0.5,
      preemption: "full",
      busy: true,
    });
    expect(p.costs).toEqual({ tlbFlushNs: 10_000 });
    expect(p.points).toHaveLength(1);
    expect(p.points[0].label).toBeNull();
    const d = planSimulation(scenario, {});
    expect(d.params).toEqual({ guestSize: 2 ** 30, vcpus: 1, fill: 1, preemption: "none", busy: false });
  });

  it("sweeps: lists, doubling ranges, cost keys and the grace-period range", () => {
    const s = planSimulation(scenario, { sweep: ["guestSize=1GiB..16GiB"] });
    expect(s.points.map((x) => x.label)).toEqual(["1GiB", "2GiB", "4GiB", "8GiB", "16GiB"]);
    expect(s.points.map((x) => x.params.guestSize)).toEqual([1, 2, 4, 8, 16].map((g) => g * 2 ** 30));
    expect(planSimulation(scenario, { sweep: ["vcpus=1..6"] }).points.map((x) => x.params.vcpus)).toEqual([
      1, 2, 4, 6,
    ]);
    const c = planSimulation(scenario, { sweep: ["spteWriteNs=2,48"], set: ["vcpus=2"] });
    expect(c.points.map((x) => x.costs)).toEqual([{ spteWriteNs: 2 }, { spteWriteNs: 48 }]);
    expect(c.points.every((x) => x.params.vcpus === 2)).toBe(true);
    const gp = planSimulation(scenario, { sweep: ["rcuGracePeriodNs=1ms,3ms..30ms"] });
    expect(gp.points.map((x) => x.costs.rcuGracePeriodNs)).toEqual([
      { min: 1e6, max: 1e6 },
      { min: 3e6, max: 30e6 },
    ]);
    expect(gp.points.map((x) => x.label)).toEqual(["1ms", "3ms..30ms"]);
    expect(
      planSimulation(scenario, { sweep: ["tlbFlushNs=73000,1500,7"] }).points.map((x) => x.label),
    ).toEqual(["73us", "1500ns", "7ns"]);
  });

  it("--kernel sets a declared kernel parameter, else filters runs, and rejects unknown kernels", () => {
    expect(planSimulation(withKernel, { kernel: "v5.17" }).params.kernel).toBe("v5.17");
    expect(planSimulation(withKernel, { kernel: "v5.17" }).kernelFilter).toBeNull();
    expect(err(() => planSimulation(withKernel, { kernel: "v6.9" }))).toMatch(
      /--kernel: kernel must be one of v5.17, v5.18; got 'v6.9'/,
    );
    expect(planSimulation(scenario, { kernel: "v6.9" }).kernelFilter).toBe("v6.9");
    expect(err(() => planSimulation(scenario, { kernel: "v9.99" }))).toMatch(
      /--kernel: unknown kernel 'v9.99'; known: v5.17, v5.18/,
    );
  });

  it("refusals name the flag, the key, the value and what is allowed", () => {
    expect(err(() => planSimulation(scenario, { set: ["nope=1"] }))).toMatch(
      /--set: unknown key 'nope'; parameters of demo: guestSize, vcpus.*cost-model keys: .*tlbFlushNs/,
    );
    expect(err(() => planSimulation(scenario, { set: ["vcpus"] }))).toMatch(
      /--set takes key=value, not 'vcpus'/,
    );
    expect(err(() => planSimulation(scenario, { set: ["vcpus=0"] }))).toBe(
      "--set: vcpus must be an integer in 1..256; got '0'",
    );
    expect(err(() => planSimulation(scenario, { set: ["vcpus=1.5"] }))).toMatch(/vcpus must be an integer/);
    expect(err(() => planSimulation(scenario, { set: ["guestSize=64TB"] }))).toMatch(
      /guestSize takes binary units .* not '64TB'/,
    );
    expect(err(() => planSimulation(scenario, { set: ["guestSize=4PiB"] }))).toMatch(
      /guestSize must be a size .* in 4KiB..1PiB; got '4PiB'/,
    );
    expect(err(() => planSimulation(scenario, { set: ["preemption=rt"] }))).toMatch(
      /preemption must be one of none, voluntary, full; got 'rt'/,
    );
    expect(err(() => planSimulation(scenario, { set: ["busy=maybe"] }))).toMatch(
      /busy must be true or false/,
    );
    expect(err(() => planSimulation(scenario, { set: ["fill=2"] }))).toMatch(/fill must be a number in 0..1/);
    expect(err(() => planSimulation(scenario, { set: ["tlbFlushNs=-1"] }))).toMatch(
      /tlbFlushNs must be a duration/,
    );
    expect(err(() => planSimulation(scenario, { set: ["tickNs=0"] }))).toMatch(
      /tickNs must be a duration > 0/,
    );
    expect(err(() => planSimulation(scenario, { set: ["rcuGracePeriodNs=9ms..1ms"] }))).toMatch(/min..max/);
    expect(err(() => planSimulation(scenario, { set: ["vcpus=1", "vcpus=2"] }))).toMatch(/given twice/);
    expect(err(() => planSimulation(scenario, { sweep: ["vcpus=1,x"] }))).toMatch(
      /vcpus must be an integer.*'x'/,
    );
    expect(err(() => planSimulation(scenario, { sweep: ["vcpus=1,,2"] }))).toMatch(/empty value/);
    expect(err(() => planSimulation(scenario, { sweep: ["vcpus=1,2", "fill=0,1"] }))).toMatch(
      /one key at a time/,
    );
    expect(err(() => planSimulation(scenario, { set: ["vcpus=1"], sweep: ["vcpus=1,2"] }))).toMatch(
      /also fixed by --set/,
    );
  });
});

describe("machine settings every scenario takes", () => {
  it("--set rcuCallbacks/wakePlacement/llcCpus are checked and reach the run as SimRunOptions.machine", () => {
    const plan = planSimulation(scenario, { set: ["rcuCallbacks=rcuoc", "llcCpus=8"] });
    expect(machineSettingsOf(scenario, plan.points[0].params)).toEqual({ rcuCallbacks: "rcuoc", llcCpus: 8 });
    // Unset, they are not in the point at all: the simulator's defaults apply.
    expect(machineSettingsOf(scenario, planSimulation(scenario, {}).points[0].params)).toEqual({});
    expect(err(() => planSimulation(scenario, { set: ["rcuCallbacks=tasklet"] }))).toMatch(
      /rcuCallbacks must be one of softirq, rcuoc; got 'tasklet'/,
    );
    expect(err(() => planSimulation(scenario, { set: ["nope=1"] }))).toMatch(
      /machine settings: rcuCallbacks/,
    );
    const sweep = planSimulation(scenario, { sweep: ["wakePlacement=select_idle_sibling,first-idle"] });
    expect(sweep.points.map((p) => p.params.wakePlacement)).toEqual(["select_idle_sibling", "first-idle"]);
  });

  it("runHooks turns them into the simulator's options and the machine's env", () => {
    const h = runHooks({ machine: { rcuCallbacks: "rcuoc", wakePlacement: "first-idle", llcCpus: 0 } });
    expect(h.wakePlacement).toBe("first-idle");
    expect(h.llcCpus).toBeUndefined();
    expect(h.env?.get(MACHINE_OVERRIDES_ENV)).toEqual({
      holdBound: Number.POSITIVE_INFINITY,
      rcuCallbackContext: "rcuoc",
    });
    // A timed run measures a long hold as time; it does not stop at L3, the checker's question.
    expect(runHooks({}).env?.get(MACHINE_OVERRIDES_ENV)).toEqual({ holdBound: Number.POSITIVE_INFINITY });
  });
});
