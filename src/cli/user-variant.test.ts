import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
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
});
