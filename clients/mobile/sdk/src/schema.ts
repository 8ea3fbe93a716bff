// Field checks of the schema (GET /v1/schema), the same rules as
// sync/schema.Field.Check, so a coach hears about a bad value at once,
// offline, and not after a push. The server checks everything again.
import type { JsonValue } from "./index.js";

/** SchemaField is one field as GET /v1/schema describes it. */
export interface SchemaField {
  name: string;
  type: string;
  max_len?: number;
  min?: number;
  max?: number;
  values?: string[];
  ref?: string;
  required?: boolean;
  immutable?: boolean;
  server_only?: boolean;
}

/** SchemaCollection is one collection as GET /v1/schema describes it. */
export interface SchemaCollection {
  name: string;
  scope: string;
  parent?: string;
  server_created?: boolean;
  fields: SchemaField[];
}

/** Schema is the body of GET /v1/schema. */
export interface Schema {
  version: number;
  collections: SchemaCollection[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/;
const utf8 = new TextEncoder();

/** isValidId reports whether id is a lowercase UUID, as row ids must be. */
export function isValidId(id: string): boolean {
  return UUID.test(id);
}

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const days = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return d <= days[m - 1];
}

/**
 * checkValue returns why value does not fit field, or null when it does:
 * the type, the range of numbers, the length of strings (in UTF-8 bytes)
 * and lists, enum values, UUIDs, dates and single-line strings.
 */
export function checkValue(f: SchemaField, value: JsonValue): string | null {
  if (value === null) return f.required ? `${f.name}: is required and cannot be null` : null;
  const bad = (want: string) => `${f.name}: want ${want}`;
  switch (f.type) {
    case "bool":
      return typeof value === "boolean" ? null : bad("true or false");
    case "int":
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) return bad("a number");
      if (f.type === "int" && !Number.isInteger(value)) return bad("a whole number");
      if ((f.min !== undefined && value < f.min) || (f.max !== undefined && value > f.max)) {
        return `${f.name}: ${value} is out of range ${f.min ?? "∞"}..${f.max ?? "∞"}`;
      }
      return null;
    case "list":
    case "uuid_list":
      if (!Array.isArray(value) || !value.every((x) => typeof x === "string")) return bad("a list of strings");
      if (f.max_len && value.length > f.max_len) return `${f.name}: at most ${f.max_len} items`;
      for (const it of value as string[]) {
        if (f.type === "uuid_list" && !UUID.test(it)) return bad("a list of lowercase UUIDs");
        if (utf8.encode(it).length > 200) return `${f.name}: an item is over 200 bytes or not UTF-8`;
      }
      return null;
  }
  if (typeof value !== "string") return bad("a string");
  const n = utf8.encode(value).length;
  if (f.max_len && n > f.max_len) return `${f.name}: ${n} bytes is over the limit of ${f.max_len}`;
  switch (f.type) {
    case "date": {
      const m = DATE.exec(value);
      return m && validDate(+m[1], +m[2], +m[3]) ? null : `${f.name}: want a date YYYY-MM-DD`;
    }
    case "datetime": {
      const m = DATETIME.exec(value);
      const ok = m && validDate(+m[1], +m[2], +m[3]) && +m[4] < 24 && +m[5] < 60 && +m[6] < 60 &&
        (m[8] === "Z" || (+m[9] < 24 && +m[10] < 60));
      return ok ? null : `${f.name}: want an RFC 3339 time`;
    }
    case "enum":
      return (f.values ?? []).includes(value) ? null : `${f.name}: ${JSON.stringify(value)} is not one of ${(f.values ?? []).join(", ")}`;
    case "ref":
    case "uuid":
      return UUID.test(value) ? null : `${f.name}: want a lowercase UUID`;
    case "string":
      return /[\r\n]/.test(value) ? `${f.name}: must be a single line` : null;
  }
  return null;
}
