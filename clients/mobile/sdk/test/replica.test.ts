// The replica against the in-memory store and a fake server (fakeserver.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { openReplica, MemoryStore, SyncError, scopesHash, type Replica, type SyncStatus } from "../src/index.js";
import { FakeServer } from "./fakeserver.js";

const FAM = "01a20937-0000-7000-8000-000000000001";
const FAM2 = "01a20937-0000-7000-8000-000000000002";
const TRAJ = "0195b7a0-2222-7a4e-9b1f-2a1d4c0e9f11";
const TRAJ2 = "0195b7a0-2222-7a4e-9b1f-2a1d4c0e9f12";

function world() {
  const server = new FakeServer();
  server.granted.add("family:" + FAM);
  server.granted.add("family:" + FAM2);
  server.seed("family:" + FAM, "families", FAM, { label: "Gezin Klaproos", region: "kempen" });
  server.seed("family:" + FAM, "trajectories", TRAJ, { family_id: FAM, status: "running" });
  server.seed("family:" + FAM2, "families", FAM2, { label: "Gezin Vlinder", region: "kempen" });
  server.seed("family:" + FAM2, "trajectories", TRAJ2, { family_id: FAM2, status: "running" });
  return server;
}

async function open(server: FakeServer, store = new MemoryStore(), now?: () => number): Promise<{ r: Replica; store: MemoryStore }> {
  const r = await openReplica({ baseUrl: "http://fake", store, fetch: server.fetch, now, pageSize: 3, retry: { baseMs: 1, maxMs: 5, attempts: 4 } });
  return { r, store };
}

async function loggedIn(server = world()) {
  const { r, store } = await open(server);
  await r.login("coach1.kempen.demo", "pw", "test");
  return { r, store, server };
}

test("login then pull brings the families of her scopes, over several pages, and checksums match", async () => {
  const { r, server } = await loggedIn();
  assert.equal(r.deviceId(), server.deviceId);
  const res = await r.pull();
  assert.ok(res.pages >= 2, `pages ${res.pages}`);
  assert.deepEqual(res.mismatched, []);
  assert.deepEqual(res.refetched, []);
  const fams = await r.query("families");
  assert.deepEqual(fams.map((f) => f.fields.label).sort(), ["Gezin Klaproos", "Gezin Vlinder"]);
  assert.deepEqual(await r.scopes(), ["family:" + FAM, "family:" + FAM2, "intake:kempen"].sort());
  const st = await r.status();
  assert.equal(st.state, "idle");
  assert.ok(st.lastSync > 0);
});

test("a contact written offline waits in the outbox and reaches the server when online", async () => {
  const { r, server } = await loggedIn();
  await r.pull();
  server.offline = true;
  const id = r.newId();
  await r.writeRow("contacts", id, { trajectory_id: TRAJ, mode: "home_visit", note: "Huisbezoek: rustiger." });
  assert.equal((await r.get("contacts", id))?.note, "Huisbezoek: rustiger.");
  await assert.rejects(r.sync(), (e: SyncError) => e.code === "offline");
  let st = await r.status();
  assert.equal(st.pending, 3);
  assert.equal(st.state, "offline");
  server.offline = false;
  const res = await r.sync();
  assert.equal(res.push.applied, 3);
  assert.deepEqual(server.get("contacts", id), { trajectory_id: TRAJ, mode: "home_visit", note: "Huisbezoek: rustiger." });
  st = await r.status();
  assert.equal(st.pending, 0);
  assert.equal(st.state, "idle");
  assert.deepEqual(res.pull.mismatched, []);
  // The contact is in the family's scope locally, so its checksum agrees with the server's.
  assert.equal((await r.checksums())["family:" + FAM], server.sum("family:" + FAM));
});

test("a lost push answer re-sends the same batch id and nothing is applied twice", async () => {
  const { r, server } = await loggedIn();
  await r.pull();
  await r.write("families", FAM, "label", "Gezin Klaproos-Peeters");
  server.loseAnswers = 1;
  await assert.rejects(r.push(), (e: SyncError) => e.code === "offline");
  assert.equal((await r.status()).pendingBatches, 1);
  const res = await r.push();
  const pushes = server.requests.filter((q) => q.path === "/v1/sync/push");
  assert.equal(pushes.length, 2);
  assert.equal(pushes[0].body.batch_id, pushes[1].body.batch_id);
  assert.equal(res.applied, 1);
  assert.equal(server.log.filter((l) => l.field === "label" && l.value === "Gezin Klaproos-Peeters").length, 1);
  assert.equal((await r.status()).pending, 0);
});

