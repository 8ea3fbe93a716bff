// checkValue: the rules of sync/schema.Field.Check.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkValue, type SchemaField } from "../src/schema.js";

test("checkValue accepts what fits and says why what does not", () => {
  const cases: [SchemaField, unknown, boolean][] = [
    [{ name: "scale", type: "int", min: 0, max: 10 }, 6, true],
    [{ name: "scale", type: "int", min: 0, max: 10 }, 12, false],
    [{ name: "scale", type: "int", min: 0, max: 10 }, 2.5, false],
    [{ name: "scale", type: "int", min: 0, max: 10 }, "6", false],
    [{ name: "x", type: "number" }, 2.5, true],
    [{ name: "b", type: "bool" }, false, true],
    [{ name: "b", type: "bool" }, 0, false],
    [{ name: "d", type: "date" }, "2026-02-28", true],
    [{ name: "d", type: "date" }, "2026-02-30", false],
    [{ name: "d", type: "date" }, "2024-02-29", true],
    [{ name: "t", type: "datetime" }, "2026-11-23T10:00:00Z", true],
    [{ name: "t", type: "datetime" }, "2026-11-23T10:00:00.123+01:00", true],
    [{ name: "t", type: "datetime" }, "2026-11-23 10:00", false],
    [{ name: "m", type: "enum", values: ["phone", "home_visit"] }, "phone", true],
    [{ name: "m", type: "enum", values: ["phone", "home_visit"] }, "bike", false],
    [{ name: "r", type: "ref", ref: "trajectories" }, "0195b7a0-2222-7a4e-9b1f-2a1d4c0e9f11", true],
    [{ name: "r", type: "ref", ref: "trajectories" }, "0195B7A0-2222-7A4E-9B1F-2A1D4C0E9F11", false],
    [{ name: "r", type: "ref", required: true }, null, false],
    [{ name: "o", type: "string" }, null, true],
    [{ name: "s", type: "string", max_len: 4 }, "abcd", true],
    [{ name: "s", type: "string", max_len: 4 }, "abcé", false], // 5 bytes
    [{ name: "s", type: "string" }, "twee\nregels", false],
    [{ name: "n", type: "text" }, "twee\nregels", true],
    [{ name: "l", type: "list", max_len: 2 }, ["a", "b"], true],
    [{ name: "l", type: "list", max_len: 2 }, ["a", "b", "c"], false],
    [{ name: "l", type: "list" }, ["a", 1], false],
    [{ name: "u", type: "uuid_list" }, ["0195b7a0-2222-7a4e-9b1f-2a1d4c0e9f11"], true],
    [{ name: "u", type: "uuid_list" }, ["nope"], false],
  ];
  for (const [f, v, ok] of cases) {
    const got = checkValue(f, v as never);
    assert.equal(got === null, ok, `${f.type} ${JSON.stringify(v)}: ${got}`);
    if (!ok) assert.ok(got!.startsWith(f.name + ":"), got!);
  }
});
