// The yearly report (charts, tables, CSV download) and the signals list.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { useHarness } from "./harness.mjs";

const sp = useHarness();

const nl = (n) => n.toLocaleString("nl-BE", { maximumFractionDigits: 2 });

test("the report shows the year's figures against the targets and downloads the CSV", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  await sp.goto(page, "/reports");
  const api = await sp.api("coordinator.kempen.demo");
  const r = await api.get("/v1/regions/kempen/report");
  const tr = r.trajectories;
  assert.equal(tr.target, 200);

  const chart = page.locator("svg#chart-started");
  await chart.waitFor();
  assert.equal(await chart.getAttribute("role"), "img");
  const aria = await chart.getAttribute("aria-label");
  assert.ok(aria.includes(`Gestart: ${nl(tr.started)} van doel 200`), aria);
  assert.ok(aria.includes(`Via mandaat: ${nl(tr.started_mandated)} van reserve 60`), aria);
  assert.match(await chart.textContent(), new RegExp(`${tr.started} / 200`));
  // The same figures in a table beside the chart.
  const row = page.locator("#c-started ~ table tr", { hasText: "Gestart" });
  assert.match(await row.textContent(), new RegExp(`Gestart${tr.started}200 \\(doel\\)`));
  const running = await page.locator("svg#chart-running").getAttribute("aria-label");
  assert.ok(running.includes(`Lopend op het einde: ${tr.running_at_end}`) && running.includes(`Afgesloten: ${tr.closed}`), running);

  const text = await page.locator("main").textContent();
  for (const want of ["Aanmeldingen", "Consulten", "Beslissingen", "Redenen van afsluiten", "Contacten per trajectweek", "RTJ-aanvragen",
    "Mediaan dagen aanmelding → beslissing", r.closure_reasons[0].label]) assert.ok(text.includes(want), `report lacks ${want}`);
  const share = page.locator("#c-referrals ~ table tr", { hasText: "Aandeel niet-gearticuleerd" });
  assert.match(await share.textContent(), new RegExp(nl(r.referrals.non_articulated_share * 100).replace(".", "\\.") + " %"));
  await sp.shot(page, "reports");

  // CSV: a download whose first line is the CSV's header.
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#csv-download").click()]);
  assert.equal(download.suggestedFilename(), `samenplan-rapport-kempen-${r.year}.csv`);
  const csv = readFileSync(await download.path(), "utf8");
  const first = csv.split("\n");
  assert.equal(first[0].trim(), "metric,value");
  assert.ok(first.includes(`trajectories.started,${tr.started}`), "the CSV holds the figures");

  // Another year from the picker.
  await page.locator("#report-year").selectOption(String(r.year - 1));
  await page.waitForFunction((y) => location.hash === `#/reports?year=${y}`, r.year - 1);
  await sp.settle(page);
  await page.locator(".report-meta", { hasText: `${r.year - 1}-01-01` }).waitFor();

  // In English: the page's texts and the closure reasons' English labels.
  await page.getByRole("button", { name: "English" }).click();
  await page.getByRole("heading", { name: "Yearly report" }).waitFor();
  await sp.goto(page, "/reports");
  await page.locator("#c-closures ~ table", { hasText: r.closure_reasons[0].label_en }).waitFor();
  assert.ok((await page.locator("svg#chart-started").getAttribute("aria-label")).includes(`Started: ${tr.started} of target 200`));

  const tablet = await sp.page({ width: 768, height: 1024 });
  await sp.login(tablet, "reviewer.kempen.demo");
  await sp.goto(tablet, "/reports");
  await tablet.locator("svg#chart-started").waitFor();
  const overflow = await tablet.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, "no sideways scrolling on a tablet");
  await sp.shot(tablet, "reports-tablet");
  assert.deepEqual(sp.pageErrors(page), []);
  assert.deepEqual(sp.pageErrors(tablet), []);
});

test("the signals page lists the region's signals with the rule's label and the family", async () => {
  const page = await sp.page();
  await sp.login(page, "reviewer.kempen.demo");
  await sp.goto(page, "/signals");
  const api = await sp.api("reviewer.kempen.demo");
  const all = await api.get("/v1/regions/kempen/signals?limit=25");
  assert.ok(all.total > 0, "the demo has signals");
  const rows = page.locator("table tbody tr");
  assert.equal(await rows.count(), Math.min(25, all.total));
  const first = all.items[0];
  const row = rows.first();
  assert.match(await row.textContent(), new RegExp(first.label));
  assert.equal(await row.locator("a").getAttribute("href"), `#/cases/${first.family_id}`);
  await sp.shot(page, "signals");

  // Filter by signal id: the list and the URL follow.
  await page.locator("#f-signal").selectOption(first.id);
  await page.waitForFunction((id) => location.hash.includes("signal=" + id), first.id);
  await sp.settle(page);
  const only = await api.get(`/v1/regions/kempen/signals?signal=${first.id}&limit=25`);
  assert.equal(await page.locator("table tbody tr").count(), Math.min(25, only.total));
  for (const id of await page.locator("table tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.signal))) assert.equal(id, first.id);
  // A severity nothing has.
  await page.locator("#f-severity").selectOption("critical");
  await page.waitForFunction(() => location.hash.includes("severity=critical"));
  await sp.settle(page);
  const crit = await api.get(`/v1/regions/kempen/signals?signal=${first.id}&severity=critical`);
  if (crit.total === 0) await page.locator(".notice", { hasText: "Geen signalen voor deze filter" }).waitFor();
  assert.deepEqual(sp.pageErrors(page), []);

  // Pages: two a page, the next page holds the rest.
  if (all.total > 2) {
    await sp.goto(page, "/signals?limit=2");
    await page.locator(".pager .range", { hasText: `1–2 van ${all.total}` }).waitFor();
    assert.equal(await page.locator("table tbody tr").count(), 2);
    await page.locator(".pager button.next").click();
    await page.waitForFunction(() => location.hash.includes("offset=2"));
    await page.locator(".pager .range", { hasText: `3–${Math.min(4, all.total)} van ${all.total}` }).waitFor();
    assert.equal(await page.locator("table tbody tr").count(), Math.min(2, all.total - 2));
    assert.equal(await page.locator("table tbody tr").first().getAttribute("data-signal"), all.items[2].id);
  }

  const tablet = await sp.page({ width: 768, height: 1024 });
  await sp.login(tablet, "coordinator.kempen.demo");
  await sp.goto(tablet, "/signals");
  await tablet.locator("table tbody tr").first().waitFor();
  assert.equal(await tablet.evaluate(() => document.documentElement.scrollWidth > window.innerWidth), false, "no sideways scrolling on a tablet");
  await sp.shot(tablet, "signals-tablet");
  assert.deepEqual(sp.pageErrors(tablet), []);
});

test("a region with a target but no mandated reserve (maasland) marks only the target", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.maasland.demo");
  await sp.goto(page, "/reports");
  const api = await sp.api("coordinator.maasland.demo");
  const r = await api.get("/v1/regions/maasland/report");
  assert.equal(r.trajectories.target, 200);
  assert.equal(r.trajectories.mandated_reserve, null);
  const chart = page.locator("svg#chart-started");
  await chart.waitFor();
  assert.equal(await chart.locator("line.target").count(), 1, "the yearly target only: no reserve, no ceiling");
  assert.ok((await chart.getAttribute("aria-label")).includes(`Gestart: ${r.trajectories.started}`));
  assert.ok(!(await page.locator("main").textContent()).includes("kempen"), "nothing of kempen");
  await sp.shot(page, "reports-maasland");
  assert.deepEqual(sp.pageErrors(page), []);
});
