// Browser tests of the web client against the real server.
//
// The harness builds nothing: it starts the binary (SAMENPLAN_BIN, default
// ../../bin/samenplan, built by `make build` with the client embedded) as
//   samenplan serve --demo --data <fresh temp dir> --rules <temp copy of rules/regions>
//                   --addr 127.0.0.1:<free port>
// waits for /readyz, launches Debian's Chromium (/usr/bin/chromium, or CHROMIUM)
// headless through playwright-core, and stops both when the test file ends.
// One server and one browser per test file; every sp.page() is a fresh browser
// context (empty localStorage), closed after its test.
//
// Use, in clients/web/test/<something>.test.mjs:
//
//   import { test } from "node:test";
//   import assert from "node:assert/strict";
//   import { useHarness } from "./harness.mjs";
//
//   const sp = useHarness();          // registers before/after hooks for this file
//
//   test("a coordinator sees the intake board", async () => {
//     const page = await sp.page();                       // 1280×800; sp.page({ width: 768, height: 1024 }) for a tablet
//     await sp.login(page, "coordinator.kempen.demo");    // fills the login form, waits for the navigation
//     await sp.goto(page, "/intake");                     // sets the hash route, waits for the page to settle
//     await sp.shot(page, "intake");                      // full-page PNG in clients/web/screenshots/intake.png
//     const coach = await sp.api("coach1.kempen.demo");   // a session of its own (a new device), straight to the API
//     const me = await coach.get("/v1/me");               // throws ApiError {status, code} unless 2xx
//     const r = await coach.request("GET", "/v1/users");  // never throws: {status, body}
//     assert.equal(r.status, 403);
//     assert.deepEqual(sp.pageErrors(page), []);          // uncaught errors in the page so far
//   });
//
// Also on sp: url (the server's base URL), dataDir, rulesDir (the temp copy; edit it
// freely), password (the demo password), serverLog() (what the server printed),
// settle(page) (waits until the shell's <main> is no longer aria-busy and shows no
// .loading; login and goto call it — a page that loads parts later should mark them
// aria-busy or .loading while it waits, or the test waits for what it expects).
//
// npm test runs two test files at a time (--test-concurrency=2), each with its own
// server and browser; tests inside a file run one after another and share that
// server, so a test must not rely on data another test of the file changes.
//
// Environment: SAMENPLAN_BIN (the binary), CHROMIUM (the browser), SAMENPLAN_TEST_PORTS
// ("18100-18149": pick the port from this range instead of one the kernel offers),
// SAMENPLAN_TEST_TMP (prefix of the temp dirs, default <os tmpdir>/samenplan-web-),
// SAMENPLAN_TEST_KEEP=1 (keep the temp dirs), HEADFUL=1 (show the browser, needs a display).
import { after, afterEach, before } from "node:test";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, "..");
const repoDir = resolve(webDir, "../..");

export const DEMO_PASSWORD = "samenplan-demo";
export const SCREENSHOTS = join(webDir, "screenshots");

/** The Chromium flags this machine needs (see .library/env/machines/go.md): no
 *  sandbox as root, no GPU, and no background connections to Google. Playwright
 *  gives every launch a fresh, empty profile directory of its own. */
export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** ApiError is what sp.api(…) methods throw for a non-2xx answer. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** useHarness registers before/after hooks on the current test file and returns the
 *  harness; its fields are ready inside tests and hooks declared after this call. */
export function useHarness() {
  const sp = new Harness();
  before(() => sp.start(), { timeout: 60_000 });
  afterEach(() => sp.closePages());
  after(() => sp.stop(), { timeout: 30_000 });
  return sp;
}

export class Harness {
  url = "";
  dataDir = "";
  rulesDir = "";
  password = DEMO_PASSWORD;
  #tmp = "";
  #proc = null;
  #exited = null;
  #logFile = "";
  #browser = null;
  #contexts = [];
  #errors = new WeakMap();

