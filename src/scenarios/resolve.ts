import { existsSync, readFileSync } from "node:fs";
import { dirname, extname, resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { MachineConfig } from "../kernel/machine.js";
import type { Features } from "../mmu/features.js";
import { INVARIANT_NAMES } from "../mmu/invariants/catalog.js";
import { FeatureError, parseFeatureOverride, resolveFeatures } from "../mmu/presets.js";
import { BUILTIN_SCENARIOS } from "./builtin/index.js";
import type { RunConfig, Scenario, Variant } from "./define.js";
import { suggest } from "./errors.js";
import { scenarioFromDoc } from "./from-doc.js";
import { loadScenarioFile } from "./load.js";
import { variantProblems } from "./validate-variant.js";
import { BUILTIN_VARIANTS } from "./variants/index.js";

/** A bad scenario/variant/feature reference from the user: message only, exit code 2. */
export class ResolveError extends Error {
  override name = "ResolveError";
}

export interface ResolvedScenario {
  readonly scenario: Scenario;
  /** How the user named it (built-in name or path), for replay tokens. */
  readonly ref: string;
  /** Kernel and features the scenario itself asks for (file scenarios). */
  readonly kernel?: string;
  readonly features: readonly string[];
  readonly variant: string | null;
}

const MODULE_EXT = new Set([".ts", ".mts", ".js", ".mjs"]);
const DOC_EXT = new Set([".yaml", ".yml", ".json"]);

function isScenario(x: unknown): x is Scenario {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as Scenario).build === "function" &&
    typeof (x as Scenario).name === "string"
  );
}

function isVariant(x: unknown): x is Variant {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as Variant).name === "string" &&
    typeof (x as Variant).description === "string"
  );
}

let tsxRegistered = false;
let selfRegistered = false;

/**
 * A user's module may live anywhere on disk and still `import … from "tdplab"`: a resolve hook maps
 * that specifier to the public API of the running tdplab (dist/index.js, or src/index.ts when tdplab
 * itself runs from source), whatever node_modules the module's directory has.
 */
