package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// sameSeqMargin is how many rows past the limit a page query reads, so a
// page never splits the copies of one field that a row in several scopes
// (a referral linked to a family) delivers.
const sameSeqMargin = 8

// Pull returns the changes of the actor's scopes since req.Cursor, in one
// read snapshot (DESIGN §4): the current winner of every field changed since
// the cursor, new scopes in full, scopes no longer held in Evict, and on the
// last page (More false) a checksum of every held scope. A garbage or
// tampered cursor is an *samenplan.Error with code invalid.
func (r *Region) Pull(ctx context.Context, a Actor, req protocol.PullRequest) (protocol.PullResponse, error) {
	switch {
	case !schema.Supported(req.SchemaVersion):
		return protocol.PullResponse{}, samenplan.Errorf(samenplan.EUPGRADEREQUIRED,
			"Werk de app bij / schema version %d is not supported; the server speaks %d", req.SchemaVersion, schema.Version)
	case a.Role != RoleCoach && a.Role != RoleCoordinator && a.Role != RoleReviewer:
		return protocol.PullResponse{}, samenplan.Errorf(samenplan.EFORBIDDEN, "Role %q reads no case data.", a.Role)
	case req.DeviceID == "" || req.DeviceID != a.DeviceID:
		return protocol.PullResponse{}, samenplan.Errorf(samenplan.EFORBIDDEN, "device_id does not match the device of the session")
	}
	limit := req.Limit
	if limit <= 0 {
		limit = protocol.DefaultLimit
	}
	limit = min(limit, protocol.MaxPullLimit)
	in, err := decodeCursor(req.Cursor, r.name)
	if err != nil {
		return protocol.PullResponse{}, err
	}

	tx, err := r.db.Reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}
	defer tx.Rollback()
	top, err := maxSeq(ctx, tx) // the first read fixes the snapshot
	if err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}
	if in.S > top {
		return protocol.PullResponse{}, samenplan.Errorf(samenplan.EINVALID, "Ongeldige cursor / invalid cursor (ahead of the server); pull again without one")
	}
	current, err := r.scopesOf(ctx, tx, a)
	if err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}

	out := cursor{V: cursorVersion, R: r.name, S: in.S, A: in.A}
	var evict []string
	known := make(map[string]bool, len(in.H)+len(in.P))
	for _, s := range in.H {
		known[s] = true
		if slices.Contains(current, s) {
			out.H = append(out.H, s)
		} else {
			evict = append(evict, s)
		}
	}
	for _, s := range in.P {
		known[s] = true
		if slices.Contains(current, s) {
			out.P = append(out.P, s)
		} else {
			evict = append(evict, s)
		}
	}
	if len(out.P) == 0 {
		out.A = 0
		var added []string
		for _, s := range current {
			if !known[s] || slices.Contains(req.Refetch, s) {
				added = append(added, s)
			}
		}
		if len(added) > 0 {
			out.P = added
			out.H = slices.DeleteFunc(out.H, func(s string) bool { return slices.Contains(added, s) })
		}
	}

	changes, more, err := r.page(ctx, tx, out, limit)
	if err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}
	if n := len(changes); n > 0 {
		last := changes[n-1].seq
		if len(out.P) > 0 {
			out.A = last
		}
		out.S = max(out.S, last)
	}
	resp := protocol.PullResponse{Changes: make([]protocol.Change, len(changes)), More: more, Evict: evict}
	if resp.Evict == nil {
		resp.Evict = []string{}
	}
	for i := range changes {
		resp.Changes[i] = changes[i].Change
	}
	if !more {
		// Everything of every scope up to the snapshot has been delivered.
		out.S, out.A = top, 0
		out.H = append(out.H, out.P...)
		out.P = nil
		slices.Sort(out.H)
		if resp.Checksums, err = scopeSums(ctx, tx, out.H); err != nil {
			return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
		}
	}
	var proofDue bool
	if req.HeldHash != "" && req.HeldHash == crdt.ScopesHash(append(slices.Clip(in.H), in.P...)) {
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM evictions WHERE device_id = ? AND proven_at IS NULL)`,
			a.DeviceID).Scan(&proofDue); err != nil {
			return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
		}
	}
	if err := tx.Rollback(); err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}
	if proofDue || len(evict) > 0 {
		if err := r.recordEvictions(ctx, a.DeviceID, evict, proofDue, req.HeldHash, known); err != nil {
			return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
		}
	}
	resp.Cursor = out.encode()
	resp.ServerHLC = r.opts.Clock.Now().String()
	return resp, nil
}

// recordEvictions marks the device's open evictions of scopes it no longer
// names as proven, then records the evictions of this pull.
func (r *Region) recordEvictions(ctx context.Context, device string, evict []string, proof bool, hash string, held map[string]bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now().UnixMilli()
	tx, err := r.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record evictions: %w", err)
	}
	defer tx.Rollback()
	if proof {
		rows, err := tx.QueryContext(ctx, `SELECT id, scope FROM evictions WHERE device_id = ? AND proven_at IS NULL`, device)
		if err != nil {
			return fmt.Errorf("record proof: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			var scope string
			if err := rows.Scan(&id, &scope); err != nil {
				rows.Close()
				return fmt.Errorf("record proof: %w", err)
			}
			if !held[scope] {
				ids = append(ids, id)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("record proof: %w", err)
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE evictions SET proof = ?, proven_at = ? WHERE id = ?`, hash, now, id); err != nil {
				return fmt.Errorf("record proof: %w", err)
			}
		}
	}
	for _, s := range evict {
		if _, err := tx.ExecContext(ctx, `INSERT INTO evictions (device_id, scope, evicted_at)
			SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM evictions WHERE device_id = ? AND scope = ? AND proven_at IS NULL)`,
			device, s, now, device, s); err != nil {
			return fmt.Errorf("record eviction: %w", err)
		}
	}
	return tx.Commit()
}

