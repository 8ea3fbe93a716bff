package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// PullResult sums up one Pull.
type PullResult struct {
	Pages      int      // pull requests answered
	Received   int      // changes received
	Applied    int      // of those, the ones that became the local value
	Evicted    []string // scopes the server took away; their rows are gone
	Refetched  []string // scopes asked for again after a checksum mismatch
	Mismatched []string // scopes still differing after the refetch; asked again on the next Pull
	// Reoffered is how many of the device's own writes were queued again,
	// with the same stamp and value, to be pushed by the next Push (Sync
	// does it at once): every field whose local value this device wrote,
	// when the server refused the cursor as invalid (restored from a
	// backup), and those of the scopes in Mismatched, the first time they
	// still differ after a refetch. See queueOwn.
	Reoffered int
}

// maxPages guards against a server that keeps answering more=true.
const maxPages = 100_000

// Pull fetches every change in the device's scopes since its cursor, page by
// page until the server says there is no more. Each page is applied in one
// transaction together with the new cursor, so an interrupted Pull resumes
// where it stopped. See the package documentation for evictions, proofs and
// checksums. When the checksums of the last page do not match, Pull asks
// once more for the scopes that differ (refetch); those still differing
// after that are asked for on the next Pull.
func (r *Replica) Pull(ctx context.Context) (PullResult, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	res, err := r.pull(ctx)
	if err != nil {
		r.noteError(err)
	}
	return res, err
}

