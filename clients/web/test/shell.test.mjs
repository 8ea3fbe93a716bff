// The shell: login, the role's navigation, the session across reloads, logout
// (which revokes the device), a dead session back to login, keyboard use, and
// the layout on a laptop (1280×800) and a tablet (768×1024).
import { test } from "node:test";
import assert from "node:assert/strict";
import { useHarness } from "./harness.mjs";

const sp = useHarness();
const TABLET = { width: 768, height: 1024 };

/** session reads the web client's stored session of the page. */
const session = (page) => page.evaluate(() => JSON.parse(localStorage.getItem("samenplan.session") ?? "null"));

async function navLinks(page) {
  return page.getByRole("navigation", { name: "Hoofdmenu" }).getByRole("link").allTextContents();
}

test("a coordinator logs in and sees the navigation of her role", async () => {
  const page = await sp.page();
  await page.goto(sp.url + "/");
  await page.locator("#username").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), "username", "the login form takes the focus");
  await sp.shot(page, "login");
  await sp.login(page, "coordinator.kempen.demo");
  const links = await navLinks(page);
  for (const want of ["Intake", "Dossiers", "Signalen", "Rapport", "Regels"]) assert.ok(links.includes(want), `nav ${links} lacks ${want}`);
  assert.ok(!links.includes("Beheer"), "a coordinator has no admin page");
  await sp.shot(page, "coordinator-home");
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a wrong password says so and keeps the user on the login page", async () => {
  const page = await sp.page();
  await page.goto(sp.url + "/");
  await page.locator("#username").fill("reviewer.kempen.demo");
  await page.locator("#password").fill("not-the-password");
  await page.locator("form.login button[type=submit]").click();
  await page.locator("#login-error", { hasText: "klopt niet" }).waitFor();
  assert.match(page.url(), /#\/login/);
  assert.equal(await session(page), null);
});

test("the session survives a reload and the page comes back", async () => {
  const page = await sp.page();
  await sp.login(page, "reviewer.kempen.demo");
  await sp.goto(page, "/signals");
  const before = await session(page);
  await page.reload();
  await page.locator("header.top nav").waitFor();
  await sp.settle(page);
  assert.match(page.url(), /#\/signals$/);
  assert.equal((await session(page)).device_id, before.device_id, "the same device, no new login");
  assert.equal(await page.locator("#username").count(), 0);
});

test("logout ends the session and revokes the browser's device", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  const { device_id } = await session(page);
  await page.getByRole("button", { name: "Afmelden" }).click();
  await page.locator("#username").waitFor();
  await page.getByText("Je bent afgemeld.").waitFor();
  assert.equal(await session(page), null);
  const admin = await sp.api("admin");
  const devices = await admin.get("/v1/devices?user=coordinator.kempen.demo");
  const dev = devices.find((d) => d.id === device_id);
  assert.ok(dev, "the browser's device is listed");
  assert.ok(dev.revoked_at, "logout revoked the device");
  // After a reload the login page stays.
  await page.reload();
  await page.locator("#username").waitFor();
});

test("a revoked device sends the user to login, and back to her page after logging in again", async () => {
  const page = await sp.page();
  await sp.login(page, "reviewer.kempen.demo");
  await sp.goto(page, "/signals");
  const { device_id } = await session(page);
  const admin = await sp.api("admin");
  await admin.post(`/v1/devices/${device_id}/revoke`);
  await sp.goto(page, "/reports");
  await page.locator("#username").waitFor();
  await page.getByText("Je sessie is verlopen of ingetrokken").waitFor();
  assert.match(page.url(), /#\/login\?next=%2Freports$/);
  assert.equal(await session(page), null);
  await sp.shot(page, "login-expired");
  await sp.login(page, "reviewer.kempen.demo");
  assert.match(page.url(), /#\/reports$/);
});

test("corrupted tokens send the user to login", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem("samenplan.session"));
    s.access_token = "garbage." + s.access_token.slice(8);
    s.refresh_token = "not-a-refresh-token";
    localStorage.setItem("samenplan.session", JSON.stringify(s));
  });
  await sp.goto(page, "/cases");
  await page.locator("#username").waitFor();
  await page.getByText("Je sessie is verlopen of ingetrokken").waitFor();
  assert.equal(await session(page), null);
});

test("an expired access token is refreshed without the user noticing", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  const before = await session(page);
  // The stored session says the token runs out now: the next call refreshes first.
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem("samenplan.session"));
    s.expires_at = Date.now() - 1000;
    localStorage.setItem("samenplan.session", JSON.stringify(s));
  });
  await sp.goto(page, "/signals");
  await page.waitForFunction((old) => JSON.parse(localStorage.getItem("samenplan.session") ?? "{}").refresh_token !== old, before.refresh_token);
  const after = await session(page);
  assert.equal(after.device_id, before.device_id);
  assert.ok(after.expires_at > Date.now() + 60_000);
  assert.equal(await page.locator("#username").count(), 0, "still logged in");
});

test("keyboard: skip link first, visible focus, the navigation reachable by Tab", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await page.keyboard.press("Tab");
  const skip = await page.evaluate(() => ({ cls: document.activeElement?.className, text: document.activeElement?.textContent, top: document.activeElement?.getBoundingClientRect().top }));
  assert.equal(skip.cls, "skip");
  assert.equal(skip.text, "Naar de inhoud");
  assert.ok(skip.top >= 0, "the skip link shows when focused");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "main");
  // Tab through the header: the brand, then the navigation's links, each with a visible outline.
  await page.locator("header.top .brand").focus();
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    const cs = getComputedStyle(el);
    return { text: el.textContent, outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth) };
  });
  assert.equal(focused.text, "Intake");
  assert.notEqual(focused.outline, "none");
  assert.ok(focused.width >= 2, `focus outline ${focused.width}px`);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.waitForURL(/#\/cases/);
});

test("the shell on a tablet: the header wraps, nothing overflows", async () => {
  const page = await sp.page(TABLET);
  await page.goto(sp.url + "/");
  await page.locator("#username").waitFor();
  await sp.shot(page, "login-tablet");
  await sp.login(page, "coordinator.kempen.demo");
  await sp.goto(page, "/signals");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the tablet`);
  const logout = await page.getByRole("button", { name: "Afmelden" }).boundingBox();
  assert.ok(logout && logout.x + logout.width <= 768, "the logout button is on screen");
  await sp.shot(page, "coordinator-tablet");
});

test("English: the language switch changes the shell and the login page", async () => {
  const page = await sp.page();
  await sp.login(page, "reviewer.kempen.demo");
  await page.getByRole("button", { name: "English" }).click();
  await page.getByRole("button", { name: "Log out" }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), "en");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "lang", "the focus stays on the switch");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("You are logged out.").waitFor();
  await page.getByRole("button", { name: "Nederlands" }).click();
  await page.getByRole("button", { name: "Aanmelden" }).waitFor();
});

test("an unknown page says so instead of showing nothing", async () => {
  const page = await sp.page();
  await sp.login(page, "reviewer.kempen.demo");
  await sp.goto(page, "/nowhere");
  await page.getByRole("heading", { name: "Niet gevonden" }).waitFor();
});

test("two tabs share the session: logging out in one sends the other to login", async () => {
  const page = await sp.page();
  await sp.login(page, "coordinator.kempen.demo");
  const other = await page.context().newPage();
  await other.goto(sp.url + "/#/signals");
  await other.locator("header.top nav").waitFor();
  await page.getByRole("button", { name: "Afmelden" }).click();
  await other.locator("#username").waitFor();
  await other.getByText("Je bent afgemeld.").waitFor();
});
