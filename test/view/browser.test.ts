/**
 * `iommu-sim view` pages in a real browser: playwright-core driving
 * Debian's chromium (/usr/bin/chromium, or $IOMMU_SIM_CHROMIUM; .ci/run
 * installs it). Each page loads offline from a file with no console error,
 * draws as many groups and devices as each step's snapshot has, steps as
 * the snapshots do (buttons, slider keys, arrow keys), shows a clicked
 * device's group, and marks where two designs part; zoomed out past the
 * labels, the page's own far picture shows each step as the snapshot says
 * and cytoscape's boxes catch up when the zoom comes back. The times of the
 * 2,000-device page are printed, never asserted (docs/view.md has them).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lateSmmuMachine } from "../../bench/late-smmu-machine.ts";
import { cli } from "../cli-run.ts";
import { expandSteps } from "../../src/view-page/delta.ts";
import type { Snapshot, StepsDoc } from "../../src/view-page/types.ts";
import type { PageApi } from "../../src/view-page/main.ts";

const CHROMIUM = process.env.IOMMU_SIM_CHROMIUM ?? "/usr/bin/chromium";
/** Where the screenshots go: docs/ with IOMMU_SIM_SCREENSHOTS=docs (to update the README's), else a temporary folder. */
const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-view-"));
const SHOTS = process.env.IOMMU_SIM_SCREENSHOTS === "docs" ? new URL("../../docs/", import.meta.url).pathname : tmp;

/** The page of FILE (and the run's steps, read back from the page's own data). */
async function makePage(name: string, file: string, ...flags: string[]): Promise<{ path: string; docs: StepsDoc[]; snaps: Snapshot[][] }> {
  const path = join(tmp, `${name}.html`);
  const r = await cli("view", file, "--out", path, ...flags);
  expect(r.code, r.err).toBe(0);
  const html = readFileSync(path, "utf8");
  const m = /<script type="application\/json" id="iommu-sim-data">(.*?)<\/script>/s.exec(html)!;
  const data = JSON.parse(m[1]!) as { runs: { doc: StepsDoc }[] };
  const docs = data.runs.map((x) => x.doc);
  return { path, docs, snaps: docs.map((d) => expandSteps(d.steps)) };
}

let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the browser tests need chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium; .ci/run does) or set IOMMU_SIM_CHROMIUM`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"], timeout: 30_000 });
}, 40_000);

afterAll(async () => {
  await browser?.close();
});

interface Opened {
  page: Page;
  errors: string[];
}

async function open(path: string): Promise<Opened> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(20_000);
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  // Offline: any request but the file itself is an error.
  page.on("request", (r) => {
    if (!r.url().startsWith("file://")) errors.push(`request: ${r.url()}`);
  });
  await page.goto(`file://${path}`);
  await page.waitForSelector("body[data-ready=true]");
  return { page, errors };
}

// The page's own declaration of what it exposes (a type-only import: the page's code is not loaded here).
type Api = PageApi;
declare const window: { iommuSim: Api };

const step = (p: Page) => p.evaluate(() => window.iommuSim.current());
const drawn = (p: Page) => p.evaluate(() => window.iommuSim.drawn());
/** What the accessible list says: each group's id with its devices, and every device listed. */
const listed = (p: Page, run = 0) =>
  p.evaluate((run) => {
    const section = document.querySelectorAll("section.run")[run]!;
    const groups = [...section.querySelectorAll("li[data-group]")].map((li) => ({
      id: Number(li.getAttribute("data-group")),
      devices: [...li.querySelectorAll("li[data-device]")].map((d) => d.getAttribute("data-device")!),
    }));
    return { groups, devices: section.querySelectorAll("li[data-device]").length };
  }, run);

/** Checks the page at its current step against the snapshot of that step. */
async function matches(p: Page, snaps: Snapshot[], run = 0): Promise<void> {
  const at = Math.min(await step(p), snaps.length - 1);
  const s = snaps[at]!;
  expect((await drawn(p))[run]).toEqual({ groups: s.groups.length, devices: s.devices.length });
  const l = await listed(p, run);
  expect(l.groups).toEqual(s.groups.map((g) => ({ id: g.id, devices: g.devices })));
  expect(l.devices).toBe(s.devices.length);
}

