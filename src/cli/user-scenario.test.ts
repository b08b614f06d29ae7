import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";

/** docs/scenario-api.md's example, checked through the built CLI as a user would. */
function check(env: Record<string, string>): {
  code: number;
  doc: { status: string; complete: boolean; violation: { invariant: string } | null };
} {
  try {
    const out = execFileSync(
      process.execPath,
      ["dist/cli/bin.js", "check", "examples/lookup-vs-free.mjs", "--json"],
      {
        encoding: "utf8",
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    return { code: 0, doc: JSON.parse(out) };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { code: err.status, doc: JSON.parse(err.stdout) };
  }
}

describe("user scenario module (docs/scenario-api.md)", () => {
  it.runIf(existsSync("dist/cli/bin.js"))(
    "is safe with call_rcu and a use-after-free with a direct kfree",
    () => {
      const safe = check({});
      expect(safe.code).toBe(0);
      expect(safe.doc.status).toBe("ok");
      expect(safe.doc.complete).toBe(true);
      const bad = check({ FREE_WITH_RCU: "false" });
      expect(bad.code).toBe(1);
      expect(bad.doc.violation?.invariant).toBe("use-after-free");
    },
  );
});
