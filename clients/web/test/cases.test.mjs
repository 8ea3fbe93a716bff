// Browser tests of the cases list and the case page (src/pages/cases.ts,
// src/pages/case/) against the real server with demo data: search, filters
// and paging; a contact pushed by a coach's device appears on the open case
// page without a reload; a reassignment shows the new lead coach and the old
// coach's eviction proof; her later note lands in quarantine and is accepted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { useHarness } from "./harness.mjs";

const sp = useHarness();

/** A coach's device, as the sync protocol (docs/protocol.md) has it. */
class Device {
  constructor(api) {
    this.api = api;
    this.cursor = "";
    this.held = new Set();
    this.counter = 0;
  }
  hlc() {
    return `${Date.now()}-${(this.counter++ & 0xffff).toString(16).padStart(4, "0")}-${this.api.deviceId}`;
  }
  async push(changes) {
    return this.api.post("/v1/sync/push", { device_id: this.api.deviceId, batch_id: randomUUID(), schema_version: 1, changes });
  }
  /** pullAll pulls until more is false; proves held scopes after an eviction. */
  async pullAll() {
    const evicted = [];
    for (;;) {
      const heldHash = this.proof ?? "";
      const r = await this.api.post("/v1/sync/pull", { device_id: this.api.deviceId, schema_version: 1, cursor: this.cursor, limit: 1000, held_hash: heldHash });
      this.cursor = r.cursor;
      for (const c of r.changes ?? []) if (c.scope) this.held.add(c.scope);
      for (const s of r.evict ?? []) {
        this.held.delete(s);
        evicted.push(s);
      }
      if (r.checksums) for (const s of Object.keys(r.checksums)) this.held.add(s);
      this.proof = (r.evict ?? []).length ? scopesHash([...this.held]) : undefined;
      if (!r.more) return { evicted, last: r };
    }
  }
  async contact(trajectoryId, coachId, note) {
    const id = uuid7();
    const f = (field, value) => ({ collection: "contacts", id, field, value, hlc: this.hlc() });
    const r = await this.push([f("trajectory_id", trajectoryId), f("coach_id", coachId), f("occurred_at", new Date().toISOString()),
      f("mode", "home_visit"), f("minutes", 45), f("note", note)]);
    return { id, r };
  }
}

/** scopesHash is crdt.ScopesHash: FNV-1a 64 of the sorted scopes joined by "\n". */
function scopesHash(scopes) {
  const mask = (1n << 64n) - 1n;
  let h = 14695981039346656037n;
  const bytes = Buffer.from([...scopes].sort().join("\n"), "utf8");
  for (const b of bytes) h = ((h ^ BigInt(b)) * 1099511628211n) & mask;
  return h.toString(16).padStart(16, "0");
}

