package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/protocol"
)

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// HistoryEntry is one write of a field as the change log keeps it.
type HistoryEntry struct {
	Seq        int64           `json:"seq"`
	Field      string          `json:"field"`
	Value      json.RawMessage `json:"value"`
	HLC        string          `json:"hlc"`
	Base       string          `json:"base,omitempty"`
	UserID     string          `json:"user_id"`
	DeviceID   string          `json:"device_id"`
	BatchID    string          `json:"batch_id"`
	ReceivedAt time.Time       `json:"received_at"`
	Outcome    string          `json:"outcome"` // applied or stale
	// OldValue is the value an applied write replaced (nil for the field's
	// first value); nil for stale writes.
	OldValue json.RawMessage `json:"old_value,omitempty"`
}

// Outcomes of a logged write.
const (
	OutcomeApplied = "applied"
	OutcomeStale   = "stale"
)

// History returns every logged write of a row, in log order. An unknown row
// has an empty history.
func (r *Region) History(ctx context.Context, collection, id string) ([]HistoryEntry, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT l.seq, l.field, l.value, l.hlc, l.base, b.user_id, b.device_id, b.batch_id, b.received_at, l.outcome
		FROM change_log l JOIN log_batches b ON b.id = l.batch WHERE l.id = ? AND l.collection = ? ORDER BY l.seq`, id, collection)
	if err != nil {
		return nil, fmt.Errorf("history of %s/%s: %w", collection, id, err)
	}
	defer rows.Close()
	var out []HistoryEntry
	last := map[string]json.RawMessage{}
	for rows.Next() {
		var h HistoryEntry
		var at int64
		if err := rows.Scan(&h.Seq, &h.Field, (*[]byte)(&h.Value), &h.HLC, &h.Base, &h.UserID, &h.DeviceID, &h.BatchID, &at, &h.Outcome); err != nil {
			return nil, fmt.Errorf("history of %s/%s: %w", collection, id, err)
		}
		h.ReceivedAt = msTime(at)
		if h.Outcome == OutcomeApplied {
			h.OldValue = last[h.Field]
			last[h.Field] = h.Value
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// ConflictSide is one of two concurrent edits of a text field.
type ConflictSide struct {
	Seq        int64           `json:"seq"`
	Value      json.RawMessage `json:"value"`
	HLC        string          `json:"hlc"`
	UserID     string          `json:"user_id"`
	DeviceID   string          `json:"device_id"`
	ReceivedAt time.Time       `json:"received_at"`
}

// Conflict is a concurrent edit of a text field: the winner is the field's
// value (until a later write), the loser is kept in the log.
type Conflict struct {
	ID         int64        `json:"id"`
	Collection string       `json:"collection"`
	RowID      string       `json:"row_id"`
	Field      string       `json:"field"`
	DetectedAt time.Time    `json:"detected_at"`
	Winner     ConflictSide `json:"winner"`
	Loser      ConflictSide `json:"loser"`
}

// Conflicts returns every recorded conflict of the region, oldest first.
func (r *Region) Conflicts(ctx context.Context) ([]Conflict, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT c.id, c.collection, c.row_id, c.field, c.detected_at,
		w.seq, w.value, w.hlc, wb.user_id, wb.device_id, wb.received_at,
		l.seq, l.value, l.hlc, lb.user_id, lb.device_id, lb.received_at
		FROM conflicts c JOIN change_log w ON w.seq = c.winner_seq JOIN log_batches wb ON wb.id = w.batch
		JOIN change_log l ON l.seq = c.loser_seq JOIN log_batches lb ON lb.id = l.batch
		ORDER BY c.id`)
	if err != nil {
		return nil, fmt.Errorf("conflicts: %w", err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var c Conflict
		var at, wat, lat int64
		if err := rows.Scan(&c.ID, &c.Collection, &c.RowID, &c.Field, &at,
			&c.Winner.Seq, (*[]byte)(&c.Winner.Value), &c.Winner.HLC, &c.Winner.UserID, &c.Winner.DeviceID, &wat,
			&c.Loser.Seq, (*[]byte)(&c.Loser.Value), &c.Loser.HLC, &c.Loser.UserID, &c.Loser.DeviceID, &lat); err != nil {
			return nil, fmt.Errorf("conflicts: %w", err)
		}
		c.DetectedAt, c.Winner.ReceivedAt, c.Loser.ReceivedAt = msTime(at), msTime(wat), msTime(lat)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Quarantine statuses.
const (
	QuarantineOpen      = "open"
	QuarantineAccepted  = "accepted"
	QuarantineDiscarded = "discarded"
)

// QuarantineEntry is a write kept aside because its writer no longer held
// the row's family.
type QuarantineEntry struct {
	ID         int64           `json:"id"`
	DeviceID   string          `json:"device_id"`
	UserID     string          `json:"user_id"`
	BatchID    string          `json:"batch_id"`
	Collection string          `json:"collection"`
	RowID      string          `json:"row_id"`
	Field      string          `json:"field"`
	Value      json.RawMessage `json:"value"`
	HLC        string          `json:"hlc"`
	Scope      string          `json:"scope"`
	Reason     string          `json:"reason"`
	ReceivedAt time.Time       `json:"received_at"`
	Status     string          `json:"status"`
	DecidedBy  string          `json:"decided_by,omitempty"`
	DecidedAt  *time.Time      `json:"decided_at,omitempty"`
}

const quarantineCols = `id, device_id, user_id, batch_id, collection, row_id, field, value, hlc, scope, reason, received_at, status, decided_by, decided_at`

func scanQuarantine(s interface{ Scan(...any) error }) (QuarantineEntry, error) {
	var q QuarantineEntry
	var at int64
	var dec sql.NullInt64
	err := s.Scan(&q.ID, &q.DeviceID, &q.UserID, &q.BatchID, &q.Collection, &q.RowID, &q.Field, (*[]byte)(&q.Value),
		&q.HLC, &q.Scope, &q.Reason, &at, &q.Status, &q.DecidedBy, &dec)
	q.ReceivedAt = msTime(at)
	if dec.Valid {
		t := msTime(dec.Int64)
		q.DecidedAt = &t
	}
	return q, err
}

// Quarantine returns the quarantined writes with status ("" for all), oldest first.
func (r *Region) Quarantine(ctx context.Context, status string) ([]QuarantineEntry, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT `+quarantineCols+` FROM quarantine WHERE ?1 = '' OR status = ?1 ORDER BY id`, status)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	defer rows.Close()
	var out []QuarantineEntry
	for rows.Next() {
		q, err := scanQuarantine(rows)
		if err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// DecideQuarantine accepts or discards an open quarantined write, recording
// who decided. Accepting applies the value again as a server write with a
// fresh stamp, logged under by's user and device with batch
// "quarantine:<id>"; the quarantine entry keeps the original stamp and
// author. Accepting a write to a row the store does not have yet accepts
// the row's other open writes of the same batch with it, so the row is
// created whole. A decided entry is a conflict error, an unknown one
// not_found; a write that no longer fits (its parent is gone, a fixed field
// differs) fails with that change's error and changes nothing.
func (r *Region) DecideQuarantine(ctx context.Context, id int64, accept bool, by Actor) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx, err := r.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("decide quarantine %d: %w", id, err)
	}
	defer tx.Rollback()
	q, err := scanQuarantine(tx.QueryRowContext(ctx, `SELECT `+quarantineCols+` FROM quarantine WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return samenplan.Errorf(samenplan.ENOTFOUND, "no quarantined write %d", id)
	} else if err != nil {
		return fmt.Errorf("decide quarantine %d: %w", id, err)
	}
	if q.Status != QuarantineOpen {
		return samenplan.Errorf(samenplan.ECONFLICT, "quarantined write %d is already %s", id, q.Status)
	}
	now := r.opts.Now().UnixMilli()
	status := QuarantineDiscarded
	ids := []int64{id}
	var ap *applier
	if accept {
		status = QuarantineAccepted
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM row_scopes WHERE collection = ? AND id = ?)`,
			q.Collection, q.RowID).Scan(&exists); err != nil {
			return fmt.Errorf("decide quarantine %d: %w", id, err)
		}
		writes := []FieldWrite{{Collection: q.Collection, ID: q.RowID, Field: q.Field, Value: q.Value}}
		if !exists {
			rows, err := tx.QueryContext(ctx, `SELECT `+quarantineCols+` FROM quarantine
				WHERE device_id = ? AND batch_id = ? AND collection = ? AND row_id = ? AND status = 'open' AND id <> ? ORDER BY id`,
				q.DeviceID, q.BatchID, q.Collection, q.RowID, id)
			if err != nil {
				return fmt.Errorf("decide quarantine %d: %w", id, err)
			}
			for rows.Next() {
				o, err := scanQuarantine(rows)
				if err != nil {
					rows.Close()
					return fmt.Errorf("decide quarantine %d: %w", id, err)
				}
				ids = append(ids, o.ID)
				writes = append(writes, FieldWrite{Collection: o.Collection, ID: o.RowID, Field: o.Field, Value: o.Value})
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("decide quarantine %d: %w", id, err)
			}
		}
		if _, ap, err = r.serverWrite(ctx, tx, by, writes, "quarantine:"+strconv.FormatInt(id, 10)); err != nil {
			return err
		}
	}
	for _, qid := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE quarantine SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?`,
			status, by.UserID, now, qid); err != nil {
			return fmt.Errorf("decide quarantine %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("decide quarantine %d: commit: %w", id, err)
	}
	if ap != nil {
		r.notify(ap)
	}
	return nil
}

// Eviction is a scope a device was told to drop, and its proof.
type Eviction struct {
	DeviceID  string     `json:"device_id"`
	Scope     string     `json:"scope"`
	EvictedAt time.Time  `json:"evicted_at"`
	Proof     string     `json:"proof,omitempty"`
	ProvenAt  *time.Time `json:"proven_at,omitempty"`
}

// EvictionFilter selects evictions; empty fields match everything.
type EvictionFilter struct {
	DeviceID string
	Scope    string
}

// Evictions returns the evictions matching f, oldest first.
func (r *Region) Evictions(ctx context.Context, f EvictionFilter) ([]Eviction, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT device_id, scope, evicted_at, coalesce(proof, ''), proven_at FROM evictions
		WHERE (?1 = '' OR device_id = ?1) AND (?2 = '' OR scope = ?2) ORDER BY id`, f.DeviceID, f.Scope)
	if err != nil {
		return nil, fmt.Errorf("evictions: %w", err)
	}
	defer rows.Close()
	var out []Eviction
	for rows.Next() {
		var e Eviction
		var at int64
		var proven sql.NullInt64
		if err := rows.Scan(&e.DeviceID, &e.Scope, &at, &e.Proof, &proven); err != nil {
			return nil, fmt.Errorf("evictions: %w", err)
		}
		e.EvictedAt = msTime(at)
		if proven.Valid {
			t := msTime(proven.Int64)
			e.ProvenAt = &t
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Scan calls fn with the winning write of every field of the region, in
// (collection, id, field) order, from one read snapshot; it stops at fn's
// first error and returns it. Use ScanSeq to learn the snapshot's position.
// The strings and values of the changes share memory with their
// neighbours' (a few thousand at a time): clone what is kept for long, so
// as not to keep the others alive.
func (r *Region) Scan(ctx context.Context, fn func(protocol.Change) error) error {
	_, err := r.ScanSeq(ctx, fn)
	return err
}

// scanChunk is how many fields ScanSeq reads with one statement (a
// variable for the tests).
var scanChunk = 8192

// ScanSeq is Scan that also returns the highest log seq of its snapshot, so
// a read model can load the state and then apply only Commits with a higher
// MaxSeq. It reads the fields in chunks, packed as a pull's fill reads them
// (readPacked): one step per chunk instead of one per field, which was most
// of a start-up's scan (docs/benchmarks.md § Read model).
func (r *Region) ScanSeq(ctx context.Context, fn func(protocol.Change) error) (int64, error) {
	tx, err := r.db.Reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("scan: %w", err)
	}
	defer tx.Rollback()
	top, err := maxSeq(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("scan: %w", err)
	}
	var buf []pulled
	var after [3]string
	for {
		if buf, err = readPacked(ctx, tx, buf[:0], "", qFillRegion, "", after[0], after[1], after[2], scanChunk); err != nil {
			return 0, fmt.Errorf("scan: %w", err)
		}
		for i := range buf {
			if err := fn(buf[i].Change); err != nil {
				return 0, err
			}
		}
		if len(buf) < scanChunk {
			return top, nil
		}
		last := buf[len(buf)-1]
		after = [3]string{last.Collection, last.ID, last.Field}
	}
}

// MaxSeq returns the highest change_log seq.
func (r *Region) MaxSeq(ctx context.Context) (int64, error) {
	return maxSeq(ctx, r.db.Reader)
}
