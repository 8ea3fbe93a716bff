// A small in-memory server speaking docs/protocol.md for the replica's unit
// tests, behind a fake fetch: compacted pulls with a cursor and pages,
// evictions and held-hash proofs, checksums, LWW, quarantine, batch replay,
// token expiry and refresh, revocation, and a switch to go offline or to
// lose answers.
import { parseStamp } from "../src/clock.js";
import { wins } from "../src/merge.js";
import { fieldSum, formatSum, scopesHash } from "../src/checksum.js";

interface Winner { collection: string; id: string; field: string; value: string; hlc: string; seq: number }
interface Cursor { seq: number; held: string[]; skip: number; upto: number; refetch: string[] }

const key = (c: string, id: string, f: string) => `${c}\u0000${id}\u0000${f}`;

export class FakeServer {
  winners = new Map<string, Winner>();
  log: { collection: string; id: string; field: string; value: unknown; hlc: string }[] = [];
  rowScope = new Map<string, string>(); // collection\0id -> scope
  granted = new Set<string>(["intake:kempen"]);
  lost = new Set<string>(); // scopes the device held and lost: writes there are quarantined
  quarantine: unknown[] = [];
  proofs: string[] = [];
  batches = new Map<string, unknown>();
  seq = 0;
  wall = 1_795_450_929_838;
  counter = 0;
  deviceId = "0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11";
  access = "access-1";
  refreshToken = "refresh-1";
  revoked = false;
  offline = false;
  loseAnswers = 0; // the next n answers are lost after the request was handled
  requests: { path: string; body: any }[] = [];
  refreshes = 0;
  maxChanges = Infinity; // a larger push is 413 too_large
  /**
   * maxAheadMs, when set, refuses a pushed stamp more than this ahead of
   * wall with clock_skew, as the real server does (5 minutes); 0 is off.
   */
  maxAheadMs = 0;
  /** hlc is the highest stamp the server observed (accepted, or set by a test); server_hlc is never below it. */
  hlc = "";

  stamp(): string {
    this.counter++;
    const own = `${String(this.wall).padStart(13, "0")}-${this.counter.toString(16).padStart(4, "0")}-server`;
    if (this.hlc <= own) return own;
    const h = parseStamp(this.hlc);
    return `${String(h.wall).padStart(13, "0")}-${this.counter.toString(16).padStart(4, "0")}-server`;
  }

  /** backup copies what the server stores: winners, log, row scopes, log position, batch answers. */
  backup(): { winners: Map<string, Winner>; log: FakeServer["log"]; rowScope: Map<string, string>; seq: number; batches: Map<string, unknown> } {
    return structuredClone({ winners: this.winners, log: this.log, rowScope: this.rowScope, seq: this.seq, batches: this.batches });
  }

  /** restore puts a backup back: what was stored after it is gone, and cursors past its log position are invalid. */
  restore(b: ReturnType<FakeServer["backup"]>): void {
    const c = structuredClone(b);
    this.winners = c.winners;
    this.log = c.log;
    this.rowScope = c.rowScope;
    this.seq = c.seq;
    this.batches = c.batches;
  }

  /** seed writes a row as the server, in scope. */
  seed(scope: string, collection: string, id: string, fields: Record<string, unknown>): void {
    this.rowScope.set(`${collection}\u0000${id}`, scope);
    for (const [f, v] of Object.entries(fields)) this.apply(collection, id, f, JSON.stringify(v), this.stamp());
  }

  apply(collection: string, id: string, field: string, value: string, hlc: string): boolean {
    const k = key(collection, id, field);
    const cur = this.winners.get(k);
    this.log.push({ collection, id, field, value: JSON.parse(value), hlc });
    if (cur && !wins({ hlc, value }, { hlc: cur.hlc, value: cur.value })) return false;
    this.winners.set(k, { collection, id, field, value, hlc, seq: ++this.seq });
    return true;
  }

