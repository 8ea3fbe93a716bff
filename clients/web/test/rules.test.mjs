// The rules page: a coordinator edits the intake rules with an error, sees it
// at its line, fixes it, dry-runs, saves and sees the new version; a reviewer
// reads the rules only and cannot reach another region.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { useHarness } from "./harness.mjs";

const sp = useHarness();

const editor = (page) => page.locator("#rules-editor");

test("a coordinator edits the intake rules: error at its line, fix, dry-run, save, new version", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  await sp.goto(page, "/rules");
  await page.locator("#tab-intake[aria-selected=true]").waitFor();
  const coord = await sp.api("coordinator.kempen.demo");
  const before = await coord.get("/v1/regions/kempen/rules");
  assert.equal(await page.locator("#active-version").getAttribute("title"), before.active_version);

  const original = await editor(page).inputValue();
  const lines = original.split("\n");
  const crisisLine = lines.findIndex((l) => /^\s*when: referral\.crisis\s*$/.test(l)) + 1;
  assert.ok(crisisLine > 0, "intake.yaml has the crisis exclude");
  assert.equal(await page.locator(`.gutter .ln[data-line="${lines.length}"]`).count(), 1, "a gutter line per line");

  // An unknown name: the check finds it at its line.
  const bad = lines.map((l, i) => (i === crisisLine - 1 ? l.replace("referral.crisis", "referral.crisiss") : l)).join("\n");
  await editor(page).fill(bad);
  await page.locator("#btn-check").click();
  const diag = page.locator(`li.diag.d-error[data-line="${crisisLine}"]`);
  await diag.waitFor();
  const text = await diag.textContent();
  assert.match(text, new RegExp(`kempen/intake\\.yaml:${crisisLine}:\\d+`), text);
  assert.match(text, /referral\.crisiss/);
  assert.equal(await page.locator(`.gutter .ln.mark.error[data-line="${crisisLine}"]`).count(), 1, "the gutter marks the line");
  // Clicking the message puts the cursor on that line.
  await diag.locator("button").click();
  const caretLine = await editor(page).evaluate((ta) => ta.value.slice(0, ta.selectionStart).split("\n").length);
  assert.equal(caretLine, crisisLine);
  assert.equal(await editor(page).evaluate((ta) => document.activeElement === ta), true);
  // The gutter scrolls with the text: the marked line sits beside its text.
  const scroll = await page.evaluate(() => [document.querySelector("#rules-editor").scrollTop, document.querySelector(".gutter").scrollTop]);
  assert.ok(scroll[0] > 0, "the editor scrolled to the line");
  assert.equal(scroll[1], scroll[0]);
  await editor(page).evaluate((ta) => { ta.scrollTop = 200; ta.dispatchEvent(new Event("scroll")); });
  assert.equal(await page.locator(".gutter").evaluate((g) => g.scrollTop), 200);
  await sp.shot(page, "rules-error");

  // Save refuses while the check finds errors; nothing changed on the server.
  await page.locator("#btn-save").click();
  await page.locator(".rules-msg", { hasText: /Niet bewaard/ }).waitFor();
  assert.equal((await coord.get("/v1/regions/kempen/rules")).active_version, before.active_version);
  // Leaving the page with unsaved edits asks first; "cancel" stays.
  const asked = new Promise((res) => page.once("dialog", (d) => { res(d.message()); d.dismiss(); }));
  await page.getByRole("navigation", { name: "Hoofdmenu" }).getByRole("link", { name: "Signalen" }).click();
  assert.match(await asked, /Niet bewaarde wijzigingen/);
  assert.equal(await page.evaluate(() => location.hash), "#/rules");
  assert.equal(await editor(page).inputValue(), bad);

  // The fix, with a real change: a non-articulated request gets 5 points more.
  const waiting = "      score: min(referral.waiting_days * params.points_per_waiting_day, params.max_waiting_points)\n";
  const fixed = original.replace(waiting, waiting + [
    "    - id: non_articulated",
    '      label: "Niet-gearticuleerde hulpvraag"',
    '      label_en: "Non-articulated help request"',
    '      score: "referral.articulated ? 0 : 5"', ""].join("\n"));
  assert.notEqual(fixed, original);
  await editor(page).fill(fixed);
  await editor(page).press("Control+Enter"); // the keyboard's check
  await page.locator(".diag-summary.good").waitFor();
  assert.equal(await page.locator(".gutter .ln.mark").count(), 0, "the marks are gone");
  assert.match(await page.locator(".rules-results").textContent(), /Tests: \d+ geslaagd, 0 mislukt/);

  await page.locator("#btn-dryrun").click();
  const summary = page.locator(".dryrun-summary");
  await summary.waitFor();
  const m = /(\d+) van (\d+) open aanmeldingen/.exec(await summary.textContent());
  assert.ok(m && Number(m[1]) > 0, "some open referral is non-articulated: " + (await summary.textContent()));
  const row = page.locator(".dryrun-row").first();
  assert.match(await row.textContent(), /prioriteit \d+.*prioriteit \d+/);
  // Reasons are named by their labels in the file.
  const reasons = await page.locator(".dryrun-row ul.reasons li").allTextContents();
  assert.ok(reasons.every((r) => !/^[a-z_]+$/.test(r)), "reasons as labels: " + reasons);
  await sp.shot(page, "rules-dryrun");

  await page.locator("#btn-save").click();
  await page.locator(".rules-msg", { hasText: /Bewaard en actief/ }).waitFor();
  const after = await coord.get("/v1/regions/kempen/rules");
  assert.notEqual(after.active_version, before.active_version);
  assert.equal(after.activated_by, "coordinator.kempen.demo");
  await page.locator(`#active-version[title="${after.active_version}"]`).waitFor();
  const first = page.locator(".rules-history tbody tr").first();
  assert.equal(await first.getAttribute("data-hash"), after.active_version);
  assert.match(await first.textContent(), /coordinator\.kempen\.demo/);
  assert.equal(await page.locator(".rules-history tbody tr").count(), 2, "startup and the save");
  assert.equal(await page.locator("#rules-editor").inputValue(), fixed);
  await sp.shot(page, "rules");

  // Rollback to the first version, with a confirm.
  await page.locator(`.rules-history tr[data-hash="${before.active_version}"] button.rollback`).click();
  await page.locator("dialog.confirm").waitFor();
  await page.locator("dialog.confirm button[type=submit]").click();
  await page.locator(".rules-msg", { hasText: /Teruggezet/ }).waitFor();
  assert.equal((await coord.get("/v1/regions/kempen/rules")).active_version, before.active_version);
  assert.equal(await editor(page).inputValue(), original);
  assert.equal(await page.locator(".rules-history tbody tr").count(), 3);
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a reviewer reads the rules only and reaches no other region", async () => {
  const page = await sp.page({ width: 768, height: 1024 });
  await sp.login(page, "reviewer.kempen.demo");
  await sp.goto(page, "/rules/intake");
  await editor(page).waitFor();
  assert.equal(await editor(page).getAttribute("readonly"), "");
  assert.equal(await page.locator("#btn-save").count(), 0, "no save button");
  assert.equal(await page.locator("#btn-check").count(), 0);
  assert.equal(await page.locator("button.rollback").count(), 0, "no rollback");
  await page.locator("#readonly-note").waitFor();
  const value = await editor(page).inputValue();
  await editor(page).click();
  await page.keyboard.type("xyz");
  assert.equal(await editor(page).inputValue(), value, "typing changes nothing");
  await sp.shot(page, "rules-reviewer-tablet");

  // Through the page's own session: another region's rules are not found.
  const other = await page.evaluate(async () => {
    const s = JSON.parse(localStorage.getItem("samenplan.session"));
    const res = await fetch("/v1/regions/maasland/rules", { headers: { Authorization: "Bearer " + s.access_token } });
    return { status: res.status, regions: s.user.regions };
  });
  assert.equal(other.status, 404);
  assert.deepEqual(other.regions, ["kempen"]);
  const rv = await sp.api("reviewer.kempen.demo");
  assert.equal((await rv.request("PUT", "/v1/regions/kempen/rules/intake", value)).status, 403);
  for (const route of ["/rules/intake", "/rules/signals", "/signals", "/reports"]) {
    await sp.goto(page, route);
    const body = (await page.locator("body").textContent()).toLowerCase();
    assert.ok(!body.includes("maasland"), `${route} shows nothing of maasland`);
    assert.equal(await page.locator("header select[aria-label=Regio]").count(), 0, "no region switch");
  }
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a broken file on disk shows as a load error; the coordinator opens the disk's file, fixes and saves it", async () => {
  const coord = await sp.api("coordinator.kempen.demo");
  const path = join(sp.rulesDir, "kempen", "signals.yaml");
  const good = readFileSync(path, "utf8");
  const lines = good.split("\n");
  const at = lines.findIndex((l) => /^\s+when: /.test(l));
  assert.ok(at > 0);
  lines[at] = lines[at].replace("when: ", "when: trajectory.no_such_field || ");
  writeFileSync(path, lines.join("\n"));
  let st;
  for (let i = 0; i < 100; i++) {
    st = await coord.get("/v1/regions/kempen/rules");
    if (st.load_status === "error") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(st.load_status, "error", "the watcher rejects the file");

  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  await sp.goto(page, "/rules/signals");
  const box = page.locator(".load-errors");
  await box.waitFor();
  assert.match(await box.textContent(), new RegExp(`kempen/signals\\.yaml:${at + 1}:\\d+`));
  assert.equal(await page.locator("#rules-from").inputValue(), "disk", "the disk's file opens");
  assert.match(await page.locator("#rules-editor").inputValue(), /no_such_field/);
  assert.equal(await page.locator(`.gutter .ln.mark.error[data-line="${at + 1}"]`).count(), 1, "the gutter marks the rejected line");
  await box.locator(`li[data-line="${at + 1}"] button`).click();
  assert.equal(await page.locator("#rules-editor").evaluate((ta) => ta.value.slice(0, ta.selectionStart).split("\n").length), at + 1);
  assert.equal(await page.locator("#btn-dryrun").count(), 0, "no dry-run for signals");
  await sp.shot(page, "rules-load-error");

  await page.locator("#rules-editor").fill(good);
  await page.locator("#btn-save").click();
  // The content is the active version's: saved to disk, nothing new to activate.
  await page.locator(".rules-msg", { hasText: /Bewaard: dit was al de actieve versie/ }).waitFor();
  await page.locator(".rules-status .badge.ok").waitFor();
  assert.equal((await coord.get("/v1/regions/kempen/rules")).load_status, "ok");
  assert.deepEqual(sp.pageErrors(page), []);
});
