import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, text: `${out.stdout.join("\n")}\n${out.stderr.join("\n")}` };
}

/** A corruption of a string: replace, delete or insert characters, or cut it. */
const corruption = fc.array(
  fc.record({
    kind: fc.constantFrom("replace", "delete", "insert", "cut"),
    at: fc.nat(),
    ch: fc.constantFrom("A", "z", "0", "-", "_", ".", "=", "{", '"', "é", " "),
  }),
  { minLength: 1, maxLength: 4 },
);

function corrupt(s: string, edits: { kind: string; at: number; ch: string }[]): string {
  let t = s;
  for (const e of edits) {
    const i = t.length === 0 ? 0 : e.at % t.length;
    if (e.kind === "replace") t = t.slice(0, i) + e.ch + t.slice(i + 1);
    else if (e.kind === "delete") t = t.slice(0, i) + t.slice(i + 1);
    else if (e.kind === "insert") t = t.slice(0, i) + e.ch + t.slice(i);
    else t = t.slice(0, i);
  }
  return t;
}

function sameJson(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

describe("corrupted replay strings and checkpoints", () => {
  let replay = "";
  let checkpoint = "";
  const dir = mkdtempSync(join(tmpdir(), "tdplab-corrupt-"));
  const base = ["check", "seed-001-root-walk", "--kernel", "v5.18", "--strategy", "dpor"];

  beforeAll(async () => {
    const bad = await run(
      "check",
      "seed-001-root-walk",
      "--kernel",
      "v5.18",
      "--variant",
      "next-root-terminate-on-invalid",
      "--strategy",
      "dpor",
    );
    replay = /replay: (tdp1\.\S+)/.exec(bad.text)![1];
    await run(...base, "--max-executions", "5", "--out", dir);
    checkpoint = readFileSync(join(dir, "seed-001-root-walk.checkpoint.json"), "utf8");
  }, 60_000);

  it("a corrupted replay string is the user's error or a replay, never an internal error", async () => {
    await fc.assert(
      fc.asyncProperty(corruption, async (edits) => {
        const r = await run("replay", corrupt(replay, edits));
        expect([0, 1, 2]).toContain(r.code);
        expect(r.text).not.toMatch(/\n\s+at |internal error/);
      }),
      { numRuns: 150, seed: 5 },
    );
  }, 120_000);

  it("a corrupted checkpoint is refused with exit 2", async () => {
    const file = join(dir, "c.json");
    await fc.assert(
      fc.asyncProperty(corruption, async (edits) => {
        const text = corrupt(checkpoint, edits);
        // Whitespace-only changes leave the same document, which resumes.
        fc.pre(!sameJson(text, checkpoint));
        writeFileSync(file, text);
        const r = await run(...base, "--resume", file);
        expect(r.code).toBe(2);
        expect(r.text).not.toMatch(/\n\s+at |internal error/);
      }),
      { numRuns: 150, seed: 6 },
    );
  }, 120_000);
});
