// IndexedDB implementation of Store, for the browser. One object store
// per table, keyed by string; a commit is one readwrite transaction over
// the tables it touches, so it applies all or nothing.
import { TABLES, type Store, type StoreOp, type Table } from "./store.js";

const VERSION = 1;

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/**
 * openIdbStore opens (creating if needed) the IndexedDB database name.
 * It rejects when IndexedDB is unavailable or blocked.
 */
export async function openIdbStore(name = "samenplan-sync", idb: IDBFactory = indexedDB): Promise<IdbStore> {
  const open = idb.open(name, VERSION);
  open.onupgradeneeded = () => {
    const db = open.result;
    for (const t of TABLES) if (!db.objectStoreNames.contains(t)) db.createObjectStore(t);
  };
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
    open.onblocked = () => reject(new Error(`IndexedDB ${name} is blocked by another tab`));
  });
  return new IdbStore(db);
}

/** IdbStore is a Store in one IndexedDB database. */
export class IdbStore implements Store {
  constructor(private readonly db: IDBDatabase) {}

  async get(table: Table, key: string): Promise<unknown> {
    return req(this.db.transaction(table, "readonly").objectStore(table).get(key));
  }

  async scan(table: Table, prefix = ""): Promise<[string, unknown][]> {
    const os = this.db.transaction(table, "readonly").objectStore(table);
    const range = prefix === "" ? undefined : IDBKeyRange.bound(prefix, prefix + "\uffff");
    const [keys, values] = await Promise.all([req(os.getAllKeys(range)), req(os.getAll(range))]);
    return keys.map((k, i) => [String(k), values[i]] as [string, unknown]);
  }

  commit(ops: StoreOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    const tables = [...new Set(ops.map((o) => o.table))];
    let tx: IDBTransaction;
    try {
      tx = this.db.transaction(tables, "readwrite");
    } catch (e) {
      return Promise.reject(e);
    }
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
    try {
      for (const o of ops) {
        const os = tx.objectStore(o.table);
        if (o.op === "put") os.put(o.value, o.key);
        else if (o.op === "del") os.delete(o.key);
        else os.clear();
      }
    } catch (e) {
      // A value that cannot be cloned throws here, after earlier ops were
      // queued: abort so none of them commits.
      done.catch(() => undefined);
      tx.abort();
      return Promise.reject(e);
    }
    return done;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
