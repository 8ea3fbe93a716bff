package client

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// NewID returns a new row id: a lowercase UUIDv7, so ids sort by creation time.
func (r *Replica) NewID() string { return NewID() }

// NewID returns a new row id: a lowercase UUIDv7.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Write sets one field of one row, at once and offline: it validates the
// value against schema.CaseFile, stamps it with the device's clock, makes it
// the local value and queues it in the outbox with its base (the stamp of
// the local value it replaced, "" for none). value is encoded with
// encoding/json; a json.RawMessage is taken as is.
//
// Write returns an error with code invalid for an unknown collection or
// field, a bad id or value, or a change to a fixed field; forbidden for a
// server-only field, a row of a server-created collection the device does
// not hold, or a reviewer's or admin's replica; unauthorized before the
// first Login. The server checks all of it again, and scope besides.
func (r *Replica) Write(ctx context.Context, collection, id, field string, value any) error {
	raw, err := encodeValue(value)
	if err != nil {
		return samenplan.Errorf(samenplan.EINVALID, "%s.%s: %v", collection, field, err)
	}
	c := schema.CaseFile.Collection(collection)
	if c == nil {
		return samenplan.Errorf(samenplan.EINVALID, "unknown collection %q", collection)
	}
	if !schema.ValidID(id) {
		return samenplan.Errorf(samenplan.EINVALID, "%s: id %q is not a lowercase UUID", collection, id)
	}
	f := c.Field(field)
	if f == nil {
		return samenplan.Errorf(samenplan.EINVALID, "unknown field %q in %s", field, collection)
	}
	if f.ServerOnly {
		return samenplan.Errorf(samenplan.EFORBIDDEN, "%s.%s is written by the server only", collection, field)
	}
	if err := f.Check(raw); err != nil {
		return err
	}
	if r.currentClock() == nil {
		return errNotLoggedIn
	}
	if role := r.User().Role; role == "reviewer" || role == "admin" {
		return samenplan.Errorf(samenplan.EFORBIDDEN, "Role %s writes no case data", role)
	}
	err = r.tx(ctx, func(tx *sql.Tx) error {
		// Read under the write lock: Login and Wipe swap the clock inside
		// their transactions, so a write never lands with a stale node id
		// or after a wipe.
		clock := r.currentClock()
		if clock == nil {
			return errNotLoggedIn
		}
		var cur []byte
		var base string
		err := tx.QueryRowContext(ctx, `SELECT value, hlc FROM fields WHERE collection = ? AND id = ? AND field = ?`,
			collection, id, field).Scan(&cur, &base)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		exists := err == nil
		if f.Fixed && exists && !sameJSON(cur, raw) {
			return samenplan.Errorf(samenplan.EINVALID, "%s.%s cannot change once set", collection, field)
		}
		if c.ServerCreated {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM fields WHERE collection = ? AND id = ?`, collection, id).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return samenplan.Errorf(samenplan.EFORBIDDEN, "%s rows are created by the server only", collection)
			}
		}
		// Stamped inside the transaction, after every change already applied
		// was observed, so the local write always wins locally.
		stamp := clock.Now().String()
		if _, err := tx.ExecContext(ctx, `INSERT INTO fields (collection, id, field, value, hlc) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (collection, id, field) DO UPDATE SET value = excluded.value, hlc = excluded.hlc`,
			collection, id, field, string(raw), stamp); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (collection, id, field, value, hlc, base) VALUES (?, ?, ?, ?, ?, ?)`,
			collection, id, field, string(raw), stamp, base); err != nil {
			return err
		}
		if err := deriveScopes(ctx, tx, c, id); err != nil {
			return err
		}
		return saveClock(ctx, tx, clock)
	})
	if err != nil {
		return fmt.Errorf("write %s %s %s: %w", collection, id, field, err)
	}
	return nil
}

// Delete marks a row deleted (the LWW field _deleted = true). Rows are never
// removed by sync; Get and Query stop returning it.
func (r *Replica) Delete(ctx context.Context, collection, id string) error {
	return r.Write(ctx, collection, id, crdt.Deleted, true)
}

