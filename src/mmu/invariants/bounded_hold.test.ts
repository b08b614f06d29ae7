import { describe, expect, it } from "vitest";
import { geometryFor } from "../kvm.js";
import { presetByName } from "../presets.js";
import type { Kvm } from "../types.js";
import { default_hold_bound } from "./bounded_hold.js";

describe("L3-bounded-hold default bound", () => {
  it("is one 1G SPTE with its subtree (1 + P + P^2), and none in the 5.17 code shape", () => {
    const vm = (kernel: string, ptes: number) =>
      ({ features: presetByName(kernel).features, geometry: geometryFor(4, ptes) }) as Kvm;
    expect(default_hold_bound(vm("v6.9", 2))).toBe(7);
    expect(default_hold_bound(vm("v5.18", 4))).toBe(21);
    expect(default_hold_bound(vm("v6.15", 512))).toBe(262_657);
    expect(default_hold_bound(vm("v5.17", 2))).toBe(Number.POSITIVE_INFINITY);
  });
});