describe("iommu-sim view in chromium", () => {
  it("scenarios/default.yaml: loads with no console error, draws each step's groups and devices as the arrow keys step through it", async () => {
    const { path, snaps } = await makePage("default", "scenarios/default.yaml");
    const { page, errors } = await open(path);
    expect(await step(page)).toBe(0);
    await matches(page, snaps[0]!);
    // Every step, by the Right arrow key, is the snapshot of that step.
    for (let i = 1; i < snaps[0]!.length; i++) {
      await page.keyboard.press("ArrowRight");
      expect(await step(page)).toBe(i);
      await matches(page, snaps[0]!);
    }
    await page.keyboard.press("ArrowRight");
    expect(await step(page)).toBe(snaps[0]!.length - 1);
    await page.keyboard.press("Home");
    expect(await step(page)).toBe(0);
    await page.keyboard.press("End");
    expect(await step(page)).toBe(snaps[0]!.length - 1);
    // Clicking a device on the canvas shows its group and domain.
    const final = snaps[0]![snaps[0]!.length - 1]!;
    const nvme = final.devices.find((d) => d.name === "0000:03:00.0")!;
    const at = await page.evaluate(() => window.iommuSim.centre(0, "0000:03:00.0"));
    await page.mouse.click(at!.x, at!.y);
    const sel = await page.locator("section.selection").innerText();
    const g = final.groups.find((x) => x.id === nvme.group)!;
    expect(sel).toContain(`group ${g.id} · ${g.type} · owner ${g.owner}`);
    expect(sel).toContain(`#${nvme.domain} ${final.domains.find((d) => d.id === nvme.domain)!.type}`);
    expect(sel).toContain("nvme");
    await page.screenshot({ path: join(SHOTS, "view-default.png") });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("scenarios/arm64-late-smmu.yaml: the step where the SMMU registers turns the deferred devices bound, highlighted", async () => {
    const { path, docs, snaps } = await makePage("arm64", "scenarios/arm64-late-smmu.yaml");
    const { page, errors } = await open(path);
    const reg = docs[0]!.steps.findIndex((s) => s.label === "events[1]");
    expect(reg).toBeGreaterThan(0);
    await page.evaluate((i) => window.iommuSim.go(i), reg - 1);
    await matches(page, snaps[0]!);
    expect(await page.locator('li[data-device="ufs@1d84000"] .tag.deferred').count()).toBe(1);
    expect(await page.evaluate(() => window.iommuSim.classes(0, "ufs@1d84000"))).toContain("deferred");
    // The Next button, by keyboard: Tab to it and press Enter.
    await page.getByRole("button", { name: "next step (Right arrow)" }).focus();
    await page.keyboard.press("Enter");
    expect(await step(page)).toBe(reg);
    await matches(page, snaps[0]!);
    for (const dev of ["ufs@1d84000", "0000:01:00.0"]) {
      const cls = await page.evaluate((d) => window.iommuSim.classes(0, d), dev);
      expect(cls).toContain("changed");
      expect(cls).not.toContain("deferred");
      expect(await page.locator(`li[data-device="${dev}"].changed`).count()).toBe(1);
      expect(await page.locator(`li[data-device="${dev}"] .tag.deferred`).count()).toBe(0);
    }
    expect(await page.locator("section.trace pre").innerText()).toContain("== events[1]: iommu_register smmu0");
    // A device chosen from the list by keyboard shows its group, as a click on the canvas does.
    await page.locator('li[data-device="ufs@1d84000"] > button').focus();
    await page.keyboard.press("Enter");
    const ufs = snaps[0]![reg]!.devices.find((d) => d.name === "ufs@1d84000")!;
    expect(await page.locator("section.selection").innerText()).toContain(`group ${ufs.group} ·`);
    await page.screenshot({ path: join(SHOTS, "view-arm64-late-smmu.png") });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("zoomed out past the labels: the far picture paints each step with its marks and answers clicks; zoomed back in, cytoscape's boxes catch up", async () => {
    const { path, docs, snaps } = await makePage("arm64-far", "scenarios/arm64-late-smmu.yaml");
    const ss = snaps[0]!;
    const { page, errors } = await open(path);
    expect(await page.evaluate(() => window.iommuSim.far())).toEqual([false]);
    await page.evaluate(() => window.iommuSim.zoom(0.3));
    expect(await page.evaluate(() => window.iommuSim.far())).toEqual([true]);
    // What the picture should show of each device at step i: its state, and whether the step changed it.
    const want = (i: number) =>
      ss[i]!.devices.map((d) => {
        const was = i === 0 ? undefined : ss[i - 1]!.devices.find((x) => x.name === d.name);
        const cls = [...(d.probe === "deferred" ? ["deferred"] : []), ...(d.probe === "failed" ? ["failed"] : []), ...(d.registered ? [] : ["absent"])];
        return { name: d.name, cls, changed: i > 0 && JSON.stringify(was) !== JSON.stringify(d) };
      });
    const shown = (names: string[]) =>
      page.evaluate(
        (ns) =>
          ns.map((n) => {
            const c = window.iommuSim.classes(0, n);
            return { name: n, cls: c.filter((x) => x === "deferred" || x === "failed" || x === "absent"), changed: c.includes("changed") };
          }),
        names,
      );
    const names = ss[0]!.devices.map((d) => d.name);
    for (let i = 1; i < ss.length; i++) {
      await page.keyboard.press("ArrowRight");
      expect(await step(page)).toBe(i);
      await matches(page, ss);
      expect(await shown(names)).toEqual(want(i));
    }
    // The step where the SMMU registers: every deferred device turns bound, marked.
    const reg = docs[0]!.steps.findIndex((s) => s.label === "events[1]");
    await page.evaluate((i) => window.iommuSim.go(i), reg);
    expect((await shown(["ufs@1d84000"]))[0]).toEqual({ name: "ufs@1d84000", cls: [], changed: true });
    await page.screenshot({ path: join(tmp, "view-far.png") });
    // A click on a box of the far picture selects its device.
    const at = await page.evaluate(() => window.iommuSim.centre(0, "ufs@1d84000"));
    await page.mouse.click(at!.x, at!.y);
    const ufs = ss[reg]!.devices.find((d) => d.name === "ufs@1d84000")!;
    expect(await page.locator("section.selection").innerText()).toContain(`group ${ufs.group} ·`);
    // Back in: cytoscape draws again, its boxes as the step shown (states and marks).
    await page.evaluate(() => window.iommuSim.zoom(1));
    expect(await page.evaluate(() => window.iommuSim.far())).toEqual([false]);
    await matches(page, ss);
    expect(await shown(names)).toEqual(want(reg));
    // The device chosen while zoomed out is the one chosen in cytoscape's boxes, and only it.
    const chosen = await page.evaluate((ns) => ns.filter((n) => window.iommuSim.classes(0, n).includes("chosen")), names);
    expect(chosen).toEqual(["ufs@1d84000"]);
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it("a race (probe-race-global-lock): a step per scheduler step, each as its snapshot; the slider's keys step too", async () => {
    const { path, docs, snaps } = await makePage("race", "scenarios/races/probe-race-global-lock.yaml");
    expect(docs[0]!.steps.some((s) => s.kind === "step")).toBe(true);
    const { page, errors } = await open(path);
    await page.locator("#step-slider").focus();
    for (let i = 1; i < snaps[0]!.length; i++) {
      await page.keyboard.press("ArrowRight");
      expect(await step(page)).toBe(i);
      await matches(page, snaps[0]!);
    }
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it("two designs side by side step together and the first divergence is marked where the snapshots first differ", async () => {
    const file = "scenarios/races/probe-race-none.yaml";
    const a = "probe_serialisation=none";
    const b = "probe_serialisation=global-lock";
    const { path, docs, snaps } = await makePage("two", file, "--a", a, "--b", b);
    // Where the two runs part, found here from their steps: a label, a trace or a snapshot (less the design's own keys).
    const strip = (s: Snapshot) => JSON.stringify({ ...s, strategy: null, kernel: null });
    let part = -1;
    for (let i = 0; part < 0 && i < Math.max(snaps[0]!.length, snaps[1]!.length); i++) {
      const [x, y] = [docs[0]!.steps[i], docs[1]!.steps[i]];
      if (x === undefined || y === undefined || x.label !== y.label || strip(snaps[0]![i]!) !== strip(snaps[1]![i]!) || JSON.stringify(x.trace) !== JSON.stringify(y.trace)) part = i;
    }
    expect(part).toBeGreaterThan(0);
    const { page, errors } = await open(path);
    expect(await page.locator("section.run").count()).toBe(2);
    expect(await page.locator("#divergence").getAttribute("data-step")).toBe(String(part));
    await page.getByRole("button", { name: "go to the first divergence" }).click();
    expect(await step(page)).toBe(part);
    expect(await page.locator("#divergence.here").count()).toBe(1);
    await matches(page, snaps[0]!, 0);
    await matches(page, snaps[1]!, 1);
    await page.screenshot({ path: join(SHOTS, "view-two-designs.png") });
    await page.keyboard.press("ArrowRight");
    expect(await step(page)).toBe(part + 1);
    await matches(page, snaps[0]!, 0);
    await matches(page, snaps[1]!, 1);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("a machine of 2,000 devices: drawn whole; prints the layout and step times it measured", async () => {
    const m = lateSmmuMachine(2000);
    const json = join(tmp, "late-2000.json");
    writeFileSync(json, JSON.stringify(m.scenario));
    const t0 = performance.now();
    const { path, snaps } = await makePage("late-2000", json);
    const writeMs = performance.now() - t0;
    const t1 = performance.now();
    const { page, errors } = await open(path);
    const loadMs = performance.now() - t1;
    const layoutMs = await page.evaluate(() => window.iommuSim.layoutMs[0]!);
    await matches(page, snaps[0]!);
    // Steps by the Right arrow: the first 8 (boot phases, each changing most devices), then 8 from the middle (an SMMU each).
    const stepMs: number[] = [];
    const paintedMs: number[] = [];
    const mid = Math.floor(snaps[0]!.length / 2);
    for (let i = 0; i < 16; i++) {
      if (i === 8) await page.evaluate((k) => (window.iommuSim.go(k), window.iommuSim.painted()), mid);
      await page.keyboard.press("ArrowRight");
      // From the key press to the frame after the picture repainted, measured in the page.
      paintedMs.push(await page.evaluate(() => window.iommuSim.painted()));
      stepMs.push(await page.evaluate(() => window.iommuSim.lastStepMs()));
      await matches(page, snaps[0]!);
    }
    await matches(page, snaps[0]!);
    await page.keyboard.press("End");
    await matches(page, snaps[0]!);
    // Boxes out of view are drawn after the frame: soon every box shows its device's state at the step shown.
    const names = snaps[0]![0]!.devices.map((d) => d.name);
    const deferredBoxes = () => page.evaluate((ns) => ns.filter((n) => window.iommuSim.classes(0, n).includes("deferred")), names);
    for (const k of [mid, snaps[0]!.length - 1]) {
      await page.evaluate((i) => window.iommuSim.go(i), k);
      const want = snaps[0]![k]!.devices.filter((d) => d.probe === "deferred").map((d) => d.name);
      expect(want.length > 0).toBe(k === mid);
      await expect.poll(deferredBoxes, { timeout: 10_000 }).toEqual(want);
    }
    // Zoomed out to the whole machine (the Whole button): the far picture, every box drawn, the first 8 steps again.
    await page.evaluate(() => (window.iommuSim.go(0), window.iommuSim.fit(), window.iommuSim.painted()));
    expect(await page.evaluate(() => window.iommuSim.far())).toEqual([true]);
    const wholeMs: number[] = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press("ArrowRight");
      wholeMs.push(await page.evaluate(() => window.iommuSim.painted()));
      await matches(page, snaps[0]!);
    }
    const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
    console.log(
      `view, ${m.scenario.devices.length} devices: page written in ${writeMs.toFixed(0)} ms (from source, bundling included), loaded in ${loadMs.toFixed(0)} ms, ` +
        `layout (cytoscape with the layered positions) ${layoutMs.toFixed(0)} ms; steps 1 to 8: ${f(stepMs.slice(0, 8))} ms in the page, ${f(paintedMs.slice(0, 8))} ms from the key press to the frame after the repaint; ` +
        `steps ${mid + 2} to ${mid + 9}: ${f(stepMs.slice(8))} ms in the page, ${f(paintedMs.slice(8))} ms to the repainted frame; ` +
        `zoomed out to the whole machine, steps 1 to 8: ${f(wholeMs)} ms to the repainted frame`,
    );
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});

// The screenshots folder exists before the first test writes to it.
mkdirSync(SHOTS, { recursive: true });
