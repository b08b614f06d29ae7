import { pathToFileURL } from "node:url";
import type { Program } from "../runtime.js";

/**
 * A program that can be rebuilt in another thread: `module` (absolute path or
 * file URL of a JS/TS module) exports `export`, a function (args) => Program, or
 * (args) => { program, overrides } when the run replaces model functions (a
 * variant), sync or async.
 */
export interface ProgramSpec {
  readonly module: string;
  readonly export: string;
  readonly args?: unknown;
}

/** What a spec builds: the program and the model-function overrides its runs use. */
export interface LoadedProgram {
  readonly program: Program;
  readonly overrides?: ReadonlyMap<string, Function>;
}

const cache = new Map<string, LoadedProgram>();
let tsxRegistered = false;

export function specUrl(spec: ProgramSpec): string {
  return spec.module.startsWith("file:") ? spec.module : pathToFileURL(spec.module).href;
}

/** Import the spec's module (registering tsx first for a .ts module) and build the program. */
export async function loadProgram(spec: ProgramSpec): Promise<Program> {
  return (await loadSpec(spec)).program;
}

/** Build what the spec names: the program, and the overrides if the factory returns them. */
export async function loadSpec(spec: ProgramSpec): Promise<LoadedProgram> {
  const key = `${spec.module}#${spec.export}#${JSON.stringify(spec.args ?? null)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const url = specUrl(spec);
  if (/\.[cm]?ts$/.test(url) && !tsxRegistered && !import.meta.url.endsWith(".ts")) {
    // Built code loading a TypeScript model: needs tsx's loader in this thread.
    const api = "tsx/esm/api";
    const { register } = (await import(api)) as { register: () => void };
    register();
    tsxRegistered = true;
  }
  const mod = (await import(url)) as Record<string, unknown>;
  const factory = mod[spec.export];
  if (typeof factory !== "function") {
    throw new Error(`${spec.module} has no exported function '${spec.export}'`);
  }
  const made = await (factory as (args: unknown) => unknown)(spec.args);
  const loaded = asLoaded(made);
  if (loaded === null) {
    throw new Error(
      `${spec.module}#${spec.export}(args) did not return a program (a function) or { program, overrides }`,
    );
  }
  cache.set(key, loaded);
  return loaded;
}

function asLoaded(made: unknown): LoadedProgram | null {
  if (typeof made === "function") return { program: made as Program };
  if (made === null || typeof made !== "object") return null;
  const { program, overrides } = made as { program?: unknown; overrides?: unknown };
  if (typeof program !== "function") return null;
  if (overrides !== undefined && !(overrides instanceof Map)) return null;
  return { program: program as Program, overrides: overrides as ReadonlyMap<string, Function> | undefined };
}
