import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { INVARIANT_NAMES } from "./catalog.js";

/** Non-test sources of the model layers (and the runtime, which reports deadlock and livelock). */
function sources(): string[] {
  const out: string[] = ["src/engine/runtime.ts"];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".ts") && !p.endsWith(".test.ts") && !p.endsWith("catalog.ts")) out.push(p);
    }
  };
  for (const d of ["src/kernel", "src/mmu", "src/scenarios"]) walk(d);
  return out;
}

describe("the invariant catalog", () => {
  const text = sources().map((f) => readFileSync(f, "utf8"));
  const reported = new Set<string>();
  for (const t of text) {
    for (const m of t.matchAll(/invariant: "([A-Za-z0-9_-]+)"/g)) reported.add(m[1]);
    // The root and rmap invariants are reported through name constants.
    for (const m of t.matchAll(/: "((?:inv\d+|L\d)-[a-z0-9-]+)",/g)) reported.add(m[1]);
  }

  it("names every invariant the model reports", () => {
    expect(reported.size).toBeGreaterThan(30);
    expect([...reported].filter((n) => !INVARIANT_NAMES.includes(n)).sort()).toEqual([]);
  });

  it("names nothing the model never reports", () => {
    const all = text.join("\n");
    expect(INVARIANT_NAMES.filter((n) => !all.includes(`"${n}"`))).toEqual([]);
  });
});

describe("docs/invariants.md", () => {
  it("lists every invariant of the catalog", () => {
    const doc = readFileSync("docs/invariants.md", "utf8");
    expect(INVARIANT_NAMES.filter((n) => !doc.includes(`| \`${n}\` |`))).toEqual([]);
  });
});