test("LWW: a later server write replaces the local value; a later local pending write stays", async () => {
  let wall = 1_795_450_929_000;
  const server = world();
  const { r } = await open(server, new MemoryStore(), () => wall);
  await r.login("coach1.kempen.demo", "pw", "t");
  await r.pull();
  server.wall += 10_000;
  server.apply("families", FAM, "label", JSON.stringify("Van de server"), server.stamp());
  await r.pull();
  assert.equal((await r.get("families", FAM))?.label, "Van de server");
  wall = server.wall + 60_000;
  await r.write("families", FAM, "label", "Van de coach");
  server.apply("families", FAM2, "label", JSON.stringify("ander"), server.stamp());
  await r.pull();
  assert.equal((await r.get("families", FAM))?.label, "Van de coach");
  const pending = await r.pending();
  assert.equal(pending.length, 1);
  assert.ok(pending[0].base && pending[0].base.endsWith("-server"), "the base is the value the coach saw");
});

test("eviction removes the family's rows; the next pull proves what is held", async () => {
  const { r, server, store } = await loggedIn();
  await r.pull();
  server.granted.delete("family:" + FAM);
  server.lost.add("family:" + FAM);
  const res = await r.pull();
  assert.deepEqual(res.evicted, ["family:" + FAM]);
  assert.equal(await r.get("families", FAM), null);
  assert.equal(await r.get("trajectories", TRAJ), null);
  assert.ok(await r.get("families", FAM2));
  for (const [k] of await store.scan("fields")) assert.ok(!k.includes(FAM + "\u0000") && !k.includes(TRAJ), k);
  await r.pull();
  const last = server.requests.filter((q) => q.path === "/v1/sync/pull").at(-1)!.body;
  assert.equal(last.held_hash, scopesHash(["family:" + FAM2, "intake:kempen"]));
  assert.deepEqual(server.proofs, [last.held_hash]);
  const after = server.requests.filter((q) => q.path === "/v1/sync/pull").length;
  await r.pull();
  assert.equal(server.requests.filter((q) => q.path === "/v1/sync/pull")[after].body.held_hash, undefined, "proven once");
});

test("a note written offline for a family reassigned meanwhile is quarantined, surfaced and reverted locally", async () => {
  const { r, server } = await loggedIn();
  await r.pull();
  server.offline = true;
  const id = r.newId();
  await r.writeRow("contacts", id, { trajectory_id: TRAJ, note: "Na het huisbezoek" });
  server.granted.delete("family:" + FAM);
  server.lost.add("family:" + FAM);
  server.offline = false;
  const seen: SyncStatus[] = [];
  r.onStatus((s) => seen.push(s));
  const res = await r.sync();
  assert.equal(res.push.quarantined.length, 2);
  assert.equal(server.quarantine.length, 2);
  const st = await r.status();
  assert.equal(st.quarantined.length, 2);
  assert.equal(st.quarantined.find((p) => p.change.field === "note")?.change.value, "Na het huisbezoek");
  assert.equal(await r.get("contacts", id), null);
  assert.equal(await r.get("families", FAM), null);
  await r.dismiss(st.quarantined[0].id);
  assert.equal((await r.status()).quarantined.length, 1);
  await new Promise((res) => setTimeout(res, 10));
  assert.ok(seen.some((s) => s.state === "syncing") && seen.some((s) => s.quarantined.length > 0));
});

test("a rejected write is surfaced and the server's value comes back", async () => {
  const server = world();
  const goal = "0195b7a1-3333-7a4e-9b1f-2a1d4c0e9f11";
  server.seed("family:" + FAM, "plan_goals", goal, { trajectory_id: TRAJ, scale: 4 });
  const { r } = await loggedIn(server);
  await r.pull();
  await r.write("plan_goals", goal, "scale", 12);
  const res = await r.sync();
  assert.equal(res.push.rejected.length, 1);
  assert.equal(res.push.rejected[0].code, "invalid");
  assert.equal((await r.get("plan_goals", goal))?.scale, 4);
  assert.equal((await r.status()).rejected.length, 1);
});

test("a checksum mismatch refetches the scope and repairs it", async () => {
  const { r, store, server } = await loggedIn();
  await r.pull();
  const k = `families\u0000${FAM}\u0000label`;
  const rec = (await store.get("fields", k)) as any;
  await store.commit([{ op: "del", table: "fields", key: k }]); // a lost local row
  void rec;
  const res = await r.pull();
  assert.deepEqual(res.refetched, ["family:" + FAM]);
  assert.deepEqual(res.mismatched, []);
  assert.equal((await r.get("families", FAM))?.label, "Gezin Klaproos");
  const refetch = server.requests.filter((q) => q.path === "/v1/sync/pull" && q.body.refetch);
  assert.deepEqual(refetch.at(-1)!.body.refetch, ["family:" + FAM]);
});