func encodeValue(v any) (json.RawMessage, error) {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// deriveScopes adds the scopes a row written on this device belongs to, as
// far as the local data tells: a family its own, rows linked to a family
// that family's, intake rows their region's intake (and their family once
// linked), plan goals and contacts the scopes of their trajectory. The
// server's word (the scope of pulled changes) is added on pull.
func deriveScopes(ctx context.Context, tx *sql.Tx, c *schema.Collection, id string) error {
	add := func(scope string) error {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO row_scopes (scope, collection, id) VALUES (?, ?, ?)`, scope, c.Name, id)
		return err
	}
	str := func(field string) (string, error) {
		var raw []byte
		err := tx.QueryRowContext(ctx, `SELECT value FROM fields WHERE collection = ? AND id = ? AND field = ?`, c.Name, id, field).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		var s string
		_ = json.Unmarshal(raw, &s) // null or not a string: no scope from it
		return s, nil
	}
	switch c.Scope {
	case schema.ScopeFamilySelf:
		return add(schema.FamilyScope(id))
	case schema.ScopeViaFamily:
		fid, err := str(c.Parent)
		if err != nil || fid == "" {
			return err
		}
		return add(schema.FamilyScope(fid))
	case schema.ScopeIntake:
		region, err := str("region")
		if err != nil {
			return err
		}
		if region != "" {
			if err := add(schema.IntakeScope(region)); err != nil {
				return err
			}
		}
		if c.Field("family_id") == nil {
			return nil
		}
		fid, err := str("family_id")
		if err != nil || fid == "" {
			return err
		}
		return add(schema.FamilyScope(fid))
	case schema.ScopeViaParent:
		pid, err := str(c.Parent)
		if err != nil || pid == "" {
			return err
		}
		parent := c.Field(c.Parent).Ref
		_, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO row_scopes (scope, collection, id)
			SELECT scope, ?, ? FROM row_scopes WHERE collection = ? AND id = ?`, c.Name, id, parent, pid)
		return err
	}
	return nil
}

// Row is one row of a collection: its id and the current value of each of
// its fields.
type Row struct {
	ID     string
	Fields map[string]json.RawMessage
}

// Get returns the current fields of a row. A row that is unknown or
// deleted gives an error with code not_found.
func (r *Replica) Get(ctx context.Context, collection, id string) (map[string]json.RawMessage, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT field, value FROM fields WHERE collection = ? AND id = ?`, collection, id)
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", collection, id, err)
	}
	defer rows.Close()
	m := make(map[string]json.RawMessage)
	for rows.Next() {
		var f string
		var v []byte
		if err := rows.Scan(&f, &v); err != nil {
			return nil, fmt.Errorf("get %s %s: %w", collection, id, err)
		}
		m[f] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get %s %s: %w", collection, id, err)
	}
	if len(m) == 0 || isDeleted(m) {
		return nil, samenplan.Errorf(samenplan.ENOTFOUND, "%s %s not found", collection, id)
	}
	return m, nil
}

func isDeleted(m map[string]json.RawMessage) bool {
	return bytes.Equal(m[crdt.Deleted], []byte("true"))
}

// Query returns every row of a collection that is not deleted, by id.
func (r *Replica) Query(ctx context.Context, collection string) ([]Row, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT id, field, value FROM fields WHERE collection = ? ORDER BY id`, collection)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", collection, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var id, f string
		var v []byte
		if err := rows.Scan(&id, &f, &v); err != nil {
			return nil, fmt.Errorf("query %s: %w", collection, err)
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, Row{ID: id, Fields: make(map[string]json.RawMessage)})
		}
		out[len(out)-1].Fields[f] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query %s: %w", collection, err)
	}
	live := out[:0]
	for _, row := range out {
		if !isDeleted(row.Fields) {
			live = append(live, row)
		}
	}
	return live, nil
}

