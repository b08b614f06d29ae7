import { z } from "zod";
import { TraceState } from "./state-schema.js";

/**
 * The versioned trace document: what `check --out` writes, `replay` reads and
 * the browser explorer displays. One schema for all of them.
 */
export const TRACE_SCHEMA_VERSION = 1;

export const TraceTask = z.strictObject({
  id: z.number().int().nonnegative(),
  name: z.string(),
  lane: z.string(),
  /** The task that spawned it (-1: the scenario's own tasks). */
  parent: z.number().int().min(-1).optional(),
  /** The step of `parent` during which it was spawned (-1: during setup), e.g. a queue_work(). */
  spawnStep: z.number().int().min(-1).optional(),
});

export const TraceStep = z.strictObject({
  /** Step index. */
  i: z.number().int().nonnegative(),
  task: z.number().int().nonnegative(),
  kind: z.enum(["read", "write", "rmw", "acquire", "release", "wait"]),
  obj: z.number().int().nonnegative(),
  /** Kernel function that performed the access. */
  fn: z.string(),
  step: z.string(),
});

export const TraceViolation = z.strictObject({
  invariant: z.string(),
  message: z.string(),
  task: z.number().int(),
  taskName: z.string(),
  step: z.number().int(),
  fn: z.string(),
  details: z.record(z.string(), z.unknown()),
});

export const TraceRun = z.strictObject({
  scenario: z.string(),
  kernel: z.string(),
  features: z.array(z.string()),
  variant: z.string().nullable(),
  strategy: z.string().optional(),
  seed: z.string().optional(),
});

export const TraceDoc = z.strictObject({
  schemaVersion: z.literal(TRACE_SCHEMA_VERSION),
  tool: z.strictObject({ name: z.literal("tdplab"), version: z.string() }),
  run: TraceRun,
  replay: z.string(),
  tasks: z.array(TraceTask),
  objects: z.array(z.string()),
  steps: z.array(TraceStep),
  violation: TraceViolation.nullable(),
  /** Optional model state after each step (index-aligned with steps), for the explorer. */
  states: z.array(TraceState).optional(),
  /** The model state before the first step, when `states` is present. */
  initialState: TraceState.optional(),
});

export type TraceDoc = z.infer<typeof TraceDoc>;
export type TraceRunInfo = z.infer<typeof TraceRun>;
