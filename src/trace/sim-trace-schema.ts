import { z } from "zod";

/**
 * The explorer's document for timed simulator runs (`tdplab simulate --trace FILE`): per run, its
 * tasks and the simulator's timeline on the virtual clock: every executed step as a span (the CPU
 * is busy from startNs to endNs; the access takes effect at startNs), and every stretch a task was
 * alive without executing (spinning on a CPU, sleeping off-CPU, or runnable waiting for a CPU).
 * The browser explorer draws it on a virtual-time axis with lock hold and wait spans. Versioned on
 * its own: `kind: "sim"` tells it apart from a checker trace (TraceDoc), which has no `kind`.
 */
export const SIM_TRACE_SCHEMA_VERSION = 1;

const ns = z.number().finite().nonnegative();

export const SimTraceTask = z.strictObject({
  id: z.number().int().nonnegative(),
  name: z.string(),
  lane: z.string(),
  /** The CPU it is bound to, or null for a task any CPU may run. */
  cpu: z.number().int().nullable(),
});

export const SimTraceStep = z.strictObject({
  task: z.number().int().nonnegative(),
  /** The CPU it ran on. */
  cpu: z.number().int(),
  startNs: ns,
  endNs: ns,
  /** The access kind (read, write, rmw, acquire, release, wait). */
  kind: z.string(),
  /** Kernel function that performed the access. */
  fn: z.string(),
  step: z.string(),
  objName: z.string(),
  /** Steps it stands for (a bulk access stands for a whole recorded block). */
  weight: z.number().int().positive(),
});

export const SimTraceWait = z.strictObject({
  task: z.number().int().nonnegative(),
  /** The CPU it spun on, or -1 (asleep, or waiting for a CPU). */
  cpu: z.number().int(),
  startNs: ns,
  endNs: ns,
  kind: z.enum(["spin", "sleep", "runqueue"]),
  /** The access it was waiting to make. */
  fn: z.string(),
  step: z.string(),
  objName: z.string(),
});

export const SimTraceRun = z.strictObject({
  label: z.string(),
  /** Kernel preset of the run, or null when the caller did not say. */
  kernel: z.string().nullable(),
  /** End of the run on the virtual clock. */
  virtualNs: ns,
  status: z.string(),
  tasks: z.array(SimTraceTask),
  steps: z.array(SimTraceStep),
  waits: z.array(SimTraceWait),
});

export const SimTraceDoc = z.strictObject({
  schemaVersion: z.literal(SIM_TRACE_SCHEMA_VERSION),
  kind: z.literal("sim"),
  tool: z.strictObject({ name: z.literal("tdplab"), version: z.string() }),
  scenario: z.string(),
  runs: z.array(SimTraceRun),
});

export type SimTraceDoc = z.infer<typeof SimTraceDoc>;
export type SimTraceRun = z.infer<typeof SimTraceRun>;
export type SimTraceStep = z.infer<typeof SimTraceStep>;
export type SimTraceWait = z.infer<typeof SimTraceWait>;
