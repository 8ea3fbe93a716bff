package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// PushResult sums up the batches one Push sent.
type PushResult struct {
	Batches     int // batches answered by the server
	Sent        int // changes in those batches
	Applied     int
	Ignored     int
	Rejected    []Problem
	Quarantined []Problem
	// Restamped are the writes stamped anew after the server refused
	// writes with clock_skew: those refused and every later write still in
	// the outbox. They were queued again under their new stamps.
	Restamped []Restamp
}

// add sums up a later push: counts add up, lists are appended.
func (p *PushResult) add(o PushResult) {
	p.Batches += o.Batches
	p.Sent += o.Sent
	p.Applied += o.Applied
	p.Ignored += o.Ignored
	p.Rejected = append(p.Rejected, o.Rejected...)
	p.Quarantined = append(p.Quarantined, o.Quarantined...)
	p.Restamped = append(p.Restamped, o.Restamped...)
}

// Restamp is a pending write that got a new stamp: Old is the stamp it had,
// New the one it is now queued (and held locally) with. BatchID is the batch
// whose answer refused writes with clock_skew; the restamps of one answer
// hold together (a new stamp may equal the old stamp of another write of
// the same answer), those of a later answer come after them.
type Restamp struct {
	Key      crdt.Key
	Old, New string
	BatchID  string
}

// SkewTolerance is how far the device's clock may be from server_hlc before
// the replica corrects its clock's offset (crdt.Clock.Calibrate). It is well
// under the server's 5-minute limit on stamps ahead of its clock.
const SkewTolerance = time.Minute

// RestampTolerance is the tolerance of the calibration after a clock_skew
// refusal: enough to ignore the answer's time on the wire, so that a wall
// clock put right is not held back by a few milliseconds.
const RestampTolerance = 500 * time.Millisecond

// batch is a batch formed from the outbox and persisted under its id.
type batch struct {
	id      string
	seqs    []int64
	changes []protocol.Change
}

// Push sends the outbox to the server, batch by batch, until it is empty.
// A batch is written down with its batch_id before it is sent and removed
// only once the server answered it, so after a lost answer, a timeout or a
// crash the next Push re-sends the same batch_id, and the server answers
// with its first answer without applying anything twice.
//
// Rejected and quarantined writes are kept as problems (see Status); their
// local value is dropped when no later write replaced it, and the row's
// scopes are fetched again on the next Pull so the local copy returns to the
// server's. Writes refused with clock_skew are not problems: the device's
// clock was ahead of the server's, so the replica corrects its clock (an
// offset from server_hlc, its last reading lowered to what the server has
// stored), stamps those writes and every later pending write anew and sends
// them again (see PushResult.Restamped). Should the server refuse them with
// clock_skew once more in the same Push, they stay queued and Push returns
// an error with code clock_skew. An error leaves the outbox as it was:
// IsOffline tells a network failure from an answer of the server.
func (r *Replica) Push(ctx context.Context) (PushResult, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	res, err := r.push(ctx)
	if err != nil {
		r.noteError(err)
	}
	return res, err
}

