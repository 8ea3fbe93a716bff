// The admin page (accounts, devices, revoking one) and who may not go where:
// the admin reaches no case content, a reviewer no admin page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useHarness } from "./harness.mjs";

const sp = useHarness();

const navLinks = (page) => page.getByRole("navigation", { name: "Hoofdmenu" }).getByRole("link").allTextContents();

test("the admin sees the accounts, paginated, and filters them", async () => {
  const admin = await sp.api("admin");
  // More accounts than one page holds (20).
  for (let i = 1; i <= 9; i++) {
    await admin.post("/v1/users", {
      username: `extra${i}.kempen.test`, display_name: `Extra coach ${i}`, role: "coach", regions: ["kempen"],
      organisation: "Testorganisatie", fte: 0.5, volunteer: false, password: "a-long-test-password",
    });
  }
  const total = (await admin.get("/v1/users")).length;
  assert.ok(total > 20, `${total} accounts`);

  const page = await sp.page();
  await sp.login(page, "admin");
  assert.match(page.url(), /#\/admin$/, "the admin starts on the admin page");
  assert.deepEqual(await navLinks(page), ["Beheer"], "no cases, intake, signals, reports or rules in the admin's navigation");
  await page.getByRole("heading", { name: "Accounts en apparaten" }).waitFor();
  const rows = page.locator("#accounts tbody tr");
  assert.equal(await rows.count(), 20);
  await page.getByText(`1–20 van ${total}`).waitFor();
  await sp.shot(page, "admin");
  await page.getByRole("button", { name: "Volgende pagina" }).click();
  assert.equal(await rows.count(), total - 20);
  assert.ok(await page.getByRole("button", { name: "Vorige pagina" }).isEnabled());
  assert.ok(await page.getByRole("button", { name: "Volgende pagina" }).isDisabled());

  await page.locator("#account-search").fill("coach1.");
  const names = await page.locator("#accounts tbody tr td:first-child").allTextContents();
  assert.deepEqual(names.sort(), ["coach1.kempen.demo", "coach1.maasland.demo"]);
  await page.locator("#account-region").selectOption("maasland");
  assert.deepEqual(await page.locator("#accounts tbody tr td:first-child").allTextContents(), ["coach1.maasland.demo"]);
  // The filter stays in the address: a reload keeps it.
  await page.reload();
  await sp.settle(page);
  assert.deepEqual(await page.locator("#accounts tbody tr td:first-child").allTextContents(), ["coach1.maasland.demo"]);
  assert.deepEqual(sp.pageErrors(page), []);
});

test("the admin revokes a device of coach1 and sees it revoked; the coach's device is refused", async () => {
  const coach = await sp.api("coach1.kempen.demo"); // a new device of coach1
  assert.equal((await coach.request("GET", "/v1/me")).status, 200);

  const page = await sp.page();
  await sp.login(page, "admin");
  await page.locator("#account-search").fill("coach1.kempen");
  await page.getByRole("link", { name: "coach1.kempen.demo" }).click();
  await page.getByRole("heading", { name: /Apparaten/ }).waitFor();
  const row = page.locator(`tr[data-device="${coach.deviceId}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /actief/);

  // Cancel first: nothing changes.
  await row.getByRole("button", { name: /intrekken/i }).click();
  const dialog = page.getByRole("dialog", { name: "Apparaat intrekken?" });
  await dialog.waitFor();
  await sp.shot(page, "admin-revoke-confirm");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  assert.equal((await coach.request("GET", "/v1/me")).status, 200, "cancel revokes nothing");

  await row.getByRole("button", { name: /intrekken/i }).click();
  await dialog.getByRole("button", { name: "Intrekken" }).click();
  await page.locator("#device-status .notice.ok").waitFor();
  await page.locator(`tr[data-device="${coach.deviceId}"].revoked`).waitFor();
  assert.match(await page.locator(`tr[data-device="${coach.deviceId}"]`).textContent(), /ingetrokken.*door admin/);
  await sp.shot(page, "admin-user-devices");

  const refused = await coach.request("GET", "/v1/me");
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, "device_revoked");
  assert.deepEqual(sp.pageErrors(page), []);
});

test("the admin sees no case content: no access in the UI, 403 from the API", async () => {
  const page = await sp.page();
  await sp.login(page, "admin");
  for (const route of ["/cases", "/intake", "/signals", "/reports", "/rules"]) {
    await sp.goto(page, route);
    await page.getByRole("heading", { name: "Geen toegang" }).waitFor();
    assert.equal(await page.locator("main table").count(), 0, `${route} shows no table`);
  }
  await sp.goto(page, "/cases");
  await sp.shot(page, "admin-no-access");

  const admin = await sp.api("admin");
  for (const path of ["/v1/families?region=kempen", "/v1/regions/kempen/intake", "/v1/regions/kempen/signals", "/v1/regions/kempen/report"]) {
    const r = await admin.request("GET", path);
    assert.equal(r.status, 403, `${path}: ${r.status}`);
    assert.equal(r.body.code, "forbidden");
  }
  const pull = await admin.request("POST", "/v1/sync/pull", { device_id: admin.deviceId, schema_version: 1 });
  assert.equal(pull.status, 403);
});

test("a reviewer reaching the admin page gets no access, and the API refuses her the accounts", async () => {
  const page = await sp.page();
  await sp.login(page, "reviewer.kempen.demo");
  assert.ok(!(await navLinks(page)).includes("Beheer"));
  await sp.goto(page, "/admin");
  await page.getByRole("heading", { name: "Geen toegang" }).waitFor();
  await sp.goto(page, "/admin/users/whoever");
  await page.getByRole("heading", { name: "Geen toegang" }).waitFor();
  const reviewer = await sp.api("reviewer.kempen.demo");
  assert.equal((await reviewer.request("GET", "/v1/users")).status, 403);
  const devices = await reviewer.get("/v1/devices");
  assert.ok(devices.every((d) => d.username === "reviewer.kempen.demo"), "a reviewer sees her own devices only");
});

test("the admin page on a tablet", async () => {
  const page = await sp.page({ width: 768, height: 1024 });
  await sp.login(page, "admin");
  await page.getByRole("link", { name: "coordinator.kempen.demo" }).click();
  await page.getByRole("heading", { name: /Apparaten/ }).waitFor();
  await sp.settle(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the tablet`);
  await sp.shot(page, "admin-user-tablet");
  await sp.goto(page, "/admin");
  await sp.shot(page, "admin-tablet");
});

test("loading and error states: a slow answer shows loading, a failed one an error, never a blank page", async () => {
  const page = await sp.page();
  await sp.login(page, "admin");
  // Slow: the loading line shows while the accounts are on their way.
  let release;
  const held = new Promise((r) => (release = r));
  await page.route("**/v1/users", async (route) => {
    await held;
    await route.continue();
  });
  await page.evaluate(() => { location.hash = "#/admin?q=slow"; });
  await page.locator("main .loading", { hasText: "Laden…" }).waitFor();
  assert.equal(await page.locator("main").getAttribute("aria-busy"), "true");
  release();
  await page.getByRole("heading", { name: "Accounts en apparaten" }).waitFor();
  await page.unroute("**/v1/users");

  // The server cannot be reached.
  await page.route("**/v1/users", (route) => route.abort("connectionrefused"));
  await sp.goto(page, "/admin?q=offline");
  await page.getByRole("heading", { name: "Geen verbinding met de server" }).waitFor();
  await sp.shot(page, "admin-offline");
  await page.unroute("**/v1/users");
  // "Opnieuw proberen" renders the page again, and now it answers.
  await page.getByRole("button", { name: "Opnieuw proberen" }).click();
  await page.getByRole("heading", { name: "Accounts en apparaten" }).waitFor();

  // The server fails.
  await page.route("**/v1/users", (route) => route.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ code: "internal", message: "Interne fout / internal error" }) }));
  await sp.goto(page, "/admin?q=broken");
  await page.getByRole("heading", { name: "Er ging iets mis" }).waitFor();
  assert.match(await page.locator("main .error").textContent(), /Interne fout/);
  await page.unroute("**/v1/users");
  // And the page comes back once the server answers again.
  await sp.goto(page, "/admin");
  await page.getByRole("heading", { name: "Accounts en apparaten" }).waitFor();
});