test("an expired access token is refreshed and the call retried", async () => {
  const { r, server } = await loggedIn();
  server.access = "rotated-by-server"; // the replica's token no longer works
  server.refreshToken = "refresh-1";
  await r.pull();
  assert.equal(server.refreshes, 1);
});

test("device_revoked wipes everything local but the clock (its last reading and offset)", async () => {
  const { r, server, store } = await loggedIn();
  await r.pull();
  const offset = (await r.status()).clockOffsetMs; // the fake's wall stands still: ahead of it, the device learns one
  await r.write("families", FAM, "label", "x");
  server.revoked = true;
  await assert.rejects(r.sync(), (e: SyncError) => e.code === "device_revoked");
  assert.equal(r.deviceId(), "");
  assert.equal(r.user(), null);
  for (const t of ["fields", "row_scopes", "held_scopes", "outbox", "batches", "problems"] as const) assert.equal(store.size(t), 0, t);
  const meta = new Map(await store.scan("meta"));
  assert.deepEqual([...meta.keys()].filter((k) => k !== "clock_offset"), ["clock"]);
  assert.equal(meta.get("clock_offset") ?? 0, offset);
  assert.equal((await r.status()).state, "signed_out");
  await assert.rejects(r.write("families", FAM, "label", "y"), (e: SyncError) => e.code === "signed_out");
});

test("sync with retry outlasts a short network outage", async () => {
  const server = world();
  let failures = 0;
  const flaky: typeof fetch = async (i, init) => {
    if (failures > 0) {
      failures--;
      throw new TypeError("fetch failed");
    }
    return server.fetch(i, init);
  };
  const r = await openReplica({ baseUrl: "http://fake", store: new MemoryStore(), fetch: flaky, retry: { baseMs: 1, maxMs: 5, attempts: 4 } });
  await r.login("coach1.kempen.demo", "pw", "t");
  failures = 2;
  const res = await r.sync({ retry: true });
  assert.ok(res.pull.pages > 0);
  assert.equal((await r.status()).state, "idle");
  failures = 10;
  await assert.rejects(r.sync({ retry: true }), (e: SyncError) => e.code === "offline");
});

test("a reopened replica keeps its session, data, outbox and clock", async () => {
  const { r, store, server } = await loggedIn();
  await r.pull();
  await r.write("families", FAM, "label", "nieuw");
  const before = (await r.pending())[0].hlc;
  const { r: again } = await open(server, store);
  assert.equal(again.deviceId(), server.deviceId);
  assert.equal((await again.get("families", FAM))?.label, "nieuw");
  await again.write("families", FAM, "label", "nog nieuwer");
  const p = await again.pending();
  assert.equal(p.length, 2);
  assert.ok(p[1].hlc > before);
  assert.equal(p[1].base, before);
});