func (r *Replica) push(ctx context.Context) (PushResult, error) {
	var res PushResult
	rebased := false
	for {
		dev := r.DeviceID()
		if dev == "" {
			return res, errNotLoggedIn
		}
		b, err := r.nextBatch(ctx)
		if err != nil {
			return res, fmt.Errorf("push: %w", err)
		}
		if b == nil {
			return res, nil
		}
		req := protocol.PushRequest{DeviceID: dev, BatchID: b.id, SchemaVersion: schema.Version, Changes: b.changes}
		var resp protocol.PushResponse
		err = r.call(ctx, "/v1/sync/push", req, &resp)
		if code(err) == samenplan.ETOOLARGE && len(b.seqs) > 1 {
			// The server refused the body before handling it: send the same
			// batch id again with the first half only.
			if err := r.shrinkBatch(ctx, b); err != nil {
				return res, fmt.Errorf("push batch %s: %w", b.id, err)
			}
			continue
		}
		if err != nil {
			return res, fmt.Errorf("push batch %s: %w", b.id, err)
		}
		if resp.BatchID != b.id {
			return res, fmt.Errorf("push batch %s: answer is for batch %q", b.id, resp.BatchID)
		}
		ack, err := r.ackBatch(ctx, b, resp)
		if err != nil {
			return res, fmt.Errorf("push batch %s: %w", b.id, err)
		}
		res.Batches++
		res.Sent += len(b.changes)
		res.Applied += resp.Applied
		res.Ignored += resp.Ignored
		res.Rejected = append(res.Rejected, ack.rejected...)
		res.Quarantined = append(res.Quarantined, ack.quarantined...)
		res.Restamped = append(res.Restamped, ack.restamped...)
		if ack.skewed > 0 {
			if rebased {
				// The corrected clock did not help (the server's clock went
				// back?): keep the writes queued, try again on the next Push.
				return res, samenplan.Errorf(samenplan.ECLOCKSKEW,
					"De klok van dit toestel loopt voor op die van de server; %d wijzigingen wachten / the device's clock is ahead of the server's: %d writes wait in the outbox",
					ack.skewed, ack.skewed)
			}
			rebased = true
		}
	}
}

