// Package client is the Go reference client of Samenplan's sync protocol: a
// Replica is one device's offline copy of the case file in a local SQLite
// file. Tests and the simulator drive it; the TypeScript client follows it
// step by step, so this comment is its specification.
//
// # Local tables
//
//	fields       (collection, id, field) → value, hlc   the winning write of each field
//	row_scopes   (scope, collection, id)                 through which scopes a row is held
//	held_scopes  scope                                   scopes the server delivered and did not evict
//	outbox       seq → change + base + batch_id          local writes not yet acknowledged
//	batches      batch_id, attempts                      batches formed and not yet answered
//	problems     rejected and quarantined writes, with their value, for the UI
//	meta         device_id, user, tokens, cursor, clock, clock_offset, held_hash, refetch, last_sync, last_error,
//	             reoffered, reoffered_at, reoffered_scopes
//
// # Clock
//
// The device's hybrid logical clock (crdt.Clock) has the device id as its
// node id. Its last reading is saved in meta in the same transaction as
// every write that stamps or observes, and Open resumes past it, so stamps
// never go backwards across restarts even when the wall clock does. Every
// stamp the device sees is observed: each pulled change's hlc and the
// server_hlc of every push and pull answer.
//
// The clock's physical time is the wall clock less an offset, saved in meta
// (clock_offset) with the last reading. Every pull answer, and a push answer
// that refused writes with clock_skew, calibrates it against server_hlc
// (crdt.Clock.Calibrate, tolerance SkewTolerance). After a clock_skew
// refusal the last reading is lowered (crdt.Clock.Rebase) to server_hlc or
// the highest stamp held as stored, whichever is higher, and the refused
// writes and every later pending write are stamped anew (see Push, step 3).
//
// # Writing
//
// Write validates the value against schema.CaseFile (collection, field,
// type, size; server-only fields and rows of server-created collections are
// refused; a fixed field cannot change), then in one transaction: takes a
// stamp (inside the transaction, so it is greater than every change already
// applied), replaces the local value, appends {collection, id, field, value,
// hlc, base} to the outbox where base is the hlc of the local value it
// replaced ("" when the field had none), and records the row's scopes as
// far as local data tells (a family its own, family_id rows that family's,
// intake rows intake:<region> and their family, plan goals and contacts
// their trajectory's). Every write is kept, also several of one field: the
// server logs them all and the bases chain them.
//
// # Push
//
// Push loops until the outbox is empty:
//
//  1. If a batch is persisted and unanswered, take it again, same batch_id,
//     same changes. Otherwise take the oldest unbatched writes (at most
//     BatchSize, and MaxBatchBytes of values), give them a new batch_id
//     (UUIDv7) and commit that BEFORE sending.
//  2. POST /v1/sync/push {device_id, batch_id, schema_version, changes}.
//     A transport failure leaves everything as it is: the next Push re-sends
//     the same batch_id, and the server answers its first answer without
//     applying twice. 413 too_large: the second half of the batch goes back
//     to the outbox and the same batch_id is sent with the first half.
//  3. On an answer, in one transaction: delete the batch and its writes,
//     keep each rejected or quarantined write (by index) as a problem, drop
//     its local value when no later local write replaced it (the server did
//     not take it) and queue the row's held scopes for a refetch so the
//     server's value comes back; observe server_hlc. Writes rejected with
//     clock_skew instead stay in the outbox: the clock is calibrated and
//     rebased, and they and every later pending write get new stamps in
//     write order (bases and the local value follow), to be sent in the next
//     batch. A second clock_skew answer in the same Push ends it with a
//     clock_skew error, the writes still queued.
//
// # Pull
//
// Pull sends {device_id, schema_version, cursor, limit} and loops while more
// is true; the FIRST request of a pull also carries refetch (scopes whose
// checksum differed) and, when an eviction is still to be proven,
// held_hash. Each page is applied in one transaction together with its
// cursor:
//
//  1. evict: for each scope, delete it from held_scopes and from every row;
//     a row left with no scope is deleted (a referral held through
//     intake:<region> and family:<id> keeps its intake copy when the family
//     is evicted). Writes in the outbox stay: they are pushed and
//     quarantined by the server, so no note is lost. A proof becomes due.
//  2. changes: observe the hlc; replace the local value only when
//     crdt.Wins(pulled, local), so a newer local write, pending or not,
//     stays; record the change's scope for its row and as held.
//  3. on the last page (more=false): every scope named in checksums is held
//     (the server checksums exactly the scopes it counts the device as
//     holding, empty ones included). Then compare: for each scope, XOR of
//     crdt.FieldSum(collection, id, field, hlc) over the local fields of the
//     rows in that scope, as crdt.FormatSum. Scopes with writes still in the
//     outbox are skipped (they differ until pushed). The scopes that differ
//     are asked for again at once with refetch (one extra round per Pull);
//     any still differing are saved and asked for on the next Pull.
//
// The proof: the first request of the next pull after an eviction carries
// held_hash = crdt.ScopesHash(held_scopes), computed when it is sent, so it
// names the same set as the server's cursor; the proof is no longer due once
// a request carrying it was answered.
//
// A cursor the server calls invalid (its database was restored from a
// backup) is dropped and the pull starts over from "". A pull from "" (that
// one, or the first after a login as a new device) brings every held scope
// in full, so at its end held scopes the server no longer names in
// checksums are evicted locally.
//
// # Offering own writes again
//
// A server restored from a backup has lost the writes it acknowledged after
// that backup; the devices that made them still hold them. So, in the
// transaction that drops a refused cursor, the device queues in the outbox
// every field whose local value it wrote (the stamp's node is its device
// id) and that is not already pending under that stamp: same stamp, same
// value, no base, oldest stamp first; unbatched pending writes move behind
// them (a batch already formed keeps its id and changes). They go out in
// new batches like any write. The merge makes this safe: a write the server
// holds is ignored, a lost one applied, one superseded by a later write
// logged stale, one of a family the device no longer holds quarantined.
// They are never stamped anew: that would let old values win over newer
// ones. The same happens for the rows of a scope whose checksum still
// differs after the refetch (a restored server whose log grew past the
// device's cursor again does not refuse it), once per episode: the scopes
// offered are kept in meta (reoffered_scopes) until they match, so a
// difference the device cannot mend (another device's write the server
// lost) does not resend its writes on every Pull. PullResult.Reoffered and
// Status.Reoffered count them; Sync pushes and pulls once more when a pull
// offered any.
//
// # Auth
//
// Requests carry the access token. Shortly before it expires (by the
// device's clock and expires_in) the token pair is refreshed first (POST
// /v1/auth/refresh; the refresh token rotates and the new pair is saved at
// once, the old one being spent). A 401 unauthorized all the same refreshes
// once and retries. A 401 device_revoked, on any call including the refresh,
// wipes the replica (Wipe) and returns the error.
//
// # Offline
//
// Offline is not a mode: Push and Pull return the transport's error
// (IsOffline reports it) and the outbox keeps everything. Sync is Push then
// Pull.
//
// # Testing against a server
//
// Options.Transport is a test hook: a chaos test wraps the real transport to
// drop answers after the server handled the request. State, Scopes and
// Checksums expose what convergence checks compare with the server.
package client