test("writes are checked: bad id, unknown collection, signed out", async () => {
  const server = world();
  const { r } = await open(server);
  await assert.rejects(r.write("families", FAM, "label", "x"), (e: SyncError) => e.code === "signed_out");
  await r.login("coach1.kempen.demo", "pw", "t");
  await assert.rejects(r.write("families", "NOT-A-UUID", "label", "x"), (e: SyncError) => e.code === "invalid");
  await assert.rejects(r.write("nope", FAM, "label", "x"), (e: SyncError) => e.code === "invalid");
  assert.match(r.newId(), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("two replicas on one store (two tabs) share the session and the clock", async () => {
  const server = world();
  const store = new MemoryStore();
  const { r: a } = await open(server, store);
  await a.login("coach1.kempen.demo", "pw", "t");
  const { r: b } = await open(server, store);
  await a.pull();
  server.access = "expired-1";
  await a.pull(); // refreshes: refresh-1 is spent
  server.access = "expired-2";
  await b.pull(); // must refresh with the token a got, not the spent one
  assert.equal(server.refreshes, 2);
  await a.write("families", FAM, "label", "uit tab a");
  await b.write("families", FAM, "label", "uit tab b");
  const p = await b.pending();
  assert.equal(p.length, 2);
  assert.ok(p[1].hlc > p[0].hlc, `${p[1].hlc} > ${p[0].hlc}`);
  assert.equal(p[1].base, p[0].hlc);
  assert.equal((await a.get("families", FAM))?.label, "uit tab b");
  await b.wipe();
  await assert.rejects(a.write("families", FAM, "label", "x"), (e: SyncError) => e.code === "signed_out");
});

test("a push the server finds too large is halved and sent again under the same batch id", async () => {
  const { r, server } = await loggedIn();
  await r.pull();
  for (let i = 0; i < 5; i++) await r.write("families", FAM, "label", "versie " + i);
  server.maxChanges = 2;
  const res = await r.push();
  assert.equal(res.batches, 3);
  const pushes = server.requests.filter((q) => q.path === "/v1/sync/push").map((q) => [q.body.batch_id, q.body.changes.length]);
  assert.equal(pushes[0][1], 5);
  assert.equal(pushes[1][0], pushes[0][0], "the first half keeps the batch id");
  assert.deepEqual(pushes.filter((p) => p[1] <= 2).reduce((n, p) => n + (p[1] as number), 0), 5);
  assert.equal(server.get("families", FAM).label, "versie 4");
  assert.equal((await r.status()).pending, 0);
});

test("a cursor the server refuses starts the pull over; held scopes it no longer names are evicted", async () => {
  const { r, server, store } = await loggedIn();
  await r.pull();
  await store.commit([{ op: "put", table: "meta", key: "cursor", value: "not-a-cursor" }]);
  server.granted.delete("family:" + FAM2); // a restored server database no longer gives her this family
  const res = await r.pull();
  assert.ok(res.changes > 0);
  assert.equal(await r.get("families", FAM2), null);
  assert.deepEqual(await r.scopes(), ["family:" + FAM, "intake:kempen"]);
  assert.deepEqual(res.mismatched, []);
});

test("logging in again as a new device restamps the outbox with the new node", async () => {
  const { r, server } = await loggedIn();
  await r.pull();
  await r.write("families", FAM, "label", "een");
  await r.write("families", FAM, "label", "twee");
  const old = server.deviceId;
  server.deviceId = "0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f99";
  await r.login("coach1.kempen.demo", "pw", "t");
  const p = await r.pending();
  assert.ok(p.every((c) => c.hlc.endsWith(server.deviceId)), JSON.stringify(p));
  assert.equal(p[1].base, p[0].hlc, "the base link follows the new stamp");
  assert.ok(!p.some((c) => c.hlc.endsWith(old)));
  await r.sync();
  assert.equal(server.get("families", FAM).label, "twee");
});

test("convergence: replicas writing offline in any order end with the server's state", async () => {
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 5; round++) {
    const server = world();
    const replicas: Replica[] = [];
    for (let i = 0; i < 3; i++) {
      server.deviceId = `0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f1${i}`;
      let wall = 1_795_450_929_000 + rnd(5000);
      const r = await openReplica({ baseUrl: "http://fake", store: new MemoryStore(), fetch: server.fetch, now: () => (wall += rnd(3)), pageSize: 2 });
      await r.login("coach1.kempen.demo", "pw", "t" + i);
      await r.pull();
      replicas.push(r);
    }
    const ids = [FAM, FAM2];
    for (let step = 0; step < 40; step++) {
      const r = replicas[rnd(replicas.length)];
      if (rnd(4) === 0) await r.sync();
      else await r.write("families", ids[rnd(2)], ["label", "municipality"][rnd(2)], "w" + step);
    }
    for (let i = 0; i < 2; i++) for (const r of replicas) await r.sync();
    for (const r of replicas) {
      for (const id of ids) {
        const got = await r.get("families", id);
        const want = server.get("families", id);
        assert.deepEqual(got, want, `round ${round} family ${id}`);
      }
      assert.deepEqual((await r.pull()).mismatched, []);
    }
  }
});

test("auto-sync keeps trying while offline and delivers once online; change events name the collections", async () => {
  const { r, server } = await loggedIn();
  const changes: string[][] = [];
  r.onChange((c) => changes.push(c));
  server.offline = true;
  await r.write("families", FAM, "label", "automatisch");
  const stop = r.startAutoSync(20);
  await new Promise((res) => setTimeout(res, 60));
  assert.equal((await r.status()).state, "offline");
  server.offline = false;
  const deadline = Date.now() + 2000;
  while ((await r.status()).pending > 0 || (await r.status()).lastSync === 0) {
    assert.ok(Date.now() < deadline, "auto-sync delivered in time");
    await new Promise((res) => setTimeout(res, 10));
  }
  stop();
  assert.equal(server.get("families", FAM).label, "automatisch");
  assert.deepEqual(changes[0], ["families"]);
  assert.ok(changes.some((c) => c.includes("trajectories")), JSON.stringify(changes));
  await r.close();
});
