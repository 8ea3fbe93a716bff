// Browser tests of the coach app's shell: installable, cached by its service
// worker, and opening without a network. The server and Chromium come from the
// web client's harness (clients/web/test/harness.mjs: one server with demo data
// and one headless Chromium per file, every sp.page() a fresh browser context,
// so a fresh service worker registration). Screenshots land in
// clients/mobile/app/screenshots/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { useHarness } from "../../../web/test/harness.mjs";

const SHOTS = resolve(dirname(fileURLToPath(import.meta.url)), "../screenshots");
const SHELL = ["/coach/", "/coach/app.js", "/coach/icon-maskable.svg", "/coach/icon.svg", "/coach/manifest.webmanifest", "/coach/styles.css"];

const sp = useHarness();

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: true });
}

/** phone opens /coach/ on a phone-sized page and waits until the service
 *  worker controls it (the shell is then cached). */
async function phone() {
  const page = await sp.page({ width: 390, height: 844 });
  await page.goto(sp.url + "/coach/");
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15_000 });
  return page;
}

async function login(page, username) {
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(sp.password);
  await page.locator("form.login button[type=submit]").click();
}

test("the app is installable: a Dutch manifest for /coach/, standalone, with SVG icons", async () => {
  const page = await sp.page();
  await page.goto(sp.url + "/coach/");
  const href = await page.locator("link[rel=manifest]").getAttribute("href");
  const res = await fetch(sp.url + href);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /manifest\+json/);
  const m = await res.json();
  assert.equal(m.name, "Samenplan coach");
  assert.equal(m.start_url, "/coach/");
  assert.equal(m.scope, "/coach/");
  assert.equal(m.display, "standalone");
  assert.equal(m.lang, "nl-BE");
  for (const icon of m.icons) {
    const r = await fetch(sp.url + icon.src);
    assert.equal(r.status, 200, icon.src);
    assert.match(await r.text(), /^<svg /, icon.src);
  }
  assert.deepEqual(m.icons.map((i) => i.purpose).sort(), ["any", "maskable"]);
});

test("the service worker installs, pre-caches the shell in the build's cache, and the app reloads offline", async () => {
  const page = await phone();
  const reg = await page.evaluate(async () => {
    const r = await navigator.serviceWorker.ready;
    return { scope: r.scope, script: r.active?.scriptURL };
  });
  assert.equal(reg.scope, sp.url + "/coach/");
  assert.equal(reg.script, sp.url + "/coach/sw.js");

  const names = await page.evaluate(() => caches.keys());
  assert.equal(names.length, 1, `one cache, got ${names}`);
  assert.match(names[0], /^samenplan-coach-[0-9a-f]{12}$/);
  const cached = await page.evaluate(async (n) => (await (await caches.open(n)).keys()).map((r) => new URL(r.url).pathname).sort(), names[0]);
  assert.deepEqual(cached, SHELL);

  // Online: log in as a coach (logging in needs the network).
  await login(page, "coach1.kempen.demo");
  await page.locator("header.top").waitFor();
  await page.locator("main h1", { hasText: "Mijn gezinnen" }).waitFor();
  await page.locator(".syncbar .cached.ok").waitFor();
  await page.locator("ul.cards a.card").first().waitFor({ timeout: 15_000 }); // her families pulled

  // Offline: a reload and a fresh visit still show the app, and she is still logged in.
  await page.context().setOffline(true);
  await page.reload();
  await page.locator("header.top").waitFor();
  await page.locator("main h1", { hasText: "Mijn gezinnen" }).waitFor();
  await page.locator("ul.cards a.card").first().waitFor(); // and her families, from IndexedDB
  assert.equal(await page.locator(".syncbar .net").textContent(), "Offline");
  await page.goto(sp.url + "/coach/?from=homescreen");
  await page.locator("header.top").waitFor();
  assert.ok(await page.evaluate(() => getComputedStyle(document.querySelector("header.top")).display === "flex"), "styles.css came from the cache");
  await shot(page, "offline-shell");

  // The API is never answered from the cache.
  const api = await page.evaluate(() => fetch("/v1/schema").then((r) => r.status, (e) => "failed: " + e.name));
  assert.match(String(api), /^failed/);
  await page.context().setOffline(false);
  assert.deepEqual(sp.pageErrors(page), []);
});

test("a new build's worker deletes the caches of older builds", async () => {
  const page = await phone();
  const current = (await page.evaluate(() => caches.keys()))[0];
  // An older build's cache, and the worker installed anew (as after a new build).
  await page.evaluate(async () => {
    await (await caches.open("samenplan-coach-000000000000")).put("/coach/app.js", new Response("old"));
    for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister();
  });
  await page.reload();
  await page.waitForFunction(async (cur) => {
    const k = await caches.keys();
    return navigator.serviceWorker.controller !== null && k.length === 1 && k[0] === cur;
  }, current, { timeout: 15_000 });
});

test("logging in offline says it needs a network; a reviewer is sent to the web client", async () => {
  const page = await phone();
  await page.context().setOffline(true);
  await page.reload();
  await login(page, "coach1.kempen.demo");
  await page.locator(".form-error", { hasText: "Aanmelden kan alleen online" }).waitFor();
  await page.context().setOffline(false);

  await login(page, "reviewer.kempen.demo");
  await page.locator(".form-error", { hasText: "Deze app is voor coaches" }).waitFor();
  await page.reload();
  await page.locator("form.login").waitFor(); // refused: no session kept
  assert.equal(await page.locator("header.top").count(), 0);
  await page.locator("button.lang").click();
  await page.locator("form.login button[type=submit]", { hasText: "Log in" }).waitFor();
  assert.deepEqual(sp.pageErrors(page), []);
});
