import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import { bootMachine, type MachineConfig } from "../kernel/machine.js";
import type { Features } from "./features.js";
import { registerInvariants } from "./invariants/roots.js";
import { kvm_create_vm, kvm_vcpu_create } from "./kvm.js";
import { presetByName } from "./presets.js";
import { kvm_mmu_init_tdp_mmu } from "./tdp_mmu_invalidate.js";
import type { Kvm, Vcpu } from "./types.js";
import { vcpu_mode } from "./vcpu.js";

/** Helpers for the root-lifecycle tests: a VM built in setup, and a main task to drive it. */

export interface RootsVmOptions {
  readonly kernel: string;
  readonly features?: Partial<Features>;
  readonly vcpus?: number;
  readonly memslotPages?: number;
  readonly machine?: Partial<MachineConfig>;
}

export interface RootsWorld {
  kvm: Kvm;
  vcpus: Vcpu[];
}

/**
 * A program whose setup builds a 4-level, 2-entry VM with the root invariants registered, and
 * spawns one task running `main`. `world` is filled in at every run, so the test can look at the
 * final state of the last run.
 */
export function rootsProgram(
  o: RootsVmOptions,
  main: (w: RootsWorld) => Gen<void>,
  world: RootsWorld = { kvm: null as unknown as Kvm, vcpus: [] },
): Program {
  return ({ spawn }) => {
    bootMachine({ needResched: "never", ...o.machine });
    const features = { ...presetByName(o.kernel).features, ...o.features } as Features;
    const kvm = kvm_create_vm({ features, rootLevel: 4, ptesPerTable: 2, memslotPages: o.memslotPages });
    kvm_mmu_init_tdp_mmu(kvm);
    registerInvariants(kvm);
    world.kvm = kvm;
    world.vcpus = [];
    for (let i = 0; i < (o.vcpus ?? 1); i++) {
      const v = kvm_vcpu_create(kvm);
      vcpu_mode(v);
      world.vcpus.push(v);
    }
    spawn("main", main(world));
  };
}

/** Spawn a task from a running task (inline; returns its id). */
export function* spawnTask(name: string, body: Gen<void>): Gen<number> {
  return (yield { kind: "spawn", name, body }) as number;
}

/** Violations of a run as "invariant: message" lines, for readable assertions. */
export function violationsOf(r: RunResult): string[] {
  return r.violations.map((v) => `${v.invariant}: ${v.message}`);
}
