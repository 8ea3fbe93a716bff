// IdbStore in real headless Chromium (/usr/bin/chromium or CHROMIUM):
// test/idb.browser.ts is bundled with esbuild, served from a local HTTP
// server, and posts its outcome back. Skipped, saying so, without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const skip = existsSync(chromium) ? false : `no Chromium at ${chromium} (set CHROMIUM): the IndexedDB test is skipped`;
if (skip) console.log("# " + skip);

test("IdbStore and a replica on it in real Chromium", { skip, timeout: 60_000 }, async () => {
  const entry = fileURLToPath(new URL("../../test/idb.browser.ts", import.meta.url));
  const out = await build({ entryPoints: [entry], bundle: true, format: "esm", target: "es2022", write: false });
  const js = out.outputFiles[0].text;
  let resolveResult: (v: { fails: string[] }) => void;
  const result = new Promise<{ fails: string[] }>((r) => (resolveResult = r));
  const server = createServer((req, res) => {
    if (req.url === "/result") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        res.end("ok");
        resolveResult(JSON.parse(body));
      });
      return;
    }
    if (req.url === "/test.js") {
      res.setHeader("Content-Type", "text/javascript");
      res.end(js);
      return;
    }
    res.setHeader("Content-Type", "text/html");
    res.end('<!doctype html><script type="module" src="/test.js"></script>');
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const profile = mkdtempSync(join(tmpdir(), "sdk-chromium-"));
  const proc = spawn(chromium, [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", `--user-data-dir=${profile}`,
    `http://127.0.0.1:${port}/`,
  ], { stdio: "ignore", detached: true }); // its own process group: the renderers go with it
  try {
    const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error("no result from Chromium in 45 s")), 45_000));
    const { fails } = await Promise.race([result, timeout]);
    assert.deepEqual(fails, []);
  } finally {
    const exited = new Promise((r) => proc.once("exit", r));
    try {
      process.kill(-proc.pid!, "SIGKILL");
    } catch {
      proc.kill("SIGKILL");
    }
    await exited;
    server.close();
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
});
