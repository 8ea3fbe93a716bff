// Package store is the SQLite adapter of Samenplan: per-region case
// databases that merge field-level last-writer-wins changes and keep every
// write in an append-only log, and the main database that holds accounts,
// devices and the audit log.
//
// Open opens <data>/main.db (Stores.Main, used by server/auth and
// server/audit) and <data>/regions/<region>.db per region. A Region applies
// pushes and server writes in one write transaction each (Push,
// ServerWrite, DecideQuarantine) and answers pulls from one read snapshot
// (Pull).
//
// Layout of a region database (migrations/, 0002 last changed the log):
//
//   - change_log: every accepted write, winner or loser, once; seq is the
//     log position and the pull position. It alone holds values and stamps.
//   - log_batches: who wrote, from which device, in which batch, when: once
//     per write transaction, named by change_log.batch.
//   - fields: the current winner of every field as the seq of its log
//     entry: one row per field.
//   - row_scopes: the scopes of every row; scope_sums: per scope, the XOR of
//     crdt.FieldSum over its winners ("region:<name>" covers every row) and
//     its head, the last seq that changed a winner of the scope or added a
//     row to it. A pull walks only the held scopes whose head is past its
//     cursor, so an empty poll reads no log rows; and it walks them through
//     their rows and fields rather than the log when the log written since
//     the cursor is longer (a busy region), so a poll costs what changed in
//     her scopes, not what everyone pushed.
//   - batches: the first response to every (device, batch) for replays.
//   - family_access / former_access: who holds a family, derived from its
//     trajectories in the transaction that changes them; who lost it.
//   - evictions, quarantine, conflicts.
//
// A pull walks the log from the cursor for held scopes (entries that are
// still winners) and fills new scopes in key order through row_scopes and
// the fields key, resuming after the cursor's key; what changes behind the
// fill key meanwhile is picked up by walking the log for those scopes too. The cursor is base64url of a small versioned
// JSON object; it carries no secret and grants nothing: a device's scopes
// are computed from the store on every pull.
package store