// DeviceScopes returns the scopes the actor holds now: region:<name> for
// coordinators and reviewers; intake:<region> and family:<id> of every
// family she has access to for a coach; none for others.
func (r *Region) DeviceScopes(ctx context.Context, a Actor) ([]string, error) {
	return r.scopesOf(ctx, r.db.Reader, a)
}

func (r *Region) scopesOf(ctx context.Context, q querier, a Actor) ([]string, error) {
	switch a.Role {
	case RoleCoordinator, RoleReviewer:
		return []string{r.regionScope}, nil
	case RoleCoach:
		fams, err := coachFamilies(ctx, q, a.UserID)
		if err != nil {
			return nil, err
		}
		scopes := make([]string, 0, len(fams)+1)
		scopes = append(scopes, r.intakeScope)
		for _, f := range fams {
			scopes = append(scopes, schema.FamilyScope(f))
		}
		return scopes, nil
	}
	return nil, nil
}

// pulled is one change of a page with its log seq.
type pulled struct {
	protocol.Change
	seq int64
}

// page reads up to limit changes (a few more to keep the copies of one
// field together): (held scope and seq > S) or (pending scope and seq > A),
// in seq order.
func (r *Region) page(ctx context.Context, tx *sql.Tx, c cursor, limit int) ([]pulled, bool, error) {
	n := limit + sameSeqMargin
	var held, pending []pulled
	var err error
	if slices.Contains(c.H, r.regionScope) {
		held, err = r.readAll(ctx, tx, c.S, n)
	} else if len(c.H) > 0 {
		held, err = r.readRows(ctx, tx, `SELECT l.collection, l.id, l.field, l.value, l.hlc, l.seq, r.scope
			FROM change_log l
			CROSS JOIN fields f ON f.collection = l.collection AND f.id = l.id AND f.field = l.field
			CROSS JOIN row_scopes r ON r.collection = l.collection AND r.id = l.id
			WHERE l.seq > ?1 AND f.seq = l.seq AND r.scope IN (SELECT value FROM json_each(?2))
			ORDER BY l.seq LIMIT ?3`, c.S, jsonStrings(c.H), n)
	}
	if err != nil {
		return nil, false, err
	}
	if slices.Contains(c.P, r.regionScope) {
		pending, err = r.readAll(ctx, tx, c.A, n)
	} else if len(c.P) > 0 {
		// Sort only (seq, scope), then read the values of the page by seq.
		pending, err = r.readRows(ctx, tx, `SELECT l.collection, l.id, l.field, l.value, l.hlc, l.seq, x.scope FROM (
				SELECT f.seq AS seq, r.scope AS scope
				FROM json_each(?2) j CROSS JOIN row_scopes r INDEXED BY row_scopes_scope ON r.scope = j.value
				CROSS JOIN fields f ON f.collection = r.collection AND f.id = r.id
				WHERE f.seq > ?1
				ORDER BY f.seq LIMIT ?3
			) x CROSS JOIN change_log l ON l.seq = x.seq ORDER BY x.seq`, c.A, jsonStrings(c.P), n)
	}
	if err != nil {
		return nil, false, err
	}
	all := held
	if len(pending) > 0 {
		all = mergeBySeq(held, pending)
	}
	if len(all) <= limit {
		return all, false, nil
	}
	taken := limit
	for taken < len(all) && all[taken].seq == all[taken-1].seq {
		taken++
	}
	return all[:taken], taken < len(all), nil
}

