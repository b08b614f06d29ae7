import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The README and docs stand on their own in a user's clone (issue 13): no pointer to the files
 * the project was started from, which a clone does not have, and every relative link resolves.
 */
const FILES = [
  "README.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .map((f) => join("docs", f)),
];

describe("README and docs", () => {
  it("name no file outside the repository", () => {
    const outside =
      /\.\.\/shared|perf-figures\.md|kernel-protocol\.md|seed-variants\.md|checker-anchors\.md|ts-ecosystem\.md|\/work\//;
    const found = FILES.flatMap((f) =>
      readFileSync(f, "utf8")
        .split("\n")
        .map((line, i) => ({ f, i: i + 1, line }))
        .filter((l) => outside.test(l.line))
        .map((l) => `${l.f}:${l.i}: ${l.line.trim()}`),
    );
    expect(found).toEqual([]);
  });

  it("link only to files that exist", () => {
    const broken: string[] = [];
    for (const f of FILES) {
      for (const m of readFileSync(f, "utf8").matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(dirname(f), target))) broken.push(`${f}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("docs/seeds.md covers every seed thread and names only scenarios and variants that exist", async () => {
    const { BUILTIN_VARIANTS } = await import("../src/scenarios/variants/index.js");
    const { BUILTIN_SCENARIOS } = await import("../src/scenarios/builtin/index.js");
    const doc = readFileSync("docs/seeds.md", "utf8");
    for (const t of ["000", "001", "002", "003", "004"]) expect(doc).toContain(`## ${t}:`);
    const names = new Set([...BUILTIN_VARIANTS, ...BUILTIN_SCENARIOS].map((x) => x.name));
    const named = [
      ...doc.matchAll(/`((?:seed|protocol|rmap|put|next|root|uninit|zap|invalidate|mark)-[a-z0-9.-]+)`/g),
    ].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((n) => !names.has(n))).toEqual([]);
  });
});
