// Browser tests of the intake board (src/pages/intake.ts) against the real
// server with demo data: a start with the suggested coach, the new
// trajectory on its case page, a capacity refusal and its override, an
// ineligible start that needs a reason, earlier weeks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { useHarness } from "./harness.mjs";

const sp = useHarness();

function uuid7() {
  const ms = Date.now().toString(16).padStart(12, "0");
  const r = randomUUID().replace(/-/g, "");
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${r.slice(13, 16)}-${"89ab"[Number.parseInt(r[16], 16) & 3]}${r.slice(17, 20)}-${r.slice(20, 32)}`;
}

async function openBoard(page) {
  await sp.login(page, "coordinator.kempen.demo");
  await sp.goto(page, "/intake");
  await page.locator("ol.referrals li.referral").first().waitFor();
}

test("the coordinator starts a referral with the suggested coach and sees the trajectory", async () => {
  const page = await sp.page();
  await openBoard(page);
  await sp.shot(page, "intake-board");

  // eligible first, by priority; each explains itself with the rule file's labels
  const cards = page.locator("ol.referrals li.referral");
  assert.ok(await cards.count() >= 2);
  assert.match(await cards.first().getAttribute("class"), /\beligible\b/);
  const first = cards.first();
  await first.locator("details.why summary").click();
  await first.locator("details.why").getByText("Minstens één gezinslid wil samenwerken met de coach").waitFor();
  const ineligible = page.locator("li.referral.ineligible").first();
  await ineligible.locator(".reasons").waitFor();
  assert.match(await ineligible.locator(".reasons").innerText(), /Niet in aanmerking/);
  // capacity per coach and the year's counters
  assert.equal(await page.locator(".capacity tbody tr").count(), 4);
  await page.locator(".year").getByText(/van 200 trajecten gestart/).waitFor();
  await page.locator(".year").getByText(/van 60 gemandateerd/).waitFor();

  const family = (await first.locator("h3").innerText()).trim();
  const suggested = (await first.locator(".suggestion strong").innerText()).trim();
  const coachSelect = first.locator("select[name=coach]");
  assert.match(await coachSelect.locator("option:checked").innerText(), new RegExp(suggested));
  const before = await page.locator("ol.referrals li.referral").count();
  await first.locator("button[type=submit]").click();
  await page.locator(".flash.ok").getByText("Beslissing vastgelegd").waitFor();
  assert.equal(await page.locator(".flash.ok").evaluate((el) => el === document.activeElement), true, "focus on the confirmation");
  await page.locator("#decisions tbody tr").first().waitFor();
  assert.match(await page.locator("#decisions tbody tr").first().innerText(), new RegExp(`${family}[\\s\\S]*${suggested}`));
  assert.equal(await page.locator("ol.referrals li.referral").count(), before - 1);

  // her own decision's echo on the event stream does not ask for a refresh
  await page.waitForTimeout(1500);
  assert.equal(await page.locator("#board-refresh").count(), 0);
  // a referral logged elsewhere (the permanence line, through a device) is offered as a refresh, not drawn under the coordinator's hands
  const coach = await sp.api("coach2.kempen.demo");
  const famId = (await (await sp.api("coordinator.kempen.demo")).get("/v1/families?region=kempen&status=none&limit=1")).items[0].family_id;
  const rid = uuid7();
  const hlc = (i) => `${Date.now()}-${i.toString(16).padStart(4, "0")}-${coach.deviceId}`;
  const fields = { region: "kempen", family_id: famId, received_on: new Date().toISOString().slice(0, 10), channel: "permanentie", question: "Live aanmelding", articulated: true, consent: true };
  const pushed = await coach.post("/v1/sync/push", { device_id: coach.deviceId, batch_id: uuid7(), schema_version: 1,
    changes: Object.entries(fields).map(([field, value], i) => ({ collection: "referrals", id: rid, field, value, hlc: hlc(i) })) });
  assert.equal(pushed.rejected.length, 0, JSON.stringify(pushed));
  await page.locator("#board-refresh").waitFor({ timeout: 8_000 });

  // the new trajectory on its case page
  await page.locator(".flash.ok a").click();
  await page.locator("#case-h").waitFor();
  assert.equal((await page.locator("#case-h").innerText()).trim(), family);
  await page.locator("#traj-coaches").getByText(suggested).waitFor();
  await page.locator("#traj-status").getByText("actief").waitFor();
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a capacity refusal shows its checks and can be overridden with a reason", async () => {
  const admin = await sp.api("admin");
  const coord = await sp.api("coordinator.kempen.demo");
  const board = await coord.get("/v1/regions/kempen/intake");
  // make the half-time coach full: fte 0.3 gives a limit of round(3.6) = 4
  const c4 = board.coaches.find((c) => c.username === "coach4.kempen.demo");
  assert.ok(c4.active_families >= 4, "demo data: coach4 has 4 families");
  await admin.patch(`/v1/users/${c4.coach_id}`, { fte: 0.3 });

  const page = await sp.page();
  await openBoard(page);
  const card = page.locator("li.referral.eligible").first();
  const family = (await card.locator("h3").innerText()).trim();
  await card.locator("select[name=coach]").selectOption(c4.coach_id);
  await card.locator("button[type=submit]").click();
  const refusal = card.locator(".capacity-refusal");
  await refusal.waitFor();
  await refusal.getByText("De capaciteitsregels weigeren deze start.").waitFor();
  assert.match(await refusal.locator("li.fail").first().innerText(), /De coach heeft nog plaats/);
  const override = card.locator("textarea[name=override]");
  assert.equal(await override.evaluate((el) => el === document.activeElement), true, "focus on the reason");
  await sp.shot(page, "intake-capacity-refused");
  await card.locator("button[type=submit]").click(); // no reason yet
  await card.locator(".form-msg").getByText("Geef een reden").waitFor();
  await override.fill("Gezin kent Driss al van een vorig traject.");
  await card.locator("button[type=submit]").click();
  await page.locator(".flash.ok").getByText("Beslissing vastgelegd").waitFor();
  const row = page.locator("#decisions tbody tr", { hasText: family });
  await row.getByText("Toch gestart: Gezin kent Driss al van een vorig traject.").waitFor();
  await row.getByText(/Capaciteit geweigerd: De coach heeft nog plaats/).waitFor();

  // an ineligible referral: start needs a reason up front
  const inel = page.locator("li.referral.ineligible").first();
  await inel.locator("input[name=kind][value=start]").check();
  await inel.locator(".override").waitFor();
  await inel.locator("button[type=submit]").click();
  await inel.locator(".form-msg").getByText("Kies een coach").waitFor();
  await inel.locator("select[name=coach]").selectOption({ index: 1 });
  await inel.locator("button[type=submit]").click();
  await inel.locator(".form-msg").getByText("Geef een reden").waitFor();
  // decline with a reason instead
  await inel.locator("input[name=kind][value=decline]").check();
  await inel.locator("button[type=submit]").click();
  await inel.locator(".form-msg").getByText("reden").waitFor();
  await inel.locator("textarea[name=reason]").fill("Crisishulp nodig: doorgegeven aan het crisismeldpunt.");
  await inel.locator("button[type=submit]").click();
  await page.locator("#decisions tbody tr", { hasText: "Crisishulp nodig" }).waitFor();

  // redirect (to whom is required) and consult only
  const next = page.locator("li.referral.eligible").first();
  await next.locator("input[name=kind][value=redirect]").check();
  await next.locator("button[type=submit]").click();
  await next.locator(".form-msg").getByText("naar wie").waitFor();
  await next.locator("input[name=redirect_to]").fill("CAW De Kempen, onthaal");
  await next.locator("button[type=submit]").click();
  await page.locator("#decisions tbody tr", { hasText: "naar CAW De Kempen, onthaal" }).waitFor();
  const cons = page.locator("li.referral.eligible").first();
  await cons.locator("input[name=kind][value=consult]").check();
  await cons.locator("button[type=submit]").click();
  await page.locator("#decisions tbody tr .badge.consult").waitFor();
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a coach reads the board without decision forms", async () => {
  const page = await sp.page();
  await sp.login(page, "coach1.kempen.demo");
  await sp.goto(page, "/intake");
  await page.locator("#intake-h").waitFor();
  await page.locator(".capacity tbody tr").first().waitFor();
  assert.equal(await page.locator("form.decide").count(), 0);
  assert.equal(await page.locator("ol.referrals h3 a").count(), 0, "coaches open no case pages here");
  assert.deepEqual(sp.pageErrors(page), []);
});

test("earlier weeks are browsable and keep their week in the address", async () => {
  const page = await sp.page({ width: 768, height: 1024 });
  await openBoard(page);
  const week = (await page.locator("#week-input").inputValue());
  await sp.shot(page, "intake-board-tablet");
  await page.locator("#week-prev").click();
  await sp.settle(page);
  await page.waitForFunction((w) => document.querySelector("#week-input")?.value !== w, week);
  const prev = await page.locator("#week-input").inputValue();
  assert.match(page.url(), new RegExp(`week=${prev}`));
  assert.match(await page.locator("#intake-h").innerText(), new RegExp(prev.replace("-W", " W")));
  assert.equal(await page.locator("#week-prev").evaluate((el) => el === document.activeElement), true);
  await page.locator("#week-now").click();
  await sp.settle(page);
  await page.waitForFunction((w) => document.querySelector("#week-input")?.value === w, week);

  // the board pages its referrals
  await sp.goto(page, `/intake?week=${week}&limit=1`);
  const range = page.locator(".board-main .pager .range");
  const total = Number(/van (\d+)/.exec(await range.innerText())[1]);
  assert.ok(total > 1);
  assert.equal(await page.locator("ol.referrals li.referral").count(), 1);
  await page.locator(".board-main .pager button.next").click();
  await page.locator(".board-main .pager .range", { hasText: `2–2 van ${total}` }).waitFor();
  assert.match(page.url(), /offset=1&limit=1/);
  assert.equal(await page.locator("#ref-h").evaluate((el) => el === document.activeElement), true);
  assert.deepEqual(sp.pageErrors(page), []);
});
