import { pathToFileURL } from "node:url";
import type { Program } from "../runtime.js";

/**
 * A program that can be rebuilt in another thread: `module` (absolute path or
 * file URL of a JS/TS module) exports `export`, a function (args) => Program.
 */
export interface ProgramSpec {
  readonly module: string;
  readonly export: string;
  readonly args?: unknown;
}

const cache = new Map<string, Program>();
let tsxRegistered = false;

export function specUrl(spec: ProgramSpec): string {
  return spec.module.startsWith("file:") ? spec.module : pathToFileURL(spec.module).href;
}

/** Import the spec's module (registering tsx first for a .ts module) and build the program. */
export async function loadProgram(spec: ProgramSpec): Promise<Program> {
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
  const program = (factory as (args: unknown) => unknown)(spec.args);
  if (typeof program !== "function") {
    throw new Error(`${spec.module}#${spec.export}(args) did not return a program (a function)`);
  }
  cache.set(key, program as Program);
  return program as Program;
}
