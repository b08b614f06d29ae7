import type { Gen } from "../engine/op.js";
import { bootMachine } from "../kernel/machine.js";
import { register_page_table_checks } from "../mmu/invariants/pages.js";
import { registerInvariants } from "../mmu/invariants/roots.js";
import { kvm_arch_prepare_memory_region, kvm_create_vm, kvm_vcpu_create } from "../mmu/kvm.js";
import { NX_HUGE_PAGES_RECOVERY_RATIO, nxRecoveryTask } from "../mmu/nx_huge_page_recovery.js";
import { writeTrackTask } from "../mmu/page_track.js";
import { vcpuRoundsTask, yieldingRootWalkTask } from "../mmu/protocol_tasks.js";
import { kvm_mmu_init_tdp_mmu } from "../mmu/tdp_mmu_invalidate.js";
import type { Kvm, Vcpu } from "../mmu/types.js";
import {
  agingTask,
  destroyVmTask,
  dirtyLogClearTask,
  dirtyLogDisableTask,
  dirtyLogEnableTask,
  type FaultSpec,
  memslotDeleteTask,
  notifierInvalidateTask,
  vcpuTask,
} from "../mmu/workloads.js";
import type { Scenario } from "./define.js";
import { featureOverrides, type ScenarioDoc, type ScenarioTask } from "./schema.js";

/** What a scenario file asks for besides its workload: kernel, features, variant, machine. */
export interface DocScenario {
  readonly scenario: Scenario;
  readonly kernel: string;
  readonly features: readonly string[];
  readonly variant: string | null;
}

function faultsOf(t: Extract<ScenarioTask, { kind: "vcpu" }>): FaultSpec[] {
  if (t.faults) return t.faults.map((f) => ({ gfn: f.gfn, write: f.write ?? false, exec: f.exec ?? false }));
  if (t.range) {
    const out: FaultSpec[] = [];
    for (let i = 0; i < t.range.count; i++)
      out.push({ gfn: t.range.start + i, write: t.range.write ?? false });
    return out;
  }
  return [];
}

function taskName(t: ScenarioTask, i: number): string {
  if (t.name) return t.name;
  return t.kind === "vcpu" || t.kind === "vcpu-rounds" ? `vcpu${t.vcpu}` : `${t.kind}#${i}`;
}

function spawnTask(
  spawn: (n: string, b: Gen<void>) => number,
  kvm: Kvm,
  vcpus: Vcpu[],
  t: ScenarioTask,
  i: number,
): void {
  const name = taskName(t, i);
  const slot = (id: number) => {
    const s = kvm.memslots.find((m) => m.id === id);
    if (!s)
      throw new RangeError(
        `memslot ${id} does not exist (KVM refuses a slot past vm.hostMaxGfn with -EINVAL from 5.18)`,
      );
    return s;
  };
  switch (t.kind) {
    case "vcpu":
      spawn(
        name,
        vcpuTask(vcpus[t.vcpu], { faults: faultsOf(t), iterations: t.iterations ?? 1, hardware: t.hardware }),
      );
      return;
    case "vcpu-rounds":
      spawn(name, vcpuRoundsTask(vcpus[t.vcpu], t.gfns, { hardware: t.hardware }));
      return;
    case "root-walker":
      spawn(name, yieldingRootWalkTask(kvm));
      return;
    case "memslot-delete":
      spawn(name, memslotDeleteTask(kvm, slot(t.slot)));
      return;
    case "notifier-invalidate":
      spawn(name, notifierInvalidateTask(kvm, t.start, t.end));
      return;
    case "age":
      spawn(name, agingTask(kvm, t.start, t.end, t.testOnly ?? false));
      return;
    case "dirty-log-enable":
      spawn(name, dirtyLogEnableTask(kvm, slot(t.slot), t.eagerSplit ?? false));
      return;
    case "dirty-log-disable":
      spawn(name, dirtyLogDisableTask(kvm, slot(t.slot)));
      return;
    case "dirty-log-clear":
      spawn(name, dirtyLogClearTask(kvm, slot(t.slot)));
      return;
    case "write-track":
      spawn(name, writeTrackTask(kvm, t.gfn, t.untrack ?? false));
      return;
    case "nx-recovery":
      spawn(name, nxRecoveryTask(kvm, t.passes ?? 1));
      return;
    case "destroy-vm":
      spawn(name, destroyVmTask(kvm));
      return;
  }
}

/** Turn a validated scenario document into a runnable Scenario. */
export function scenarioFromDoc(doc: ScenarioDoc): DocScenario {
  const scenario: Scenario = {
    name: doc.name,
    description: doc.description ?? "",
    defaultKernel: doc.kernel,
    machine: {
      ...doc.machine,
      ...(doc.memoryModel === undefined ? {} : { memoryModel: doc.memoryModel }),
      ...(doc.check?.holdBound === undefined ? {} : { holdBound: doc.check.holdBound }),
    },
    maxSteps: doc.check?.maxSteps,
    invariants: doc.check?.invariants,
    build: (cfg) => (ctx) => {
      bootMachine({ ...scenario.machine, ...cfg.machine });
      const kvm = kvm_create_vm({
        features: cfg.features,
        rootLevel: doc.vm.rootLevel,
        ptesPerTable: doc.vm.ptesPerTable,
        memslotPages: doc.vm.memslotPages,
        hostMaxGfn: doc.vm.hostMaxGfn,
        guestMaxGfn: doc.vm.guestMaxGfn,
        nxHugePages:
          doc.vm.nxHugePages === undefined
            ? undefined
            : { recoveryRatio: doc.vm.nxHugePages.recoveryRatio ?? NX_HUGE_PAGES_RECOVERY_RATIO },
      });
      (doc.vm.memslots ?? []).forEach((m, j) => {
        const slot = { id: j + 1, as_id: 0, base_gfn: m.base, npages: m.pages, flags: 0, deleted: false };
        // A slot the era refuses (past host MAXPHYADDR) is not created: user space got -EINVAL.
        if (kvm_arch_prepare_memory_region(kvm, slot) === 0) kvm.memslots.push(slot);
      });
      kvm_mmu_init_tdp_mmu(kvm, doc.vm.zapMaxActive ?? 0);
      registerInvariants(kvm);
      register_page_table_checks(kvm);
      const vcpus = (doc.vcpus ?? []).map((v) => kvm_vcpu_create(kvm, v.smm ?? 0));
      doc.tasks.forEach((t, i) => {
        spawnTask((n, b) => ctx.spawn(n, b), kvm, vcpus, t, i);
      });
    },
  };
  return { scenario, kernel: doc.kernel, features: featureOverrides(doc), variant: doc.variant ?? null };
}
