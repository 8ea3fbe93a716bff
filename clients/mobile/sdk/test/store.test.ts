// MemoryStore: the contract IdbStore also meets (see idb.browser.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryStore } from "../src/store.js";

test("MemoryStore: get, prefix scan in key order, atomic commit", async () => {
  const s = new MemoryStore();
  await s.commit([
    { op: "put", table: "fields", key: "b\u0000x", value: { v: 2 } },
    { op: "put", table: "fields", key: "a\u0000y", value: { v: 1 } },
    { op: "put", table: "fields", key: "a\u0000x", value: { v: 0 } },
    { op: "put", table: "meta", key: "k", value: "v" },
  ]);
  assert.equal(await s.get("meta", "k"), "v");
  assert.equal(await s.get("meta", "none"), undefined);
  assert.deepEqual(await s.scan("fields", "a\u0000"), [["a\u0000x", { v: 0 }], ["a\u0000y", { v: 1 }]]);
  await assert.rejects(s.commit([{ op: "del", table: "meta", key: "k" }, { op: "put", table: "fields", key: "c", value: () => 1 }]));
  assert.equal(await s.get("meta", "k"), "v", "a failed commit changes nothing");
  const got = (await s.get("fields", "a\u0000x")) as { v: number };
  got.v = 99;
  assert.deepEqual(await s.get("fields", "a\u0000x"), { v: 0 }, "values are copies");
  await s.commit([{ op: "clear", table: "fields" }, { op: "del", table: "meta", key: "k" }]);
  assert.equal(s.size("fields") + s.size("meta"), 0);
});
