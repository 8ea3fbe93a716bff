// Field-level last-writer-wins, the same rule as sync/crdt.Wins.
import { compareWire } from "./clock.js";

/** Write is one field write for merging: its stamp (wire form) and its value as raw JSON text. */
export interface Write {
  readonly hlc: string;
  readonly value: string;
}

const utf8 = new TextEncoder();

/** compareBytes compares two strings by their UTF-8 bytes. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return x.length - y.length < 0 ? -1 : x.length === y.length ? 0 : 1;
}

/**
 * wins reports whether write a beats write b for the same field: the higher
 * stamp wins (wire forms compare as the clock does); equal stamps are
 * ordered by the UTF-8 bytes of the raw JSON values so every replica agrees.
 */
export function wins(a: Write, b: Write): boolean {
  const c = compareWire(a.hlc, b.hlc);
  if (c !== 0) return c > 0;
  return compareBytes(a.value, b.value) > 0;
}
