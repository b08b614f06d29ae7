import type { Gen } from "../../engine/op.js";
import type { ProgramContext } from "../../engine/runtime.js";
import { bootMachine, type MachineConfig } from "../../kernel/machine.js";
import { register_page_table_checks } from "../../mmu/invariants/pages.js";
import { registerInvariants } from "../../mmu/invariants/roots.js";
import { kvm_create_vm, kvm_vcpu_create } from "../../mmu/kvm.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import type { Kvm, Vcpu } from "../../mmu/types.js";
import type { RunConfig, Scenario, ScenarioParam } from "../define.js";

/** What a built-in VM scenario's body gets: the VM, its vCPUs, a spawner and the run's parameters. */
export interface VmWorld {
  readonly kvm: Kvm;
  readonly vcpus: Vcpu[];
  readonly params: Readonly<Record<string, number>>;
  spawn(name: string, body: Gen<void>): void;
}

export interface VmScenarioSpec {
  readonly name: string;
  readonly description: string;
  readonly exercises: string;
  readonly defaultKernel: string;
  readonly machine?: Partial<MachineConfig>;
  readonly params?: Readonly<Record<string, ScenarioParam>>;
  readonly maxSteps?: number;
  /** Guest geometry: 4 levels, `ptesPerTable` entries (default 2: 16 gfns). */
  readonly ptesPerTable?: number;
  /** Address spaces of the vCPUs to create (one vCPU per entry), fixed or from the run's parameters. */
  readonly vcpus: readonly number[] | ((params: Readonly<Record<string, number>>) => readonly number[]);
  /** Pages of memslot 0 = [0, memslotPages) (default: the whole guest). */
  readonly memslotPages?: number;
  /** Host and guest MAXPHYADDR in frames (Geometry.hostMaxGfn, guestMaxGfn; default: the reach). */
  readonly hostMaxGfn?: number;
  readonly guestMaxGfn?: number;
  /** The NX huge page mitigation with this recovery ratio (default: off). */
  readonly nxRecoveryRatio?: number;
  /** max_active of the zap workqueue (5.18–6.5), from the run's parameters (default 0: the kernel's). */
  readonly zapMaxActive?: (params: Readonly<Record<string, number>>) => number;
  /**
   * Sequential set-up run by one "prologue" task before the concurrent tasks
   * start (they are spawned at its end), e.g. vCPUs loading roots. Keeps the
   * explored interleavings to the ones the scenario is about.
   */
  prologue?(w: VmWorld): Gen<void>;
  body(w: VmWorld): void;
}

/**
 * A built-in scenario over one tiny VM: 4-level tables with 2 entries each
 * unless told otherwise, the root invariants registered, and the tasks the
 * body spawns. The whole VM is rebuilt for every execution.
 */
export function vmScenario(spec: VmScenarioSpec): Scenario {
  return {
    name: spec.name,
    description: spec.description,
    exercises: spec.exercises,
    defaultKernel: spec.defaultKernel,
    machine: spec.machine,
    params: spec.params,
    maxSteps: spec.maxSteps,
    build: (cfg: RunConfig) => (ctx: ProgramContext) => {
      bootMachine({ needResched: "never", ...spec.machine, ...cfg.machine });
      const kvm = kvm_create_vm({
        features: cfg.features,
        rootLevel: 4,
        ptesPerTable: spec.ptesPerTable ?? 2,
        memslotPages: spec.memslotPages,
        hostMaxGfn: spec.hostMaxGfn,
        guestMaxGfn: spec.guestMaxGfn,
        nxHugePages: spec.nxRecoveryRatio === undefined ? undefined : { recoveryRatio: spec.nxRecoveryRatio },
      });
      kvm_mmu_init_tdp_mmu(kvm, spec.zapMaxActive?.(cfg.params) ?? 0);
      registerInvariants(kvm);
      register_page_table_checks(kvm);
      const smms = typeof spec.vcpus === "function" ? spec.vcpus(cfg.params) : spec.vcpus;
      const vcpus = smms.map((smm) => kvm_vcpu_create(kvm, smm));
      const prologue = spec.prologue;
      if (prologue === undefined) {
        spec.body({ kvm, vcpus, params: cfg.params, spawn: (name, body) => void ctx.spawn(name, body) });
        return;
      }
      const later: [string, Gen<void>][] = [];
      const w: VmWorld = {
        kvm,
        vcpus,
        params: cfg.params,
        spawn: (name, body) => void later.push([name, body]),
      };
      ctx.spawn(
        "prologue",
        (function* (): Gen<void> {
          yield* prologue(w);
          spec.body(w);
          for (const [name, body] of later) yield { kind: "spawn", name, body };
        })(),
      );
    },
  };
}
