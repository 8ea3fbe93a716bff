// Scope checksums and the held-scopes proof, the same as sync/crdt
// (checksum.go): FNV-1a 64 bit over UTF-8 bytes, with BigInt.

const OFFSET = 14695981039346656037n;
const PRIME = 1099511628211n;
const MASK = (1n << 64n) - 1n;
const utf8 = new TextEncoder();

function feed(h: bigint, bytes: Uint8Array): bigint {
  for (const b of bytes) h = ((h ^ BigInt(b)) * PRIME) & MASK;
  return h;
}

/**
 * fieldSum is one field's contribution to its scope's checksum: FNV-1a 64
 * of collection, id, field and stamp, each followed by a NUL byte.
 */
export function fieldSum(collection: string, id: string, field: string, stamp: string): bigint {
  let h = OFFSET;
  for (const s of [collection, id, field, stamp]) {
    h = feed(h, utf8.encode(s));
    h = (h * PRIME) & MASK; // h ^= 0
  }
  return h;
}

/** formatSum renders a 64-bit checksum as 16 lowercase hex digits. */
export function formatSum(sum: bigint): string {
  return (sum & MASK).toString(16).padStart(16, "0");
}

/** scopeSum is a scope's checksum: the XOR of the fieldSums of its winning writes, formatted. */
export function scopeSum(fields: Iterable<{ collection: string; id: string; field: string; hlc: string }>): string {
  let sum = 0n;
  for (const f of fields) sum ^= fieldSum(f.collection, f.id, f.field, f.hlc);
  return formatSum(sum);
}

/** byteCompare orders strings by their UTF-8 bytes, as Go's sort.Strings does. */
function byteCompare(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * scopesHash is the proof of the scopes a device holds: FNV-1a 64 of the
 * sorted scope names joined by "\n", as 16 hex digits.
 */
export function scopesHash(scopes: readonly string[]): string {
  const sorted = [...scopes].sort(byteCompare);
  let h = OFFSET;
  sorted.forEach((s, i) => {
    if (i > 0) h = ((h ^ 0x0an) * PRIME) & MASK;
    h = feed(h, utf8.encode(s));
  });
  return formatSum(h);
}
