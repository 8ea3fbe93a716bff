// Runs in Chromium (bundled by idb.test.ts): exercises IdbStore and a
// replica on it, then posts the outcome back to the test's server.
import { openIdbStore } from "../src/idb.js";
import { openReplica } from "../src/index.js";

async function check(): Promise<string[]> {
  const fails: string[] = [];
  const eq = (got: unknown, want: unknown, what: string) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) fails.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const s = await openIdbStore("sdk-test-" + Math.random());
  await s.commit([
    { op: "put", table: "fields", key: "b\u0000x", value: { v: 2 } },
    { op: "put", table: "fields", key: "a\u0000y", value: { v: 1 } },
    { op: "put", table: "fields", key: "a\u0000x", value: { v: 0 } },
    { op: "put", table: "meta", key: "k", value: "v" },
  ]);
  eq(await s.get("meta", "k"), "v", "get");
  eq(await s.get("meta", "none"), undefined, "get missing");
  eq(await s.scan("fields", "a\u0000"), [["a\u0000x", { v: 0 }], ["a\u0000y", { v: 1 }]], "scan prefix in key order");
  eq((await s.scan("fields")).length, 3, "scan all");
  // A failing commit changes nothing.
  try {
    await s.commit([{ op: "del", table: "meta", key: "k" }, { op: "put", table: "fields", key: "c", value: () => 1 }]);
    fails.push("a commit with an uncloneable value did not fail");
  } catch {
    /* expected */
  }
  eq(await s.get("meta", "k"), "v", "an aborted commit changes nothing");
  await s.commit([{ op: "clear", table: "fields" }, { op: "del", table: "meta", key: "k" }]);
  eq((await s.scan("fields")).length + (await s.scan("meta")).length, 0, "clear and del");
  await s.close();

  // A replica on IndexedDB: a write survives reopening (a page reload).
  const name = "sdk-test-replica-" + Math.random();
  const store = await openIdbStore(name);
  await store.commit([
    { op: "put", table: "meta", key: "device_id", value: "dev-1" },
    { op: "put", table: "meta", key: "access_token", value: "t" },
    { op: "put", table: "meta", key: "user", value: { id: "u", username: "c", role: "coach", regions: ["kempen"] } },
  ]);
  const r = await openReplica({ baseUrl: "http://127.0.0.1:1", store });
  const id = r.newId();
  await r.writeRow("families", id, { label: "Gezin Offline", region: "kempen" });
  await r.close();
  const again = await openReplica({ baseUrl: "http://127.0.0.1:1", store: await openIdbStore(name) });
  eq((await again.get("families", id))?.label, "Gezin Offline", "a write survives reopening");
  eq((await again.pending()).length, 2, "the outbox survives reopening");
  eq(await again.scopes(), [], "nothing held before a pull");
  eq(Object.keys(await again.checksums()), ["family:" + id], "the row's derived scope");
  await again.wipe();
  eq(await again.get("families", id), null, "wiped");
  return fails;
}

check().then(
  (fails) => fetch("/result", { method: "POST", body: JSON.stringify({ fails }) }),
  (e) => fetch("/result", { method: "POST", body: JSON.stringify({ fails: ["threw: " + (e?.stack ?? e)] }) }),
);
