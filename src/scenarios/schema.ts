/**
 * The scenario file format: a zod schema (the single source of truth), the TypeScript types derived
 * from it, and the JSON Schema published from it for editors (schema/scenario.schema.json).
 *
 * A scenario names a kernel preset, optional feature overrides, the machine and VM geometry, the
 * vCPUs, and a workload of tasks that the checker or simulator runs concurrently.
 */
import { z } from "zod";
import type { MemoryModel, NeedReschedPolicy, PreemptionModel } from "../kernel/machine.js";
import { FEATURE_NAMES, type FeatureName, type Features } from "../mmu/features.js";
import { INVARIANT_NAMES } from "../mmu/invariants/catalog.js";
import { PRESETS } from "../mmu/presets.js";
import { describeValue, suggest } from "./errors.js";

export const SCHEMA_VERSION = 1;

/** Kernel presets a scenario may name (from src/mmu/presets.ts). */
export const KERNEL_NAMES: readonly string[] = PRESETS.map((p) => p.name);

/** Values of the one non-boolean feature. A Record type makes the compiler check the list is complete. */
const ZAP_PASSES: { [K in Features["zapPasses"]]: K } = {
  single: "single",
  "two-pass": "two-pass",
  "four-pass": "four-pass",
};
const PREEMPTION_MODELS: { [K in PreemptionModel]: K } = {
  none: "none",
  voluntary: "voluntary",
  full: "full",
};
const MEMORY_MODELS: { [K in MemoryModel]: K } = { sc: "sc", tso: "tso" };
const NEED_RESCHED_POLICIES: { [K in NeedReschedPolicy]: K } = {
  choice: "choice",
  never: "never",
  always: "always",
};

/** How many memslots the VM has (kvm_create_vm makes slot 0 covering memslotPages frames). */
export const MEMSLOT_COUNT = 1;

const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
const NAME_RULE = "lowercase letters, digits and '-', starting with a letter or digit";

const name = (what: string) =>
  z
    .string()
    .max(64)
    .regex(NAME_RE, { error: `must be ${NAME_RULE}` })
    .describe(what);

/** Guest frame numbers; ranges are checked against the geometry in crossCheck(). */
const gfn = z
  .int()
  .min(0)
  .max(2 ** 45);

const onOff = z
  .union([z.boolean(), z.enum(["on", "off"])], {
    error: (iss) => `must be on, off, true or false; got ${describeValue(iss.input)}`,
  })
  .meta({ id: "onOff", description: "on|off|true|false" });

const zapPasses = z.enum(ZAP_PASSES).describe("how tdp_mmu_zap_root() walks: single|two-pass|four-pass");

/** Every feature but zapPasses is a boolean (schema.test.ts checks every preset value against this). */
type FeatureShape = {
  [K in FeatureName]: z.ZodOptional<Features[K] extends boolean ? typeof onOff : typeof zapPasses>;
};

const featureShape = Object.fromEntries(
  FEATURE_NAMES.map((n) => [n, n === "zapPasses" ? zapPasses.optional() : onOff.optional()]),
) as FeatureShape;

export const FeaturesSchema = z
  .strictObject(featureShape)
  .describe("Overrides on top of the kernel preset; keys are feature names of src/mmu/features.ts");

export const MachineSchema = z
  .strictObject({
    preemption: z.enum(PREEMPTION_MODELS).optional().describe("CONFIG_PREEMPT_NONE / _VOLUNTARY / full"),
    needResched: z
      .enum(NEED_RESCHED_POLICIES)
      .optional()
      .describe("need_resched(): explored both ways (choice), or pinned"),
    needReschedBudget: z.int().min(0).max(16).optional().describe("true answers of need_resched() per run"),
    debugList: z.boolean().optional().describe("CONFIG_DEBUG_LIST"),
    proveMmu: z.boolean().optional().describe("CONFIG_KVM_PROVE_MMU"),
  })
  .describe("Kernel configuration of the run");