async function enableSelfImport(): Promise<void> {
  if (selfRegistered) return;
  selfRegistered = true;
  // Resolved as "./index.js" next to this module's directory, by the rest of the chain: plain Node
  // finds dist/index.js, and tsx (tdplab run from source) maps it to src/index.ts.
  const parent = pathToFileURL(resolvePath(dirname(fileURLToPath(import.meta.url)), "../tdplab.js")).href;
  const hook = `export async function resolve(s, c, next) { return s === "tdplab" ? next("./index.js", { ...c, parentURL: ${JSON.stringify(parent)} }) : next(s, c); }`;
  const { register } = await import("node:module");
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

/** Node 20 cannot load TypeScript; tsx's loader is installed the first time a .ts module is asked for. */
async function enableTypeScript(): Promise<void> {
  if (tsxRegistered || process.execArgv.some((a) => a.includes("tsx"))) return;
  const { register } = await import("tsx/esm/api");
  register();
  tsxRegistered = true;
}

/**
 * Everything importing the module at `path` needs besides the module itself: TypeScript's loader
 * for a .ts module, the "tdplab" resolve hook, and tdplab's public API (which user modules import),
 * so that timing the import times the module's own code.
 */
export async function prepareImports(path: string): Promise<void> {
  if (/\.m?ts$/.test(path)) await enableTypeScript();
  await enableSelfImport();
  await import("../index.js");
}

async function importModule(path: string, what: string): Promise<Record<string, unknown>> {
  const abs = resolvePath(path);
  if (!existsSync(abs)) throw new ResolveError(`${what} file '${path}' does not exist`);
  if (/\.m?ts$/.test(abs)) await enableTypeScript();
  await enableSelfImport();
  try {
    return (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    // Node does not say where a module fails to parse (and a .ts file outside an ESM package
    // fails for another reason first); esbuild, tsx's parser, does.
    const at = await syntaxErrorAt(abs);
    if (at !== null) throw new ResolveError(`cannot load ${what} module: ${at}`);
    const hint =
      extname(abs) === ".ts"
        ? ' (a .ts module must be ESM: name it .mts, or keep it in a package with "type": "module")'
        : "";
    throw new ResolveError(`cannot load ${what} module '${path}': ${msg}${hint}`);
  }
}

/** Where `file` fails to parse, as "FILE:LINE:COL: message", or null if it parses. */
async function syntaxErrorAt(file: string): Promise<string | null> {
  const { transform } = await import("esbuild");
  const loader = /\.m?ts$/.test(file) ? "ts" : "js";
  try {
    await transform(readFileSync(file, "utf8"), { loader, format: "esm", sourcefile: file });
    return null;
  } catch (e) {
    const first = (e as { errors?: { text: string; location: { line: number; column: number } | null }[] })
      .errors?.[0];
    if (first === undefined) return null;
    const loc = first.location;
    return loc === null ? `${file}: ${first.text}` : `${file}:${loc.line}:${loc.column + 1}: ${first.text}`;
  }
}

/** Find a scenario by built-in name, scenario file (.yaml/.yml/.json) or module (.ts/.js/.mjs). */
export async function resolveScenario(ref: string): Promise<ResolvedScenario> {
  const builtin = BUILTIN_SCENARIOS.find((s) => s.name === ref);
  if (builtin) return { scenario: builtin, ref, features: [], variant: null };
  const ext = extname(ref).toLowerCase();
  if (DOC_EXT.has(ext)) {
    const d = scenarioFromDoc(loadScenarioFile(ref));
    return { scenario: d.scenario, ref, kernel: d.kernel, features: d.features, variant: d.variant };
  }
  if (MODULE_EXT.has(ext)) {
    const mod = await importModule(ref, "scenario");
    const s = mod.default ?? mod.scenario;
    if (!isScenario(s)) {
      throw new ResolveError(
        `scenario module '${ref}' must export a defineScenario(...) result as default or 'scenario'`,
      );
    }
    for (const name of s.invariants ?? []) {
      if (name !== "all" && !INVARIANT_NAMES.includes(name)) {
        const hint = suggest(name, INVARIANT_NAMES);
        throw new ResolveError(
          `scenario module '${ref}': invariants names '${name}', which does not exist${hint ? ` (did you mean '${hint}'?)` : ""}`,
        );
      }
    }
    return { scenario: s, ref, features: [], variant: null };
  }
  const known = BUILTIN_SCENARIOS.map((s) => s.name).join(", ");
  throw new ResolveError(
    `unknown scenario '${ref}'; built-in scenarios: ${known}; or give a .yaml/.json/.ts/.js file`,
  );
}

/** Find a variant by built-in name or module path. */
export async function resolveVariant(ref: string | null | undefined): Promise<Variant | null> {
  if (ref === null || ref === undefined || ref === "") return null;
  const builtin = BUILTIN_VARIANTS.find((v) => v.name === ref);
  if (builtin) return builtin;
  if (MODULE_EXT.has(extname(ref).toLowerCase())) {
    const mod = await importModule(ref, "variant");
    const v = mod.default ?? mod.variant;
    if (!isVariant(v))
      throw new ResolveError(
        `variant module '${ref}' must export a defineVariant(...) result as default or 'variant'`,
      );
    const problems = variantProblems(v);
    if (problems.length > 0) throw new ResolveError(`${ref}: ${problems.join(`\n${ref}: `)}`);
    return v;
  }
  throw new ResolveError(
    `unknown variant '${ref}'; built-in variants: ${BUILTIN_VARIANTS.map((v) => v.name).join(", ")}; or give a .ts/.js module`,
  );
}

export interface ConfigInput {
  readonly kernel?: string;
  readonly features?: readonly string[];
  readonly machine?: Partial<MachineConfig>;
  readonly params?: Readonly<Record<string, number>>;
}

/** Kernel preset + scenario's features + variant's features + the user's --feature flags, in that order. */
export function runConfigFor(s: ResolvedScenario, variant: Variant | null, input: ConfigInput): RunConfig {
  const kernel = input.kernel ?? s.kernel ?? s.scenario.defaultKernel ?? "v6.15";
  let features: Features;
  try {
    features = resolveFeatures(kernel, s.features);
    if (variant?.features) features = { ...features, ...variant.features };
    for (const flag of input.features ?? [])
      features = { ...features, ...parseFeatureOverride(flag) } as Features;
  } catch (e) {
    if (e instanceof FeatureError) throw new ResolveError(e.message);
    throw e;
  }
  const params: Record<string, number> = {};
  for (const [k, p] of Object.entries(s.scenario.params ?? {})) params[k] = p.default;
  for (const [k, v] of Object.entries(input.params ?? {})) {
    const p = s.scenario.params?.[k];
    if (!p) throw new ResolveError(`scenario ${s.scenario.name} has no parameter '${k}'`);
    if (!Number.isFinite(v) || v < p.min || v > p.max)
      throw new ResolveError(`parameter ${k} must be in [${p.min}, ${p.max}], got ${v}`);
    params[k] = v;
  }
  return { kernel, features, machine: { ...(s.scenario.machine ?? {}), ...(input.machine ?? {}) }, params };
}