function uuid7() {
  const ms = BigInt(Date.now()).toString(16).padStart(12, "0");
  const r = randomUUID().replace(/-/g, "");
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${r.slice(13, 16)}-${"89ab"[Number.parseInt(r[16], 16) & 3]}${r.slice(17, 20)}-${r.slice(20, 32)}`;
}

test("the list searches, filters and pages the region's cases", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  await sp.goto(page, "/cases");
  const rows = page.locator("#case-table tbody tr");
  await rows.first().waitFor();
  const count = await page.locator("#case-count").innerText();
  const total = Number(/(\d+) dossiers/.exec(count)[1]);
  assert.ok(total > 25, "demo data has more than one page");
  assert.equal(await rows.count(), 25);
  await sp.shot(page, "cases-list");
  await page.locator(".pager button.next").click();
  await page.locator(".pager .range", { hasText: `26–${total} van ${total}` }).waitFor();
  assert.equal(await rows.count(), total - 25);

  await page.locator("#f-status").selectOption("active");
  await page.waitForFunction(() => /status=active/.test(location.hash) && !document.querySelector(".results[aria-busy=true]"));
  const statuses = await page.locator("#case-table tbody tr td .badge.st-active").count();
  assert.equal(statuses, await rows.count());
  await page.locator("#f-signal").selectOption("no_contact_10_days");
  await page.waitForFunction(() => /signal=no_contact_10_days/.test(location.hash) && !document.querySelector(".results[aria-busy=true]"));
  assert.ok(await rows.count() >= 1);
  for (const txt of await rows.allInnerTexts()) assert.match(txt, /Meer dan 10 dagen geen contact/);

  await page.locator("button", { hasText: "Wissen" }).click();
  await page.locator("#f-q").fill("Berkenrode");
  await page.locator("#f-q").press("Enter");
  await page.waitForFunction(() => /q=Berkenrode/.test(location.hash) && !document.querySelector(".results[aria-busy=true]"));
  assert.equal(await rows.count(), 1);
  await rows.first().locator("a").click();
  await page.locator("#case-h", { hasText: "Gezin Berkenrode" }).waitFor();
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a coach's contact appears live; a reassignment shows the new lead, the eviction proof and the quarantined note", async () => {
  const coord = await sp.api("coordinator.kempen.demo");
  const board = await coord.get("/v1/regions/kempen/intake?limit=1");
  const coach1 = board.coaches.find((c) => c.username === "coach1.kempen.demo");
  const coach2 = board.coaches.find((c) => c.username === "coach2.kempen.demo");
  const list = await coord.get(`/v1/families?region=kempen&coach=${coach1.coach_id}&status=active&limit=1`);
  const fam = list.items[0];
  assert.ok(fam && fam.trajectory_id, "demo data: coach1 leads an active trajectory");

  const dev = new Device(await sp.api("coach1.kempen.demo"));
  await dev.pullAll();
  assert.ok(dev.held.has("family:" + fam.family_id));

  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  // the list follows too: the family's last contact becomes today
  await sp.goto(page, "/cases?q=" + encodeURIComponent(fam.label) + "&coach=" + coach1.coach_id);
  const row = page.locator(`#case-table tr[data-family="${fam.family_id}"]`);
  await row.waitFor();
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.waitForTimeout(300); // the event stream is connected
  await dev.contact(fam.trajectory_id, coach1.coach_id, "Kort telefonisch contact " + randomUUID().slice(0, 8));
  await row.getByText("vandaag").waitFor({ timeout: 8_000 });
  await row.locator("a").click();
  await page.locator("#case-h").waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  await page.waitForTimeout(300); // the case page's event stream is connected

  // live: the coach's device pushes a contact
  const note = "Huisbezoek (live test): moeder toont het nieuwe weekschema " + randomUUID().slice(0, 8);
  const { r } = await dev.contact(fam.trajectory_id, coach1.coach_id, note);
  assert.equal(r.applied, 6, JSON.stringify(r));
  const fresh = page.locator("li.contact", { hasText: note });
  await fresh.waitFor({ timeout: 8_000 });
  assert.match(await fresh.getAttribute("class"), /\bnew\b/);
  assert.equal(await page.locator("li.contact").first().innerText().then((x) => x.includes(note)), true, "newest first");
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  await fresh.locator(".hist-btn").click();
  // field history on demand: who wrote it, from which device
  await fresh.locator(`.history table [title="${dev.api.deviceId}"]`).first().waitFor();
  assert.match(await fresh.locator(".history table").innerText(), new RegExp(`note[\\s\\S]*${coach1.display_name}`));
  await sp.shot(page, "case-page");

  // two devices edit the note concurrently: the older write loses, both texts are shown side by side
  const dev2 = new Device(await sp.api("coach1.kempen.demo"));
  const contactId = await fresh.getAttribute("data-contact");
  const won = "Notitie aangevuld op de laptop " + randomUUID().slice(0, 8);
  const lost = "Notitie aangevuld op de telefoon " + randomUUID().slice(0, 8);
  await dev2.push([{ collection: "contacts", id: contactId, field: "note", value: won, hlc: dev2.hlc() }]);
  const older = `${Date.now() - 60_000}-0000-${dev.api.deviceId}`;
  const pr = await dev.push([{ collection: "contacts", id: contactId, field: "note", value: lost, hlc: older }]);
  assert.equal(pr.ignored, 1, JSON.stringify(pr));
  const conflict = page.locator("section.conflicts article.conflict", { hasText: lost });
  await conflict.waitFor({ timeout: 8_000 });
  assert.match(await conflict.locator(".side.winner").innerText(), new RegExp(won));
  assert.match(await conflict.locator(".side.loser").innerText(), new RegExp(lost));
  await page.locator("li.contact", { hasText: won }).waitFor();
  // the open history panel follows: the winner replaced the first note, the loser is logged as lost
  const hist = page.locator(`li.contact[data-contact="${contactId}"] .history`);
  await hist.getByText(lost).waitFor();
  assert.ok((await hist.innerText()).includes(`${note} → ${won}`));

  // reassign to coach2
  await page.locator("#ra-summary").click();
  await page.locator("#ra-lead").selectOption(coach2.coach_id);
  await page.locator("#ra-submit").click();
  await page.locator("dialog.confirm button", { hasText: "Toewijzen" }).click();
  await page.locator("#traj-coaches li[data-role=lead]", { hasText: coach2.display_name }).waitFor();
  await page.locator(".flash.ok", { hasText: "Toegewezen aan " + coach2.display_name }).waitFor();
  // the old coach's device pulls twice: told to evict, then the proof
  const ev = page.locator(`#evictions li[data-device="${dev.api.deviceId}"]`);
  const first = await dev.pullAll();
  assert.deepEqual(first.evicted, ["family:" + fam.family_id]);
  await ev.getByText("wacht op bewijs").waitFor({ timeout: 8_000 });
  await dev.pullAll();
  await ev.getByText("bewezen").waitFor({ timeout: 8_000 });

  // a note she still writes for the family goes to quarantine; the coordinator accepts it
  const late = "Late notitie van het oude toestel " + randomUUID().slice(0, 8);
  const q = await dev.contact(fam.trajectory_id, coach1.coach_id, late);
  assert.ok(q.r.quarantined.length > 0, JSON.stringify(q.r));
  const qitem = page.locator("section.quarantine li.qitem", { hasText: late });
  await qitem.waitFor({ timeout: 8_000 }); // live too: the quarantine count changes, the case's event comes
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  await sp.shot(page, "case-page-reassigned");
  await qitem.locator("button", { hasText: "Aanvaarden" }).click();
  await page.locator("dialog.confirm button", { hasText: "Aanvaarden" }).click();
  await page.locator(".flash.ok", { hasText: "Aanvaard" }).waitFor();
  await page.locator("li.contact", { hasText: late }).waitFor();
  assert.equal(await page.locator("section.quarantine").count(), 0);
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a reviewer reads a case on a tablet, in English, without the coordinator's actions", async () => {
  const rev = await sp.api("reviewer.kempen.demo");
  const list = await rev.get("/v1/families?region=kempen&status=active&limit=1&q=Berkenrode");
  const fam = list.items[0] ?? (await rev.get("/v1/families?region=kempen&status=active&limit=1")).items[0];
  const page = await sp.page({ width: 768, height: 1024 });
  await sp.login(page, "reviewer.kempen.demo");
  await sp.goto(page, "/cases/" + fam.family_id);
  await page.locator("#case-h").waitFor();
  assert.equal(await page.locator("#reassign").count(), 0, "no reassignment for a reviewer");
  assert.equal(await page.locator("section.quarantine button").count(), 0);
  await page.locator("header.top button", { hasText: "English" }).click();
  await page.locator("#tl-h", { hasText: "Contacts" }).waitFor();
  await page.locator("#plan-h", { hasText: "Family plan" }).waitFor();
  // no sideways scrolling on a tablet
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1));
  await sp.shot(page, "case-page-tablet-en");
  // another region's case is not there
  const other = await (await sp.api("coordinator.maasland.demo")).get("/v1/families?region=maasland&limit=1");
  await sp.goto(page, "/cases/" + other.items[0].family_id);
  await page.locator("section.error").waitFor();
  assert.equal(await page.locator("#case-h").count(), 0);
  await page.locator("header.top button", { hasText: "Nederlands" }).click();
  assert.deepEqual(sp.pageErrors(page), []);
});