test("the admin disables an account (its devices are revoked) and enables it again", async () => {
  const admin = await sp.api("admin");
  const u = await admin.post("/v1/users", {
    username: "leaving.kempen.test", display_name: "Vertrekkende coach", role: "coach", regions: ["kempen"],
    organisation: "", fte: 1, volunteer: false, password: "a-long-test-password",
  });
  const coach = await sp.api("leaving.kempen.test", "a-long-test-password");

  const page = await sp.page();
  await sp.login(page, "admin");
  await sp.goto(page, `/admin/users/${u.id}`);
  await page.getByRole("button", { name: "Account uitschakelen" }).click();
  await page.getByRole("dialog", { name: "Account uitschakelen?" }).getByRole("button", { name: "Uitschakelen" }).click();
  await page.getByText("Account leaving.kempen.test is uitgeschakeld").waitFor();
  assert.match(await page.locator("#account-status").textContent(), /uitgeschakeld/);
  await page.locator(`tr[data-device="${coach.deviceId}"].revoked`).waitFor();
  assert.equal((await coach.request("GET", "/v1/me")).status, 401);
  await assert.rejects(sp.api("leaving.kempen.test", "a-long-test-password"), (e) => e.status === 401);

  await page.getByRole("button", { name: "Account weer inschakelen" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Inschakelen" }).click();
  await page.getByText("is weer ingeschakeld").waitFor();
  await sp.api("leaving.kempen.test", "a-long-test-password"); // logs in again

  // Her own account: the admin cannot disable it.
  const me = (await admin.get("/v1/me")).id;
  await sp.goto(page, `/admin/users/${me}`);
  assert.ok(await page.getByRole("button", { name: "Account uitschakelen" }).isDisabled());
});
