import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("tdplab … | head", () => {
  it("exits quietly when the reader of its output goes away", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/bin.ts", "check", "protocol-v5.18", "--jsonl", "--time-limit", "3"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    // Read one chunk, then close the pipe as `head -1` does.
    child.stdout.once("data", () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect([0, 1]).toContain(code);
  }, 60_000);
});
