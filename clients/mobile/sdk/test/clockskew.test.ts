// A device whose wall clock runs ahead of the server's: the writes the
// server refuses with clock_skew are stamped anew and arrive (docs/protocol.md
// "A device whose clock runs ahead"), as in the Go client.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openReplica, MemoryStore, SyncError, parseStamp, type Replica } from "../src/index.js";
import { FakeServer } from "./fakeserver.js";

const FAM = "01a20937-0000-7000-8000-000000000001";
const TRAJ = "0195b7a0-2222-7a4e-9b1f-2a1d4c0e9f11";
const MIN = 60_000;

function world(): FakeServer {
  const server = new FakeServer();
  server.maxAheadMs = 5 * MIN;
  server.granted.add("family:" + FAM);
  server.seed("family:" + FAM, "families", FAM, { label: "Gezin Klaproos", region: "kempen" });
  server.seed("family:" + FAM, "trajectories", TRAJ, { family_id: FAM, status: "running" });
  return server;
}

/** device opens a replica whose wall clock is the server's plus ahead.ms. */
async function device(server: FakeServer, store = new MemoryStore(), batchSize = 2) {
  const ahead = { ms: 0 };
  const r = await openReplica({
    baseUrl: "http://fake", store, fetch: server.fetch, now: () => server.wall + ahead.ms, batchSize,
    retry: { baseMs: 1, maxMs: 5, attempts: 2 },
  });
  return { r, ahead, store };
}

/** pushedChanges returns every change the device sent, in order, with the answer's verdict. */
function labelsSent(server: FakeServer): { value: unknown; hlc: string; base?: string }[] {
  return server.requests.filter((q) => q.path === "/v1/sync/push").flatMap((q) => q.body.changes).filter((c: any) => c.field === "label");
}

async function assertSameAsServer(r: Replica, server: FakeServer) {
  for (const [c, id] of [["families", FAM], ["trajectories", TRAJ]] as const) {
    assert.deepEqual(await r.get(c, id), server.get(c, id), `${c} ${id}`);
  }
  const res = await r.pull();
  assert.deepEqual(res.mismatched, [], "checksums differ from the server's");
  assert.deepEqual(res.refetched, [], "checksums differed before a refetch");
}

for (const putRight of [false, true]) {
  test(`clock ten minutes ahead, ${putRight ? "put right before the push" : "staying ahead"}: refused writes are stamped anew and arrive in order`, async () => {
    const server = world();
    const { r, ahead, store } = await device(server);
    await r.login("coach1.kempen.demo", "pw", "test");
    await r.sync();

    ahead.ms = 10 * MIN; // offline, the wall clock jumps ahead
    await r.write("families", FAM, "label", "Gezin Claes");
    const cid = r.newId();
    await r.writeRow("contacts", cid, { trajectory_id: TRAJ, mode: "home_visit", note: "Huisbezoek." });
    await r.write("families", FAM, "label", "Gezin Claes-Peeters");
    if (putRight) ahead.ms = 0;
    server.wall += 1000;

    const res = await r.push();
    assert.deepEqual(res.rejected, []);
    assert.equal(res.restamped.length, 5, JSON.stringify(res.restamped));
    for (const x of res.restamped) {
      assert.ok(x.new < x.old, `restamp ${x.old} -> ${x.new} did not go back`);
      assert.ok(parseStamp(x.new).wall <= server.wall + 5 * MIN, `${x.new} beyond the server's limit`);
    }
    let st = await r.status();
    assert.equal(st.pending, 0);
    assert.deepEqual(st.rejected, []);
    assert.equal(st.clockOffsetMs > 9 * MIN, !putRight, `offset ${st.clockOffsetMs}`);
    assert.equal(server.get("families", FAM).label, "Gezin Claes-Peeters");
    assert.equal(server.get("contacts", cid).note, "Huisbezoek.");
    // Both labels reached the server, the second based on the first's new stamp.
    const accepted = labelsSent(server).filter((c) => parseStamp(c.hlc).wall <= server.wall + 5 * MIN);
    assert.deepEqual(accepted.map((c) => c.value), ["Gezin Claes", "Gezin Claes-Peeters"]);
    assert.equal(accepted[1].base, accepted[0].hlc);
    assert.ok(accepted[0].hlc < accepted[1].hlc);
    await assertSameAsServer(r, server);

    // A later write goes through at once: the clock is right (or corrected).
    await r.write("families", FAM, "language", "nl");
    const again = await r.push();
    assert.deepEqual(again.restamped, []);
    assert.equal(again.applied, 1);

    // The offset survives reopening the store.
    const { r: r2, ahead: ahead2 } = await device(server, store);
    ahead2.ms = ahead.ms;
    assert.equal((await r2.status()).clockOffsetMs, st.clockOffsetMs);
    await r2.write("families", FAM, "language", "fr");
    assert.deepEqual((await r2.push()).restamped, []);

    // The wall clock put right at last: a pull shrinks the offset to 0.
    ahead2.ms = 0;
    await r2.sync();
    st = await r2.status();
    assert.equal(st.clockOffsetMs, 0);
    await r2.write("families", FAM, "language", "de");
    const res3 = await r2.sync();
    assert.deepEqual(res3.push.restamped, []);
    assert.equal(server.get("families", FAM).language, "de");
    await assertSameAsServer(r2, server);
  });
}

test("a server whose own clock ran ahead and went back: writes stay queued, not problems, and arrive later", async () => {
  const server = world();
  const { r } = await device(server, new MemoryStore(), 1);
  await r.login("coach1.kempen.demo", "pw", "test");
  server.hlc = `${server.wall + 20 * MIN}-0000-server`;
  await r.sync(); // observes a server_hlc 20 minutes ahead
  await r.write("families", FAM, "label", "a");
  await r.write("families", FAM, "label", "b");
  await assert.rejects(r.push(), (e: SyncError) => e.code === "clock_skew");
  const st = await r.status();
  assert.equal(st.pending, 2);
  assert.deepEqual(st.rejected, []);
  assert.equal((await r.get("families", FAM))?.label, "b");

  server.hlc = ""; // the server's clock is sane again
  const res = await r.sync();
  assert.equal(res.push.applied, 2);
  assert.equal(server.get("families", FAM).label, "b");
  await assertSameAsServer(r, server);
});

test("a server_hlc that runs ahead of the server's wall clock: a device past the limit but within a minute of it is held to it and its write arrives in one push", async () => {
  const server = world();
  const { r, ahead } = await device(server);
  await r.login("coach1.kempen.demo", "pw", "test");
  await r.sync();
  // Another device's stamp 4 min 30 s ahead was accepted: the server's clock follows it.
  server.hlc = `${String(server.wall + 4.5 * MIN).padStart(13, "0")}-0000-other-device`;
  ahead.ms = 5 * MIN + 20_000; // past the limit, within a minute of server_hlc
  await r.pull(); // no offset learned: within the usual tolerance
  await r.write("families", FAM, "label", "Gezin Claes");
  const res = await r.push();
  assert.deepEqual(res.rejected, []);
  assert.equal(res.applied, 1, JSON.stringify(res));
  assert.equal(server.get("families", FAM).label, "Gezin Claes");
  assert.ok((await r.status()).clockOffsetMs > 0, "the device learned an offset from the refusal");
});
