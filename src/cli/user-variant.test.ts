import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * docs/variants.md's worked example, run as users run it: the built CLI
 * loading a variant module that imports "tdplab". Needs the build (npm ci
 * runs it through `prepare`).
 */
describe("user variant module (docs/variants.md)", () => {
  it.runIf(existsSync("dist/cli/bin.js"))(
    "reproduces seed 003's use-after-free from examples/put-root-dec-not-one.mjs",
    () => {
      let code = 0;
      let stdout = "";
      try {
        stdout = execFileSync(
          process.execPath,
          [
            "dist/cli/bin.js",
            "check",
            "seed-003-put-root",
            "--kernel",
            "v5.18",
            "--variant",
            "examples/put-root-dec-not-one.mjs",
            "--json",
          ],
          { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
        );
      } catch (e) {
        const err = e as { status: number; stdout: string };
        code = err.status;
        stdout = err.stdout;
      }
      expect(code).toBe(1);
      const doc = JSON.parse(stdout);
      expect(doc.status).toBe("violation");
      expect(["refcount", "use-after-free"]).toContain(doc.violation.invariant);
      expect(doc.violation.replay).toMatch(/^tdp1\./);
    },
  );

  for (const [how, argv] of [
    ["the built CLI", ["dist/cli/bin.js"]],
    ["tdplab from source", ["--import", "tsx", "src/cli/bin.ts"]],
  ] as const) {
    it.runIf(how !== "the built CLI" || existsSync("dist/cli/bin.js"))(
      `a variant module anywhere on disk imports "tdplab" (${how})`,
      () => {
        const dir = mkdtempSync(join(tmpdir(), "tdplab-outside-"));
        for (const ext of ["mjs", "mts"]) {
          const file = join(dir, `v.${ext}`);
          copyFileSync("examples/put-root-dec-not-one.mjs", file);
          const r = spawnSync(
            process.execPath,
            [
              ...argv,
              "check",
              "seed-003-put-root",
              "--kernel",
              "v5.18",
              "--variant",
              file,
              "--strategy",
              "dpor",
            ],
            { encoding: "utf8" },
          );
          expect(r.stderr).not.toContain("Cannot find package");
          expect(r.status, r.stderr).toBe(1);
          expect(r.stdout).toContain("invariant: refcount");
        }
      },
      60_000,
    );
  }
});