export const VmSchema = z
  .strictObject({
    rootLevel: z.literal([4, 5]).describe("paging levels: 4 or 5"),
    ptesPerTable: z.int().min(2).max(512).describe("entries per page table (512 on hardware; 2-4 to check)"),
    memslotPages: z
      .int()
      .min(1)
      .max(2 ** 45)
      .optional()
      .describe("frames in memslot 0 (default: all)"),
    memslots: z
      .array(
        z.strictObject({
          base: gfn.describe("first gfn of the slot"),
          pages: z
            .int()
            .min(1)
            .max(2 ** 45)
            .describe("frames in the slot"),
        }),
      )
      .max(7)
      .optional()
      .describe("memslots 1, 2, ... besides memslot 0, in id order; they may not overlap"),
    nxHugePages: z
      .strictObject({
        recoveryRatio: z
          .int()
          .min(0)
          .max(1000)
          .optional()
          .describe(
            "nx_huge_pages_recovery_ratio: a recovery pass zaps 1/ratio of the listed pages (default 60; 0: none)",
          ),
      })
      .optional()
      .describe(
        "kvm.nx_huge_pages=on, the iTLB multihit mitigation: fetches (exec faults) map 4K and the tables they need are listed for the nx-recovery worker (default: off)",
      ),
    hostMaxGfn: z
      .int()
      .min(1)
      .max(2 ** 45)
      .optional()
      .describe(
        "host MAXPHYADDR in frames: kvm_mmu_max_gfn() + 1, where every TDP MMU zap stops; at most the page tables' reach (default: the reach)",
      ),
    guestMaxGfn: z
      .int()
      .min(1)
      .max(2 ** 45)
      .optional()
      .describe(
        "the guest's MAXPHYADDR in frames: it cannot access a larger gfn; may exceed hostMaxGfn (default: hostMaxGfn)",
      ),
    zapMaxActive: z
      .int()
      .min(0)
      .max(64)
      .optional()
      .describe("max_active of the 5.18-6.5 zap workqueue (default 0: the kernel's)"),
  })
  .describe("VM geometry: the guest address space has ptesPerTable^rootLevel frames");

export const VcpuSchema = z
  .strictObject({
    smm: z.literal([0, 1]).optional().describe("address space: 0 normal, 1 SMM"),
  })
  .describe("A vCPU; its index in the list is its id");

export const FaultSchema = z.strictObject({
  gfn: gfn.describe("guest frame number"),
  write: z.boolean().optional().describe("write fault (default false)"),
  exec: z
    .boolean()
    .optional()
    .describe("instruction fetch (default false); with vm.nxHugePages it maps 4K only"),
});

export const FaultRangeSchema = z.strictObject({
  start: gfn.describe("first gfn"),
  count: z
    .int()
    .min(1)
    .max(2 ** 20)
    .describe("number of consecutive gfns"),
  write: z.boolean().optional().describe("write faults (default false)"),
});

const taskName = name("label for traces; unique among tasks").optional();
const slot = z.int().min(0).max(1023).describe("memslot id");

const hardwareOption = z
  .boolean()
  .optional()
  .describe(
    "accesses go through the CPU: an EPT walk that sets Accessed/Dirty, a per-vCPU TLB tagged by root, and a fault only on an EPT violation (default false: every access faults)",
  );

export const VcpuTaskSchema = z
  .strictObject({
    kind: z.literal("vcpu"),
    name: taskName,
    vcpu: z.int().min(0).max(63).describe("index into vcpus"),
    faults: z.array(FaultSchema).max(64).optional().describe("guest accesses that fault, in order"),
    range: FaultRangeSchema.optional().describe("alternative to faults: consecutive gfns"),
    iterations: z.int().min(1).max(16).optional().describe("times the vCPU enters the guest (default 1)"),
    hardware: hardwareOption,
  })
  .describe("A vCPU thread: loads its MMU root, enters the guest and takes page faults");