func (r *Replica) pull(ctx context.Context) (PullResult, error) {
	var res PullResult
	refetch, err := getMetaList(ctx, r.db.Reader, metaRefetch)
	if err != nil {
		return res, fmt.Errorf("pull: %w", err)
	}
	for round := 0; ; round++ {
		mism, err := r.pullRound(ctx, refetch, &res)
		if err != nil {
			return res, fmt.Errorf("pull: %w", err)
		}
		if len(mism) == 0 {
			break
		}
		if round == 1 {
			res.Mismatched = mism
			if err := setMetaList(ctx, r.db.Writer, metaRefetch, mism); err != nil {
				return res, fmt.Errorf("pull: %w", err)
			}
			break
		}
		refetch = mism
		res.Refetched = append(res.Refetched, mism...)
	}
	n, err := r.reofferMismatched(ctx, res.Mismatched)
	if err != nil {
		return res, fmt.Errorf("pull: %w", err)
	}
	res.Reoffered += n
	err = r.tx(ctx, func(tx *sql.Tx) error {
		if err := setMeta(ctx, tx, metaLastSync, r.now().UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
		return setMeta(ctx, tx, metaLastError, "")
	})
	return res, err
}

// pullRound pulls until more is false and returns the scopes whose checksum
// differs. Its first request carries refetch and, when an eviction is still
// to be proven, held_hash. A cursor the server calls invalid (its database
// was restored from a backup) is dropped and the round starts over from
// nothing. After a round from nothing, held scopes the server no longer
// names are evicted locally.
func (r *Replica) pullRound(ctx context.Context, refetch []string, res *PullResult) ([]string, error) {
	cursor, err := getMeta(ctx, r.db.Reader, metaCursor)
	if err != nil {
		return nil, err
	}
	// A pull from nothing brings every held scope in full: held scopes it
	// does not name are no longer held (after a re-login as a new device,
	// or a cursor the server no longer knows).
	reset, retried := cursor == "", false
	for page := 0; page < maxPages; page++ {
		dev := r.DeviceID()
		if dev == "" {
			return nil, errNotLoggedIn
		}
		req := protocol.PullRequest{DeviceID: dev, SchemaVersion: schema.Version, Cursor: cursor, Limit: r.opts.PageSize}
		if page == 0 {
			req.Refetch = refetch
			due, err := getMeta(ctx, r.db.Reader, metaProve)
			if err != nil {
				return nil, err
			}
			if due != "" {
				held, err := heldScopes(ctx, r.db.Reader)
				if err != nil {
					return nil, err
				}
				req.HeldHash = crdt.ScopesHash(held)
			}
		}
		var resp protocol.PullResponse
		err := r.call(ctx, "/v1/sync/pull", req, &resp)
		if page == 0 && !retried && cursor != "" && code(err) == samenplan.EINVALID {
			n, err := r.reoffer(ctx)
			if err != nil {
				return nil, err
			}
			res.Reoffered += n
			reset, retried, cursor, page = true, true, "", -1
			continue
		}
		if err != nil {
			return nil, err
		}
		mism, err := r.applyPage(ctx, req, &resp, reset, res)
		if err != nil {
			return nil, err
		}
		res.Pages++
		if !resp.More {
			return mism, nil
		}
		if resp.Cursor == cursor && len(resp.Changes) == 0 {
			return nil, fmt.Errorf("server answered more=true without progress at cursor %q", cursor)
		}
		cursor = resp.Cursor
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

// reoffer handles a cursor the server refused as invalid, in one
// transaction: the cursor is dropped (the pull starts over from "") and the
// device's own writes are queued again (queueOwn). A server restored from a
// backup has lost the writes it acknowledged after that backup; the device
// still holds them and offers them again. It returns how many writes were
// queued.
func (r *Replica) reoffer(ctx context.Context) (int, error) {
	dev := r.DeviceID()
	if dev == "" {
		return 0, errNotLoggedIn
	}
	var n int
	err := r.tx(ctx, func(tx *sql.Tx) error {
		if err := setMeta(ctx, tx, metaCursor, ""); err != nil {
			return err
		}
		var err error
		if n, err = r.queueOwn(ctx, tx, dev, nil); err != nil {
			return err
		}
		// Every scope had its own writes offered: none again at the
		// mismatch that follows (see reofferMismatched).
		held, err := heldScopes(ctx, tx)
		if err != nil {
			return err
		}
		return setMetaList(ctx, tx, metaReoffScopes, held)
	})
	if err != nil {
		return 0, fmt.Errorf("offer own writes again: %w", err)
	}
	return n, nil
}

// reofferMismatched handles scopes whose checksums still differ after a
// refetch: the server's state of them is now on the device, so what differs
// is what the device holds and the server does not. A restored server whose
// log has grown past the device's cursor again does not refuse the cursor;
// this is how that device finds out. The device's own writes in those
// scopes are queued again (queueOwn), once per episode: a scope offered is
// remembered (meta reoffered_scopes) until a pull finds it equal or it has
// no more pending writes and differs no more, so a difference that is not
// the device's to mend (a write of another device the server lost) does not
// send the same writes on every Pull.
func (r *Replica) reofferMismatched(ctx context.Context, mism []string) (int, error) {
	dev := r.DeviceID()
	if dev == "" {
		return 0, errNotLoggedIn
	}
	if len(mism) == 0 {
		// The common case, without taking the write lock.
		prev, err := getMeta(ctx, r.db.Reader, metaReoffScopes)
		if err != nil || prev == "" {
			return 0, err
		}
	}
	var n int
	err := r.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		prev, err := getMetaList(ctx, tx, metaReoffScopes)
		if err != nil || (len(prev) == 0 && len(mism) == 0) {
			return err
		}
		still := make(map[string]bool, len(mism))
		for _, s := range mism {
			still[s] = true
		}
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT s.scope FROM outbox o JOIN row_scopes s
			ON s.collection = o.collection AND s.id = o.id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			still[s] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var keep, todo []string
		for _, s := range prev {
			if still[s] {
				keep = append(keep, s)
			}
		}
		for _, s := range mism {
			if !slices.Contains(prev, s) {
				todo = append(todo, s)
			}
		}
		if len(todo) > 0 {
			if n, err = r.queueOwn(ctx, tx, dev, todo); err != nil {
				return err
			}
		}
		return setMetaList(ctx, tx, metaReoffScopes, append(keep, todo...))
	})
	if err != nil {
		return 0, fmt.Errorf("offer own writes of %v again: %w", mism, err)
	}
	return n, nil
}

// queueOwn queues again, within tx, every field whose local value device
// dev wrote (its stamp's node is dev) and that is not already waiting in
// the outbox under that stamp: the same stamp and value, no base (the
// replica keeps no base once a write is acknowledged), oldest stamp first.
// With scopes, only the fields of rows in those scopes. Re-sending is safe
// by the merge rules: a write the server holds with the same stamp is
// ignored, one it lost is applied, one a later write superseded is logged
// stale, and one of a family the device no longer holds is quarantined.
// The writes are not stamped anew, which would let old values win over
// newer ones. Unbatched writes already in the outbox move behind them, so
// the server receives writes in the order they were made (a row before the
// rows that refer to it); a batch already formed keeps its changes and id.
// Status reports the count (Reoffered) when it is not zero.
func (r *Replica) queueOwn(ctx context.Context, tx *sql.Tx, dev string, scopes []string) (int, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM outbox`).Scan(&last); err != nil {
		return 0, err
	}
	filter, args := "", []any{dev}
	if scopes != nil {
		buf, err := json.Marshal(scopes)
		if err != nil {
			return 0, err
		}
		filter = `AND EXISTS (SELECT 1 FROM row_scopes s WHERE s.collection = f.collection AND s.id = f.id
			AND s.scope IN (SELECT value FROM json_each(?)))`
		args = append(args, string(buf))
	}
	// A stamp's node is everything after "<13 digits>-<4 hex>-".
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (collection, id, field, value, hlc, base)
		SELECT f.collection, f.id, f.field, f.value, f.hlc, '' FROM fields f
		WHERE substr(f.hlc, 20) = ? `+filter+` AND NOT EXISTS (SELECT 1 FROM outbox o
			WHERE o.collection = f.collection AND o.id = f.id AND o.field = f.field AND o.hlc = f.hlc)
		ORDER BY f.hlc, f.collection, f.id, f.field`, args...)
	if err != nil {
		return 0, err
	}
	added, err := res.RowsAffected()
	if err != nil || added == 0 {
		return 0, err
	}
	if err := setMeta(ctx, tx, metaReoffered, strconv.FormatInt(added, 10)); err != nil {
		return 0, err
	}
	if err := setMeta(ctx, tx, metaReoffAt, r.now().UTC().Format(time.RFC3339Nano)); err != nil {
		return 0, err
	}
	// The writes queued before, not yet in a batch, move behind them.
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (collection, id, field, value, hlc, base)
		SELECT collection, id, field, value, hlc, base FROM outbox WHERE batch_id IS NULL AND seq <= ? ORDER BY seq`, last); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE batch_id IS NULL AND seq <= ?`, last); err != nil {
		return 0, err
	}
	return int(added), nil
}

