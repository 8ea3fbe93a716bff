// The replica: a device's copy of the case file in a Store, its outbox, and
// push and pull as in docs/protocol.md. It mirrors the Go reference client
// (sync/client): the same batches, cursor handling, evictions and proofs,
// checksum comparison with refetch, problems, token refresh and wipe.
import { Clock, compareStamps, formatStamp, isZeroStamp, parseStamp, ZERO_STAMP, type Stamp } from "./clock.js";
import { wins } from "./merge.js";
import { fieldSum, formatSum, scopesHash } from "./checksum.js";
import { SyncError } from "./errors.js";
import { checkValue, isValidId, type Schema } from "./schema.js";
import type { Store, StoreOp } from "./store.js";
import type {
  Change, JsonValue, Problem, PullResult, PushResult, Replica, ReplicaOptions, Restamp, Row, Signal, SyncResult,
  SyncState, SyncStatus, User,
} from "./index.js";

const SCHEMA_VERSION = 1;
const DELETED = "_deleted";
const REFRESH_MARGIN_MS = 30_000;
const MAX_PAGES = 1_000_000;
/**
 * SKEW_TOLERANCE_MS is how far the device's clock may be from server_hlc
 * before the replica corrects its clock's offset (Clock.calibrate); well
 * under the server's 5-minute limit on stamps ahead of its clock.
 */
export const SKEW_TOLERANCE_MS = 60_000;
/** RESTAMP_TOLERANCE_MS is the tolerance of the calibration after a clock_skew refusal: the answer's time on the wire. */
export const RESTAMP_TOLERANCE_MS = 500;


// Built-in scope rules (docs/protocol.md "Scopes"), used when no schema was fetched yet.
export const BUILTIN: Record<string, { scope: string; parent?: string; parentRef?: string }> = {
  families: { scope: "family_self" },
  persons: { scope: "via_family", parent: "family_id" },
  network_members: { scope: "via_family", parent: "family_id" },
  trajectories: { scope: "via_family", parent: "family_id" },
  referrals: { scope: "intake", parent: "family_id" },
  consults: { scope: "intake" },
  plan_goals: { scope: "via_parent", parent: "trajectory_id", parentRef: "trajectories" },
  contacts: { scope: "via_parent", parent: "trajectory_id", parentRef: "trajectories" },
};

interface FieldRec { c: string; id: string; f: string; v: string; h: string }
interface RowScopeRec { c: string; id: string; s: string }
interface OutboxRec { seq: number; c: string; id: string; f: string; v: string; h: string; base: string; batch: string | null }
interface BatchRec { id: string; seq: number; created: number; attempts: number }
interface ProblemRec { id: number; kind: "rejected" | "quarantined"; batchId: string; c: string; rid: string; f: string; v: string; h: string; code: string; message: string; at: number }
interface Session { access_token: string; refresh_token: string; expires_in?: number; device_id: string; user: User }

const fkey = (c: string, id: string, f: string) => `${c}\u0000${id}\u0000${f}`;
const rowPrefix = (c: string, id: string) => `${c}\u0000${id}\u0000`;
const seqKey = (n: number) => String(n).padStart(15, "0");

/** newId returns a lowercase UUIDv7. */
export function newId(now: number = Date.now()): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  let ms = Math.floor(now);
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A one-at-a-time lock: run(fn) waits for every earlier fn of this replica
 * and, where the Web Locks API exists (browsers), holds the named lock
 * across tabs too, so two tabs on one IndexedDB never push the same batch,
 * spend the same refresh token (a reuse revokes the device) or interleave
 * a read and a commit.
 */