export const VcpuRoundsTaskSchema = z
  .strictObject({
    kind: z.literal("vcpu-rounds"),
    name: taskName,
    vcpu: z.int().min(0).max(63).describe("index into vcpus"),
    gfns: z.array(gfn).min(1).max(8).describe("one round per gfn: load a root, write-fault the gfn, unload"),
    hardware: hardwareOption,
  })
  .describe(
    "A vCPU thread in rounds: kvm_mmu_load(), a write fault, kvm_mmu_unload() (the whole-protocol vCPU)",
  );

export const RootWalkerTaskSchema = z
  .strictObject({ kind: z.literal("root-walker"), name: taskName })
  .describe(
    "A shared-mode walk over the valid roots that drops mmu_lock after every root; checks it visited every root valid throughout",
  );

export const MemslotDeleteTaskSchema = z
  .strictObject({ kind: z.literal("memslot-delete"), name: taskName, slot })
  .describe("KVM_SET_USER_MEMORY_REGION deleting a slot (fast zap of all roots)");

const gfnRange = {
  start: gfn.describe("first gfn"),
  end: gfn.describe("gfn after the last one (exclusive)"),
};

export const NotifierInvalidateTaskSchema = z
  .strictObject({ kind: z.literal("notifier-invalidate"), name: taskName, ...gfnRange })
  .describe("mmu_notifier invalidate_range_start/end over [start, end)");

export const AgeTaskSchema = z
  .strictObject({
    kind: z.literal("age"),
    name: taskName,
    ...gfnRange,
    testOnly: z.boolean().optional().describe("test_young instead of clear_young (default false)"),
  })
  .describe("mmu_notifier clear_young/test_young over [start, end)");

export const DirtyLogEnableTaskSchema = z
  .strictObject({
    kind: z.literal("dirty-log-enable"),
    name: taskName,
    slot,
    eagerSplit: z
      .boolean()
      .optional()
      .describe(
        "eager_page_split: split the slot's huge pages to 4K under the read lock first (kernels with eagerPageSplit; default false)",
      ),
  })
  .describe("set KVM_MEM_LOG_DIRTY_PAGES on a slot");

export const DirtyLogDisableTaskSchema = z
  .strictObject({ kind: z.literal("dirty-log-disable"), name: taskName, slot })
  .describe(
    "clear KVM_MEM_LOG_DIRTY_PAGES on a slot: huge page recovery (in place with hugePageRecoveryInPlace, else zapping)",
  );

export const DirtyLogClearTaskSchema = z
  .strictObject({ kind: z.literal("dirty-log-clear"), name: taskName, slot })
  .describe("KVM_CLEAR_DIRTY_LOG on a slot");

export const WriteTrackTaskSchema = z
  .strictObject({
    kind: z.literal("write-track"),
    name: taskName,
    gfn: gfn.describe("guest frame number"),
    untrack: z
      .boolean()
      .optional()
      .describe("then kvm_write_track_remove_gfn(): stop tracking it again (default false)"),
  })
  .describe("kvm_write_track_add_gfn(): start write-tracking a page, as KVMGT does for a shadowed GTT page");

export const NxRecoveryTaskSchema = z
  .strictObject({
    kind: z.literal("nx-recovery"),
    name: taskName,
    passes: z.int().min(1).max(8).optional().describe("wake-ups of the worker (default 1)"),
  })
  .describe(
    "kvm_nx_huge_page_recovery_worker(): zap tables the NX huge page mitigation split (needs vm.nxHugePages); under the write mmu_lock, or the read lock with nxRecoveryUnderReadLock",
  );

export const DestroyVmTaskSchema = z
  .strictObject({ kind: z.literal("destroy-vm"), name: taskName })
  .describe("kvm_destroy_vm(): teardown; at most one, and the last task");

