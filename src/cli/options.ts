import { parseSeed } from "../engine/rng.js";
import {
  type MachineConfig,
  MEMORY_MODELS,
  type MemoryModel,
  type PreemptionModel,
} from "../kernel/machine.js";
import { UsageError } from "./exit-codes.js";

/** Parse a non-negative integer flag; bad input is a usage error naming the flag. */
export function intFlag(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min)
    throw new UsageError(`${name} takes an integer >= ${min}, not '${v}'`);
  return Number(v);
}

export function seedFlag(v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  try {
    return parseSeed(v);
  } catch (e) {
    throw new UsageError(`--seed: ${(e as Error).message}`);
  }
}

const PREEMPTION: readonly PreemptionModel[] = ["none", "voluntary", "full"];

export function machineFlags(o: {
  preemption?: string;
  needReschedBudget?: string;
  memoryModel?: string;
  holdBound?: string;
}): Partial<MachineConfig> {
  const m: {
    preemption?: PreemptionModel;
    needResched?: "choice";
    needReschedBudget?: number;
    memoryModel?: MemoryModel;
    holdBound?: number;
  } = {};
  if (o.memoryModel !== undefined) {
    if (o.memoryModel === "lkmm")
      throw new UsageError(
        "--memory-model lkmm: check does not run whole protocols under the LKMM yet (tdplab litmus --model lkmm does, on litmus tests); use sc or tso",
      );
    if (!MEMORY_MODELS.includes(o.memoryModel as MemoryModel))
      throw new UsageError(`--memory-model takes ${MEMORY_MODELS.join("|")}, not '${o.memoryModel}'`);
    m.memoryModel = o.memoryModel as MemoryModel;
  }
  if (o.preemption !== undefined) {
    if (!PREEMPTION.includes(o.preemption as PreemptionModel)) {
      throw new UsageError(`--preemption takes none|voluntary|full, not '${o.preemption}'`);
    }
    m.preemption = o.preemption as PreemptionModel;
  }
  const hold = intFlag("--hold-bound", o.holdBound, 1);
  if (hold !== undefined) m.holdBound = hold;
  const b = intFlag("--need-resched-budget", o.needReschedBudget);
  if (b !== undefined) {
    m.needResched = "choice";
    m.needReschedBudget = b;
  }
  return m;
}

/** Collect repeatable flags. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}