// applyPage applies one pull answer in one transaction: evictions first,
// then the changes (LWW against the local value), the new cursor and clock,
// and, on the last page, the checksum comparison.
func (r *Replica) applyPage(ctx context.Context, req protocol.PullRequest, resp *protocol.PullResponse, reset bool, res *PullResult) (mism []string, err error) {
	clock := r.currentClock()
	var applied int
	err = r.tx(ctx, func(tx *sql.Tx) error {
		mism, applied = nil, 0
		// The server has what this request carried.
		if len(req.Refetch) > 0 {
			if err := setMeta(ctx, tx, metaRefetch, ""); err != nil {
				return err
			}
		}
		if req.HeldHash != "" {
			if err := setMeta(ctx, tx, metaProve, ""); err != nil {
				return err
			}
		}
		if len(resp.Evict) > 0 {
			if err := evict(ctx, tx, resp.Evict); err != nil {
				return err
			}
			// Proven on the next pull, with the scopes held by then.
			if err := setMeta(ctx, tx, metaProve, "due"); err != nil {
				return err
			}
		}
		if err := observe(clock, resp.ServerHLC); err != nil {
			return err
		}
		// A pull answer is fresh (never replayed like a push answer), so
		// its server_hlc tells how far the device's wall clock is off.
		if err := calibrate(clock, resp.ServerHLC); err != nil {
			return err
		}
		n, err := applyChanges(ctx, tx, clock, resp.Changes)
		if err != nil {
			return err
		}
		applied = n
		if err := setMeta(ctx, tx, metaCursor, resp.Cursor); err != nil {
			return err
		}
		if !resp.More {
			if err := holdChecksummed(ctx, tx, resp.Checksums, reset); err != nil {
				return err
			}
			if mism, err = compareChecksums(ctx, tx, resp.Checksums); err != nil {
				return err
			}
			// The last page carries the whole current list of signals.
			signals := resp.Signals
			if signals == nil {
				signals = []protocol.Signal{}
			}
			buf, err := json.Marshal(signals)
			if err != nil {
				return err
			}
			if err := setMeta(ctx, tx, metaSignals, string(buf)); err != nil {
				return err
			}
		}
		return saveClock(ctx, tx, clock)
	})
	if err != nil {
		return nil, err
	}
	res.Received += len(resp.Changes)
	res.Applied += applied
	res.Evicted = append(res.Evicted, resp.Evict...)
	return mism, nil
}

