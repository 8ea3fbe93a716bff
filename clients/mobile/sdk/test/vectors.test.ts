// Runs the shared vectors (testdata/vectors/*.json, generated from the Go
// code in sync/crdt) against the TypeScript clock, merge and checksums.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Clock, ClockSkewError, StampError, compareStamps, formatStamp, isZeroStamp, parseStamp } from "../src/clock.js";
import { wins } from "../src/merge.js";
import { fieldSum, formatSum, scopesHash } from "../src/checksum.js";

// build/test/vectors.test.js → repo root is five levels up from build/test.
const path = fileURLToPath(new URL("../../../../../testdata/vectors/crdt.json", import.meta.url));
const v = JSON.parse(readFileSync(path, "utf8"));

test("vectors: every section has cases", () => {
  for (const k of ["stamps", "bad_stamps", "compare", "clock", "wins", "field_sums", "xor_sums", "format_sums", "scopes_hash"]) {
    assert.ok(Array.isArray(v[k]) && v[k].length > 0, k);
  }
});

test("vectors: valid stamps parse and format back", () => {
  for (const s of v.stamps) {
    const got = parseStamp(s.wire);
    assert.deepEqual(got, { wall: s.wall, counter: s.counter, node: s.node }, s.wire);
    assert.equal(formatStamp({ wall: s.wall, counter: s.counter, node: s.node }), s.wire);
  }
});

test("vectors: invalid stamps are refused", () => {
  for (const s of v.bad_stamps) assert.throws(() => parseStamp(s), StampError, JSON.stringify(s));
});

test("vectors: stamp order", () => {
  for (const c of v.compare) {
    assert.equal(compareStamps(parseStamp(c.a), parseStamp(c.b)), c.want, `${c.a} vs ${c.b}`);
    assert.equal(Math.sign(c.a < c.b ? -1 : c.a > c.b ? 1 : 0), c.want, `wire order ${c.a} vs ${c.b}`);
  }
});

test("vectors: clock send, receive, offset and rebase", () => {
  for (const cv of v.clock) {
    let wall = 0;
    const c = new Clock(cv.node, () => wall);
    cv.steps.forEach((s: any, i: number) => {
      wall = s.wall;
      const where = `${cv.name}: step ${i}`;
      if (s.op === "now") {
        assert.equal(formatStamp(c.now()), s.want, where);
      } else if (s.op === "observe") {
        let err: unknown = null;
        try {
          c.observe(parseStamp(s.stamp), s.max_ahead_ms ?? 0);
        } catch (e) {
          err = e;
        }
        if (err && !(err instanceof ClockSkewError)) throw err;
        assert.equal(err !== null, s.error === true, where);
      } else if (s.op === "set_offset") {
        c.setOffset(s.set_ms ?? 0);
      } else if (s.op === "calibrate") {
        assert.equal(c.calibrate(parseStamp(s.stamp), s.tolerance_ms ?? 0), s.changed === true, where);
      } else if (s.op === "rebase") {
        assert.equal(c.rebase(parseStamp(s.stamp)), s.changed === true, where);
      } else {
        assert.fail(`${where}: unknown op ${s.op}`);
      }
      const last = c.last();
      assert.equal(isZeroStamp(last) ? "" : formatStamp(last), s.last, where);
      assert.equal(c.offset(), s.offset_ms ?? 0, `${where}: offset`);
    });
  }
});

test("vectors: LWW wins", () => {
  for (const w of v.wins) {
    assert.equal(wins({ hlc: w.a_hlc, value: w.a_value }, { hlc: w.b_hlc, value: w.b_value }), w.want, w.name);
  }
});

test("vectors: field sums, scope sums, formatting and the scopes hash", () => {
  for (const f of v.field_sums) assert.equal(formatSum(fieldSum(f.collection, f.id, f.field, f.stamp)), f.sum, JSON.stringify(f));
  for (const x of v.xor_sums) {
    let sum = 0n;
    for (const f of x.fields) sum ^= fieldSum(f.collection, f.id, f.field, f.stamp);
    assert.equal(formatSum(sum), x.sum);
  }
  for (const f of v.format_sums) assert.equal(formatSum(BigInt(f.decimal)), f.want, f.decimal);
  for (const s of v.scopes_hash) assert.equal(scopesHash(s.scopes), s.hash, JSON.stringify(s.scopes));
});