// State returns the winning write of every field the replica holds,
// deleted rows included, for convergence checks against the server and
// other replicas. Scope and Base are empty.
func (r *Replica) State(ctx context.Context) (map[crdt.Key]protocol.Change, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT collection, id, field, value, hlc FROM fields`)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	m := make(map[crdt.Key]protocol.Change)
	for rows.Next() {
		var c protocol.Change
		var v []byte
		if err := rows.Scan(&c.Collection, &c.ID, &c.Field, &v, &c.HLC); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		c.Value = v
		m[crdt.Key{Collection: c.Collection, ID: c.ID, Field: c.Field}] = c
	}
	return m, rows.Err()
}

// Scopes returns, sorted, the scopes the replica holds: those the server
// delivered rows through and has not evicted since. Their crdt.ScopesHash is
// the proof sent after an eviction.
func (r *Replica) Scopes(ctx context.Context) ([]string, error) {
	return heldScopes(ctx, r.db.Reader)
}

func heldScopes(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT scope FROM held_scopes ORDER BY scope`)
	if err != nil {
		return nil, fmt.Errorf("scopes: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("scopes: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Checksums returns the checksum of every scope the replica has rows in or
// holds: the XOR of crdt.FieldSum over the current fields of its rows, as
// crdt.FormatSum. Pending local writes count, so a scope with pending writes
// differs from the server's until they are pushed.
func (r *Replica) Checksums(ctx context.Context) (map[string]string, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT s.scope, f.collection, f.id, f.field, f.hlc
		FROM row_scopes s JOIN fields f ON f.collection = s.collection AND f.id = s.id`)
	if err != nil {
		return nil, fmt.Errorf("checksums: %w", err)
	}
	defer rows.Close()
	sums := make(map[string]uint64)
	for rows.Next() {
		var scope, c, id, f, hlc string
		if err := rows.Scan(&scope, &c, &id, &f, &hlc); err != nil {
			return nil, fmt.Errorf("checksums: %w", err)
		}
		sums[scope] ^= crdt.FieldSum(c, id, f, hlc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("checksums: %w", err)
	}
	held, err := heldScopes(ctx, r.db.Reader)
	if err != nil {
		return nil, err
	}
	for _, s := range held {
		sums[s] ^= 0
	}
	out := make(map[string]string, len(sums))
	for s, v := range sums {
		out[s] = crdt.FormatSum(v)
	}
	return out, nil
}

// scopeSum is the checksum of one scope, within tx.
func scopeSum(ctx context.Context, q querier, scope string) (uint64, error) {
	rows, err := q.QueryContext(ctx, `SELECT f.collection, f.id, f.field, f.hlc
		FROM row_scopes s JOIN fields f ON f.collection = s.collection AND f.id = s.id WHERE s.scope = ?`, scope)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var sum uint64
	for rows.Next() {
		var c, id, f, hlc string
		if err := rows.Scan(&c, &id, &f, &hlc); err != nil {
			return 0, err
		}
		sum ^= crdt.FieldSum(c, id, f, hlc)
	}
	return sum, rows.Err()
}

// Pending returns the writes not yet acknowledged by the server, oldest
// first (those of a batch in flight included).
func (r *Replica) Pending(ctx context.Context) ([]protocol.Change, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT collection, id, field, value, hlc, base FROM outbox ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("pending: %w", err)
	}
	defer rows.Close()
	var out []protocol.Change
	for rows.Next() {
		var c protocol.Change
		var v []byte
		if err := rows.Scan(&c.Collection, &c.ID, &c.Field, &v, &c.HLC, &c.Base); err != nil {
			return nil, fmt.Errorf("pending: %w", err)
		}
		c.Value = v
		out = append(out, c)
	}
	return out, rows.Err()
}

// Problem is a write the server did not take: Kind "rejected" (not stored,
// e.g. invalid, out_of_scope) or "quarantined" (kept aside for the region's
// coordinator). A write refused with clock_skew is no problem: it is stamped
// anew and sent again (see Push). Problems are kept, with the written value,
// for the UI until dismissed.
type Problem struct {
	ID      int64
	Kind    string
	BatchID string
	Change  protocol.Change
	Code    string
	Message string
	At      time.Time
}

// Problem kinds.
const (
	Rejected    = "rejected"
	Quarantined = "quarantined"
)

// Status is what a sync indicator shows.
type Status struct {
	DeviceID       string
	User           User
	Pending        int // writes in the outbox
	PendingBatches int // batches formed and not yet answered
	LastSync       time.Time
	LastError      string // of the last failed Push or Pull, "" after a success
	Rejected       []Problem
	Quarantined    []Problem
	// ClockOffset is how far the device's wall clock runs ahead of the
	// server's, as the replica learned from server_hlc (when more than
	// SkewTolerance apart); its stamps take the wall clock less this.
	ClockOffset time.Duration
	// Reoffered is how many of the device's own writes were queued again
	// the last time the server refused its cursor as invalid (a server
	// restored from a backup), and ReofferedAt when; zero when never.
	Reoffered   int
	ReofferedAt time.Time
}

// Status returns the replica's sync status.
func (r *Replica) Status(ctx context.Context) (Status, error) {
	st := Status{DeviceID: r.DeviceID(), User: r.User()}
	if c := r.currentClock(); c != nil {
		st.ClockOffset = c.Offset()
	}
	q := r.db.Reader
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&st.Pending); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM batches`).Scan(&st.PendingBatches); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	m, err := readMeta(ctx, q)
	if err != nil {
		return st, err
	}
	if v := m[metaLastSync]; v != "" {
		st.LastSync, _ = time.Parse(time.RFC3339Nano, v)
	}
	st.LastError = m[metaLastError]
	if v := m[metaReoffered]; v != "" {
		st.Reoffered, _ = strconv.Atoi(v)
		st.ReofferedAt, _ = time.Parse(time.RFC3339Nano, m[metaReoffAt])
	}
	rows, err := q.QueryContext(ctx, `SELECT pid, kind, batch_id, collection, id, field, value, hlc, code, message, at
		FROM problems ORDER BY pid`)
	if err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Problem
		var v []byte
		var at string
		if err := rows.Scan(&p.ID, &p.Kind, &p.BatchID, &p.Change.Collection, &p.Change.ID, &p.Change.Field,
			&v, &p.Change.HLC, &p.Code, &p.Message, &at); err != nil {
			return st, fmt.Errorf("status: %w", err)
		}
		p.Change.Value = v
		p.At, _ = time.Parse(time.RFC3339Nano, at)
		if p.Kind == Quarantined {
			st.Quarantined = append(st.Quarantined, p)
		} else {
			st.Rejected = append(st.Rejected, p)
		}
	}
	return st, rows.Err()
}

// Dismiss forgets a problem shown in Status (the user has seen it).
func (r *Replica) Dismiss(ctx context.Context, problemID int64) error {
	if _, err := r.db.Writer.ExecContext(ctx, `DELETE FROM problems WHERE pid = ?`, problemID); err != nil {
		return fmt.Errorf("dismiss problem %d: %w", problemID, err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sameJSON reports whether two JSON texts are the same but for whitespace.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
