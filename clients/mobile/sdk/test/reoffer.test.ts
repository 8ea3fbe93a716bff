// After a server restore, the device offers its own writes again (as
// sync/client's TestPull_InvalidCursorReoffersOwnWrites does in Go).
import { test } from "node:test";
import assert from "node:assert/strict";
import { openReplica, MemoryStore, type Replica } from "../src/index.js";
import { FakeServer } from "./fakeserver.js";

const FAM = "01a20937-0000-7000-8000-000000000001";
const FAM2 = "01a20937-0000-7000-8000-000000000002";
const P1 = "01a20937-0000-7000-8000-0000000000a1";
const P2 = "01a20937-0000-7000-8000-0000000000a2";
const OTHER = "0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f22"; // another device of the region

function world() {
  const server = new FakeServer();
  server.granted.add("family:" + FAM);
  server.granted.add("family:" + FAM2);
  server.seed("family:" + FAM, "families", FAM, { label: "Gezin Klaproos", region: "kempen" });
  server.seed("family:" + FAM2, "families", FAM2, { label: "Gezin Vlinder", region: "kempen" });
  return server;
}

async function loggedIn(server: FakeServer, batchSize = 1000): Promise<Replica> {
  const r = await openReplica({ baseUrl: "http://fake", store: new MemoryStore(), fetch: server.fetch, pageSize: 3, batchSize });
  await r.login("coach1.kempen.demo", "pw", "test");
  await r.pull();
  return r;
}

const stampAt = (ms: number, node: string) => `${String(ms).padStart(13, "0")}-0000-${node}`;
const pushes = (server: FakeServer) => server.requests.filter((q) => q.path === "/v1/sync/push");

test("a refused cursor offers the device's own writes again, same stamps, before its offline writes; a newer server write stays", async () => {
  const server = world();
  const r = await loggedIn(server, 2);
  await r.write("families", FAM, "municipality", "Geel"); // kept by the backup
  await r.sync();
  const bk = server.backup();

  await r.write("families", FAM, "language", "nl"); // acknowledged after the backup: lost by the restore
  await r.writeRow("persons", P1, { family_id: FAM, given_name: "Lotte" });
  const res = await r.sync();
  assert.equal(res.push.applied, 3);
  server.apply("families", FAM2, "label", JSON.stringify("Van een ander toestel"), stampAt(Date.now(), OTHER));
  await r.pull(); // the device holds another device's write too
  const stampOf = async (c: string, id: string, f: string) => {
    const st = await r.pending();
    return st.find((x) => x.collection === c && x.id === id && x.field === f)?.hlc ?? "";
  };
  assert.equal(await stampOf("families", FAM, "language"), "", "nothing pending before the restore");

  server.restore(bk);
  server.apply("families", FAM, "language", JSON.stringify("fr"), stampAt(Date.now() + 60_000, "server")); // newer than the device's
  await r.writeRow("persons", P2, { family_id: FAM, given_name: "Mats" }); // offline, not yet pushed

  const pull = await r.pull();
  assert.equal(pull.reoffered, 4, "municipality, language and P1's two fields: not the other device's label, not the pending ones");
  const pending = await r.pending();
  assert.deepEqual(pending.map((c) => `${c.collection}.${c.id === P2 ? "P2" : c.id === P1 ? "P1" : "FAM"}.${c.field}`), [
    "families.FAM.municipality", "families.FAM.language", "persons.P1.family_id", "persons.P1.given_name",
    "persons.P2.family_id", "persons.P2.given_name",
  ]);
  const log = (c: string, id: string, f: string) => server.log.filter((x) => x.collection === c && x.id === id && x.field === f).map((x) => x.hlc);
  assert.ok(pending.slice(0, 4).every((c) => c.hlc.endsWith(server.deviceId) && c.base === undefined), JSON.stringify(pending));
  assert.deepEqual(pending[0].hlc, log("families", FAM, "municipality")[0], "the write the backup kept, with its stamp");
  assert.deepEqual((await r.status()).reoffered, 4);
  assert.ok((await r.status()).reofferedAt > 0);

  const before = pushes(server).length;
  const push = await r.push();
  assert.equal(push.applied, 4, "P1 back, P2 new");
  assert.equal(push.ignored, 2, "municipality held by the backup, language older than the server's");
  assert.equal(pushes(server).length - before, 3, "6 writes in batches of 2");
  assert.equal(log("families", FAM, "municipality").length, 2, "sent twice, the same stamp both times");
  assert.equal(new Set(log("families", FAM, "municipality")).size, 1);
  assert.ok(pushes(server).slice(before).every((q) => q.body.changes.every((c: { hlc: string }) => c.hlc.endsWith(server.deviceId))));
  assert.equal(server.get("families", FAM).language, "fr", "the older re-offered write did not overwrite the newer one");
  assert.deepEqual(server.get("persons", P1), { family_id: FAM, given_name: "Lotte" });

  const after = await r.pull();
  assert.equal((await r.get("families", FAM))?.language, "fr");
  // The other device's label, lost by the server, is not the device's to offer: that scope keeps differing, and
  // its own writes are not sent again on every pull.
  assert.deepEqual(after.mismatched, ["family:" + FAM2]);
  assert.equal(after.reoffered, 0);
  const n = pushes(server).length;
  const again = await r.sync();
  assert.equal(again.pull.reoffered, 0);
  assert.equal(pushes(server).length, n);
  assert.equal(server.sum("family:" + FAM), (await r.checksums())["family:" + FAM]);
});

test("a restored server whose log grew past the cursor: the checksums tell, and one sync offers and pushes the own writes of the differing scope", async () => {
  const server = world();
  const r = await loggedIn(server);
  const bk = server.backup();
  await r.write("families", FAM, "municipality", "Geel");
  await r.sync();
  server.restore(bk);
  for (let i = 0; i < 5; i++) server.apply("families", FAM2, "label", JSON.stringify(`versie ${i}`), stampAt(Date.now() + i, OTHER));
  const res = await r.sync();
  assert.deepEqual(res.pull.refetched, ["family:" + FAM]);
  assert.equal(res.pull.reoffered, 1);
  assert.equal(res.push.applied, 1);
  assert.deepEqual(res.pull.mismatched, []);
  assert.equal(server.get("families", FAM).municipality, "Geel");
  assert.equal((await r.status()).pending, 0);
});
