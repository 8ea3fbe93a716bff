// The replica against the real server: `samenplan serve --demo` on a temp
// directory and a free port. Needs SAMENPLAN_BIN (the binary from
// `make build`); skipped, saying so, without it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { openReplica, MemoryStore, scopesHash } from "../src/index.js";

const bin = process.env.SAMENPLAN_BIN ?? "";
const repo = fileURLToPath(new URL("../../../../../", import.meta.url));
const skip = !bin
  ? "SAMENPLAN_BIN is not set (make build, then SAMENPLAN_BIN=$PWD/bin/samenplan): the real-server test is skipped"
  : !existsSync(bin)
    ? `SAMENPLAN_BIN=${bin} does not exist: the real-server test is skipped`
    : false;
if (skip) console.log("# " + skip);

const PASSWORD = "samenplan-demo";

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function startServer(): Promise<{ base: string; proc: ChildProcess; dir: string; log: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), "samenplan-sdk-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let out = "";
  const proc = spawn(resolve(bin), ["serve", "--demo", "--addr", `127.0.0.1:${port}`, "--data", join(dir, "data"), "--rules", join(repo, "rules", "regions")], {
    cwd: repo,
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (b) => (out += b));
  proc.stderr!.on("data", (b) => (out += b));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`samenplan exited ${proc.exitCode}:\n${out}`);
    try {
      const r = await fetch(base + "/v1/schema");
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`samenplan did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, proc, dir, log: () => out };
}

async function login(base: string, username: string): Promise<string> {
  const r = await fetch(base + "/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password: PASSWORD, device_name: "sdk test " + username }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).access_token;
}

test("a coach pulls her families, writes a contact, pushes, and the coordinator sees it", { skip, timeout: 120_000 }, async () => {
  const srv = await startServer();
  try {
    const r = await openReplica({ baseUrl: srv.base, store: new MemoryStore() });
    const user = await r.login("coach1.kempen.demo", PASSWORD, "sdk test");
    assert.equal(user.role, "coach");
    const pulled = await r.pull();
    assert.ok(pulled.changes > 0, "she receives her families");
    assert.deepEqual(pulled.mismatched, [], "every scope checksum matches the server's");
    const families = await r.query("families");
    assert.ok(families.length > 0);
    const scopes = await r.scopes();
    assert.ok(scopes.includes("intake:kempen"), scopes.join(","));
    for (const f of families) assert.ok(scopes.includes("family:" + f.id), `family:${f.id} held`);
    assert.ok(scopesHash(scopes).length === 16);

    // A running trajectory of one of her families.
    const trajectories = (await r.query("trajectories")).filter((t) => t.fields.status !== "closed");
    assert.ok(trajectories.length > 0, "she has a running trajectory");
    const traj = trajectories[0];
    const familyId = traj.fields.family_id as string;

    const id = r.newId();
    const note = "Huisbezoek (SDK-test): de ochtenden verlopen rustiger. " + id;
    await r.writeRow("contacts", id, {
      trajectory_id: traj.id, mode: "home_visit", minutes: 45, note, occurred_at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    });
    assert.equal((await r.status()).pending, 5);
    const res = await r.sync();
    assert.deepEqual(res.push.rejected, [], JSON.stringify(res.push.rejected));
    assert.deepEqual(res.push.quarantined, []);
    assert.equal(res.push.applied, 5);
    assert.deepEqual(res.pull.mismatched, []);
    const st = await r.status();
    assert.equal(st.pending, 0);
    assert.equal(st.state, "idle");

    const token = await login(srv.base, "coordinator.kempen.demo");
    const resp = await fetch(`${srv.base}/v1/families/${familyId}`, { headers: { Authorization: "Bearer " + token } });
    assert.equal(resp.status, 200);
    const body = await resp.text();
    assert.ok(body.includes(note), "the coordinator's consolidated case holds the coach's note");

    // Another pull changes nothing and keeps the checksums equal.
    const again = await r.pull();
    assert.deepEqual(again.mismatched, []);
    assert.deepEqual(again.refetched, []);
    await r.close();
  } catch (e) {
    console.log(srv.log());
    throw e;
  } finally {
    srv.proc.kill("SIGTERM");
    await new Promise((res) => srv.proc.once("exit", res));
    rmSync(srv.dir, { recursive: true, force: true });
  }
});