class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  constructor(private readonly name: string) {}
  run<T>(fn: () => Promise<T>): Promise<T> {
    const locks = (globalThis as { navigator?: { locks?: { request(n: string, f: () => Promise<T>): Promise<T> } } }).navigator?.locks;
    const held = locks ? () => locks.request(this.name, fn) : fn;
    const p = this.tail.then(held, held);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

/** openReplica opens the replica kept in opts.store, restoring an earlier session's device, tokens and clock. */
export async function openReplica(opts: ReplicaOptions): Promise<Replica> {
  const r = new ReplicaImpl(opts);
  await r.load();
  return r;
}

class ReplicaImpl implements Replica {
  private readonly store: Store;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private readonly batchSize: number;
  private readonly maxBatchBytes: number;
  private readonly pageSize: number;
  private readonly retry: { baseMs: number; maxMs: number; attempts: number };

  private readonly syncLock = new Lock("samenplan-sdk:sync"); // one push, pull, login or wipe at a time
  private readonly dataLock = new Lock("samenplan-sdk:data"); // one read-decide-commit of local data at a time

  private clock: Clock | null = null;
  private device = "";
  private access = "";
  private refresh = "";
  private expires = 0;
  private account: User | null = null;
  private schema: Schema | null = null;
  private syncing = 0;
  private closed = false;
  private stopAuto: (() => void) | null = null;
  private statusFns = new Set<(s: SyncStatus) => void>();
  private changeFns = new Set<(c: string[]) => void>();

  constructor(private readonly opts: ReplicaOptions) {
    this.store = opts.store;
    const f = opts.fetch ?? globalThis.fetch;
    this.fetchFn = (input, init) => f(input, init);
    this.now = opts.now ?? Date.now;
    this.batchSize = Math.min(Math.max(opts.batchSize ?? 1000, 1), 5000);
    this.maxBatchBytes = opts.maxBatchBytes ?? 2 << 20;
    this.pageSize = Math.min(Math.max(opts.pageSize ?? 1000, 1), 5000);
    this.retry = { baseMs: opts.retry?.baseMs ?? 1000, maxMs: opts.retry?.maxMs ?? 60_000, attempts: opts.retry?.attempts ?? 5 };
  }

  // ---- meta ----

  private async meta<T>(key: string, dflt: T): Promise<T> {
    const v = await this.store.get("meta", key);
    return v === undefined ? dflt : (v as T);
  }
  private static put(key: string, value: unknown): StoreOp {
    return { op: "put", table: "meta", key, value };
  }

  async load(): Promise<void> {
    this.device = await this.meta("device_id", "");
    this.access = await this.meta("access_token", "");
    this.refresh = await this.meta("refresh_token", "");
    this.expires = await this.meta("access_expires", 0);
    this.account = await this.meta<User | null>("user", null);
    this.schema = await this.meta<Schema | null>("schema", null);
    this.clock = this.device ? this.newClock(this.device, await this.meta("clock", ""), await this.meta("clock_offset", 0)) : null;
  }

  /**
   * reload picks up what another tab on the same store changed: the session
   * (tokens rotate, a wipe signs out) and a clock that went further.
   */
  private async reload(): Promise<void> {
    const mine = this.clock?.last();
    await this.load();
    if (this.clock && mine && !isZeroStamp(mine)) this.clock.observe(mine, 0);
  }

  private newClock(node: string, last: string, offsetMs: number): Clock {
    let s: Stamp = ZERO_STAMP;
    if (last) {
      try {
        s = parseStamp(last);
      } catch {
        s = ZERO_STAMP;
      }
    }
    const c = new Clock(node, this.now);
    c.setOffset(typeof offsetMs === "number" ? offsetMs : 0);
    if (!isZeroStamp(s)) c.observe(s, 0); // resumes past the last reading, under the new node
    return c;
  }

  /** clockOps persists the clock's last reading and its offset. */
  private static clockOps(clock: Clock | null): StoreOp[] {
    if (!clock) return [];
    const l = clock.last();
    const ops = [ReplicaImpl.put("clock_offset", clock.offset())];
    if (!isZeroStamp(l)) ops.push(ReplicaImpl.put("clock", formatStamp(l)));
    return ops;
  }

  private clockOp(): StoreOp[] {
    return ReplicaImpl.clockOps(this.clock);
  }

  deviceId(): string {
    return this.device;
  }
  user(): User | null {
    return this.account;
  }
  newId(): string {
    return newId(this.now());
  }

  // ---- events ----

  onStatus(fn: (s: SyncStatus) => void): () => void {
    this.statusFns.add(fn);
    return () => this.statusFns.delete(fn);
  }
  onChange(fn: (collections: string[]) => void): () => void {
    this.changeFns.add(fn);
    return () => this.changeFns.delete(fn);
  }
  private changed(collections: Iterable<string>): void {
    const list = [...new Set(collections)].sort();
    if (list.length === 0) return;
    for (const fn of this.changeFns) {
      try {
        fn(list);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }
  private emit(): void {
    if (this.statusFns.size === 0) return;
    this.status().then(
      (s) => {
        for (const fn of this.statusFns) {
          try {
            fn(s);
          } catch {
            /* a listener's failure is its own */
          }
        }
      },
      () => undefined,
    );
  }

  async status(): Promise<SyncStatus> {
    const outbox = await this.store.scan("outbox");
    const batches = await this.store.scan("batches");
    const probs = (await this.store.scan("problems")).map(([, v]) => toProblem(v as ProblemRec));
    const lastErrorCode = await this.meta("last_error_code", "");
    let state: SyncState;
    if (!this.device) state = "signed_out";
    else if (this.syncing > 0) state = "syncing";
    else if (lastErrorCode === "offline") state = "offline";
    else if (lastErrorCode) state = "error";
    else state = "idle";
    return {
      state,
      deviceId: this.device,
      user: this.account,
      pending: outbox.length,
      pendingBatches: batches.length,
      lastSync: await this.meta("last_sync", 0),
      lastError: await this.meta("last_error", ""),
      lastErrorCode,
      clockOffsetMs: this.clock?.offset() ?? 0,
      reoffered: await this.meta("reoffered", 0),
      reofferedAt: await this.meta("reoffered_at", 0),
      rejected: probs.filter((p) => p.kind === "rejected"),
      quarantined: probs.filter((p) => p.kind === "quarantined"),
    };
  }

  // ---- HTTP ----

  private url(path: string): string {
    return this.opts.baseUrl.replace(/\/+$/, "") + path;
  }

  /** post sends one JSON request; failures become SyncError (code offline when nothing usable came back). */
  private async post<T>(path: string, bearer: string, body: unknown, method = "POST"): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (method === "POST") headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = "Bearer " + bearer;
    let resp: Response;
    let text: string;
    try {
      resp = await this.fetchFn(this.url(path), { method, headers, body: method === "POST" ? JSON.stringify(body) : undefined });
      text = await resp.text();
    } catch (e) {
      throw new SyncError("offline", `${method} ${path}: ${(e as Error)?.message ?? e}`);
    }
    if (resp.status < 200 || resp.status > 299) {
      let code = "";
      let message = "";
      try {
        const e = JSON.parse(text);
        code = typeof e?.code === "string" ? e.code : "";
        message = typeof e?.message === "string" ? e.message : "";
      } catch {
        /* not an error body */
      }
      // Without a code the answer is not the server's (a proxy, a captive portal): retry later.
      if (!code) throw new SyncError("offline", `${method} ${path}: HTTP ${resp.status}`, resp.status);
      throw new SyncError(code, `${method} ${path}: ${message || code}`, resp.status);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new SyncError("offline", `${method} ${path}: the answer is not JSON`, resp.status);
    }
  }

  /** call sends an authenticated request: refreshes an expiring or expired token once, wipes on device_revoked. */
  private async call<T>(path: string, body: unknown): Promise<T> {
    if (!this.access && !this.refresh) throw new SyncError("signed_out", "not logged in");
    let refreshed = false;
    if (this.refresh && this.expires && this.now() >= this.expires - REFRESH_MARGIN_MS) {
      try {
        await this.refreshTokens();
        refreshed = true;
      } catch (e) {
        if (!this.device) throw e; // revoked and wiped
      }
    }
    try {
      return await this.post<T>(path, this.access, body);
    } catch (e) {
      if (!(e instanceof SyncError)) throw e;
      if (e.code === "unauthorized" && this.refresh && !refreshed) {
        await this.refreshTokens();
        try {
          return await this.post<T>(path, this.access, body);
        } catch (e2) {
          if (e2 instanceof SyncError && e2.code === "device_revoked") await this.wipeLocal();
          throw e2;
        }
      }
      if (e.code === "device_revoked") await this.wipeLocal();
      throw e;
    }
  }

  private async refreshTokens(): Promise<void> {
    let s: Session;
    try {
      s = await this.post<Session>("/v1/auth/refresh", "", { refresh_token: this.refresh });
    } catch (e) {
      if (e instanceof SyncError && e.code === "device_revoked") await this.wipeLocal();
      throw e;
    }
    if (!s.access_token || !s.refresh_token) throw new SyncError("internal", "refresh tokens: answer without tokens");
    this.access = s.access_token;
    this.refresh = s.refresh_token;
    this.expires = s.expires_in && s.expires_in > 0 ? this.now() + s.expires_in * 1000 : 0;
    await this.store.commit([
      ReplicaImpl.put("access_token", this.access),
      ReplicaImpl.put("refresh_token", this.refresh),
      ReplicaImpl.put("access_expires", this.expires),
    ]);
  }

  // ---- login, wipe ----

  login(username: string, password: string, deviceName: string): Promise<User> {
    return this.syncLock.run(async () => {
      await this.reload();
      const prev = this.account;
      if (prev && prev.username !== username) {
        const n = (await this.store.scan("fields")).length + (await this.store.scan("outbox")).length;
        if (n > 0) {
          throw new SyncError("forbidden", "Dit toestel bevat gegevens van een andere gebruiker / this replica holds another user's data: wipe it first");
        }
      }
      const s = await this.post<Session>("/v1/auth/login", "", { username, password, device_name: deviceName });
      if (!s.access_token || !s.device_id) throw new SyncError("internal", "login: answer without token or device id");
      let schema = this.schema;
      try {
        schema = await this.post<Schema>("/v1/schema", "", undefined, "GET");
      } catch {
        /* keep the cached one; the server checks every write anyway */
      }
      await this.dataLock.run(async () => {
        const clock = this.newClock(s.device_id, await this.meta("clock", this.clock ? formatStamp(this.clock.last()) : ""),
          await this.meta("clock_offset", this.clock?.offset() ?? 0));
        const old = this.device;
        const ops: StoreOp[] = [];
        if (old && old !== s.device_id) {
          const outbox = (await this.store.scan("outbox")).map(([, v]) => v as OutboxRec);
          ops.push(...(await this.restamp(outbox, clock, "")).ops, { op: "clear", table: "batches" }, ReplicaImpl.put("cursor", ""));
        }
        const expires = s.expires_in && s.expires_in > 0 ? this.now() + s.expires_in * 1000 : 0;
        ops.push(
          ReplicaImpl.put("device_id", s.device_id), ReplicaImpl.put("access_token", s.access_token),
          ReplicaImpl.put("refresh_token", s.refresh_token ?? ""), ReplicaImpl.put("access_expires", expires),
          ReplicaImpl.put("user", s.user),
        );
        ops.push(...ReplicaImpl.clockOps(clock));
        if (schema) ops.push(ReplicaImpl.put("schema", schema));
        await this.store.commit(ops);
        this.device = s.device_id;
        this.access = s.access_token;
        this.refresh = s.refresh_token ?? "";
        this.expires = expires;
        this.account = s.user;
        this.clock = clock;
        this.schema = schema;
      });
      this.emit();
      return s.user;
    });
  }

  /**
   * restamp gives each of entries (outbox writes, in write order) a new
   * stamp of clock, keeping the local values and the base links between
   * them: a local value that was one of the writes stays the local value
   * under its new stamp, and a later write whose base was an old stamp names
   * the new one. The writes leave their batches. Used after a login as a new
   * device and after clock_skew refusals (batchId names that answer's batch).
   */
  private async restamp(entries: OutboxRec[], clock: Clock, batchId: string): Promise<{ ops: StoreOp[]; restamped: Restamp[] }> {
    // Old to new in memory first: after a rebase a new stamp may equal the
    // old stamp of a later write, so the updates must not chain.
    const next = new Map<string, string>();
    const vkey = (o: { c: string; id: string; f: string }, h: string) => fkey(o.c, o.id, o.f) + "\u0000" + h;
    for (const o of entries) next.set(vkey(o, o.h), formatStamp(clock.now()));
    const ops: StoreOp[] = [];
    const restamped: Restamp[] = [];
    const keys = new Set<string>();
    for (const o of entries) {
      const nh = next.get(vkey(o, o.h))!;
      const base = o.base ? next.get(vkey(o, o.base)) ?? o.base : o.base;
      ops.push({ op: "put", table: "outbox", key: seqKey(o.seq), value: { ...o, h: nh, base, batch: null } satisfies OutboxRec });
      restamped.push({ collection: o.c, id: o.id, field: o.f, old: o.h, new: nh, batchId });
      keys.add(fkey(o.c, o.id, o.f));
    }
    for (const k of keys) {
      const f = (await this.store.get("fields", k)) as FieldRec | undefined;
      const nh = f && next.get(vkey(f, f.h));
      if (f && nh) ops.push({ op: "put", table: "fields", key: k, value: { ...f, h: nh } });
    }
    return { ops, restamped };
  }

  wipe(): Promise<void> {
    return this.syncLock.run(() => this.wipeLocal());
  }

  /** wipeLocal deletes every piece of case data and every credential; only the clock's last reading and offset stay. */
  private async wipeLocal(): Promise<void> {
    await this.dataLock.run(async () => {
      const clock = await this.meta("clock", "");
      const offset = await this.meta("clock_offset", 0);
      const collections = new Set((await this.store.scan("fields")).map(([, v]) => (v as FieldRec).c));
      const ops: StoreOp[] = (["meta", "fields", "row_scopes", "held_scopes", "outbox", "batches", "problems"] as const).map(
        (table) => ({ op: "clear", table }) as StoreOp,
      );
      if (clock) ops.push(ReplicaImpl.put("clock", clock));
      if (offset) ops.push(ReplicaImpl.put("clock_offset", offset));
      await this.store.commit(ops);
      this.device = this.access = this.refresh = "";
      this.expires = 0;
      this.account = null;
      this.clock = null;
      this.schema = null;
      this.changed(collections);
    });
    this.emit();
  }

  // ---- local reads and writes ----

  async query(collection: string): Promise<Row[]> {
    const rows = new Map<string, Record<string, JsonValue>>();
    for (const [, v] of await this.store.scan("fields", collection + "\u0000")) {
      const f = v as FieldRec;
      let r = rows.get(f.id);
      if (!r) rows.set(f.id, (r = {}));
      r[f.f] = JSON.parse(f.v);
    }
    const out: Row[] = [];
    for (const [id, fields] of rows) if (fields[DELETED] !== true) out.push({ id, fields });
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async get(collection: string, id: string): Promise<Record<string, JsonValue> | null> {
    const fields: Record<string, JsonValue> = {};
    let n = 0;
    for (const [, v] of await this.store.scan("fields", rowPrefix(collection, id))) {
      const f = v as FieldRec;
      fields[f.f] = JSON.parse(f.v);
      n++;
    }
    return n === 0 || fields[DELETED] === true ? null : fields;
  }

  write(collection: string, id: string, field: string, value: JsonValue): Promise<void> {
    return this.writeRow(collection, id, { [field]: value });
  }

  delete(collection: string, id: string): Promise<void> {
    return this.writeRow(collection, id, { [DELETED]: true });
  }

  writeRow(collection: string, id: string, values: Record<string, JsonValue>): Promise<void> {
    return this.dataLock.run(async () => {
      await this.reload();
      if (!this.clock || !this.device) throw new SyncError("signed_out", "not logged in");
      const role = this.account?.role;
      if (role === "reviewer" || role === "admin") throw new SyncError("forbidden", `Role ${role} writes no case data`);
      if (!isValidId(id)) throw new SyncError("invalid", `${collection}: id ${JSON.stringify(id)} is not a lowercase UUID`);
      const sc = this.schema?.collections.find((c) => c.name === collection);
      if (this.schema && !sc) throw new SyncError("invalid", `unknown collection ${JSON.stringify(collection)}`);
      if (!this.schema && !BUILTIN[collection]) throw new SyncError("invalid", `unknown collection ${JSON.stringify(collection)}`);
      const current = new Map((await this.store.scan("fields", rowPrefix(collection, id))).map(([, v]) => [(v as FieldRec).f, v as FieldRec]));
      if (sc?.server_created && current.size === 0) throw new SyncError("forbidden", `${collection} rows are created by the server only`);
      const raws: [string, string][] = [];
      for (const [field, value] of Object.entries(values)) {
        if (value === undefined) throw new SyncError("invalid", `${collection}.${field}: no value`);
        if (field === DELETED && typeof value !== "boolean") throw new SyncError("invalid", `${collection}.${DELETED}: want true or false`);
        const raw = JSON.stringify(value);
        if (sc && field !== DELETED) {
          const f = sc.fields.find((x) => x.name === field);
          if (!f) throw new SyncError("invalid", `unknown field ${JSON.stringify(field)} in ${collection}`);
          if (f.server_only) throw new SyncError("forbidden", `${collection}.${field} is written by the server only`);
          const cur = current.get(field);
          const problem = checkValue(f, value);
          if (problem) throw new SyncError("invalid", `${collection}.${problem}`);
          if (f.immutable && cur && cur.v !== raw) throw new SyncError("invalid", `${collection}.${field} cannot change once set`);
        }
        raws.push([field, raw]);
      }
      let seq = await this.meta("outbox_seq", 0);
      const ops: StoreOp[] = [];
      for (const [field, raw] of raws) {
        const stamp = formatStamp(this.clock.now());
        const base = current.get(field)?.h ?? "";
        const rec: FieldRec = { c: collection, id, f: field, v: raw, h: stamp };
        current.set(field, rec);
        ops.push({ op: "put", table: "fields", key: fkey(collection, id, field), value: rec });
        seq++;
        const o: OutboxRec = { seq, c: collection, id, f: field, v: raw, h: stamp, base, batch: null };
        ops.push({ op: "put", table: "outbox", key: seqKey(seq), value: o });
      }
      ops.push(ReplicaImpl.put("outbox_seq", seq), ...this.clockOp());
      for (const s of await this.deriveScopes(collection, id, current)) {
        ops.push({ op: "put", table: "row_scopes", key: fkey(collection, id, s), value: { c: collection, id, s } satisfies RowScopeRec });
      }
      await this.store.commit(ops);
      this.changed([collection]);
    }).finally(() => this.emit());
  }

  /** deriveScopes returns the scopes a row written here belongs to, as far as the local data tells. */
  private async deriveScopes(collection: string, id: string, fields: Map<string, FieldRec>): Promise<string[]> {
    const sc = this.schema?.collections.find((c) => c.name === collection);
    const rule = sc
      ? { scope: sc.scope, parent: sc.parent, parentRef: sc.fields.find((f) => f.name === sc.parent)?.ref }
      : BUILTIN[collection];
    if (!rule) return [];
    const str = (f: string): string => {
      const r = fields.get(f);
      if (!r) return "";
      const v = JSON.parse(r.v);
      return typeof v === "string" ? v : "";
    };
    switch (rule.scope) {
      case "family_self":
        return ["family:" + id];
      case "via_family": {
        const fid = str(rule.parent ?? "family_id");
        return fid ? ["family:" + fid] : [];
      }
      case "intake": {
        const out: string[] = [];
        const region = str("region");
        if (region) out.push("intake:" + region);
        const fid = str("family_id");
        if (fid) out.push("family:" + fid);
        return out;
      }
      case "via_parent": {
        const pid = str(rule.parent ?? "");
        if (!pid || !rule.parentRef) return [];
        return (await this.store.scan("row_scopes", rowPrefix(rule.parentRef, pid))).map(([, v]) => (v as RowScopeRec).s);
      }
    }
    return [];
  }

  async pending(): Promise<Change[]> {
    return (await this.store.scan("outbox")).map(([, v]) => {
      const o = v as OutboxRec;
      const c: Change = { collection: o.c, id: o.id, field: o.f, value: JSON.parse(o.v), hlc: o.h };
      if (o.base) c.base = o.base;
      return c;
    });
  }

  async signals(): Promise<Signal[]> {
    return this.meta<Signal[]>("signals", []);
  }

  async dismiss(problemId: number): Promise<void> {
    await this.store.commit([{ op: "del", table: "problems", key: seqKey(problemId) }]);
    this.emit();
  }

  async scopes(): Promise<string[]> {
    return (await this.store.scan("held_scopes")).map(([k]) => k).sort();
  }

  async checksums(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const all = new Set<string>(await this.scopes());
    for (const [, v] of await this.store.scan("row_scopes")) all.add((v as RowScopeRec).s);
    for (const s of [...all].sort()) out[s] = await this.scopeSum(s);
    return out;
  }

  private async scopeSum(scope: string): Promise<string> {
    let sum = 0n;
    for (const [, v] of await this.store.scan("row_scopes")) {
      const rs = v as RowScopeRec;
      if (rs.s !== scope) continue;
      for (const [, fv] of await this.store.scan("fields", rowPrefix(rs.c, rs.id))) {
        const f = fv as FieldRec;
        sum ^= fieldSum(f.c, f.id, f.f, f.h);
      }
    }
    return formatSum(sum);
  }

  // ---- push ----

  push(): Promise<PushResult> {
    return this.syncLock.run(() => this.tracked(async () => {
      await this.reload();
      return this.pushLocked();
    }));
  }

  private async pushLocked(): Promise<PushResult> {
    const res: PushResult = { batches: 0, applied: 0, ignored: 0, rejected: [], quarantined: [], restamped: [] };
    let rebased = false;
    for (;;) {
      if (!this.device) throw new SyncError("signed_out", "not logged in");
      const b = await this.nextBatch();
      if (!b) return res;
      const req = {
        device_id: this.device, batch_id: b.id, schema_version: SCHEMA_VERSION,
        changes: b.entries.map((o) => {
          const c: Record<string, unknown> = { collection: o.c, id: o.id, field: o.f, value: JSON.parse(o.v), hlc: o.h };
          if (o.base) c.base = o.base;
          return c;
        }),
      };
      let resp: { batch_id: string; applied: number; ignored: number; rejected?: WireProblem[]; quarantined?: WireProblem[]; server_hlc?: string };
      try {
        resp = await this.call("/v1/sync/push", req);
      } catch (e) {
        if (e instanceof SyncError && e.code === "too_large" && b.entries.length > 1) {
          await this.shrinkBatch(b); // the same batch id again, with the first half
          continue;
        }
        throw e;
      }
      if (resp.batch_id !== b.id) throw new SyncError("internal", `push batch ${b.id}: answer is for batch ${JSON.stringify(resp.batch_id)}`);
      const ack = await this.ackBatch(b, resp);
      res.batches++;
      res.applied += resp.applied ?? 0;
      res.ignored += resp.ignored ?? 0;
      res.rejected.push(...ack.rejected);
      res.quarantined.push(...ack.quarantined);
      res.restamped.push(...ack.restamped);
      if (ack.skewed > 0) {
        // The corrected clock did not help (the server's clock went back?):
        // keep the writes queued and try again on the next push.
        if (rebased) {
          throw new SyncError("clock_skew",
            `De klok van dit toestel loopt voor op die van de server; ${ack.skewed} wijzigingen wachten / the device's clock is ahead of the server's: ${ack.skewed} writes wait in the outbox`);
        }
        rebased = true;
      }
    }
  }

  /** nextBatch returns the oldest unanswered batch or forms and persists a new one; null when the outbox is empty. */
  private nextBatch(): Promise<{ id: string; entries: OutboxRec[] } | null> {
    return this.dataLock.run(async () => {
      const outbox = (await this.store.scan("outbox")).map(([, v]) => v as OutboxRec);
      const batches = (await this.store.scan("batches")).map(([, v]) => v as BatchRec);
      for (const b of batches) {
        const entries = outbox.filter((o) => o.batch === b.id);
        if (entries.length === 0) {
          await this.store.commit([{ op: "del", table: "batches", key: seqKey(b.seq) }]);
          continue;
        }
        await this.store.commit([{ op: "put", table: "batches", key: seqKey(b.seq), value: { ...b, attempts: b.attempts + 1 } }]);
        return { id: b.id, entries };
      }
      const entries: OutboxRec[] = [];
      let size = 0;
      for (const o of outbox) {
        if (o.batch !== null) continue;
        if (entries.length >= this.batchSize || (entries.length > 0 && size + o.v.length > this.maxBatchBytes)) break;
        entries.push(o);
        size += o.v.length;
      }
      if (entries.length === 0) return null;
      const id = newId(this.now());
      const seq = (await this.meta("batch_seq", 0)) + 1;
      const ops: StoreOp[] = [
        ReplicaImpl.put("batch_seq", seq),
        { op: "put", table: "batches", key: seqKey(seq), value: { id, seq, created: this.now(), attempts: 1 } satisfies BatchRec },
      ];
      for (const o of entries) {
        o.batch = id;
        ops.push({ op: "put", table: "outbox", key: seqKey(o.seq), value: o });
      }
      await this.store.commit(ops);
      this.emit();
      return { id, entries };
    });
  }

  private shrinkBatch(b: { id: string; entries: OutboxRec[] }): Promise<void> {
    return this.dataLock.run(async () => {
      const back = b.entries.slice(Math.floor(b.entries.length / 2));
      await this.store.commit(back.map((o) => ({ op: "put", table: "outbox", key: seqKey(o.seq), value: { ...o, batch: null } }) as StoreOp));
    });
  }

  /**
   * ackBatch records a push answer: the batch leaves the outbox, problems are
   * kept, refused values reverted and refetched. Writes refused with
   * clock_skew stay queued instead: the clock is corrected and they (and
   * every later pending write) are stamped anew (see skew).
   */
  private ackBatch(
    b: { id: string; entries: OutboxRec[] },
    resp: { rejected?: WireProblem[]; quarantined?: WireProblem[]; server_hlc?: string },
  ): Promise<{ rejected: Problem[]; quarantined: Problem[]; restamped: Restamp[]; skewed: number }> {
    return this.dataLock.run(async () => {
      const at = this.now();
      const ops: StoreOp[] = [];
      const skewed = new Set<number>();
      for (const p of resp.rejected ?? []) if (p.code === "clock_skew" && b.entries[p.index]) skewed.add(b.entries[p.index].seq);
      const gone = new Set(b.entries.map((o) => o.seq).filter((seq) => !skewed.has(seq)));
      for (const seq of gone) ops.push({ op: "del", table: "outbox", key: seqKey(seq) });
      const remaining = (await this.store.scan("outbox")).map(([, v]) => v as OutboxRec).filter((o) => !gone.has(o.seq));
      const refetch = new Set(await this.meta<string[]>("refetch", []));
      const held = new Set(await this.scopes());
      let pid = await this.meta("problem_seq", 0);
      const out: [Problem[], Problem[]] = [[], []];
      const touched = new Set<string>();
      for (const [kind, probs, list] of [["rejected", resp.rejected ?? [], out[0]], ["quarantined", resp.quarantined ?? [], out[1]]] as const) {
        for (const p of probs) {
          const o = b.entries[p.index];
          if (!o || (kind === "rejected" && p.code === "clock_skew")) continue; // clock_skew: queued again below
          pid++;
          const rec: ProblemRec = { id: pid, kind, batchId: b.id, c: o.c, rid: o.id, f: o.f, v: o.v, h: o.h, code: p.code, message: p.message, at };
          ops.push({ op: "put", table: "problems", key: seqKey(pid), value: rec });
          list.push(toProblem(rec));
          // Revert: drop the local value unless a later write replaced it; fetch the row's scopes again.
          const k = fkey(o.c, o.id, o.f);
          const cur = (await this.store.get("fields", k)) as FieldRec | undefined;
          if (cur && cur.h === o.h) {
            ops.push({ op: "del", table: "fields", key: k });
            touched.add(o.c);
            const rowScopes = (await this.store.scan("row_scopes", rowPrefix(o.c, o.id))).map(([key, v]) => [key, (v as RowScopeRec).s] as const);
            for (const [, s] of rowScopes) if (held.has(s)) refetch.add(s);
            const otherFields = (await this.store.scan("fields", rowPrefix(o.c, o.id))).filter(([key]) => key !== k && !ops.some((x) => x.op === "del" && x.table === "fields" && x.key === key));
            const otherOutbox = remaining.some((x) => x.c === o.c && x.id === o.id);
            if (otherFields.length === 0 && !otherOutbox) for (const [key] of rowScopes) ops.push({ op: "del", table: "row_scopes", key });
          }
        }
      }
      ops.push(ReplicaImpl.put("problem_seq", pid), ReplicaImpl.put("refetch", [...refetch]));
      const batch = (await this.store.scan("batches")).find(([, v]) => (v as BatchRec).id === b.id);
      if (batch) ops.push({ op: "del", table: "batches", key: batch[0] });
      this.observe(resp.server_hlc);
      let restamped: Restamp[] = [];
      if (skewed.size > 0 && this.clock) {
        const from = Math.min(...skewed);
        const later = remaining.filter((o) => o.seq >= from).sort((x, y) => x.seq - y.seq);
        const r = await this.skew(later, remaining, resp.server_hlc, b.id);
        ops.push(...r.ops);
        restamped = r.restamped;
      }
      ops.push(ReplicaImpl.put("last_error", ""), ReplicaImpl.put("last_error_code", ""), ...this.clockOp());
      await this.store.commit(ops);
      this.changed(touched);
      return { rejected: out[0], quarantined: out[1], restamped, skewed: skewed.size };
    });
  }

  /**
   * skew handles writes the server refused with clock_skew (entries: those
   * and every later pending write, in write order; outbox: every write still
   * pending once the answered ones left). The server's clock has
   * observed every stamp it stored, so server_hlc is at or above them. The
   * clock learns an offset from server_hlc (calibrate) and its last reading
   * is lowered (rebase) to the floor: server_hlc, or the highest stamp held
   * as stored (a field value that is not a pending write) when higher. Then
   * the entries get new stamps, above everything the server has and within
   * its limit.
   */
  private async skew(
    entries: OutboxRec[], outbox: OutboxRec[], serverHlc: string | undefined, batchId: string,
  ): Promise<{ ops: StoreOp[]; restamped: Restamp[] }> {
    const clock = this.clock!;
    // Held to server_hlc within RESTAMP_TOLERANCE_MS only (the answer's time
    // on the wire): server_hlc may run up to the server's limit ahead of its
    // wall clock (it has observed every stamp it stored), so a device within
    // SKEW_TOLERANCE_MS of it can still be past the limit; a physical time at
    // or below server_hlc is always accepted.
    this.calibrate(serverHlc, RESTAMP_TOLERANCE_MS);
    let floor: Stamp = serverHlc ? parseStamp(serverHlc) : ZERO_STAMP;
    const pending = new Set(outbox.map((o) => fkey(o.c, o.id, o.f) + "\u0000" + o.h));
    for (const [k, v] of await this.store.scan("fields")) {
      const f = v as FieldRec;
      if (pending.has(k + "\u0000" + f.h)) continue;
      const st = parseStamp(f.h);
      if (compareStamps(st, floor) > 0) floor = st;
    }
    clock.rebase(floor);
    return this.restamp(entries, clock, batchId);
  }

  private observe(wire: string | undefined): void {
    if (!wire || !this.clock) return;
    this.clock.observe(parseStamp(wire), 0);
  }

  /** calibrate corrects the clock's offset from server_hlc when they are more than SKEW_TOLERANCE_MS apart. */
  private calibrate(wire: string | undefined, toleranceMs = SKEW_TOLERANCE_MS): void {
    if (!wire || !this.clock) return;
    this.clock.calibrate(parseStamp(wire), toleranceMs);
  }

  // ---- pull ----

  pull(): Promise<PullResult> {
    return this.syncLock.run(() => this.tracked(async () => {
      await this.reload();
      return this.pullLocked();
    }));
  }

  private async pullLocked(): Promise<PullResult> {
    const res: PullResult = { pages: 0, changes: 0, applied: 0, evicted: [], refetched: [], mismatched: [], reoffered: 0 };
    let refetch = await this.meta<string[]>("refetch", []);
    for (let round = 0; ; round++) {
      const mism = await this.pullRound(refetch, res);
      if (mism.length === 0) break;
      if (round === 1) {
        res.mismatched = mism;
        await this.store.commit([ReplicaImpl.put("refetch", mism)]);
        break;
      }
      refetch = mism;
      res.refetched.push(...mism);
    }
    res.reoffered += await this.reofferMismatched(res.mismatched);
    await this.store.commit([ReplicaImpl.put("last_sync", this.now()), ReplicaImpl.put("last_error", ""), ReplicaImpl.put("last_error_code", "")]);
    return res;
  }

  /** pullRound pulls until more is false and returns the scopes whose checksum differs. */
  private async pullRound(refetch: string[], res: PullResult): Promise<string[]> {
    let cursor = await this.meta("cursor", "");
    let reset = cursor === "";
    let retried = false;
    for (let page = 0; page < MAX_PAGES; page++) {
      if (!this.device) throw new SyncError("signed_out", "not logged in");
      const req: Record<string, unknown> = { device_id: this.device, schema_version: SCHEMA_VERSION, cursor, limit: this.pageSize };
      if (page === 0) {
        if (refetch.length > 0) req.refetch = refetch;
        if (await this.meta("held_hash_due", false)) req.held_hash = scopesHash(await this.scopes());
      }
      let resp: WirePull;
      try {
        resp = await this.call<WirePull>("/v1/sync/pull", req);
      } catch (e) {
        // A cursor the server calls invalid (restored from a backup, another region): start over from nothing.
        // The device's own writes are offered again: the restored server lost those it acknowledged after its backup.
        if (page === 0 && !retried && cursor !== "" && e instanceof SyncError && e.code === "invalid") {
          res.reoffered += await this.reoffer();
          reset = true;
          retried = true;
          cursor = "";
          page = -1;
          continue;
        }
        throw e;
      }
      const mism = await this.applyPage(req, resp, reset, res);
      res.pages++;
      if (!resp.more) return mism;
      if (resp.cursor === cursor && (resp.changes ?? []).length === 0) {
        throw new SyncError("internal", `server answered more=true without progress at cursor ${JSON.stringify(cursor)}`);
      }
      cursor = resp.cursor;
    }
    throw new SyncError("internal", `more than ${MAX_PAGES} pages`);
  }

  /**
   * reoffer handles a cursor the server refused as invalid, in one commit:
   * the cursor is dropped (the pull starts over from "") and the device's
   * own writes are queued again (queueOwn). Every held scope is remembered
   * as offered, so the mismatch that may follow does not offer them twice.
   */
  private reoffer(): Promise<number> {
    return this.dataLock.run(async () => {
      const { ops, n } = await this.queueOwn(null);
      ops.push(ReplicaImpl.put("cursor", ""), ReplicaImpl.put("reoffered_scopes", await this.scopes()));
      await this.store.commit(ops);
      return n;
    });
  }

  /**
   * reofferMismatched handles scopes whose checksums still differ after a
   * refetch: the server's state of them is on the device now, so what
   * differs is what the device holds and the server does not (a restored
   * server whose log grew past the device's cursor again does not refuse
   * it). The device's own writes of those scopes are queued again
   * (queueOwn), once per episode: a scope offered stays in meta
   * reoffered_scopes while it differs or has pending writes, so a
   * difference the device cannot mend (another device's write the server
   * lost) does not send the same writes on every pull.
   */
  private reofferMismatched(mism: string[]): Promise<number> {
    return this.dataLock.run(async () => {
      const prev = await this.meta<string[]>("reoffered_scopes", []);
      if (prev.length === 0 && mism.length === 0) return 0;
      const still = new Set(mism);
      const pendingRows = new Set((await this.store.scan("outbox")).map(([, v]) => rowPrefix((v as OutboxRec).c, (v as OutboxRec).id)));
      for (const [, v] of await this.store.scan("row_scopes")) {
        const rs = v as RowScopeRec;
        if (pendingRows.has(rowPrefix(rs.c, rs.id))) still.add(rs.s);
      }
      const keep = prev.filter((s) => still.has(s));
      const todo = mism.filter((s) => !prev.includes(s));
      let n = 0;
      const ops: StoreOp[] = [];
      if (todo.length > 0) {
        const q = await this.queueOwn(todo);
        ops.push(...q.ops);
        n = q.n;
      }
      ops.push(ReplicaImpl.put("reoffered_scopes", [...keep, ...todo].sort()));
      await this.store.commit(ops);
      return n;
    });
  }

  /**
   * queueOwn returns the ops that queue again every field whose local value
   * this device wrote (its stamp's node is the device id) and that is not
   * already waiting in the outbox under that stamp: the same stamp and
   * value, no base (none is kept once a write is acknowledged), oldest
   * stamp first; with scopes, only the fields of rows in those scopes.
   * Re-sending is safe by the merge rules: a write the server holds with the
   * same stamp is ignored, one it lost is applied, one a later write
   * superseded is logged stale, one of a family no longer held is
   * quarantined. They are not stamped anew, which would let old values win
   * over newer ones. Unbatched writes already in the outbox move behind
   * them, so the server receives writes in the order they were made; a
   * batch already formed keeps its changes and id. Call under dataLock.
   */
  private async queueOwn(scopes: string[] | null): Promise<{ ops: StoreOp[]; n: number }> {
    const dev = this.device;
    const outbox = (await this.store.scan("outbox")).map(([, v]) => v as OutboxRec);
    const queued = new Set(outbox.map((o) => fkey(o.c, o.id, o.f) + "\u0000" + o.h));
    let rows: Set<string> | null = null;
    if (scopes) {
      const want = new Set(scopes);
      rows = new Set();
      for (const [, v] of await this.store.scan("row_scopes")) {
        const rs = v as RowScopeRec;
        if (want.has(rs.s)) rows.add(rowPrefix(rs.c, rs.id));
      }
    }
    const own: FieldRec[] = [];
    for (const [k, v] of await this.store.scan("fields")) {
      const f = v as FieldRec;
      // A stamp's node is everything after "<13 digits>-<4 hex>-".
      if (!dev || f.h.slice(19) !== dev || queued.has(k + "\u0000" + f.h)) continue;
      if (rows && !rows.has(rowPrefix(f.c, f.id))) continue;
      own.push(f);
    }
    if (own.length === 0) return { ops: [], n: 0 };
    own.sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
    let seq = await this.meta("outbox_seq", 0);
    const ops: StoreOp[] = [];
    for (const f of own) {
      seq++;
      const o: OutboxRec = { seq, c: f.c, id: f.id, f: f.f, v: f.v, h: f.h, base: "", batch: null };
      ops.push({ op: "put", table: "outbox", key: seqKey(seq), value: o });
    }
    for (const o of outbox) {
      if (o.batch !== null) continue;
      ops.push({ op: "del", table: "outbox", key: seqKey(o.seq) });
      seq++;
      ops.push({ op: "put", table: "outbox", key: seqKey(seq), value: { ...o, seq } satisfies OutboxRec });
    }
    ops.push(ReplicaImpl.put("outbox_seq", seq), ReplicaImpl.put("reoffered", own.length), ReplicaImpl.put("reoffered_at", this.now()));
    return { ops, n: own.length };
  }

  /** applyPage applies one pull answer in one commit: evictions, changes (LWW), cursor, clock, and on the last page checksums and signals. */
  private applyPage(req: Record<string, unknown>, resp: WirePull, reset: boolean, res: PullResult): Promise<string[]> {
    return this.dataLock.run(async () => {
      const view = new Overlay(this.store);
      await view.load();
      const touched = new Set<string>();
      if (Array.isArray(req.refetch) && req.refetch.length > 0) view.meta("refetch", []);
      if (req.held_hash) view.meta("held_hash_due", false);
      const evict = resp.evict ?? [];
      if (evict.length > 0) {
        for (const c of view.evict(evict)) touched.add(c);
        view.meta("held_hash_due", true); // proven on the next pull, with the scopes held by then
      }
      this.observe(resp.server_hlc);
      // A pull answer is fresh (never replayed like a push answer), so its
      // server_hlc tells how far the device's wall clock is off.
      this.calibrate(resp.server_hlc);
      let applied = 0;
      for (const [i, c] of (resp.changes ?? []).entries()) {
        let stamp: Stamp;
        try {
          stamp = parseStamp(c.hlc);
        } catch (e) {
          throw new SyncError("internal", `pulled change ${i}: ${(e as Error).message}`);
        }
        if (c.value === undefined) throw new SyncError("internal", `pulled change ${i}: no value`);
        this.clock?.observe(stamp, 0);
        const raw = JSON.stringify(c.value);
        const cur = view.field(c.collection, c.id, c.field);
        if (!cur || wins({ hlc: c.hlc, value: raw }, { hlc: cur.h, value: cur.v })) {
          view.putField({ c: c.collection, id: c.id, f: c.field, v: raw, h: c.hlc });
          touched.add(c.collection);
          applied++;
        }
        if (c.scope) {
          view.addRowScope(c.collection, c.id, c.scope);
          view.hold(c.scope);
        }
      }
      view.meta("cursor", resp.cursor);
      let mism: string[] = [];
      if (!resp.more) {
        const sums = resp.checksums;
        if (sums) {
          for (const s of Object.keys(sums)) view.hold(s);
          if (reset) {
            const gone = view.heldScopes().filter((s) => !(s in sums));
            for (const c of view.evict(gone)) touched.add(c);
          }
          mism = view.mismatched(sums);
        }
        view.meta("signals", resp.signals ?? []);
      }
      for (const op of ReplicaImpl.clockOps(this.clock)) if (op.op === "put") view.meta(op.key, op.value);
      await this.store.commit(view.ops());
      res.changes += (resp.changes ?? []).length;
      res.applied += applied;
      res.evicted.push(...evict);
      this.changed(touched);
      return mism;
    });
  }

  // ---- sync ----

  /** tracked runs a push or pull, counting it in the status and recording its error. */
  private async tracked<T>(fn: () => Promise<T>): Promise<T> {
    this.syncing++;
    this.emit();
    try {
      return await fn();
    } catch (e) {
      const err = e instanceof SyncError ? e : new SyncError("internal", String((e as Error)?.message ?? e));
      if (this.device) {
        await this.store.commit([ReplicaImpl.put("last_error", err.message), ReplicaImpl.put("last_error_code", err.code)]).catch(() => undefined);
      }
      throw err;
    } finally {
      this.syncing--;
      this.emit();
    }
  }

  async sync(opts: { retry?: boolean } = {}): Promise<SyncResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.syncOnce();
      } catch (e) {
        const offline = e instanceof SyncError && e.code === "offline";
        if (!opts.retry || !offline || attempt >= this.retry.attempts || this.closed) throw e;
        await sleep(this.backoff(attempt));
      }
    }
  }

  /** syncOnce pushes then pulls; a failed push stops the pull only when offline or signed out. */
  private async syncOnce(): Promise<SyncResult> {
    let push: PushResult = { batches: 0, applied: 0, ignored: 0, rejected: [], quarantined: [], restamped: [] };
    let pushErr: unknown = null;
    try {
      push = await this.push();
    } catch (e) {
      if (!(e instanceof SyncError) || e.code === "offline" || !this.device) throw e;
      pushErr = e;
    }
    const pull = await this.pull();
    if (pushErr) throw pushErr;
    if (pull.reoffered > 0) {
      // The pull offered the device's own writes again: push them now and compare the checksums after.
      const again = await this.push();
      const after = await this.pull();
      push = {
        batches: push.batches + again.batches, applied: push.applied + again.applied, ignored: push.ignored + again.ignored,
        rejected: [...push.rejected, ...again.rejected], quarantined: [...push.quarantined, ...again.quarantined],
        restamped: [...push.restamped, ...again.restamped],
      };
      return {
        push,
        pull: {
          pages: pull.pages + after.pages, changes: pull.changes + after.changes, applied: pull.applied + after.applied,
          evicted: [...pull.evicted, ...after.evicted], refetched: [...pull.refetched, ...after.refetched],
          mismatched: after.mismatched, reoffered: pull.reoffered + after.reoffered,
        },
      };
    }
    return { push, pull };
  }

  private backoff(attempt: number): number {
    const d = Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** (attempt - 1));
    return d / 2 + Math.random() * (d / 2);
  }

  startAutoSync(intervalMs = 30_000): () => void {
    this.stopAuto?.();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    const tick = async () => {
      timer = undefined;
      if (stopped || this.closed) return;
      try {
        if (this.device) await this.syncOnce();
        failures = 0;
      } catch (e) {
        failures = e instanceof SyncError && e.code === "offline" ? failures + 1 : 0;
      }
      if (!stopped && !this.closed) timer = setTimeout(tick, failures > 0 ? Math.min(intervalMs, this.backoff(failures)) : intervalMs);
    };
    const online = () => {
      if (timer !== undefined) clearTimeout(timer);
      void tick();
    };
    const g = globalThis as { addEventListener?: (t: string, f: () => void) => void; removeEventListener?: (t: string, f: () => void) => void };
    g.addEventListener?.("online", online);
    void tick();
    const stop = () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      g.removeEventListener?.("online", online);
      if (this.stopAuto === stop) this.stopAuto = null;
    };
    this.stopAuto = stop;
    return stop;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopAuto?.();
    await this.syncLock.run(() => this.dataLock.run(() => this.store.close()));
  }
}