export const TaskSchema = z.discriminatedUnion("kind", [
  VcpuTaskSchema,
  VcpuRoundsTaskSchema,
  RootWalkerTaskSchema,
  MemslotDeleteTaskSchema,
  NotifierInvalidateTaskSchema,
  AgeTaskSchema,
  DirtyLogEnableTaskSchema,
  DirtyLogDisableTaskSchema,
  DirtyLogClearTaskSchema,
  WriteTrackTaskSchema,
  NxRecoveryTaskSchema,
  DestroyVmTaskSchema,
]);

export type ScenarioTask = z.infer<typeof TaskSchema>;
export type TaskKind = ScenarioTask["kind"];
export type TaskOf<K extends TaskKind> = Extract<ScenarioTask, { kind: K }>;

/** Task kinds, in schema order. */
export const TASK_KINDS: readonly TaskKind[] = TaskSchema.options.map((o) => o.shape.kind.value);

export const CheckSchema = z
  .strictObject({
    maxSteps: z.int().min(1).max(1e9).optional().describe("step budget per run"),
    invariants: z
      .array(
        z
          .string()
          .max(64)
          .regex(/^[A-Za-z0-9][\w-]*$/, {
            error: "must be an invariant name such as inv4-no-uaf-roots, or all",
          })
          .describe(
            "invariant name as reported in violations (e.g. inv4-no-uaf-roots, L1-invalid-roots-freed)",
          ),
      )
      .min(1)
      .max(64)
      .optional()
      .describe("invariants to check: [all] or a list of names"),
    holdBound: z
      .int()
      .min(1)
      .max(2 ** 40)
      .optional()
      .describe(
        "L3-bounded-hold: most SPTEs a task may change between yield points (default: one 1G SPTE and its subtree, none for zapPasses single); --hold-bound overrides it",
      ),
  })
  .describe("Defaults for exploration (command-line flags override them)");

const ScenarioObject = z.strictObject({
  schemaVersion: z
    .literal(SCHEMA_VERSION, {
      error: (iss) =>
        iss.input === undefined
          ? undefined
          : `unsupported schemaVersion; this tdplab reads ${SCHEMA_VERSION}`,
    })
    .describe("format version of this file"),
  name: name("scenario name"),
  description: z.string().max(4000).optional().describe("what the scenario exercises"),
  kernel: z.enum(KERNEL_NAMES as [string, ...string[]]).describe("kernel preset (src/mmu/presets.ts)"),
  features: FeaturesSchema.optional(),
  variant: z.string().min(1).max(256).nullable().optional().describe("mutation name or path, or null"),
  machine: MachineSchema.optional(),
  memoryModel: z
    .enum(MEMORY_MODELS)
    .optional()
    .describe(
      "memory model of the run: sc (default) or tso (x86-TSO store buffers); --memory-model overrides it",
    ),
  vm: VmSchema,
  vcpus: z.array(VcpuSchema).max(64).describe("the vCPUs; index = vCPU id"),
  tasks: z.array(TaskSchema).min(1).max(64).describe("the workload: each entry becomes one task"),
  check: CheckSchema.optional(),
});

type ScenarioShape = z.output<typeof ScenarioObject>;

/** Guest frames of the VM: ptesPerTable^rootLevel (tdp_mmu_max_gfn_exclusive). */
export function maxGfnOf(vm: ScenarioShape["vm"]): number {
  return vm.ptesPerTable ** vm.rootLevel;
}

