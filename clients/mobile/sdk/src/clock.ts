// The hybrid logical clock of Samenplan, the same wire form and rules as
// the Go reference (sync/crdt/stamp.go); the shared vectors in
// testdata/vectors/crdt.json hold both to the same answers.

/** MAX_NODE_LEN bounds the node id of a stamp (a device id is a 36-char UUID). */
export const MAX_NODE_LEN = 64;
/** MAX_COUNTER is the largest logical counter; past it the wall moves one ms ahead. */
export const MAX_COUNTER = 0xffff;
const MAX_WALL = 9_999_999_999_999;

/**
 * Stamp is a clock reading: wall milliseconds, a logical counter and the
 * node that made it. Its wire form "<13-digit unix ms>-<4 hex>-<node>"
 * sorts as the clock does.
 */
export interface Stamp {
  readonly wall: number;
  readonly counter: number;
  readonly node: string;
}

/** ZERO_STAMP is before every real write. */
export const ZERO_STAMP: Stamp = Object.freeze({ wall: 0, counter: 0, node: "" });

/** StampError is thrown by parseStamp for anything that does not round-trip. */
export class StampError extends Error {
  constructor(wire: string, why: string) {
    super(`invalid stamp ${JSON.stringify(wire)}: ${why}`);
    this.name = "StampError";
  }
}

/** ClockSkewError is thrown by Clock.observe for a stamp too far ahead. */
export class ClockSkewError extends Error {
  constructor(s: Stamp, aheadMs: number) {
    super(`stamp too far ahead of the clock: ${formatStamp(s)} is ${aheadMs}ms ahead`);
    this.name = "ClockSkewError";
  }
}

/** formatStamp returns the wire form of s. */
export function formatStamp(s: Stamp): string {
  return String(s.wall).padStart(13, "0") + "-" + s.counter.toString(16).padStart(4, "0") + "-" + s.node;
}

/** isZeroStamp reports whether s is the zero stamp. */
export function isZeroStamp(s: Stamp): boolean {
  return s.wall === 0 && s.counter === 0 && s.node === "";
}

function nodeProblem(node: string): string | null {
  if (node.length === 0 || node.length > MAX_NODE_LEN) return `node id must be 1..${MAX_NODE_LEN} characters`;
  for (let i = 0; i < node.length; i++) {
    const c = node.charCodeAt(i);
    const ok =
      (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      c === 0x2d || c === 0x5f || c === 0x2e || c === 0x3a;
    if (!ok) return `node id has character ${JSON.stringify(node[i])}`;
  }
  return null;
}

/** isValidNode reports whether node is 1..64 characters of [A-Za-z0-9_.:-]. */
export function isValidNode(node: string): boolean {
  return nodeProblem(node) === null;
}

/**
 * parseStamp parses the wire form. It throws StampError for anything that
 * does not round-trip exactly: a wall that is not 13 digits, a counter that
 * is not 4 lowercase hex digits, an empty or oversized node, or a node with
 * characters outside [A-Za-z0-9_.:-].
 */
export function parseStamp(wire: string): Stamp {
  if (typeof wire !== "string" || wire.length < 20 || wire[13] !== "-" || wire[18] !== "-") {
    throw new StampError(wire, "want <13-digit ms>-<4 hex>-<node>");
  }
  let wall = 0;
  for (let i = 0; i < 13; i++) {
    const c = wire.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw new StampError(wire, "wall time must be 13 digits");
    wall = wall * 10 + (c - 0x30);
  }
  let counter = 0;
  for (let i = 14; i < 18; i++) {
    const c = wire.charCodeAt(i);
    let v: number;
    if (c >= 0x30 && c <= 0x39) v = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) v = c - 0x61 + 10;
    else throw new StampError(wire, "counter must be 4 lowercase hex digits");
    counter = counter * 16 + v;
  }
  const node = wire.slice(19);
  const p = nodeProblem(node);
  if (p) throw new StampError(wire, p);
  return { wall, counter, node };
}

