// Browser tests of the coach's pages on the sync SDK: her own families from
// the local store, a family page, and a contact written offline that survives
// an offline reload and reaches the server's consolidated case once online.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { useHarness } from "../../../web/test/harness.mjs";

const SHOTS = resolve(dirname(fileURLToPath(import.meta.url)), "../screenshots");
const sp = useHarness();

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: true });
}

async function coachPhone(username) {
  const page = await sp.page({ width: 390, height: 844 });
  await page.goto(sp.url + "/coach/");
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15_000 });
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(sp.password);
  await page.locator("form.login button[type=submit]").click();
  await page.locator("header.top").waitFor();
  await page.locator("ul.cards a.card").first().waitFor({ timeout: 15_000 }); // the first pull landed
  await sp.settle(page);
  return page;
}

/** synced syncs the page now (the online event may have started it already)
 *  and waits until nothing is pending. */
async function synced(page) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const btn = page.locator(".syncbar button.sync-now");
    if (await btn.isVisible()) await btn.click({ timeout: 2_000 }).catch(() => {});
    try {
      await page.locator(".syncbar .pending.ok").waitFor({ timeout: 2_000 });
      return;
    } catch {
      // still sending
    }
  }
  throw new Error("still pending after 15 s: " + (await page.locator(".syncbar").innerText()));
}

/** editGoal opens the first goal of the family page shown, sets its text
 *  (and the scale, when given) and saves. */
async function editGoal(page, text, scale) {
  await page.locator("section.plan a.edit").first().click();
  await page.locator("form.goal").waitFor();
  const goalId = page.url().split("/doel/")[1];
  await page.locator("#goal").fill(text);
  if (scale !== undefined) await page.locator("#scale").fill(String(scale));
  await page.locator("form.goal button[type=submit]").click();
  await page.locator(".flash.ok").waitFor();
  await page.locator("section.plan li", { hasText: text }).waitFor();
  return goalId;
}

test("my families are only hers, and a family page shows members, plan, network and contacts", async () => {
  const page = await coachPhone("coach1.kempen.demo");
  const coach = await sp.api("coach1.kempen.demo");
  const reviewer = await sp.api("reviewer.kempen.demo");
  const ids = await page.locator("ul.cards a.card").evaluateAll((as) => as.map((a) => a.getAttribute("href").replace("#/gezin/", "")));
  assert.ok(ids.length > 0);
  for (const id of ids) {
    const c = await reviewer.get(`/v1/families/${id}`);
    assert.ok(c.coaches.includes(coach.user.id), `family ${id} is coached by coach1`);
  }
  await shot(page, "families");

  await page.locator("ul.cards a.card").first().click();
  await page.locator("article.family h1").waitFor();
  await sp.settle(page);
  const c = await reviewer.get(`/v1/families/${ids[0]}`);
  assert.equal(await page.locator("article.family h1").textContent(), c.family.label);
  for (const s of ["members", "plan", "network", "timeline"]) assert.equal(await page.locator(`article.family section.${s}`).count(), 1, s);
  assert.equal(await page.locator("section.members li").count(), c.members.length);
  await shot(page, "family");
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a contact written offline is kept through an offline reload and reaches the consolidated case online", async () => {
  const page = await coachPhone("coach2.kempen.demo");
  await page.locator("ul.cards a.card").first().click();
  await page.locator("article.family h1").waitFor();
  const familyId = page.url().split("#/gezin/")[1];

  await page.context().setOffline(true);
  await page.locator("a.button", { hasText: "Contact na een huisbezoek" }).click();
  await page.locator("form.contact").waitFor();
  const note = "Huisbezoek zonder bereik " + Date.now();
  await page.locator("#mode").selectOption("home_visit");
  await page.locator("#minutes").fill("45");
  await page.locator("#others").fill("grootmoeder");
  await page.locator("#note").fill(note);
  await page.locator("#follow_up").fill("Volgende week bellen");
  await page.locator("form.contact button[type=submit]").click();
  await page.locator(".flash.ok").waitFor();
  await page.locator("section.timeline li", { hasText: note }).waitFor();
  await page.locator(".syncbar .pending.warn").waitFor();
  await shot(page, "contact-offline");
  const goalText = "Samen naar school fietsen " + Date.now();
  await editGoal(page, goalText, 7);

  await page.reload();
  await page.locator("section.timeline li", { hasText: note }).waitFor();
  await page.locator("section.plan li", { hasText: goalText }).waitFor();
  await page.locator(".syncbar .pending.warn").waitFor();
  assert.equal(await page.locator(".syncbar .net").textContent(), "Offline");

  await page.context().setOffline(false);
  await synced(page);
  const reviewer = await sp.api("reviewer.kempen.demo");
  const c = await reviewer.get(`/v1/families/${familyId}`);
  assert.ok(JSON.stringify(c.goals).includes(goalText), "the goal's new text is in the consolidated case");
  const got = c.contacts.find((x) => x.note === note);
  assert.ok(got, "the offline note is in the consolidated case");
  assert.equal(got.minutes, 45);
  assert.equal(got.mode, "home_visit");
  assert.ok(got.participants.includes("grootmoeder"));
  assert.equal(got.follow_up, "Volgende week bellen");
  await shot(page, "contact-synced");
  assert.deepEqual(sp.pageErrors(page), []);
});

test("the same goal edited offline on two devices converges to the later write on both; the other is in the history", async () => {
  const a = await coachPhone("coach1.kempen.demo");
  const b = await coachPhone("coach1.kempen.demo"); // her second device
  const familyId = (await a.locator("ul.cards a.card").first().getAttribute("href")).replace("#/gezin/", "");
  for (const p of [a, b]) {
    await p.evaluate((id) => (location.hash = "#/gezin/" + id), familyId);
    await p.locator("article.family h1").waitFor();
    await p.context().setOffline(true);
  }
  const first = "Eerst op de telefoon " + Date.now();
  const goalId = await editGoal(a, first);
  await new Promise((r) => setTimeout(r, 20));
  const later = "Later op de laptop " + Date.now();
  assert.equal(await editGoal(b, later), goalId, "the same goal");

  for (const p of [a, b]) await p.context().setOffline(false);
  await synced(a);
  await synced(b);
  await synced(a); // pulls b's write
  for (const p of [a, b]) await p.locator("section.plan li", { hasText: later }).waitFor();
  assert.equal(await a.locator("section.plan li", { hasText: first }).count(), 0);

  const reviewer = await sp.api("reviewer.kempen.demo");
  const h = await reviewer.get(`/v1/families/${familyId}/history?collection=plan_goals&row=${goalId}&field=goal`);
  const values = h.fields.flatMap((f) => f.entries.map((e) => e.value));
  assert.ok(values.includes(first) && values.includes(later), JSON.stringify(values));
  const c = await reviewer.get(`/v1/families/${familyId}`);
  assert.ok(JSON.stringify(c.goals).includes(later) && !JSON.stringify(c.goals).includes(first));
  await shot(b, "goal-converged");
  assert.deepEqual([...sp.pageErrors(a), ...sp.pageErrors(b)], []);
});
