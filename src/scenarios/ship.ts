import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { z } from "zod";
import type { ProgramSpec } from "../engine/explore/program-spec.js";
import { contentHashOf, isBuiltinScenarioName, isBuiltinVariantName } from "./content-hash.js";
import type { RunConfig } from "./define.js";
import { PROGRAM_FACTORY_MODULE, type ScenarioProgramArgs } from "./program-factory.js";

/**
 * A scenario and variant as they travel to the workers of a queue on other machines: built-ins
 * by name (a worker of the same tdplab version has the same ones), the user's files by content
 * with the hash of that content, which the coordinator computes when it reads the file and every
 * worker checks before it writes the file to its disk. A module is shipped alone: one that imports
 * other files of the user's by relative path cannot run on a worker (imports of "tdplab" work).
 */
export interface ShippedFile {
  readonly name: string;
  readonly hash: string;
  readonly base64: string;
}

export interface ShippedProgram {
  readonly scenario: string | ShippedFile;
  readonly variant: string | ShippedFile | null;
  readonly config: RunConfig;
}

/** A program payload that failed its checks on a worker. */
export class ShipError extends Error {
  override name = "ShipError";
}

function shipFile(path: string): ShippedFile {
  const bytes = readFileSync(path);
  return { name: basename(path), hash: contentHashOf(bytes), base64: bytes.toString("base64") };
}

/** The payload for `args` (absolute paths or built-in names, as runCheckParallel makes them). */
export function shipProgram(args: ScenarioProgramArgs): ShippedProgram {
  const { scenario, variant } = args;
  return {
    scenario: isBuiltinScenarioName(scenario) ? scenario : shipFile(scenario),
    variant: variant === null || isBuiltinVariantName(variant) ? variant : shipFile(variant),
    config: args.config,
  };
}

const File = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^/\\]+$/, "a base name")
    .refine((n) => n !== "." && n !== "..", "a base name"),
  hash: z.string().regex(/^[0-9a-f]{16}$/),
  base64: z.string(),
});
const Payload = z.strictObject({
  scenario: z.union([z.string(), File]),
  variant: z.union([z.string(), File, z.null()]),
  config: z.strictObject({
    kernel: z.string(),
    features: z.record(z.string(), z.unknown()),
    machine: z.record(z.string(), z.unknown()),
    params: z.record(z.string(), z.number()),
  }),
});

/** Write a shipped file under `dir` by its hash (once per content), after checking the hash. */
function land(f: z.infer<typeof File>, dir: string): string {
  const bytes = Buffer.from(f.base64, "base64");
  const got = contentHashOf(bytes);
  if (got !== f.hash) throw new ShipError(`${f.name}: content hash ${got}, the coordinator sent ${f.hash}`);
  const at = join(dir, f.hash);
  const path = join(at, f.name);
  if (existsSync(path) && contentHashOf(readFileSync(path)) === f.hash) return path;
  mkdirSync(at, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
  return path;
}

/**
 * The spec a worker's threads load for a shipped program: user files written under `dir` (an
 * ES-module package, so a .ts or .js module loads as the coordinator loaded it).
 */
export function landProgram(payload: unknown, dir: string): ProgramSpec {
  const p = Payload.safeParse(payload);
  if (!p.success) {
    const i = p.error.issues[0];
    throw new ShipError(`program payload: ${i.path.join(".") || "(document)"}: ${i.message}`);
  }
  mkdirSync(dir, { recursive: true });
  const pkg = join(dir, "package.json");
  if (!existsSync(pkg)) writeFileSync(pkg, '{ "type": "module" }\n');
  const { scenario, variant, config } = p.data;
  if (typeof scenario === "string" && !isBuiltinScenarioName(scenario))
    throw new ShipError(`no built-in scenario '${scenario}' in this tdplab`);
  if (typeof variant === "string" && !isBuiltinVariantName(variant))
    throw new ShipError(`no built-in variant '${variant}' in this tdplab`);
  const args: ScenarioProgramArgs = {
    scenario: typeof scenario === "string" ? scenario : land(scenario, dir),
    variant: variant === null || typeof variant === "string" ? variant : land(variant, dir),
    config: config as unknown as RunConfig,
  };
  return { module: PROGRAM_FACTORY_MODULE, export: "scenarioProgram", args };
}