/** compareStamps orders stamps: wall, then counter, then node bytes. */
export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  // Nodes are ASCII, so UTF-16 order is byte order.
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** compareWire orders two stamps in wire form (plain string order, which is clock order). */
export function compareWire(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function bump(s: Stamp): Stamp {
  if (s.counter === MAX_COUNTER) {
    return { wall: s.wall < MAX_WALL ? s.wall + 1 : s.wall, counter: 0, node: s.node };
  }
  return { wall: s.wall, counter: s.counter + 1, node: s.node };
}

/**
 * Clock is a hybrid logical clock for one node. Its readings never go
 * backwards, also when the wall clock does (rebase aside). `now` returns
 * unix ms (Date.now when omitted); `last` resumes an earlier session's
 * clock. Its physical time is the wall clock minus an offset (zero unless
 * setOffset or calibrate set one), so a device whose wall clock runs ahead
 * of the server's still makes stamps the server accepts.
 */
export class Clock {
  readonly node: string;
  private readonly wallNow: () => number;
  private lastStamp: Stamp;
  private offsetMs = 0;

  constructor(node: string, now?: () => number, last: Stamp = ZERO_STAMP) {
    const p = nodeProblem(node);
    if (p) throw new Error("Clock: " + p);
    this.node = node;
    this.wallNow = now ?? Date.now;
    this.lastStamp = last;
  }

  /** now returns a new stamp, greater than every stamp made or observed (the HLC send rule). */
  now(): Stamp {
    const pt = this.physical();
    if (pt > this.lastStamp.wall) {
      this.lastStamp = { wall: pt, counter: 0, node: this.node };
    } else {
      this.lastStamp = { ...bump(this.lastStamp), node: this.node };
    }
    return this.lastStamp;
  }

  /** last returns the latest stamp made or observed, without advancing. */
  last(): Stamp {
    return this.lastStamp;
  }

  /**
   * observe merges a received stamp (the HLC receive rule) so every later
   * now() is greater than s. A stamp more than maxAheadMs ahead of the wall
   * clock throws ClockSkewError and leaves the clock unchanged; maxAheadMs
   * <= 0 means no limit.
   */
  observe(s: Stamp, maxAheadMs = 0): void {
    const pt = this.physical();
    if (maxAheadMs > 0 && s.wall > pt + maxAheadMs) throw new ClockSkewError(s, s.wall - pt);
    if (compareStamps(s, this.lastStamp) > 0) {
      this.lastStamp = { wall: s.wall, counter: s.counter, node: this.node };
    }
  }

  /** offset returns how many ms the clock reads its physical time behind the wall clock (0 by default). */
  offset(): number {
    return this.offsetMs;
  }

  /**
   * setOffset makes the clock read its physical time as the wall clock minus
   * ms (whole ms; negative counts as 0). It restores an offset that
   * calibrate learned in an earlier session.
   */
  setOffset(ms: number): void {
    this.offsetMs = Math.max(0, Math.trunc(ms));
  }

  /**
   * calibrate compares the physical time with server, a stamp the server
   * made just now (server_hlc), and corrects the offset when they are more
   * than toleranceMs apart, ahead, or behind while there is an offset: the
   * offset becomes how far the wall clock is ahead of server, or 0 when that
   * is within the tolerance. Behind without an offset is left to the receive
   * rule. Returns whether the offset changed; the last reading stays (see rebase).
   */
  calibrate(server: Stamp, toleranceMs: number): boolean {
    const wall = Math.floor(this.wallNow());
    const ahead = wall - this.offsetMs - server.wall;
    const tol = Math.max(0, toleranceMs);
    if (ahead <= tol && (ahead >= -tol || this.offsetMs === 0)) return false;
    let off = wall - server.wall;
    if (off <= tol) off = 0;
    const changed = off !== this.offsetMs;
    this.offsetMs = off;
    return changed;
  }

  /**
   * rebase lowers the last reading to floor when it is beyond it, so later
   * stamps are just past floor instead of past stamps the server refused;
   * returns whether the reading changed. Readings go backwards here, so
   * floor must be at or above every stamp of this clock anyone stored
   * (server_hlc and every stamp held as stored), and every write still
   * pending with a stamp above floor must be stamped anew.
   */
  rebase(floor: Stamp): boolean {
    if (compareStamps(this.lastStamp, floor) <= 0) return false;
    // The clock keeps its node: the reading may sort just below floor (a
    // greater node), but the next now() moves the counter past it.
    const next = { wall: floor.wall, counter: floor.counter, node: this.node };
    const changed = compareStamps(next, this.lastStamp) !== 0;
    this.lastStamp = next;
    return changed;
  }

  private physical(): number {
    return Math.floor(this.wallNow()) - this.offsetMs;
  }
}