interface WireProblem { index: number; code: string; message: string }
interface WireChange { collection: string; id: string; field: string; value: JsonValue; hlc: string; scope?: string }
interface WirePull {
  changes: WireChange[] | null;
  cursor: string;
  more: boolean;
  evict: string[] | null;
  checksums?: Record<string, string>;
  signals?: Signal[];
  server_hlc?: string;
}

function toProblem(p: ProblemRec): Problem {
  return {
    id: p.id, kind: p.kind, batchId: p.batchId,
    change: { collection: p.c, id: p.rid, field: p.f, value: JSON.parse(p.v), hlc: p.h },
    code: p.code, message: p.message, at: p.at,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Overlay is an in-memory view of the fields, row scopes, held scopes and
 * outbox, changed by a pull page and turned into one atomic commit. A page
 * is bounded (at most 5,000 changes), and a coach's replica small, so
 * loading the tables it touches is cheap and keeps every store simple.
 */
class Overlay {
  private fields = new Map<string, FieldRec>();
  private rowScopes = new Map<string, RowScopeRec>();
  private held = new Set<string>();
  private outboxRows = new Set<string>();
  private out: StoreOp[] = [];

  constructor(private readonly store: Store) {}

  async load(): Promise<void> {
    for (const [k, v] of await this.store.scan("fields")) this.fields.set(k, v as FieldRec);
    for (const [k, v] of await this.store.scan("row_scopes")) this.rowScopes.set(k, v as RowScopeRec);
    for (const [k] of await this.store.scan("held_scopes")) this.held.add(k);
    for (const [, v] of await this.store.scan("outbox")) this.outboxRows.add(rowPrefix((v as OutboxRec).c, (v as OutboxRec).id));
  }

  meta(key: string, value: unknown): void {
    this.out.push({ op: "put", table: "meta", key, value });
  }
  field(c: string, id: string, f: string): FieldRec | undefined {
    return this.fields.get(fkey(c, id, f));
  }
  putField(r: FieldRec): void {
    const k = fkey(r.c, r.id, r.f);
    this.fields.set(k, r);
    this.out.push({ op: "put", table: "fields", key: k, value: r });
  }
  addRowScope(c: string, id: string, s: string): void {
    const k = fkey(c, id, s);
    if (this.rowScopes.has(k)) return;
    const r = { c, id, s };
    this.rowScopes.set(k, r);
    this.out.push({ op: "put", table: "row_scopes", key: k, value: r });
  }
  hold(s: string): void {
    if (this.held.has(s)) return;
    this.held.add(s);
    this.out.push({ op: "put", table: "held_scopes", key: s, value: true });
  }
  heldScopes(): string[] {
    return [...this.held].sort();
  }

  /** evict drops the scopes and every row left without a scope; it returns the collections touched. */
  evict(scopes: string[]): string[] {
    const touched = new Set<string>();
    for (const scope of scopes) {
      if (this.held.delete(scope)) this.out.push({ op: "del", table: "held_scopes", key: scope });
      const rows: RowScopeRec[] = [];
      for (const [k, r] of this.rowScopes) {
        if (r.s !== scope) continue;
        this.rowScopes.delete(k);
        this.out.push({ op: "del", table: "row_scopes", key: k });
        rows.push(r);
      }
      for (const r of rows) {
        const p = rowPrefix(r.c, r.id);
        let still = false;
        for (const k of this.rowScopes.keys()) if (k.startsWith(p)) { still = true; break; }
        if (still) continue;
        for (const k of [...this.fields.keys()]) {
          if (!k.startsWith(p)) continue;
          this.fields.delete(k);
          this.out.push({ op: "del", table: "fields", key: k });
          touched.add(r.c);
        }
      }
    }
    return [...touched];
  }

  /** mismatched returns, sorted, the scopes whose local checksum differs; scopes with pending writes are skipped. */
  mismatched(sums: Record<string, string>): string[] {
    const out: string[] = [];
    for (const scope of Object.keys(sums).sort()) {
      const rows: string[] = [];
      for (const r of this.rowScopes.values()) if (r.s === scope) rows.push(rowPrefix(r.c, r.id));
      if (rows.some((p) => this.outboxRows.has(p))) continue;
      let sum = 0n;
      const inScope = new Set(rows);
      for (const f of this.fields.values()) {
        if (inScope.has(rowPrefix(f.c, f.id))) sum ^= fieldSum(f.c, f.id, f.f, f.h);
      }
      if (formatSum(sum) !== sums[scope].toLowerCase()) out.push(scope);
    }
    return out;
  }

  ops(): StoreOp[] {
    return this.out;
  }
}
