import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { z } from "zod";
import type { Checkpoint } from "../engine/explore/types.js";
import { MODEL_VERSION, TOOL_VERSION } from "../version.js";
import { type CheckRequest, replayHeaderFor } from "./check.js";

/**
 * A checkpoint on disk: the exploration state, and the identity of the run it belongs to. Resuming
 * it under anything else (another scenario, file content, kernel, feature, variant, parameter,
 * strategy or bound, or another tdplab) would mix two explorations and could call the mix
 * complete, so every difference is refused by name. A digest over the whole document catches
 * corruption and hand edits.
 */
export class CheckpointError extends Error {}

export interface RunIdentity {
  readonly scenario: string;
  readonly scenarioHash: string | null;
  readonly kernel: string;
  /** Every feature value of the run, resolved (preset, scenario, variant, --feature). */
  readonly features: Readonly<Record<string, boolean | string>>;
  readonly variant: string | null;
  readonly variantHash: string | null;
  readonly params: Readonly<Record<string, number>>;
  readonly machine: Readonly<Record<string, unknown>>;
  readonly strategy: string;
  readonly maxSteps: number | null;
  readonly preemptionBound: number | null;
  readonly pctDepth: number | null;
  /** The portfolio's samples depend on the seed. */
  readonly seed: string | null;
  readonly plainDependence: boolean;
}

export function identityOf(req: CheckRequest): RunIdentity {
  const h = replayHeaderFor(req);
  const e = req.explore;
  const strategy = e.strategy ?? "dpor";
  return {
    scenario: h.s,
    scenarioHash: h.sh ?? null,
    kernel: req.config.kernel,
    features: { ...req.config.features },
    variant: h.v ?? null,
    variantHash: h.vh ?? null,
    params: { ...req.config.params },
    machine: { ...req.config.machine },
    strategy,
    maxSteps: e.maxSteps ?? null,
    preemptionBound: strategy === "bounded" ? (e.preemptionBound ?? 2) : null,
    pctDepth: strategy === "portfolio" ? (e.pctDepth ?? 3) : null,
    seed: strategy === "portfolio" ? String(e.seed ?? 0n) : null,
    plainDependence: e.plainDependence === true,
  };
}

const count = z.int().min(0);
const CheckpointShape = z.object({
  version: z.literal(1),
  strategy: z.enum(["dpor", "portfolio", "bounded", "exhaustive", "pct", "random"]),
  executions: count,
  blockedExecutions: count,
  steps: count,
  elapsedMs: z.number().min(0),
  cutBy: z.array(z.string()),
  stats: z.record(z.string(), z.unknown()),
  state: z.unknown().refine((s) => s !== null && typeof s === "object", "must be an object"),
});

const FileShape = z.strictObject({
  format: z.literal("tdplab-checkpoint"),
  tool: z.string(),
  model: z.string(),
  identity: z.record(z.string(), z.unknown()),
  checkpoint: CheckpointShape,
  digest: z.string().regex(/^[0-9a-f]{64}$/),
});

function digestOf(body: unknown): string {
  return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

export function writeCheckpointFile(path: string, req: CheckRequest, checkpoint: Checkpoint): void {
  const body = {
    format: "tdplab-checkpoint",
    tool: TOOL_VERSION,
    model: MODEL_VERSION,
    identity: identityOf(req),
    checkpoint,
  };
  // Written beside and renamed over: a kill in the middle of the write leaves the previous one.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ...body, digest: digestOf(body) })}\n`);
  renameSync(tmp, path);
}

function show(v: unknown): string {
  return v === null || v === undefined ? "none" : typeof v === "object" ? JSON.stringify(v) : String(v);
}

/** The fields in which two identities differ, as "field: checkpoint X, this run Y". */
export function identityDiff(saved: Readonly<Record<string, unknown>>, now: RunIdentity): string[] {
  const out: string[] = [];
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  for (const k of keys) {
    const a = saved[k];
    const b = (now as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${k}: checkpoint ${show(a)}, this run ${show(b)}`);
  }
  return out;
}

/** Read a checkpoint for `req`, or explain (CheckpointError) why it cannot resume this run. */
export function readCheckpointFile(path: string, req: CheckRequest): Checkpoint {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CheckpointError(`--resume: cannot read checkpoint '${path}': ${(e as Error).message}`);
  }
  const parsed = FileShape.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new CheckpointError(
      `--resume: '${path}' is not a tdplab checkpoint: ${i.path.join(".") || "(document)"}: ${i.message}`,
    );
  }
  const { digest, ...body } = parsed.data;
  if (digestOf(body) !== digest) {
    throw new CheckpointError(
      `--resume: '${path}' was changed after tdplab wrote it (its digest does not match)`,
    );
  }
  if (body.tool !== TOOL_VERSION || body.model !== MODEL_VERSION) {
    throw new CheckpointError(
      `--resume: '${path}' was written by tdplab ${body.tool} (model ${body.model}); this is ${TOOL_VERSION} (model ${MODEL_VERSION})`,
    );
  }
  const diff = identityDiff(body.identity, identityOf(req));
  if (diff.length > 0) {
    throw new CheckpointError(`--resume: '${path}' is a checkpoint of another run:\n  ${diff.join("\n  ")}`);
  }
  return body.checkpoint as unknown as Checkpoint;
}
