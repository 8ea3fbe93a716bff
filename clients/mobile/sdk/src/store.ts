// The local store behind a replica: a few tables of string keys and
// structured-clonable values, read one by one or by key prefix, written in
// atomic batches. MemoryStore is for tests; IdbStore (idb.ts) is the
// browser's, in IndexedDB.

/** TABLES are the tables a replica uses; a Store must hold them all. */
export const TABLES = ["meta", "fields", "row_scopes", "held_scopes", "outbox", "batches", "problems"] as const;
/** Table names one table of the store. */
export type Table = (typeof TABLES)[number];

/** StoreOp is one write of an atomic commit. */
export type StoreOp =
  | { op: "put"; table: Table; key: string; value: unknown }
  | { op: "del"; table: Table; key: string }
  | { op: "clear"; table: Table };

/**
 * Store is a replica's local storage. Values must be structured-clonable
 * (plain objects, strings, numbers). Keys sort as JavaScript strings.
 */
export interface Store {
  /** get returns the value under key, undefined when there is none. */
  get(table: Table, key: string): Promise<unknown>;
  /** scan returns the [key, value] pairs whose key starts with prefix ("" for all), in key order. */
  scan(table: Table, prefix?: string): Promise<[string, unknown][]>;
  /** commit applies ops all or none, in order. */
  commit(ops: StoreOp[]): Promise<void>;
  /** close releases the store; the data stays. */
  close(): Promise<void>;
}

/** MemoryStore keeps the tables in maps; its data lives as long as the object. */
export class MemoryStore implements Store {
  private tables = new Map<Table, Map<string, unknown>>(TABLES.map((t) => [t, new Map()]));

  async get(table: Table, key: string): Promise<unknown> {
    return structuredClone(this.table(table).get(key));
  }

  async scan(table: Table, prefix = ""): Promise<[string, unknown][]> {
    const out: [string, unknown][] = [];
    for (const [k, v] of this.table(table)) if (k.startsWith(prefix)) out.push([k, structuredClone(v)]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  async commit(ops: StoreOp[]): Promise<void> {
    // Check the tables and clone every value before anything changes, so a
    // bad op fails the commit as a whole.
    const values = ops.map((o) => (this.table(o.table), o.op === "put" ? structuredClone(o.value) : undefined));
    for (const [i, o] of ops.entries()) {
      const t = this.table(o.table);
      if (o.op === "put") t.set(o.key, values[i]);
      else if (o.op === "del") t.delete(o.key);
      else t.clear();
    }
  }

  async close(): Promise<void> {}

  /** size returns the number of entries of a table (for tests). */
  size(table: Table): number {
    return this.table(table).size;
  }

  private table(t: Table): Map<string, unknown> {
    const m = this.tables.get(t);
    if (!m) throw new Error(`store: unknown table ${t}`);
    return m;
  }
}