// nextBatch returns the oldest batch not yet answered or, when there is
// none, forms and persists a new one from the oldest unbatched writes. It
// returns nil when the outbox is empty.
func (r *Replica) nextBatch(ctx context.Context) (*batch, error) {
	var b *batch
	err := r.tx(ctx, func(tx *sql.Tx) error {
		b = nil
		var id string
		err := tx.QueryRowContext(ctx, `SELECT batch_id FROM batches ORDER BY seq LIMIT 1`).Scan(&id)
		if err == nil {
			got, err := loadBatch(ctx, tx, id)
			if err != nil {
				return err
			}
			if len(got.changes) == 0 { // emptied (cannot happen, but must not block)
				_, err := tx.ExecContext(ctx, `DELETE FROM batches WHERE batch_id = ?`, id)
				if err != nil {
					return err
				}
			} else {
				b = got
				_, err := tx.ExecContext(ctx, `UPDATE batches SET attempts = attempts + 1 WHERE batch_id = ?`, id)
				return err
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT seq, length(value) FROM outbox WHERE batch_id IS NULL ORDER BY seq LIMIT ?`, r.opts.BatchSize)
		if err != nil {
			return err
		}
		var last int64
		n, size := 0, 0
		for rows.Next() {
			var seq int64
			var l int
			if err := rows.Scan(&seq, &l); err != nil {
				rows.Close()
				return err
			}
			if n > 0 && size+l > r.opts.MaxBatchBytes {
				break
			}
			last, n, size = seq, n+1, size+l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		id = NewID()
		if _, err := tx.ExecContext(ctx, `INSERT INTO batches (batch_id, created_at, attempts) VALUES (?, ?, 1)`,
			id, r.now().UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET batch_id = ? WHERE batch_id IS NULL AND seq <= ?`, id, last); err != nil {
			return err
		}
		b, err = loadBatch(ctx, tx, id)
		return err
	})
	return b, err
}

func loadBatch(ctx context.Context, tx *sql.Tx, id string) (*batch, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, collection, id, field, value, hlc, base FROM outbox WHERE batch_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	b := &batch{id: id}
	for rows.Next() {
		var seq int64
		var c protocol.Change
		var v []byte
		if err := rows.Scan(&seq, &c.Collection, &c.ID, &c.Field, &v, &c.HLC, &c.Base); err != nil {
			return nil, err
		}
		c.Value = v
		b.seqs = append(b.seqs, seq)
		b.changes = append(b.changes, c)
	}
	return b, rows.Err()
}

// shrinkBatch gives the second half of a batch back to the outbox.
func (r *Replica) shrinkBatch(ctx context.Context, b *batch) error {
	mid := b.seqs[len(b.seqs)/2]
	_, err := r.db.Writer.ExecContext(ctx, `UPDATE outbox SET batch_id = NULL WHERE batch_id = ? AND seq >= ?`, b.id, mid)
	return err
}

// ack is what ackBatch did with an answer.
type ack struct {
	rejected, quarantined []Problem
	skewed                int // writes refused with clock_skew, queued again
	restamped             []Restamp
}

// ackBatch records the server's answer to a batch in one transaction: the
// batch leaves the outbox, problems are kept, the local values of refused
// writes are dropped and their scopes queued for a refetch, and the
// server's clock is observed. Writes refused with clock_skew stay in the
// outbox instead: the clock is corrected and they are stamped anew (skew).
func (r *Replica) ackBatch(ctx context.Context, b *batch, resp protocol.PushResponse) (ack, error) {
	clock := r.currentClock()
	at := r.now().UTC()
	var out ack
	err := r.tx(ctx, func(tx *sql.Tx) error {
		out = ack{}
		var skewed []int64 // outbox seqs of the writes refused with clock_skew
		for _, p := range resp.Rejected {
			if p.Code == samenplan.ECLOCKSKEW && p.Index >= 0 && p.Index < len(b.seqs) {
				skewed = append(skewed, b.seqs[p.Index])
			}
		}
		for _, seq := range skewed {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET batch_id = NULL WHERE seq = ?`, seq); err != nil {
				return err
			}
		}
		// The batch leaves the outbox first: revert looks for later writes.
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE batch_id = ?`, b.id); err != nil {
			return err
		}
		refetch, err := getMetaList(ctx, tx, metaRefetch)
		if err != nil {
			return err
		}
		for _, set := range []struct {
			kind  string
			probs []protocol.Problem
			out   *[]Problem
		}{{Rejected, resp.Rejected, &out.rejected}, {Quarantined, resp.Quarantined, &out.quarantined}} {
			for _, p := range set.probs {
				if p.Index < 0 || p.Index >= len(b.changes) {
					continue
				}
				if set.kind == Rejected && p.Code == samenplan.ECLOCKSKEW {
					continue // queued again below
				}
				c := b.changes[p.Index]
				res, err := tx.ExecContext(ctx, `INSERT INTO problems (kind, batch_id, collection, id, field, value, hlc, code, message, at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, set.kind, b.id, c.Collection, c.ID, c.Field, string(c.Value), c.HLC,
					p.Code, p.Message, at.Format(time.RFC3339Nano))
				if err != nil {
					return err
				}
				pid, _ := res.LastInsertId()
				*set.out = append(*set.out, Problem{ID: pid, Kind: set.kind, BatchID: b.id, Change: c, Code: p.Code, Message: p.Message, At: at})
				scopes, err := revert(ctx, tx, c)
				if err != nil {
					return err
				}
				refetch = append(refetch, scopes...)
			}
		}
		if err := setMetaList(ctx, tx, metaRefetch, refetch); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM batches WHERE batch_id = ?`, b.id); err != nil {
			return err
		}
		if err := observe(clock, resp.ServerHLC); err != nil {
			return err
		}
		if len(skewed) > 0 {
			if out.restamped, err = skew(ctx, tx, clock, resp.ServerHLC, slices.Min(skewed)); err != nil {
				return err
			}
			for i := range out.restamped {
				out.restamped[i].BatchID = b.id
			}
			out.skewed = len(skewed)
		}
		if err := setMeta(ctx, tx, metaLastError, ""); err != nil {
			return err
		}
		return saveClock(ctx, tx, clock)
	})
	return out, err
}

// skew handles writes the server refused with clock_skew, within the
// transaction of its answer; from is the outbox seq of the first of them.
// The server's clock has observed every stamp it stored, so its server_hlc
// is at or above them (see docs/protocol.md). The device's clock, ahead of
// the server's, learns an offset from server_hlc (Calibrate) and its last
// reading is lowered (Rebase) to the floor: server_hlc, or the highest stamp
// the replica holds as stored (a field value that is not a pending write)
// when that is higher. Every later stamp is then above everything the
// server has, and within its limit. The refused writes and every later
// pending write (they were stamped after them, so as far ahead) get new
// stamps in write order; their local values and bases follow.
func skew(ctx context.Context, tx *sql.Tx, clock *crdt.Clock, serverHLC string, from int64) ([]Restamp, error) {
	if clock == nil {
		return nil, nil
	}
	// Held to server_hlc within RestampTolerance only: server_hlc may run up
	// to the server's limit ahead of its wall clock (it has observed every
	// stamp it stored), so a device within SkewTolerance of it can still be
	// past the limit; a physical time at or below server_hlc is always
	// accepted.
	if err := calibrateWithin(clock, serverHLC, RestampTolerance); err != nil {
		return nil, err
	}
	floor := crdt.Stamp{}
	if serverHLC != "" {
		floor, _ = crdt.ParseStamp(serverHLC) // parsed by calibrate
	}
	var stored sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT max(f.hlc) FROM fields f WHERE NOT EXISTS (SELECT 1 FROM outbox o
		WHERE o.collection = f.collection AND o.id = f.id AND o.field = f.field AND o.hlc = f.hlc)`).Scan(&stored); err != nil {
		return nil, err
	}
	if stored.Valid {
		s, err := crdt.ParseStamp(stored.String)
		if err != nil {
			return nil, fmt.Errorf("stored stamp: %w", err)
		}
		if s.Compare(floor) > 0 {
			floor = s
		}
	}
	clock.Rebase(floor)
	return restamp(ctx, tx, clock, from)
}

// revert drops the local value of a write the server did not take, unless a
// later write replaced it, and returns the held scopes of its row: they are
// fetched again so the server's value comes back.
func revert(ctx context.Context, tx *sql.Tx, c protocol.Change) ([]string, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM fields WHERE collection = ? AND id = ? AND field = ? AND hlc = ?`,
		c.Collection, c.ID, c.Field, c.HLC)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT s.scope FROM row_scopes s JOIN held_scopes h ON h.scope = s.scope
		WHERE s.collection = ? AND s.id = ?`, c.Collection, c.ID)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A row written only here and refused entirely leaves no scope behind.
	_, err = tx.ExecContext(ctx, `DELETE FROM row_scopes WHERE collection = ? AND id = ?
		AND NOT EXISTS (SELECT 1 FROM fields WHERE collection = ? AND id = ?)
		AND NOT EXISTS (SELECT 1 FROM outbox WHERE collection = ? AND id = ?)`,
		c.Collection, c.ID, c.Collection, c.ID, c.Collection, c.ID)
	return out, err
}

// calibrate corrects the offset of clock from the server's stamp in wire
// form ("" is none) when they are more than SkewTolerance apart.
func calibrate(clock *crdt.Clock, wire string) error {
	return calibrateWithin(clock, wire, SkewTolerance)
}

// calibrateWithin is calibrate with the given tolerance.
func calibrateWithin(clock *crdt.Clock, wire string, tolerance time.Duration) error {
	if wire == "" || clock == nil {
		return nil
	}
	s, err := crdt.ParseStamp(wire)
	if err != nil {
		return fmt.Errorf("server stamp: %w", err)
	}
	clock.Calibrate(s, tolerance)
	return nil
}

// observe advances clock past a stamp in wire form; "" is no stamp.
func observe(clock *crdt.Clock, wire string) error {
	if wire == "" || clock == nil {
		return nil
	}
	s, err := crdt.ParseStamp(wire)
	if err != nil {
		return fmt.Errorf("server stamp: %w", err)
	}
	return clock.Observe(s, 0)
}