// Signals returns the fired signals of the families the device's user
// holds, as the last complete pull delivered them (coaches only; none
// before the first pull). They are the server's, read-only.
func (r *Replica) Signals(ctx context.Context) ([]protocol.Signal, error) {
	v, err := getMeta(ctx, r.db.Reader, metaSignals)
	if err != nil || v == "" {
		return nil, err
	}
	var out []protocol.Signal
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, fmt.Errorf("stored signals: %w", err)
	}
	return out, nil
}

// evict removes scopes: each row loses the scope, and a row left with no
// scope at all is deleted. Writes still in the outbox stay there: they are
// pushed (and quarantined by the server) so no note is lost.
func evict(ctx context.Context, tx *sql.Tx, scopes []string) error {
	for _, scope := range scopes {
		if _, err := tx.ExecContext(ctx, `DELETE FROM held_scopes WHERE scope = ?`, scope); err != nil {
			return fmt.Errorf("evict %s: %w", scope, err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT collection, id FROM row_scopes WHERE scope = ?`, scope)
		if err != nil {
			return fmt.Errorf("evict %s: %w", scope, err)
		}
		var keys [][2]string
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				rows.Close()
				return fmt.Errorf("evict %s: %w", scope, err)
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("evict %s: %w", scope, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM row_scopes WHERE scope = ?`, scope); err != nil {
			return fmt.Errorf("evict %s: %w", scope, err)
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM fields WHERE collection = ? AND id = ?
				AND NOT EXISTS (SELECT 1 FROM row_scopes WHERE collection = ? AND id = ?)`, k[0], k[1], k[0], k[1]); err != nil {
				return fmt.Errorf("evict %s: %w", scope, err)
			}
		}
	}
	return nil
}

// applyChanges merges pulled changes into the local fields: a change
// replaces the local value only when crdt.Wins says so, so a newer local
// write (pending or not) stays. Every stamp is observed into the clock and
// every change's scope recorded for its row.
func applyChanges(ctx context.Context, tx *sql.Tx, clock *crdt.Clock, changes []protocol.Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	get, err := tx.PrepareContext(ctx, `SELECT value, hlc FROM fields WHERE collection = ? AND id = ? AND field = ?`)
	if err != nil {
		return 0, err
	}
	defer get.Close()
	put, err := tx.PrepareContext(ctx, `INSERT INTO fields (collection, id, field, value, hlc) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (collection, id, field) DO UPDATE SET value = excluded.value, hlc = excluded.hlc`)
	if err != nil {
		return 0, err
	}
	defer put.Close()
	scope, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO row_scopes (scope, collection, id) VALUES (?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer scope.Close()
	held, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO held_scopes (scope) VALUES (?)`)
	if err != nil {
		return 0, err
	}
	defer held.Close()
	applied := 0
	seen := make(map[string]bool)
	for i, c := range changes {
		stamp, err := crdt.ParseStamp(c.HLC)
		if err != nil {
			return 0, fmt.Errorf("change %d: %w", i, err)
		}
		if len(c.Value) == 0 {
			return 0, fmt.Errorf("change %d: no value", i)
		}
		if clock != nil {
			if err := clock.Observe(stamp, 0); err != nil {
				return 0, err
			}
		}
		in := crdt.Change{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value, HLC: stamp}
		var cur []byte
		var curHLC string
		err = get.QueryRowContext(ctx, c.Collection, c.ID, c.Field).Scan(&cur, &curHLC)
		win := errors.Is(err, sql.ErrNoRows)
		if err != nil && !win {
			return 0, err
		}
		if !win {
			local, perr := crdt.ParseStamp(curHLC)
			if perr != nil {
				return 0, fmt.Errorf("local stamp of %s %s %s: %w", c.Collection, c.ID, c.Field, perr)
			}
			win = crdt.Wins(in, crdt.Change{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: cur, HLC: local})
		}
		if win {
			if _, err := put.ExecContext(ctx, c.Collection, c.ID, c.Field, string(c.Value), c.HLC); err != nil {
				return 0, err
			}
			applied++
		}
		if c.Scope != "" {
			if _, err := scope.ExecContext(ctx, c.Scope, c.Collection, c.ID); err != nil {
				return 0, err
			}
			if !seen[c.Scope] {
				seen[c.Scope] = true
				if _, err := held.ExecContext(ctx, c.Scope); err != nil {
					return 0, err
				}
			}
		}
	}
	return applied, nil
}

// holdChecksummed records as held every scope the last page has a checksum
// for: the server checksums exactly the scopes it counts the device as
// holding, empty ones included, and the eviction proof must hash that set.
// After a cursor reset the server has forgotten what the device held, so a
// held scope it no longer names is evicted here.
func holdChecksummed(ctx context.Context, tx *sql.Tx, sums map[string]string, reset bool) error {
	if sums == nil {
		return nil
	}
	for s := range sums {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO held_scopes (scope) VALUES (?)`, s); err != nil {
			return err
		}
	}
	if !reset {
		return nil
	}
	held, err := heldScopes(ctx, tx)
	if err != nil {
		return err
	}
	var gone []string
	for _, s := range held {
		if _, ok := sums[s]; !ok {
			gone = append(gone, s)
		}
	}
	return evict(ctx, tx, gone)
}

// compareChecksums returns, sorted, the scopes whose local checksum differs
// from the server's. A scope with writes still in the outbox is skipped: it
// differs by design until they are pushed.
func compareChecksums(ctx context.Context, tx *sql.Tx, sums map[string]string) ([]string, error) {
	var out []string
	for _, scope := range sortedKeys(sums) {
		var pending bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM outbox o JOIN row_scopes s
			ON s.collection = o.collection AND s.id = o.id WHERE s.scope = ?)`, scope).Scan(&pending); err != nil {
			return nil, err
		}
		if pending {
			continue
		}
		sum, err := scopeSum(ctx, tx, scope)
		if err != nil {
			return nil, err
		}
		if crdt.FormatSum(sum) != strings.ToLower(sums[scope]) {
			out = append(out, scope)
		}
	}
	return out, nil
}

// SyncResult is the outcome of Sync.
type SyncResult struct {
	Push PushResult
	Pull PullResult
}

// Sync pushes the outbox, then pulls. A failed push does not stop the pull
// (an invalid batch must not keep the device from receiving), except when
// the device is offline or was revoked; the errors are joined. When the pull
// offered the device's own writes again (PullResult.Reoffered: the server
// was restored from a backup), Sync pushes and pulls once more, so that one
// Sync puts them back on the server and compares the checksums after it;
// the results add up.
func (r *Replica) Sync(ctx context.Context) (SyncResult, error) {
	var res SyncResult
	var perr error
	res.Push, perr = r.Push(ctx)
	if perr != nil && (IsOffline(perr) || r.DeviceID() == "" || ctx.Err() != nil) {
		return res, perr
	}
	var err error
	res.Pull, err = r.Pull(ctx)
	if err != nil || res.Pull.Reoffered == 0 {
		return res, errors.Join(perr, err)
	}
	push, perr2 := r.Push(ctx)
	res.Push.add(push)
	if perr2 != nil && (IsOffline(perr2) || r.DeviceID() == "" || ctx.Err() != nil) {
		return res, errors.Join(perr, perr2)
	}
	pull, err := r.Pull(ctx)
	res.Pull.add(pull)
	return res, errors.Join(perr, perr2, err)
}

// add sums up a later pull: counts add up, lists are appended, and
// Mismatched is the later one's.
func (p *PullResult) add(o PullResult) {
	p.Pages += o.Pages
	p.Received += o.Received
	p.Applied += o.Applied
	p.Evicted = append(p.Evicted, o.Evicted...)
	p.Refetched = append(p.Refetched, o.Refetched...)
	p.Mismatched = o.Mismatched
	p.Reoffered += o.Reoffered
}