func mergeBySeq(a, b []pulled) []pulled {
	out := make([]pulled, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].seq <= b[j].seq {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (r *Region) readAll(ctx context.Context, tx *sql.Tx, after int64, n int) ([]pulled, error) {
	return r.readRows(ctx, tx, `SELECT l.collection, l.id, l.field, l.value, l.hlc, l.seq, ?3 FROM change_log l
		CROSS JOIN fields f ON f.collection = l.collection AND f.id = l.id AND f.field = l.field
		WHERE l.seq > ?1 AND f.seq = l.seq ORDER BY l.seq LIMIT ?2`, after, n, r.regionScope)
}

// names interns the few collection, field and scope names a page repeats.
type names map[string]string

func (m names) get(b sql.RawBytes) string {
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	m[s] = s
	return s
}

func (r *Region) readRows(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]pulled, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	out := make([]pulled, 0, 64)
	nm := names{}
	var col, field, scope sql.RawBytes
	for rows.Next() {
		var p pulled
		if err := rows.Scan(&col, &p.ID, &field, (*[]byte)(&p.Value), &p.HLC, &p.seq, &scope); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		p.Collection, p.Field, p.Scope = nm.get(col), nm.get(field), nm.get(scope)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	return out, nil
}

// scopeSums returns the checksum of each scope (zero for an empty one).
func scopeSums(ctx context.Context, q querier, scopes []string) (map[string]string, error) {
	sums := make(map[string]string, len(scopes))
	if len(scopes) == 0 {
		return sums, nil
	}
	for _, s := range scopes {
		sums[s] = crdt.FormatSum(0)
	}
	rows, err := q.QueryContext(ctx, `SELECT s.scope, s.sum FROM json_each(?) j CROSS JOIN scope_sums s ON s.scope = j.value`, jsonStrings(scopes))
	if err != nil {
		return nil, fmt.Errorf("read checksums: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var sum int64
		if err := rows.Scan(&s, &sum); err != nil {
			return nil, fmt.Errorf("read checksums: %w", err)
		}
		sums[s] = crdt.FormatSum(uint64(sum))
	}
	return sums, rows.Err()
}

// Checksum returns the checksum of one scope as devices compute it: the XOR
// of crdt.FieldSum over the winners of its rows, formatted by crdt.FormatSum.
func (r *Region) Checksum(ctx context.Context, scope string) (string, error) {
	sums, err := scopeSums(ctx, r.db.Reader, []string{scope})
	if err != nil {
		return "", err
	}
	return sums[scope], nil
}
