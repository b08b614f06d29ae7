import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spinlockScenario } from "../../src/cli/simulate-fixtures.js";
import type { TraceDoc } from "../../src/trace/schema.js";
import { buildSimTraceDoc } from "../../src/trace/sim-trace.js";
import {
  ARTIFACTS,
  CHROMIUM,
  type CliRun,
  cli,
  HAS_CHROMIUM,
  interrupt,
  launchChromium,
  requireBuiltApp,
  urlOf,
} from "./harness.js";
import { useAfterFreeTrace } from "./uaf-trace.js";

if (!HAS_CHROMIUM)
  console.warn(`e2e: ${CHROMIUM} not found, so the browser tests are skipped (.ci/run installs chromium)`);

const XSS = "<img src=x onerror=window.__xss=1>";

/** A raw GET on the wire, path as written. */
function rawGet(url: string, path: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: Number(u.port), path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(!HAS_CHROMIUM)("the trace explorer in Chromium", () => {
  let browser: Browser;
  let uaf: TraceDoc;
  let checked: TraceDoc;
  let dir: string;
  let uafFile: string;
  const servers: CliRun[] = [];
  const pageErrors: string[] = [];

  const serve = async (...args: string[]) => {
    const run = cli(...args);
    servers.push(run);
    return urlOf(run);
  };
  const open = async (url: string): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(url);
    return page;
  };
  const position = (page: Page) => page.getByTestId("position").textContent();

  beforeAll(async () => {
    requireBuiltApp();
    dir = mkdtempSync(join(tmpdir(), "tdplab-e2e-"));
    ({ uaf, checked } = await useAfterFreeTrace());
    uafFile = join(dir, "uaf.trace.json");
    writeFileSync(uafFile, JSON.stringify(uaf));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(servers.map(interrupt));
  });

  it("thread 003's use-after-free: keys, stepping to the violation, the freed root, the URL", async () => {
    const url = await serve("explore", uafFile, "--port", "0");
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?replay=tdp1\./);
    const page = await open(url);
    const last = uaf.steps.length - 1;
    await expect.poll(() => position(page)).toBe(`step 0 of ${last}`);
    expect(await page.getByTestId("scenario").textContent()).toBe("seed-003-put-root");
    expect(await page.getByTestId("violation").textContent()).toContain("use-after-free");

    // Keys: →/←, End/Home.
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowRight");
    expect(await position(page)).toBe(`step 3 of ${last}`);
    await page.keyboard.press("ArrowLeft");
    expect(await position(page)).toBe(`step 2 of ${last}`);
    await page.keyboard.press("End");
    expect(await position(page)).toBe(`step ${last} of ${last}`);
    await page.keyboard.press("Home");
    expect(await position(page)).toBe(`step 0 of ${last}`);
    // Keys pressed faster than the page renders all count.
    for (let k = 0; k < 12; k++) await page.keyboard.press("ArrowRight");
    await expect.poll(() => position(page)).toBe(`step 12 of ${last}`);
    await page.keyboard.press("Home");

    // n: the next step of the selected task (chosen by clicking its lane).
    const walkerB = uaf.tasks.find((t) => t.name === "walker-b")!;
    const hers = uaf.steps.filter((s) => s.task === walkerB.id).map((s) => s.i);
    await page.locator(`.lane-label[data-task="${walkerB.id}"]`).click();
    await page.keyboard.press("n");
    expect(await position(page)).toBe(`step ${hers[0]} of ${last}`);
    await page.keyboard.press("n");
    expect(await position(page)).toBe(`step ${hers[1]} of ${last}`);
    await expect.poll(() => page.url()).toContain(`task=${walkerB.id}`);

    // A click on a step's mark, and the slider.
    await page.locator('.mark-g[data-step="10"]').click();
    expect(await position(page)).toBe(`step 10 of ${last}`);
    await page.getByLabel("cursor").fill("20");
    expect(await position(page)).toBe(`step 20 of ${last}`);

    // Before the RCU callback's kfree the root is unlinked but alive; at it, `freed` lights up.
    const kfree = uaf.steps.find((s) => s.step === "kfree" && uaf.objects[s.obj] === "root#1")!;
    const root = page.locator('[data-root="root#1"]');
    await page.getByLabel("cursor").fill(String(kfree.i - 1));
    expect(await root.locator('[data-field="freed"]').textContent()).toBe("no");
    await page.keyboard.press("ArrowRight");
    expect(await root.locator('[data-field="freed"]').textContent()).toBe("yes");
    expect(await root.locator('[data-field="freed"]').getAttribute("class")).toContain("chg");

    // Step to the violation: walker-b's put of the root it still holds, after the free.
    await page.keyboard.press("Home");
    await page.keyboard.press("v");
    const vStep = uaf.violation!.step;
    expect(await position(page)).toBe(`step ${vStep} of ${last}`);
    expect(await page.getByTestId("step-detail").textContent()).toContain("violates use-after-free");
    expect(await page.getByTestId("step-detail").textContent()).toContain("kvm_tdp_mmu_put_root");
    expect(await root.textContent()).toContain("FREED");
    expect(await root.locator('[data-field="freed"]').textContent()).toBe("yes");
    expect(await root.locator('[data-field="refcount"]').textContent()).toBe("0");
    const shot = `${ARTIFACTS}explorer-uaf.png`;
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`e2e: screenshot of the use-after-free at the violation: ${shot}`);

    // The URL carries the replay string and the cursor: a fresh page on it shows the same view.
    await expect.poll(() => page.url()).toContain(`cursor=${vStep}`);
    const link = page.url();
    expect(link).toContain(`replay=${encodeURIComponent(uaf.replay)}`);
    const again = await open(link);
    await expect.poll(() => position(again)).toBe(`step ${vStep} of ${last}`);
    expect(await again.locator('[data-root="root#1"] [data-field="refcount"]').textContent()).toBe("0");
    expect(await again.locator('[data-root="root#1"]').textContent()).toContain("FREED");

    // A link with another replay string: the server regenerates that trace (tdplab replay's path).
    const other = await open(`${new URL(url).origin}/?replay=${encodeURIComponent(checked.replay)}#cursor=3`);
    await expect.poll(() => position(other)).toBe(`step 3 of ${checked.steps.length - 1}`);
    expect(await other.getByTestId("violation").textContent()).toContain(checked.violation!.invariant);
    expect(pageErrors).toEqual([]);
  });

  it("serves nothing outside the app: path traversal is refused", async () => {
    const url = await serve("explore", uafFile, "--port", "0");
    for (const p of ["/../package.json", "/%2e%2e/package.json", "/assets/..%2f..%2fpackage.json"])
      expect(await rawGet(url, p)).toBe(403);
    expect(await rawGet(url, "/package.json")).toBe(404);
  });

  it("renders every string of a trace as text: a scenario named <img src=x onerror=...>", async () => {
    const evil: TraceDoc = {
      ...uaf,
      run: { ...uaf.run, scenario: XSS },
      tasks: uaf.tasks.map((t, i) => (i === 1 ? { ...t, name: XSS } : t)),
      violation: { ...uaf.violation!, message: `${XSS}</script><script>window.__xss=2</script>` },
    };
    const file = join(dir, "xss.trace.json");
    writeFileSync(file, JSON.stringify(evil));
    const html = join(dir, "xss.html");
    const written = cli("explore", file, "--html", html);
    expect(await written.exited).toBe(0);
    for (const url of [await serve("explore", file, "--port", "0"), pathToFileURL(html).href]) {
      const page = await open(url);
      await expect.poll(() => page.getByTestId("scenario").textContent()).toBe(XSS);
      expect(await page.locator(`.lane-label[data-task="1"] .task-name`).textContent()).toBe(XSS);
      expect(await page.getByTestId("violation").textContent()).toContain("<script>window.__xss=2</script>");
      expect(await page.locator("img").count()).toBe(0);
      expect(await page.evaluate("typeof window.__xss")).toBe("undefined");
      expect(await page.title()).toBe(`tdplab · ${XSS}`);
    }
    expect(pageErrors).toEqual([]);
  });

  it("--html writes one self-contained file that needs no server and no network", async () => {
    const html = join(dir, "uaf.html");
    const run = cli("explore", uafFile, "--html", html);
    expect(await run.exited).toBe(0);
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${pathToFileURL(html).href}#cursor=5`);
    const last = uaf.steps.length - 1;
    await expect.poll(() => position(page)).toBe(`step 5 of ${last}`);
    await page.keyboard.press("End");
    expect(await position(page)).toBe(`step ${last} of ${last}`);
    await expect.poll(() => page.url()).toContain(`cursor=${last}`);
    expect(await page.locator('[data-root="root#1"] [data-field="refcount"]').textContent()).toBe("0");
    expect(requests.filter((u) => !u.startsWith("file:") && !u.startsWith("data:"))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it("shows a trace without states, saying so, with the locks the steps tell", async () => {
    const { states: _s, initialState: _i, ...bare } = uaf;
    const file = join(dir, "bare.trace.json");
    writeFileSync(file, JSON.stringify(bare));
    const page = await open(`${await serve("explore", file, "--port", "0")}#cursor=1`);
    await expect.poll(() => page.getByTestId("no-state").count()).toBe(1);
    expect(await page.getByTestId("state-panel").textContent()).toContain("kvm.mmu_lock");
  });

  it("simulator runs: virtual time on the axis, lock holds and spinning waiters", async () => {
    const runs = spinlockScenario.run({ work: 4 }, {}, { timeline: true, seed: 0 });
    const doc = buildSimTraceDoc(
      runs.flatMap((r) => (r.results ?? []).map((result) => ({ label: r.label, kernel: r.kernel, result }))),
      spinlockScenario.name,
    );
    const file = join(dir, "sim.trace.json");
    writeFileSync(file, JSON.stringify(doc));
    const page = await open(await serve("explore", file, "--port", "0"));
    const run = doc.runs[0];
    await expect.poll(() => page.getByTestId("scenario").textContent()).toBe("fixture-spinlock");
    expect(await page.locator(".axis-label").first().textContent()).toMatch(/ns|µs|ms/);
    expect(await page.locator(".wait.spin").count()).toBeGreaterThan(0);
    expect(await page.locator(".hold-span").count()).toBeGreaterThan(0);
    // Put the cursor on a step taken while the holder holds the lock and the waiter spins for it.
    const holder = run.tasks.find((t) => t.name === "holder")!.id;
    const take = run.steps.findIndex((s) => s.task === holder && s.step === "spin_lock");
    const spin = run.waits.find((w) => w.kind === "spin")!;
    const during = run.steps.findIndex(
      (s, i) => i > take && s.startNs >= spin.startNs && s.startNs < spin.endNs,
    );
    await page.getByLabel("cursor").fill(String(during));
    const panel = page.getByTestId("state-panel");
    await expect.poll(() => panel.textContent()).toMatch(/holder \(exclusive/);
    expect(await panel.textContent()).toMatch(/waiter \(spin\)/);
    expect(await panel.textContent()).toMatch(/spinning on cpu1/);
    await page.keyboard.press("ArrowRight");
    await expect.poll(() => page.url()).toContain(`cursor=${during + 1}`);
    const shot = `${ARTIFACTS}explorer-sim.png`;
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`e2e: screenshot of a simulator run: ${shot}`);
    expect(pageErrors).toEqual([]);
  });

  it("check --explore opens straight onto the counterexample and stays up until Ctrl-C", async () => {
    const run = cli(
      "check",
      "seed-003-put-root",
      "--kernel",
      "v5.18",
      "--variant",
      "put-root-dec-not-one-set-zero",
      "--explore",
    );
    servers.push(run);
    const url = await urlOf(run);
    // The URL comes on stdout, the hint on stderr: two pipes, read in either order.
    await expect.poll(() => run.stderr()).toContain("Ctrl-C");
    const page = await open(url);
    await expect
      .poll(() => page.getByTestId("violation").textContent())
      .toContain(checked.violation!.invariant);
    expect(await page.getByTestId("scenario").textContent()).toBe("seed-003-put-root");
    expect(run.proc.exitCode).toBeNull();
    expect(await interrupt(run)).toBe(1);
    expect(pageErrors).toEqual([]);
  });
});