  async start() {
    const bin = resolve(webDir, process.env.SAMENPLAN_BIN ?? "../../bin/samenplan");
    if (!existsSync(bin)) throw new Error(`no samenplan binary at ${bin}: run \`make build\` first (or set SAMENPLAN_BIN)`);
    const prefix = process.env.SAMENPLAN_TEST_TMP ?? join(tmpdir(), "samenplan-web-");
    mkdirSync(dirname(prefix), { recursive: true });
    this.#tmp = mkdtempSync(prefix);
    this.dataDir = join(this.#tmp, "data");
    this.rulesDir = join(this.#tmp, "rules");
    cpSync(join(repoDir, "rules/regions"), this.rulesDir, { recursive: true });
    this.#logFile = join(this.#tmp, "server.log");

    let lastErr;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      try {
        await this.#serve(bin, port);
        lastErr = null;
        break;
      } catch (err) {
        lastErr = err;
        await this.#kill();
        if (!/exited/.test(String(err))) break; // only a lost port race is worth another try
        rmSync(this.dataDir, { recursive: true, force: true });
      }
    }
    if (lastErr) throw lastErr;

    this.#browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      headless: !process.env.HEADFUL,
      args: CHROMIUM_FLAGS,
    });
  }

  async #serve(bin, port) {
    const out = openSync(this.#logFile, "a");
    const addr = `127.0.0.1:${port}`;
    const proc = spawn(bin, ["serve", "--demo", "--data", this.dataDir, "--rules", this.rulesDir, "--addr", addr], {
      stdio: ["ignore", out, out],
      env: { ...process.env, SAMENPLAN_DEMO: "", SAMENPLAN_ADDR: "", SAMENPLAN_DATA: "", SAMENPLAN_RULES: "" },
    });
    closeSync(out);
    this.#proc = proc;
    this.#exited = new Promise((res) => {
      proc.on("exit", (code, signal) => res({ code, signal }));
      proc.on("error", (err) => res({ code: -1, signal: String(err) }));
    });
    this.url = `http://${addr}`;
    const deadline = Date.now() + 30_000;
    let gone = null;
    this.#exited.then((x) => (gone = x));
    while (Date.now() < deadline) {
      if (gone) throw new Error(`samenplan exited (${gone.code ?? gone.signal}) before it was ready:\n${this.serverLog().slice(-2000)}`);
      try {
        const res = await fetch(this.url + "/readyz");
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`samenplan not ready at ${this.url}/readyz within 30 s:\n${this.serverLog().slice(-2000)}`);
  }

  async #kill() {
    const p = this.#proc;
    if (!p) return;
    this.#proc = null;
    if (p.exitCode === null && p.signalCode === null) {
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 5_000);
      await this.#exited;
      clearTimeout(t);
    }
  }

  async stop() {
    await this.closePages();
    if (this.#browser) await this.#browser.close().catch(() => {});
    this.#browser = null;
    await this.#kill();
    if (this.#tmp && !process.env.SAMENPLAN_TEST_KEEP) rmSync(this.#tmp, { recursive: true, force: true });
  }

  /** serverLog is everything the server printed so far. */
  serverLog() {
    try {
      return readFileSync(this.#logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** page opens a fresh browser context (its own localStorage) and a page in it,
   *  1280×800 unless a viewport is given. Closed after the current test. */
  async page(viewport = { width: 1280, height: 800 }) {
    if (!this.#browser) throw new Error("harness not started: call useHarness() at the top of the test file");
    const context = await this.#browser.newContext({ viewport, baseURL: this.url, locale: "nl-BE", timezoneId: "Europe/Brussels" });
    context.setDefaultTimeout(10_000);
    this.#contexts.push(context);
    const page = await context.newPage();
    const errors = [];
    this.#errors.set(page, errors);
    page.on("pageerror", (err) => errors.push(String(err)));
    return page;
  }

  /** pageErrors are the uncaught exceptions the page threw so far. */
  pageErrors(page) {
    return [...(this.#errors.get(page) ?? [])];
  }

  async closePages() {
    for (const c of this.#contexts.splice(0)) await c.close().catch(() => {});
  }

  /** login signs username in through the login page and waits for the shell's
   *  navigation. The page's session lives in its context's localStorage. A login
   *  form already on screen (after an expired session) is used as it is, so the
   *  page returns to where it was. */
  async login(page, username, password = this.password) {
    if (!page.url().startsWith(this.url)) await page.goto(this.url + "/#/login");
    else if (!(await page.locator("form.login").isVisible())) await page.evaluate(() => { location.hash = "#/login"; });
    await page.locator("#username").fill(username);
    await page.locator("#password").fill(password);
    await page.locator("form.login button[type=submit]").click();
    await page.locator("header.top").waitFor();
    await this.settle(page);
  }

  /** goto sets the hash route (e.g. "/cases") and waits for the page to settle. */
  async goto(page, route) {
    if (!page.url().startsWith(this.url)) await page.goto(this.url + "/#" + route);
    else await page.evaluate((r) => { location.hash = "#" + r; }, route);
    await this.settle(page);
  }

  /** settle waits (up to 10 s, without failing) until the page is rendered: the
   *  shell's main is no longer aria-busy and shows no loading indicator. (Not
   *  "network idle": pages keep an event stream open.) */
  async settle(page) {
    await page.waitForFunction(() => {
      const m = document.querySelector("main");
      return m && !m.hasAttribute("aria-busy") && !m.querySelector(".loading, [aria-busy=true]");
    }, null, { timeout: 10_000 }).catch(() => {});
  }

  /** shot saves a full-page PNG as clients/web/screenshots/<name>.png and returns its path. */
  async shot(page, name) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const path = join(SCREENSHOTS, name.replace(/[^a-zA-Z0-9._-]+/g, "-") + ".png");
    await page.screenshot({ path, fullPage: true });
    return path;
  }

  /** api logs username in straight to the API (a new device, named "browser-test api")
   *  and returns a small client with that session. */
  async api(username, password = this.password) {
    const res = await fetch(this.url + "/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password, device_name: "browser-test api" }),
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, body?.code ?? "http_" + res.status, body?.message ?? res.statusText, body);
    return new ApiClient(this.url, body);
  }
}

/** ApiClient calls the API with one session (the answer of /v1/auth/login). */
export class ApiClient {
  constructor(url, session) {
    this.url = url;
    this.session = session; // {access_token, refresh_token, device_id, user, …}
  }
  get user() {
    return this.session.user;
  }
  get deviceId() {
    return this.session.device_id;
  }

  /** request never throws on an HTTP status: {status, headers, body} (JSON parsed when it is JSON). */
  async request(method, path, body, headers = {}) {
    const h = { Authorization: "Bearer " + this.session.access_token, ...headers };
    let payload;
    if (body !== undefined) {
      payload = typeof body === "string" ? body : JSON.stringify(body);
      h["Content-Type"] ??= typeof body === "string" ? "application/yaml" : "application/json";
    }
    const res = await fetch(this.url + path, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed = text;
    if ((res.headers.get("Content-Type") ?? "").includes("json") && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed };
  }

  async #call(method, path, body) {
    const r = await this.request(method, path, body);
    if (r.status < 200 || r.status > 299) {
      const b = typeof r.body === "object" && r.body ? r.body : {};
      throw new ApiError(r.status, b.code ?? "http_" + r.status, b.message ?? String(r.body), r.body);
    }
    return r.body;
  }
  get(path) {
    return this.#call("GET", path);
  }
  post(path, body) {
    return this.#call("POST", path, body);
  }
  put(path, body) {
    return this.#call("PUT", path, body);
  }
  patch(path, body) {
    return this.#call("PATCH", path, body);
  }
  delete(path) {
    return this.#call("DELETE", path);
  }
}

/** freePort returns a port free on 127.0.0.1: from SAMENPLAN_TEST_PORTS ("lo-hi"),
 *  tried in a random order, or else one the kernel offers. */
async function freePort() {
  const range = process.env.SAMENPLAN_TEST_PORTS;
  if (!range) return listenOn(0);
  const [lo, hi] = range.split("-").map(Number);
  const ports = [];
  for (let p = lo; p <= (hi || lo); p++) ports.push(p);
  ports.sort(() => Math.random() - 0.5);
  for (const p of ports) {
    try {
      return await listenOn(p);
    } catch {
      // taken
    }
  }
  throw new Error(`no free port in SAMENPLAN_TEST_PORTS=${range}`);
}

function listenOn(port) {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(port, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
