/**
 * Samenplan sync SDK: the coach's offline replica of the case file, in
 * TypeScript, speaking docs/protocol.md like the Go reference client
 * (sync/client). No framework and no runtime dependencies.
 *
 * ```ts
 * import { openReplica, openIdbStore } from "@samenplan/sync-sdk";
 * const replica = await openReplica({ baseUrl: "", store: await openIdbStore() });
 * if (!replica.user()) await replica.login("coach1.kempen.demo", password, "Telefoon An");
 * replica.onStatus((s) => render(s));
 * await replica.sync();                              // push the outbox, then pull
 * const families = await replica.query("families");  // offline, from the local store
 * const id = replica.newId();
 * await replica.writeRow("contacts", id, { trajectory_id: tid, mode: "home_visit", note: "…" });
 * replica.startAutoSync(30_000);                     // retries with backoff while offline
 * ```
 *
 * Every write lands locally at once (it works offline) and waits in the
 * outbox until a push is acknowledged. Nothing in this API throws for a
 * network failure except push, pull and sync, which reject with a
 * SyncError of code "offline".
 */

export { openReplica, SKEW_TOLERANCE_MS } from "./sync.js";
export { SyncError, type ErrorCode } from "./errors.js";
export { MemoryStore, type Store, type StoreOp, type Table } from "./store.js";
export { openIdbStore, IdbStore } from "./idb.js";
export {
  Clock, ClockSkewError, StampError, ZERO_STAMP, compareStamps, formatStamp, isZeroStamp, parseStamp,
  type Stamp,
} from "./clock.js";
export { wins, type Write } from "./merge.js";
export { fieldSum, formatSum, scopeSum, scopesHash } from "./checksum.js";

/** JsonValue is a field value: what JSON.parse returns. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** Collection names the collections of the case file (GET /v1/schema). */
export type Collection =
  | "families" | "persons" | "referrals" | "consults" | "trajectories"
  | "plan_goals" | "network_members" | "contacts";

/** COLLECTIONS lists every Collection, in schema order (checked against GET /v1/schema in the real-server test). */
export const COLLECTIONS: readonly Collection[] = [
  "families", "persons", "referrals", "consults", "trajectories", "plan_goals", "network_members", "contacts",
];

/** DELETED is the LWW field that marks a row deleted. */
export const DELETED = "_deleted";
/** SCHEMA_VERSION is the schema version this SDK speaks. */
export const SCHEMA_VERSION = 1;

/** ReplicaOptions configure openReplica. */
export interface ReplicaOptions {
  /** baseUrl is the server's address ("" = same origin; in node an absolute URL is needed). */
  baseUrl: string;
  /** store holds the replica: openIdbStore() in a browser, new MemoryStore() in tests. */
  store: Store;
  /** fetch sends requests; globalThis.fetch when omitted. Tests pass a fake. */
  fetch?: typeof fetch;
  /** now is the wall clock in unix ms (Date.now when omitted). */
  now?: () => number;
  /** batchSize is the most changes in one push (default 1000, at most 5000). */
  batchSize?: number;
  /** maxBatchBytes bounds the value bytes of one push (default 2 MiB; a batch holds at least one change). */
  maxBatchBytes?: number;
  /** pageSize is the limit asked for in each pull (default 1000, at most 5000). */
  pageSize?: number;
  /** retry tunes the backoff of sync({retry: true}) and of auto-sync after network errors. */
  retry?: RetryOptions;
}

/** RetryOptions: delays grow from baseMs, doubling with jitter, up to maxMs; attempts bounds sync({retry: true}). */
export interface RetryOptions {
  baseMs?: number; // default 1000
  maxMs?: number; // default 60000
  attempts?: number; // default 5
}

/** User is the account the replica is logged in as, as the server reported it. */
export interface User {
  id: string;
  username: string;
  display_name?: string;
  role: string; // coach, coordinator, reviewer, admin
  regions: string[];
}

/** Row is one row of a collection that is not deleted: its id and current field values. */
export interface Row {
  id: string;
  fields: Record<string, JsonValue>;
}

/** Change is one field write as on the wire (value parsed). */
export interface Change {
  collection: string;
  id: string;
  field: string;
  value: JsonValue;
  hlc: string;
  base?: string;
  scope?: string;
}

/** Problem is a write the server did not take, kept with its value until dismissed. */
export interface Problem {
  id: number;
  kind: "rejected" | "quarantined";
  batchId: string;
  change: Change;
  /**
   * code is the server's: invalid, forbidden, out_of_scope (rejected) or
   * quarantined. A write refused with clock_skew is no problem: it is
   * stamped anew and sent again (PushResult.restamped).
   */
  code: string;
  message: string;
  /** at is when the answer came, unix ms. */
  at: number;
}

/** Signal is a fired signal about one of the coach's families (read-only, from the server). */
export interface Signal {
  id: string;
  label: string;
  label_en?: string;
  severity: "info" | "warning" | "critical" | string;
  about: "trajectory" | "referral" | string;
  subject_id: string;
  family_id: string;
  version: string;
}

/** SyncState is what the replica is doing. */
export type SyncState = "signed_out" | "idle" | "syncing" | "offline" | "error";

