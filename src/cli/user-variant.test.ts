import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** The built CLI, as a user runs it. */
function builtCli(...args: string[]) {
  return spawnSync(process.execPath, ["dist/cli/bin.js", ...args], { encoding: "utf8" });
}

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
      // Two checks, each importing the module first in a watched thread (a top-level loop is caught there).
      120_000,
    );
  }

  it.runIf(existsSync("dist/cli/bin.js"))(
    "--jobs 2: every worker thread loads a variant module from outside the checkout, and a YAML scenario",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "tdplab-jobs-"));
      const file = join(dir, "v.mjs");
      copyFileSync("examples/put-root-dec-not-one.mjs", file);
      const seed3 = ["check", "seed-003-put-root", "--kernel", "v5.18", "--strategy", "dpor"];
      const check = (...extra: string[]) => builtCli(...seed3, ...extra);
      const one = check("--variant", file, "--json");
      const two = check("--variant", file, "--json", "--jobs", "2");
      expect(two.status, two.stderr).toBe(1);
      const [a, b] = [JSON.parse(one.stdout), JSON.parse(two.stdout)];
      expect(b.violation.invariant).toBe(a.violation.invariant);
      expect(b.stats.overridesRan).toEqual(["kvm_tdp_mmu_put_root"]);
      // A whole exploration with the module's overrides: the same complete count as one thread.
      const yaml = builtCli(
        "check",
        "scenarios/examples/teardown-v6.4.yaml",
        "--max-executions",
        "300",
        "--jobs",
        "2",
      );
      expect(yaml.status, yaml.stderr).toBe(0);
    },
    120_000,
  );
});
