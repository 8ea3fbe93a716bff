// The coach's family is reassigned while she is offline: after reconnecting,
// the family is gone from her browser's storage (IndexedDB), and the note she
// wrote offline is in quarantine on the server, not lost, and shown to her.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useHarness } from "../../../web/test/harness.mjs";

const sp = useHarness();

/** holds lists what the coach app's IndexedDB still holds of the family: a key
 *  or value naming the family or its trajectory in the rows, their scopes or the
 *  held scopes. Referrals are left out: they live in the region's intake scope,
 *  which every coach of the region holds (DESIGN §3), and may name the family. */
function holds(page, ids) {
  return page.evaluate(async (ids) => {
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open("samenplan-coach");
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const found = [];
    for (const name of ["fields", "row_scopes", "held_scopes"]) {
      const store = db.transaction(name, "readonly").objectStore(name);
      const [keys, values] = await Promise.all(
        [store.getAllKeys(), store.getAll()].map((q) => new Promise((res, rej) => ((q.onsuccess = () => res(q.result)), (q.onerror = () => rej(q.error))))),
      );
      keys.forEach((k, i) => {
        const key = String(k);
        if (name === "fields" && key.startsWith("referrals\u0000")) return;
        if (ids.some((id) => key.includes(id) || JSON.stringify(values[i] ?? null).includes(id))) found.push(name + ":" + key);
      });
    }
    db.close();
    return found;
  }, ids);
}

test("a family reassigned while she is offline leaves her device; her offline note is quarantined, not lost", async () => {
  const page = await sp.page({ width: 390, height: 844 });
  await page.goto(sp.url + "/coach/");
  await page.locator("#username").fill("coach4.kempen.demo");
  await page.locator("#password").fill(sp.password);
  await page.locator("form.login button[type=submit]").click();
  await page.locator("ul.cards a.card").first().waitFor({ timeout: 15_000 });
  await page.locator("ul.cards a.card").first().click();
  await page.locator("article.family h1").waitFor();
  const familyId = page.url().split("#/gezin/")[1];
  const reviewer = await sp.api("reviewer.kempen.demo");
  const c = await reviewer.get(`/v1/families/${familyId}`);
  const ids = [familyId, c.trajectory.id];
  const before = await holds(page, ids);
  assert.ok(before.some((k) => k.startsWith("fields:families")) && before.some((k) => k.startsWith("fields:contacts")), "the family and its contacts are on the device before");

  // Offline: a note after the visit.
  await page.context().setOffline(true);
  await page.locator("a.button", { hasText: "Contact na een huisbezoek" }).click();
  const note = "Notitie zonder bereik, gezin intussen anders toegewezen " + Date.now();
  await page.locator("#note").fill(note);
  await page.locator("form.contact button[type=submit]").click();
  await page.locator("section.timeline li", { hasText: note }).waitFor();

  // Meanwhile the coordinator gives the family to coach3.
  const coordinator = await sp.api("coordinator.kempen.demo");
  const coach3 = await sp.api("coach3.kempen.demo");
  await coordinator.put(`/v1/trajectories/${c.trajectory.id}/assignment`, { lead_coach_id: coach3.user.id, co_coach_ids: [] });

  // Online again: she syncs, is told her note is in quarantine, and the family leaves her device.
  await page.context().setOffline(false);
  if (await page.locator(".syncbar button.sync-now").isVisible()) await page.locator(".syncbar button.sync-now").click().catch(() => {});
  await page.locator(".syncbar a.quarantine", { hasText: "1 notitie in quarantaine" }).waitFor({ timeout: 15_000 });
  await page.evaluate(() => (location.hash = "#/"));
  await sp.settle(page);
  assert.equal(await page.locator(`ul.cards a[href="#/gezin/${familyId}"]`).count(), 0, "not in my families");
  // The eviction is proven on the next pull; by then nothing of the family is stored.
  await page.locator(".syncbar button.sync-now").click();
  await page.locator(".syncbar .pending.ok").waitFor({ timeout: 15_000 });
  assert.deepEqual(await holds(page, ids), []);

  // Her problems page shows the note; the server holds it in quarantine for the coordinator.
  await page.locator(".syncbar a.quarantine").click();
  await page.locator("section.problems li.quarantined", { hasText: note }).waitFor();
  const q = await coordinator.get("/v1/regions/kempen/quarantine");
  assert.ok(JSON.stringify(q).includes(note), "the note is in the region's quarantine");
  assert.deepEqual(sp.pageErrors(page), []);
});
