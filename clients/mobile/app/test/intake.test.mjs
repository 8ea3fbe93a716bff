// The coach's intake work in the app: a permanence consult and the referral
// that follows from it, written offline, reach the region's intake board once
// online; her signals page shows the signals of her families.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useHarness } from "../../../web/test/harness.mjs";

const sp = useHarness();

async function coachPhone(username) {
  const page = await sp.page({ width: 390, height: 844 });
  await page.goto(sp.url + "/coach/");
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(sp.password);
  await page.locator("form.login button[type=submit]").click();
  await page.locator("ul.cards a.card").first().waitFor({ timeout: 15_000 });
  return page;
}

test("a permanence consult and its referral, written offline, reach the intake board", async () => {
  const page = await coachPhone("coach1.kempen.demo");
  await page.locator("header.top nav a", { hasText: "Permanentie" }).click();
  await page.locator("form.consult").waitFor();
  await page.context().setOffline(true);
  const question = "Moeder belt: zoon spijbelt al weken " + Date.now();
  await page.locator("#referrer").fill("CLB Kempen, mevrouw Peeters");
  await page.locator("#question").fill(question);
  await page.locator("#advice").fill("Gesprek met school voorgesteld");
  await page.locator("#with_referral").check();
  await page.locator("form.consult button[type=submit]").click();

  await page.locator("form.referral").waitFor();
  assert.equal(await page.locator("#question").inputValue(), question, "the referral starts from the consult");
  await page.locator("#municipality").fill("Beerse");
  await page.locator("#consent").check();
  await page.locator("form.referral button[type=submit]").click();
  await page.locator(".flash.ok", { hasText: "Aanmelding bewaard" }).waitFor();
  await page.locator("li.consult-item", { hasText: question }).getByText("Met aanmelding").waitFor();
  await page.locator(".syncbar .pending.warn").waitFor();

  await page.context().setOffline(false);
  const deadline = Date.now() + 15_000;
  while (!(await page.locator(".syncbar .pending.ok").isVisible()) && Date.now() < deadline) {
    await page.locator(".syncbar button.sync-now").click({ timeout: 1_000 }).catch(() => {});
    await page.waitForTimeout(300);
  }
  await page.locator(".syncbar .pending.ok").waitFor({ timeout: 1_000 });
  assert.equal(await page.locator(".syncbar .rejected").count(), 0, "nothing refused: " + (await page.locator(".syncbar").innerText()));

  const coordinator = await sp.api("coordinator.kempen.demo");
  const board = await coordinator.get("/v1/regions/kempen/intake");
  assert.ok(JSON.stringify(board).includes(question), "the referral is on the intake board");
  assert.deepEqual(sp.pageErrors(page), []);
});

test("her signals page lists the signals of her families", async () => {
  const page = await coachPhone("coach1.kempen.demo");
  const coach = await sp.api("coach1.kempen.demo");
  const api = await coach.get("/v1/regions/kempen/signals");
  await page.locator("header.top nav a", { hasText: "Signalen" }).click();
  await page.locator("section.signals h1").waitFor();
  await sp.settle(page);
  const n = await page.locator("li.signal").count();
  const total = api.total ?? api.signals?.length ?? api.items?.length;
  assert.ok(total !== undefined, "API answer: " + JSON.stringify(api).slice(0, 300));
  assert.ok(total > 0, "the demo gives coach1 a signal");
  assert.equal(n, total, `app shows ${n}, the API ${total}`);
  assert.deepEqual(sp.pageErrors(page), []);
});
