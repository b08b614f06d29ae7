import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TraceDoc } from "../trace/schema.js";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

describe("tdplab CLI", () => {
  it("prints help with examples and exit codes", async () => {
    const r = await run("--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Examples:");
    expect(r.stdout).toContain("2 usage or input error");
  });

  it("rejects unknown commands and bad flags with exit 2 and no stack trace", async () => {
    for (const argv of [
      ["bogus"],
      ["check", "seed-004-empty-rmap", "--strategy", "magic"],
      ["check", "no-such-scenario"],
      ["check", "seed-004-empty-rmap", "--kernel", "v9.99"],
      ["check", "seed-004-empty-rmap", "--feature", "nonsense=on"],
      ["check", "seed-004-empty-rmap", "--variant", "no-such-variant"],
      ["check", "seed-004-empty-rmap", "--max-executions", "-3"],
      ["check", "seed-004-empty-rmap", "--seed", "0xZZ"],
      ["check", "seed-004-empty-rmap", "--time-limit", "0"],
      ["check", "seed-004-empty-rmap", "--json", "--jsonl"],
      ["check", "seed-004-empty-rmap", "--preemptions", "2"],
      ["check", "seed-004-empty-rmap", "--strategy", "dpor", "--pct-depth", "2"],
      ["check", "seed-004-empty-rmap", "seed-000-teardown", "--resume", "x.json"],
      ["replay", "tdp1.!!!.AA"],
      ["replay", "v9.whatever"],
    ]) {
      const r = await run(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.stderr + r.stdout, argv.join(" ")).not.toMatch(/\n\s+at /);
    }
  });

  it("names file, line and field for a bad scenario file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-"));
    const f = join(dir, "bad.yaml");
    writeFileSync(
      f,
      "schemaVersion: 1\nname: bad\nkernel: v5.18\nvm:\n  rootLevel: 4\n  ptesPerTabel: 2\ntasks: []\n",
    );
    const r = await run("check", f);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: vm\.ptesPerTabel: unknown key/);
  });

  it("check finds a violation (exit 1), prints a replayable counterexample, and replay reproduces it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-"));
    const r = await run(
      "check",
      "seed-004-empty-rmap",
      "--variant",
      "rmap-unlock-readonly-writes-zero",
      "--strategy",
      "dpor",
      "--out",
      dir,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("race diagram:");
    expect(r.stdout).toContain("inv19-rmap-lock-lost-entry");
    const replay = /replay: (tdp1\.\S+)/.exec(r.stdout)![1];
    const again = await run("replay", replay, "--json");
    expect(again.code).toBe(1);
    const doc = TraceDoc.parse(JSON.parse(again.stdout));
    expect(doc.violation?.invariant).toBe("inv19-rmap-lock-lost-entry");
    // The trace file written by --out replays to the same document, byte for byte.
    const file = join(dir, "seed-004-empty-rmap.trace.json");
    const fromFile = await run("replay", file, "--json");
    expect(fromFile.stdout).toBe(again.stdout);
    expect(TraceDoc.parse(JSON.parse(readFileSync(file, "utf8"))).replay).toBe(replay);
  });

  it("a replay of a scenario file needs that file, unchanged; one that does not fit is exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-replay-"));
    const f = join(dir, "mine.yaml");
    const yaml = readFileSync("scenarios/examples/teardown-v6.4.yaml", "utf8");
    writeFileSync(f, yaml);
    const r = await run("check", f, "--variant", "uninit-invalidate-unprotected", "--strategy", "dpor");
    expect(r.code).toBe(1);
    const replay = /replay: (tdp1\.\S+)/.exec(r.stdout)![1];
    // The string names the file by base name and hash, never by a path from this machine.
    expect(Buffer.from(replay.split(".")[1], "base64url").toString()).not.toContain(dir);
    const without = await run("replay", replay);
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(
      /recorded on the scenario file 'mine\.yaml' \(sha256 [0-9a-f]{16}\).*--scenario FILE/,
    );
    expect((await run("replay", replay, "--scenario", f)).code).toBe(1);
    writeFileSync(f, `${yaml}\n# edited\n`);
    const edited = await run("replay", replay, "--scenario", f);
    expect(edited.code).toBe(2);
    expect(edited.stderr).toContain("is not the file this replay was recorded on");
    // A built-in replay whose header is edited to another kernel does not fit: choices are left over.
    const builtin = await run(
      "check",
      "seed-000-teardown",
      "--kernel",
      "v6.4",
      "--variant",
      "uninit-invalidate-unprotected",
      "--strategy",
      "dpor",
    );
    const token = /replay: (tdp1\.\S+)/.exec(builtin.stdout)![1];
    const [, head, body] = token.split(".");
    const h = JSON.parse(Buffer.from(head, "base64url").toString());
    const other = `tdp1.${Buffer.from(JSON.stringify({ ...h, k: "v6.15" })).toString("base64url")}.${body}`;
    const moved = await run("replay", other);
    expect(moved.code).toBe(2);
    expect(moved.stderr).toMatch(/does not fit/);
  });

  it("a checkpoint resumes only the run it belongs to; anything else is exit 2 naming the difference", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-ckpt-"));
    const base = ["check", "seed-002-zap-worker", "--kernel", "v5.18", "--strategy", "dpor"];
    const whole = JSON.parse((await run(...base, "--json")).stdout);
    const cut = await run(...base, "--max-executions", "40", "--out", dir);
    expect(cut.code).toBe(0);
    const file = join(dir, "seed-002-zap-worker.checkpoint.json");
    expect(cut.stderr).toContain(`--resume ${file}`);
    const resumed = JSON.parse((await run(...base, "--resume", file, "--json")).stdout);
    expect(resumed.complete).toBe(true);
    expect(resumed.stats.executions).toBe(whole.stats.executions);
    const other = await run(...base, "--variant", "zap-all-fast-without-flush", "--resume", file);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /checkpoint of another run:\n\s+variant: checkpoint none, this run zap-all-fast-without-flush/,
    );
    const kernel = await run(
      "check",
      "seed-002-zap-worker",
      "--kernel",
      "v6.4",
      "--strategy",
      "dpor",
      "--resume",
      file,
    );
    expect(kernel.code).toBe(2);
    expect(kernel.stderr).toMatch(/kernel: checkpoint v5\.18, this run v6\.4/);
    const forged = JSON.parse(readFileSync(file, "utf8"));
    forged.checkpoint.executions = 1_000_000;
    writeFileSync(file, JSON.stringify(forged));
    const f = await run(...base, "--resume", file);
    expect(f.code).toBe(2);
    expect(f.stderr).toContain("changed after tdplab wrote it");
    writeFileSync(file, '{"version":1}');
    const g = await run(...base, "--resume", file);
    expect(g.code).toBe(2);
    expect(g.stderr).toContain("is not a tdplab checkpoint");
  });

  it("a counterexample names its invariant once: the message does not repeat it", async () => {
    const r = await run(
      "check",
      "protocol-v5.18",
      "--variant",
      "invalidate-requeues-invalid-roots",
      "--no-shrink",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("invariant: L1-invalid-roots-freed\n  ");
    expect(r.stdout).not.toContain("  L1-invalid-roots-freed: ");
  });

  it("--steps shows what each step changed in the roots", async () => {
    const r = await run(
      "check",
      "seed-003-put-root",
      "--kernel",
      "v5.18",
      "--variant",
      "put-root-dec-not-one-set-zero",
      "--strategy",
      "dpor",
      "--steps",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/refcount_set \[root#1\.tdp_mmu_root_count\]\s+\{root#1 refcount \d→0\}/);
    expect(r.stdout).toContain("{root#1 invalid 0→1}");
  });

  it("check --json reports a complete safe exploration with exit 0", async () => {
    const r = await run("check", "seed-004-empty-rmap", "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      status: "ok",
      complete: true,
      kernel: "v6.15",
      strategy: "portfolio",
    });
    expect(doc.stats.executions).toBeGreaterThan(0);
    expect(doc.violation).toBeNull();
  });

  it("check --fail-on-incomplete exits 3 when a budget cut the exploration", async () => {
    const r = await run(
      "check",
      "seed-001-root-walk",
      "--kernel",
      "v5.18",
      "--max-executions",
      "3",
      "--fail-on-incomplete",
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toContain("incomplete: cut by max-executions");
  });

  it("--jobs 2 reaches the verdict and execution count of --jobs 1", async () => {
    const one = JSON.parse((await run("check", "seed-003-put-root", "--kernel", "v5.18", "--json")).stdout);
    const two = await run("check", "seed-003-put-root", "--kernel", "v5.18", "--jobs", "2", "--json");
    expect(two.code).toBe(0);
    const doc = JSON.parse(two.stdout);
    expect(doc.status).toBe(one.status);
    expect(doc.complete).toBe(true);
    expect(doc.stats.executions).toBe(one.stats.executions);
  });

  it("--jobs 2 takes a built-in variant and finds what --jobs 1 finds", async () => {
    for (const variant of ["put-root-dec-not-one-set-zero"]) {
      const args = ["check", "seed-003-put-root", "--kernel", "v5.18", "--variant", variant, "--json"];
      const one = JSON.parse((await run(...args, "--strategy", "dpor")).stdout);
      const two = await run(...args, "--strategy", "dpor", "--jobs", "2");
      expect(two.code, two.stderr).toBe(1);
      const doc = JSON.parse(two.stdout);
      expect(doc.status).toBe("violation");
      expect(doc.violation.invariant).toBe(one.violation.invariant);
      expect(doc.stats.overridesRan).toEqual(one.stats.overridesRan);
    }
    // A design that is safe: the whole exploration, split over threads, counts what one thread does.
    const args = [
      "check",
      "seed-003-put-root",
      "--kernel",
      "v5.18",
      "--variant",
      "put-root-recursive",
      "--json",
    ];
    const one = JSON.parse((await run(...args, "--strategy", "dpor")).stdout);
    const two = JSON.parse((await run(...args, "--strategy", "dpor", "--jobs", "2")).stdout);
    expect([two.status, two.complete, two.stats.executions]).toEqual(["ok", true, one.stats.executions]);
    expect(two.stats.overridesRan).toEqual(["kvm_tdp_mmu_put_root"]);
  });

  it("--jobs beyond 4 x the machine's CPUs is refused before any thread starts", async () => {
    const r = await run("check", "seed-003-put-root", "--jobs", "100000");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--jobs 100000: at most \d+ \(4 x the \d+ CPUs this machine has\)/);
  });

  it("seeds --json prints one row per design with the documented fields, exit 0 when all match", async () => {
    const r = await run("seeds", "--thread", "004", "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.schemaVersion).toBe(1);
    expect(doc.seeds.length).toBe(4);
    for (const row of doc.seeds) {
      expect(row.thread).toBe("004");
      expect(Object.keys(row)).toEqual(
        expect.arrayContaining([
          "thread",
          "variant",
          "kernel",
          "expected",
          "verdict",
          "invariant",
          "executions",
          "elapsedMs",
          "complete",
          "replay",
        ]),
      );
      expect(row.verdict).toBe(row.expected);
      if (row.verdict === "safe") expect(row.complete).toBe(true);
      else expect(row.replay).toMatch(/^tdp1\./);
    }
  });

  it("seeds rejects a thread id that does not exist", async () => {
    expect((await run("seeds", "--thread", "007")).code).toBe(2);
  });

  it("list shows every preset", async () => {
    const r = await run("list");
    expect(r.code).toBe(0);
    for (const v of ["v5.17", "v5.18", "v6.4", "v6.6", "v6.9", "v6.15"]) expect(r.stdout).toContain(v);
  });

  it("list names scenarios, variants, invariants and model functions, in text and JSON", async () => {
    const all = await run("list");
    for (const s of [
      "protocol-v5.18",
      "rmap-aging",
      "put-root-dec-not-one-set-zero",
      "L1-invalid-roots-freed",
      "kvm_tdp_mmu_put_root",
    ])
      expect(all.stdout).toContain(s);
    const inv = await run("list", "invariants", "--json");
    expect(inv.code).toBe(0);
    const doc = JSON.parse(inv.stdout) as { name: string; meaning: string }[];
    expect(doc.find((i) => i.name === "inv4-no-uaf-roots")?.meaning).toMatch(/freed/);
    const bad = await run("list", "invariant");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown section 'invariant'");
  });
});