/** SyncStatus is what a sync indicator shows; it is emitted on every change of any part. */
export interface SyncStatus {
  state: SyncState;
  deviceId: string;
  user: User | null;
  /** pending is the number of writes not yet acknowledged (in the outbox). */
  pending: number;
  /** pendingBatches are batches sent whose answer was not yet received. */
  pendingBatches: number;
  /** lastSync is when the last complete sync (push and pull) ended, unix ms; 0 for never. */
  lastSync: number;
  /** lastError is the message of the last failed push or pull, "" after a success. */
  lastError: string;
  /** lastErrorCode is its code (offline, unauthorized, device_revoked, …), "" after a success. */
  lastErrorCode: string;
  /**
   * clockOffsetMs is how far the device's wall clock runs ahead of the
   * server's, as learned from server_hlc (when more than a minute apart);
   * stamps take the wall clock less this. 0 for a true clock.
   */
  clockOffsetMs: number;
  /**
   * reoffered is how many of the device's own writes were queued again the
   * last time the server refused its cursor (a server restored from a
   * backup) or a scope still differed after a refetch, and reofferedAt
   * when (unix ms); 0 for never.
   */
  reoffered: number;
  reofferedAt: number;
  rejected: Problem[];
  quarantined: Problem[];
}

/** PushResult sums up one push. */
export interface PushResult {
  batches: number;
  applied: number;
  ignored: number;
  rejected: Problem[];
  quarantined: Problem[];
  /**
   * restamped are the writes stamped anew after the server refused writes
   * with clock_skew (those refused and every later pending write), queued
   * again under their new stamps.
   */
  restamped: Restamp[];
}

/**
 * Restamp is a pending write that got a new stamp. batchId is the batch
 * whose answer refused writes with clock_skew; the restamps of one answer
 * hold together (a new stamp may equal the old stamp of another of them).
 */
export interface Restamp {
  collection: string;
  id: string;
  field: string;
  old: string;
  new: string;
  batchId: string;
}

/** PullResult sums up one pull. */
export interface PullResult {
  pages: number;
  changes: number; // changes received
  applied: number; // became the local value
  evicted: string[]; // scopes evicted
  refetched: string[]; // scopes refetched after a checksum mismatch
  mismatched: string[]; // scopes still differing after the refetch
  /**
   * reoffered is how many of the device's own writes were queued again,
   * with the same stamp and value, to be pushed by the next push (sync()
   * does it at once): every field whose local value this device wrote, when
   * the server refused the cursor as invalid (restored from a backup), and
   * those of the scopes in mismatched, the first time they still differ
   * after a refetch.
   */
  reoffered: number;
}

/** SyncResult is the outcome of sync(). */
export interface SyncResult {
  push: PushResult;
  pull: PullResult;
}

/**
 * Replica is one device's copy of the case file. Its methods run one at a
 * time, in call order.
 */
export interface Replica {
  /** deviceId is the device id the server gave at login, "" when signed out. */
  deviceId(): string;
  /** user is the account logged in, null when signed out. */
  user(): User | null;
  /**
   * login signs in, registering this replica as device deviceName. Logging
   * in again as the same user keeps the local data; as another user while
   * data is held rejects with code forbidden (wipe first).
   */
  login(username: string, password: string, deviceName: string): Promise<User>;
  /** wipe deletes all case data and credentials (a revoked device does it itself); the clock is kept. */
  wipe(): Promise<void>;
  /** newId returns a new row id (a lowercase UUIDv7). */
  newId(): string;
  /** query returns the rows of a collection that are not deleted, by id. */
  query(collection: Collection | string): Promise<Row[]>;
  /** get returns a row's current fields, null when unknown or deleted. */
  get(collection: Collection | string, id: string): Promise<Record<string, JsonValue> | null>;
  /**
   * write sets one field of one row, at once and offline, and queues it for
   * push. Rejects with SyncError invalid (unknown collection or field as
   * far as the cached schema tells, bad id, a fixed field changed) or
   * signed_out before login.
   */
  write(collection: Collection | string, id: string, field: string, value: JsonValue): Promise<void>;
  /** writeRow writes several fields of one row in one local transaction, in the given order (parent links first). */
  writeRow(collection: Collection | string, id: string, fields: Record<string, JsonValue>): Promise<void>;
  /** delete marks a row deleted (_deleted = true). */
  delete(collection: Collection | string, id: string): Promise<void>;
  /** push sends the outbox batch by batch; a lost answer re-sends the same batch id. */
  push(): Promise<PushResult>;
  /** pull fetches every page since the cursor, evicts, compares checksums and refetches on mismatch. */
  pull(): Promise<PullResult>;
  /** sync pushes then pulls; with retry it retries network errors with backoff (RetryOptions). */
  sync(opts?: { retry?: boolean }): Promise<SyncResult>;
  /** startAutoSync syncs now and every intervalMs (and when the browser comes online); returns stop. */
  startAutoSync(intervalMs?: number): () => void;
  /** status returns the current sync status. */
  status(): Promise<SyncStatus>;
  /** onStatus calls fn with every new status; returns the unsubscribe function. */
  onStatus(fn: (s: SyncStatus) => void): () => void;
  /** onChange calls fn with the collections whose local data changed (write, pull, evict, wipe); returns unsubscribe. */
  onChange(fn: (collections: string[]) => void): () => void;
  /** signals returns the fired signals of the last complete pull. */
  signals(): Promise<Signal[]>;
  /** dismiss forgets a problem shown in the status. */
  dismiss(problemId: number): Promise<void>;
  /** pending returns the writes not yet acknowledged, oldest first. */
  pending(): Promise<Change[]>;
  /** scopes returns, sorted, the scopes the replica holds. */
  scopes(): Promise<string[]>;
  /** checksums returns the checksum of every scope held (pending writes count). */
  checksums(): Promise<Record<string, string>>;
  /** close stops auto-sync and closes the store; the data stays. */
  close(): Promise<void>;
}

import type { Store } from "./store.js";