/** Rules that span fields. Each issue names the exact field at fault. */
function crossCheck(doc: ScenarioShape, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  const maxGfn = maxGfnOf(doc.vm);
  const space = `the guest address space [0, ${maxGfn}) = ${doc.vm.ptesPerTable}^${doc.vm.rootLevel} frames`;
  for (const key of ["hostMaxGfn", "guestMaxGfn"] as const) {
    const v = doc.vm[key];
    if (v !== undefined && v > maxGfn) issue(["vm", key], `${v} frames do not fit in ${space}`);
  }
  const hostMaxGfn = Math.min(doc.vm.hostMaxGfn ?? maxGfn, maxGfn);
  const guestMaxGfn = Math.min(doc.vm.guestMaxGfn ?? hostMaxGfn, maxGfn);
  const slotPages = doc.vm.memslotPages ?? hostMaxGfn;
  if (doc.vm.memslotPages !== undefined && doc.vm.memslotPages > maxGfn) {
    issue(["vm", "memslotPages"], `${doc.vm.memslotPages} frames do not fit in ${space}`);
  }
  // Memslot 0 is [0, slotPages); the others are where the document puts them.
  const slots: [number, number][] = [[0, slotPages]];
  (doc.vm.memslots ?? []).forEach((m, j) => {
    const path = ["vm", "memslots", j];
    const end = m.base + m.pages;
    if (end > maxGfn) issue([...path, "pages"], `memslot ${j + 1} [${m.base}, ${end}) runs past ${space}`);
    const clash = slots.findIndex(([b, e]) => m.base < e && b < end);
    if (clash >= 0)
      issue([...path, "base"], `memslot ${j + 1} [${m.base}, ${end}) overlaps memslot ${clash}`);
    slots.push([m.base, end]);
  });
  const slotList = slots.map(([b, e], id) => `${id} [${b}, ${e})`).join(", ");
  const checkGfn = (path: (string | number)[], g: number) => {
    if (g >= maxGfn) issue(path, `gfn ${g} is outside ${space}`);
    else if (g >= guestMaxGfn)
      issue(
        path,
        `the guest cannot access gfn ${g}: its MAXPHYADDR (vm.guestMaxGfn) covers [0, ${guestMaxGfn})`,
      );
    else if (!slots.some(([b, e]) => g >= b && g < e))
      issue(
        path,
        slots.length === 1
          ? `gfn ${g} is outside memslot 0, which covers gfns [0, ${slotPages})`
          : `gfn ${g} is in no memslot (memslots ${slotList})`,
      );
  };
  const checkSlot = (path: (string | number)[], s: number) => {
    if (s >= MEMSLOT_COUNT + (doc.vm.memslots?.length ?? 0))
      issue(
        path,
        slots.length === 1
          ? `memslot ${s} does not exist; the VM has memslot 0 only`
          : `memslot ${s} does not exist; the VM has memslots 0..${slots.length - 1}`,
      );
  };

  const names = new Map<string, number>();
  const vcpuOwner = new Map<number, number>();
  const deleted = new Map<number, number>();
  let destroyAt = -1;
  doc.tasks.forEach((t, i) => {
    const at = (...rest: (string | number)[]) => ["tasks", i, ...rest];
    if (t.name !== undefined) {
      const prev = names.get(t.name);
      if (prev !== undefined) issue(at("name"), `task name '${t.name}' is already used by tasks[${prev}]`);
      else names.set(t.name, i);
    }
    if (destroyAt >= 0) {
      issue(
        at("kind"),
        t.kind === "destroy-vm"
          ? `only one destroy-vm task is allowed (the first is tasks[${destroyAt}])`
          : `destroy-vm (tasks[${destroyAt}]) must be the last task`,
      );
    }
    switch (t.kind) {
      case "vcpu-rounds":
      case "vcpu": {
        if (t.vcpu >= doc.vcpus.length) {
          const n = doc.vcpus.length;
          const have = n === 0 ? "no vCPUs" : n === 1 ? "1 vCPU (id 0)" : `${n} vCPUs (ids 0..${n - 1})`;
          issue(at("vcpu"), `vCPU ${t.vcpu} does not exist; vcpus declares ${have}`);
        } else {
          const owner = vcpuOwner.get(t.vcpu);
          if (owner !== undefined) {
            issue(at("vcpu"), `vCPU ${t.vcpu} already runs tasks[${owner}]; a vCPU is one thread`);
          } else vcpuOwner.set(t.vcpu, i);
        }
        if (t.kind === "vcpu-rounds") {
          for (const [j, g] of t.gfns.entries()) checkGfn(at("gfns", j), g);
          break;
        }
        if (t.faults !== undefined && t.range !== undefined) {
          issue(at("range"), "give either faults or range, not both");
        }
        for (const [j, f] of (t.faults ?? []).entries()) checkGfn(at("faults", j, "gfn"), f.gfn);
        if (t.range !== undefined) {
          checkGfn(at("range", "start"), t.range.start);
          const last = t.range.start + t.range.count - 1;
          if (t.range.start < slotPages && last >= slotPages) {
            issue(
              at("range", "count"),
              `gfns [${t.range.start}, ${last + 1}) run past memslot 0 [0, ${slotPages})`,
            );
          }
        }
        break;
      }
      case "notifier-invalidate":
      case "age":
        if (t.start >= t.end) issue(at("end"), `end (${t.end}) must be greater than start (${t.start})`);
        if (t.start >= maxGfn) issue(at("start"), `gfn ${t.start} is outside ${space}`);
        else if (t.end > maxGfn) issue(at("end"), `end ${t.end} is past the end of ${space}`);
        break;
      case "memslot-delete": {
        checkSlot(at("slot"), t.slot);
        const prev = deleted.get(t.slot);
        if (prev !== undefined) issue(at("slot"), `memslot ${t.slot} is already deleted by tasks[${prev}]`);
        else deleted.set(t.slot, i);
        break;
      }
      case "dirty-log-enable":
      case "dirty-log-disable":
      case "dirty-log-clear":
        checkSlot(at("slot"), t.slot);
        break;
      case "write-track":
        checkGfn(at("gfn"), t.gfn);
        break;
      case "nx-recovery":
        if (doc.vm.nxHugePages === undefined)
          issue(at("kind"), "nx-recovery needs the NX huge page mitigation: set vm.nxHugePages (e.g. {})");
        break;
      case "destroy-vm":
        if (destroyAt < 0) destroyAt = i;
        break;
    }
  });

  const inv = doc.check?.invariants;
  if (inv !== undefined) {
    const seen = new Set<string>();
    inv.forEach((n, i) => {
      if (n === "all" && inv.length > 1)
        issue(["check", "invariants", i], "'all' cannot be combined with names");
      else if (seen.has(n)) issue(["check", "invariants", i], `invariant '${n}' is listed twice`);
      else if (n !== "all" && !INVARIANT_NAMES.includes(n)) {
        const hint = suggest(n, INVARIANT_NAMES);
        issue(
          ["check", "invariants", i],
          `unknown invariant '${n}'${hint ? ` (did you mean '${hint}'?)` : ""}; \`tdplab list invariants\` shows them`,
        );
      }
      seen.add(n);
    });
  }
}

/** The scenario document schema, with cross-field rules. */
export const ScenarioSchema = ScenarioObject.superRefine(crossCheck).meta({
  title: "tdplab scenario",
  description: "A workload for the tdplab model of the KVM x86 TDP MMU root lifecycle",
});

/** A validated scenario file, as written (feature values not yet resolved against the preset). */
export type ScenarioDoc = z.output<typeof ScenarioSchema>;

/** Feature overrides as `NAME=value` strings, for resolveFeatures(doc.kernel, overrides) in presets.ts. */
export function featureOverrides(doc: ScenarioDoc): string[] {
  const out: string[] = [];
  for (const n of FEATURE_NAMES) {
    const v = doc.features?.[n];
    if (v === undefined) continue;
    out.push(`${n}=${typeof v === "boolean" ? (v ? "on" : "off") : v}`);
  }
  return out;
}

/** The JSON Schema (draft 2020-12) published as schema/scenario.schema.json. */
export function scenarioJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ScenarioSchema, { target: "draft-2020-12", io: "input" }) as Record<string, unknown>;
}

/** The exact text of schema/scenario.schema.json. */
export function scenarioJsonSchemaText(): string {
  return `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`;
}
