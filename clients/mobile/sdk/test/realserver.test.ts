// The replica against the real server: `samenplan serve --demo` on a temp
// directory and a free port. Needs SAMENPLAN_BIN (the binary from
// `make build`); skipped, saying so, without it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { openReplica, MemoryStore, scopesHash, COLLECTIONS, SCHEMA_VERSION, SyncError } from "../src/index.js";
import { BUILTIN } from "../src/sync.js";

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

/** startServer runs `samenplan serve` on dir/data: a new temp dir with the demo data, or the given dir as it is. */
async function startServer(given?: string): Promise<{ base: string; proc: ChildProcess; dir: string; log: () => string }> {
  const dir = given ?? mkdtempSync(join(tmpdir(), "samenplan-sdk-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let out = "";
  const demo = given ? [] : ["--demo"];
  const proc = spawn(resolve(bin), ["serve", ...demo, "--addr", `127.0.0.1:${port}`, "--data", join(dir, "data"), "--rules", join(repo, "rules", "regions")], {
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

/** stopServer ends a server of startServer and waits for its exit. */
async function stopServer(srv: { proc: ChildProcess }): Promise<void> {
  if (srv.proc.exitCode !== null) return;
  const exited = new Promise((res) => srv.proc.once("exit", res));
  srv.proc.kill("SIGTERM");
  await exited;
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

    // The cached schema refuses bad writes at once, offline.
    const rejects = async (p: Promise<void>, code: string) => assert.rejects(p, (e: SyncError) => e.code === code);
    await rejects(r.write("trajectories", traj.id, "status", "closed"), "forbidden");
    await rejects(r.write("trajectories", r.newId(), "family_id", familyId), "forbidden");
    await rejects(r.write("contacts", r.newId(), "mode", "fiets"), "invalid");
    await rejects(r.write("contacts", r.newId(), "minutes", 12.5), "invalid");
    await rejects(r.write("contacts", r.newId(), "occurred_at", "gisteren"), "invalid");
    await rejects(r.write("contacts", r.newId(), "trajectory_id", null), "invalid");
    await rejects(r.write("families", familyId, "no_such_field", 1), "invalid");
    assert.equal((await r.status()).pending, 0);

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
    await stopServer(srv);
    rmSync(srv.dir, { recursive: true, force: true });
  }
});

async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

test("the SDK's collections and scope rules are the server's schema", { skip, timeout: 60_000 }, async () => {
  const srv = await startServer();
  try {
    const schema = await (await fetch(srv.base + "/v1/schema")).json();
    assert.equal(schema.version, SCHEMA_VERSION);
    assert.deepEqual(schema.collections.map((c: any) => c.name), [...COLLECTIONS]);
    for (const c of schema.collections) {
      const rule = BUILTIN[c.name];
      assert.equal(rule.scope, c.scope, c.name);
      assert.equal(rule.parent ?? "", c.parent ?? "", c.name);
      if (rule.parentRef) assert.equal(rule.parentRef, c.fields.find((f: any) => f.name === c.parent).ref, c.name);
    }
  } finally {
    await stopServer(srv);
    rmSync(srv.dir, { recursive: true, force: true });
  }
});

test("a family reassigned while the coach had an unsynced note: evicted locally, proven, the note quarantined on the server; a revoked device wipes itself", { skip, timeout: 120_000 }, async () => {
  const srv = await startServer();
  try {
    const r = await openReplica({ baseUrl: srv.base, store: new MemoryStore() });
    const me = await r.login("coach1.kempen.demo", PASSWORD, "sdk test");
    await r.pull();
    // A family she holds through one trajectory only, as its lead.
    const trajs = await r.query("trajectories");
    const mine = trajs.filter((t) => t.fields.lead_coach_id === me.id && t.fields.status !== "closed" && !(t.fields.co_coach_ids as string[] | undefined)?.length);
    const traj = mine.find((t) => trajs.filter((u) => u.fields.family_id === t.fields.family_id).length === 1);
    assert.ok(traj, "a family with one trajectory she leads alone");
    const familyId = traj.fields.family_id as string;

    // Her note, not yet synced.
    const id = r.newId();
    const note = "Notitie zonder netwerk (SDK-test) " + id;
    await r.writeRow("contacts", id, { trajectory_id: traj.id, mode: "phone", note });

    // Meanwhile the coordinator gives the family to another coach.
    const cd = await login(srv.base, "coordinator.kempen.demo");
    const coaches = await api(srv.base, cd, "GET", "/v1/regions/kempen/coaches");
    const other = coaches.find((c: any) => c.id !== me.id);
    await api(srv.base, cd, "PUT", `/v1/trajectories/${traj.id}/assignment`, { lead_coach_id: other.id, co_coach_ids: [] });

    const res = await r.sync();
    assert.equal(res.push.quarantined.length, 3, JSON.stringify(res.push));
    assert.ok(res.pull.evicted.includes("family:" + familyId), res.pull.evicted.join(","));
    assert.equal(await r.get("families", familyId), null);
    assert.equal(await r.get("contacts", id), null);
    assert.ok(!(await r.scopes()).includes("family:" + familyId));
    const st = await r.status();
    assert.ok(st.quarantined.some((p) => p.change.value === note), "the quarantined note is surfaced");

    await r.pull(); // carries the proof
    const q = await api(srv.base, cd, "GET", "/v1/regions/kempen/quarantine");
    assert.ok(JSON.stringify(q).includes(note), "the note waits in the coordinator's quarantine");
    const fam = await api(srv.base, cd, "GET", `/v1/families/${familyId}`);
    const proof = fam.evictions.find((e: any) => e.device_id === r.deviceId());
    assert.ok(proof?.proven, JSON.stringify(fam.evictions));

    // Revoked: the next call wipes the replica.
    const admin = await login(srv.base, "admin");
    await api(srv.base, admin, "POST", `/v1/devices/${r.deviceId()}/revoke`);
    await assert.rejects(r.sync(), (e: SyncError) => e.code === "device_revoked");
    assert.equal(r.deviceId(), "");
    assert.deepEqual(await r.query("families"), []);
    assert.equal((await r.status()).state, "signed_out");
  } catch (e) {
    console.log(srv.log());
    throw e;
  } finally {
    await stopServer(srv);
    rmSync(srv.dir, { recursive: true, force: true });
  }
});

test("a coach whose device clock runs ten minutes ahead: every write reaches the server, none is left refused", { skip, timeout: 120_000 }, async () => {
  const srv = await startServer();
  try {
    const ahead = { ms: 0 };
    const r = await openReplica({ baseUrl: srv.base, store: new MemoryStore(), now: () => Date.now() + ahead.ms, batchSize: 2 });
    await r.login("coach1.kempen.demo", PASSWORD, "sdk test skew");
    await r.sync();
    const traj = (await r.query("trajectories")).find((t) => t.fields.status !== "closed");
    assert.ok(traj, "she has a running trajectory");

    ahead.ms = 10 * 60_000; // offline, the wall clock jumps ten minutes ahead
    const id = r.newId();
    const note = "Huisbezoek met een klok die voorloopt. " + id;
    await r.writeRow("contacts", id, { trajectory_id: traj.id, mode: "home_visit", minutes: 30, note: note + " (1)" });
    await r.write("contacts", id, "note", note + " (2)");
    const res = await r.sync();
    assert.deepEqual(res.push.rejected, [], JSON.stringify(res.push.rejected));
    assert.equal(res.push.restamped.length, 5, JSON.stringify(res.push.restamped));
    assert.deepEqual(res.pull.mismatched, []);
    const st = await r.status();
    assert.equal(st.pending, 0);
    assert.deepEqual(st.rejected, []);
    assert.ok(st.clockOffsetMs > 9 * 60_000 && st.clockOffsetMs < 10 * 60_000 + 5_000, `offset ${st.clockOffsetMs}`);

    // The server logged both notes, in order, each applied, the second based on the first.
    const token = await login(srv.base, "coordinator.kempen.demo");
    const familyId = traj.fields.family_id as string;
    const hist = await api(srv.base, token, "GET", `/v1/families/${familyId}/history?collection=contacts&row=${id}&field=note`);
    const entries = hist.fields[0].entries as { value: string; hlc: string; base?: string; outcome: string }[];
    assert.deepEqual(entries.map((e) => [e.value, e.outcome]), [[note + " (1)", "applied"], [note + " (2)", "applied"]]);
    assert.equal(entries[1].base, entries[0].hlc);
    assert.equal((await r.get("contacts", id))?.note, note + " (2)");

    // Still ahead, a later write goes through at once.
    await r.write("contacts", id, "minutes", 40);
    const again = await r.sync();
    assert.deepEqual(again.push.restamped, []);
    assert.equal(again.push.applied, 1);
    await r.close();
  } catch (e) {
    console.log(srv.log());
    throw e;
  } finally {
    await stopServer(srv);
    rmSync(srv.dir, { recursive: true, force: true });
  }
});

test("after a restore from a backup, the coach's writes acknowledged after it are back on the server with one sync, nothing logged twice", { skip, timeout: 180_000 }, async () => {
  let srv = await startServer();
  const first = srv;
  const restoredDir = mkdtempSync(join(tmpdir(), "samenplan-sdk-restored-"));
  const backupDir = join(mkdtempSync(join(tmpdir(), "samenplan-sdk-backup-")), "copy");
  try {
    // The device finds its server at the restored server's address.
    const via = (input: string | URL | Request, init?: RequestInit) => fetch(String(input).replace(first.base, srv.base), init);
    const r = await openReplica({ baseUrl: first.base, store: new MemoryStore(), fetch: via as typeof fetch });
    await r.login("coach1.kempen.demo", PASSWORD, "sdk test restore");
    await r.sync();
    const traj = (await r.query("trajectories")).find((t) => t.fields.status !== "closed");
    assert.ok(traj, "she has a running trajectory");
    const familyId = traj.fields.family_id as string;
    const contact = async (note: string) => {
      const id = r.newId();
      await r.writeRow("contacts", id, { trajectory_id: traj.id, mode: "home_visit", minutes: 30, note });
      const res = await r.sync();
      assert.equal(res.push.applied, 4, JSON.stringify(res.push));
      return id;
    };
    const kept = await contact("Voor de back-up (SDK-test)");
    const b = spawnSync(resolve(bin), ["backup", "--data", join(first.dir, "data"), "--to", backupDir], { encoding: "utf8" });
    assert.equal(b.status, 0, b.stdout + b.stderr);
    const lost = await contact("Na de back-up (SDK-test)");
    await stopServer(first);

    mkdirSync(join(restoredDir, "data", "regions"), { recursive: true });
    copyFileSync(join(backupDir, "main.db"), join(restoredDir, "data", "main.db"));
    for (const f of readdirSync(join(backupDir, "regions")).filter((f) => f.endsWith(".db"))) {
      copyFileSync(join(backupDir, "regions", f), join(restoredDir, "data", "regions", f));
    }
    srv = await startServer(restoredDir);
    const token = await login(srv.base, "coordinator.kempen.demo");
    const history = async (row: string) =>
      (await api(srv.base, token, "GET", `/v1/families/${familyId}/history?collection=contacts&row=${row}&field=note`)).fields[0]?.entries ?? [];
    assert.equal((await history(lost)).length, 0, "the restore lost the note written after the backup");

    const res = await r.sync();
    assert.equal(res.pull.reoffered, 8, JSON.stringify(res.pull));
    assert.equal(res.push.applied, 4, JSON.stringify(res.push));
    assert.equal(res.push.ignored, 4, "the note the backup kept is ignored");
    assert.deepEqual(res.pull.mismatched, []);
    assert.equal((await r.status()).pending, 0);
    for (const row of [kept, lost]) {
      const entries = (await history(row)) as { value: string; hlc: string; outcome: string }[];
      assert.equal(entries.length, 1, `${row}: logged once: ${JSON.stringify(entries)}`);
      assert.equal(entries[0].outcome, "applied");
      assert.ok(entries[0].hlc.endsWith(r.deviceId()), "with the device's own stamp");
    }
    await r.close();
  } catch (e) {
    console.log(srv.log());
    throw e;
  } finally {
    await stopServer(first);
    await stopServer(srv);
    for (const d of [first.dir, restoredDir, join(backupDir, "..")]) rmSync(d, { recursive: true, force: true });
  }
});