  get(collection: string, id: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const w of this.winners.values()) if (w.collection === collection && w.id === id) out[w.field] = JSON.parse(w.value);
    return out;
  }

  scopeOf(collection: string, id: string, fields: Map<string, string>): string {
    const known = this.rowScope.get(`${collection}\u0000${id}`);
    if (known) return known;
    const str = (f: string) => {
      const v = fields.get(f) ?? this.winners.get(key(collection, id, f))?.value;
      return v ? (JSON.parse(v) as string) : "";
    };
    if (collection === "families") return "family:" + id;
    if (collection === "contacts" || collection === "plan_goals") {
      return this.rowScope.get(`trajectories\u0000${str("trajectory_id")}`) ?? "";
    }
    if (collection === "consults") return "intake:" + str("region");
    return str("family_id") ? "family:" + str("family_id") : "";
  }

  sum(scope: string): string {
    let s = 0n;
    for (const w of this.winners.values()) {
      if (this.rowScope.get(`${w.collection}\u0000${w.id}`) === scope) s ^= fieldSum(w.collection, w.id, w.field, w.hlc);
    }
    return formatSum(s);
  }

  fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (this.offline) throw new TypeError("fetch failed");
    const url = new URL(String(input));
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    this.requests.push({ path: url.pathname, body });
    const auth = (init?.headers as Record<string, string> | undefined)?.Authorization ?? "";
    const resp = this.handle(url.pathname, body, auth);
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new TypeError("connection reset after the request was sent");
    }
    return resp;
  };

  private json(status: number, v: unknown): Response {
    return new Response(JSON.stringify(v), { status, headers: { "Content-Type": "application/json" } });
  }

  private handle(path: string, body: any, auth: string): Response {
    const session = () => ({
      access_token: this.access, refresh_token: this.refreshToken, expires_in: 900, token_type: "Bearer",
      device_id: this.deviceId,
      user: { id: "u-coach1", username: "coach1.kempen.demo", role: "coach", regions: ["kempen"] },
    });
    if (path === "/v1/auth/login") {
      if (body.password !== "pw") return this.json(401, { code: "unauthorized", message: "wrong password" });
      return this.json(200, session());
    }
    if (path === "/v1/schema") return this.json(404, { code: "not_found", message: "no schema in the fake" });
    if (this.revoked) return this.json(401, { code: "device_revoked", message: "revoked" });
    if (path === "/v1/auth/refresh") {
      if (body.refresh_token !== this.refreshToken) return this.json(401, { code: "unauthorized", message: "bad refresh" });
      this.refreshes++;
      this.access = `access-${this.refreshes + 1}`;
      this.refreshToken = `refresh-${this.refreshes + 1}`;
      return this.json(200, session());
    }
    if (auth !== "Bearer " + this.access) return this.json(401, { code: "unauthorized", message: "token expired" });
    if (path === "/v1/sync/push") return this.push(body);
    if (path === "/v1/sync/pull") return this.pull(body);
    return this.json(404, { code: "not_found", message: path });
  }

  private push(req: any): Response {
    const seen = this.batches.get(req.batch_id);
    if (seen) return this.json(200, seen);
    if (req.changes.length > this.maxChanges) return this.json(413, { code: "too_large", message: "body too large" });
    let applied = 0;
    let ignored = 0;
    const rejected: unknown[] = [];
    const quarantined: unknown[] = [];
    const byRow = new Map<string, Map<string, string>>();
    for (const c of req.changes) {
      const rk = `${c.collection}\u0000${c.id}`;
      if (!byRow.has(rk)) byRow.set(rk, new Map());
      byRow.get(rk)!.set(c.field, JSON.stringify(c.value));
    }
    req.changes.forEach((c: any, index: number) => {
      try {
        const s = parseStamp(c.hlc);
        if (s.node !== req.device_id) throw new Error("node is not the device");
        if (this.maxAheadMs > 0 && s.wall > this.wall + this.maxAheadMs) {
          rejected.push({ index, code: "clock_skew", message: `hlc is ${s.wall - this.wall} ms ahead of the server clock` });
          return;
        }
      } catch (e) {
        rejected.push({ index, code: "invalid", message: String(e) });
        return;
      }
      if (c.field === "scale" && (c.value < 0 || c.value > 10)) {
        rejected.push({ index, code: "invalid", message: `scale: ${c.value} is out of range 0..10` });
        return;
      }
      const scope = this.scopeOf(c.collection, c.id, byRow.get(`${c.collection}\u0000${c.id}`)!);
      if (this.lost.has(scope)) {
        this.quarantine.push(c);
        quarantined.push({ index, code: "quarantined", message: "family no longer held" });
        return;
      }
      if (!this.granted.has(scope)) {
        rejected.push({ index, code: "out_of_scope", message: scope });
        return;
      }
      this.rowScope.set(`${c.collection}\u0000${c.id}`, scope);
      if (this.maxAheadMs > 0 && c.hlc > this.hlc) this.hlc = c.hlc; // the server's clock observes what it stores
      if (this.apply(c.collection, c.id, c.field, JSON.stringify(c.value), c.hlc)) applied++;
      else ignored++;
    });
    const answer = { batch_id: req.batch_id, applied, ignored, rejected, quarantined, server_hlc: this.stamp() };
    this.batches.set(req.batch_id, answer);
    return this.json(200, answer);
  }

  private pull(req: any): Response {
    let cur: Cursor = { seq: 0, held: [], skip: 0, upto: this.seq, refetch: req.refetch ?? [] };
    if (req.cursor) {
      try {
        cur = JSON.parse(Buffer.from(req.cursor, "base64url").toString());
      } catch {
        return this.json(400, { code: "invalid", message: "bad cursor" });
      }
      if (cur.upto > this.seq) return this.json(400, { code: "invalid", message: "cursor ahead" });
      if (cur.skip === 0) {
        cur.upto = this.seq;
        cur.refetch = req.refetch ?? [];
      }
    }
    const current = [...this.granted].sort();
    if (req.held_hash && req.held_hash === scopesHash(current)) this.proofs.push(req.held_hash);
    const evict = cur.held.filter((s) => !this.granted.has(s));
    const held = new Set(cur.held.filter((s) => this.granted.has(s)));
    const full = new Set([...current.filter((s) => !held.has(s)), ...cur.refetch.filter((s) => this.granted.has(s))]);
    const due: (Winner & { scope: string })[] = [];
    for (const w of this.winners.values()) {
      const scope = this.rowScope.get(`${w.collection}\u0000${w.id}`) ?? "";
      if (!this.granted.has(scope) || w.seq > cur.upto) continue;
      if (full.has(scope) || (held.has(scope) && w.seq > cur.seq)) due.push({ ...w, scope });
    }
    due.sort((a, b) => a.seq - b.seq);
    const page = due.slice(cur.skip, cur.skip + req.limit);
    const more = cur.skip + req.limit < due.length;
    const next: Cursor = more
      ? { ...cur, held: [...held], skip: cur.skip + req.limit }
      : { seq: cur.upto, held: current, skip: 0, upto: cur.upto, refetch: [] };
    const answer: any = {
      changes: page.map((w) => ({ collection: w.collection, id: w.id, field: w.field, value: JSON.parse(w.value), hlc: w.hlc, scope: w.scope })),
      cursor: Buffer.from(JSON.stringify(next)).toString("base64url"),
      more,
      evict: cur.skip === 0 ? evict : [],
      server_hlc: this.stamp(),
    };
    if (!more) answer.checksums = Object.fromEntries(current.map((s) => [s, this.sum(s)]));
    return this.json(200, answer);
  }
}
