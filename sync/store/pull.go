package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	if in.S > top || in.F > top {
		return protocol.PullResponse{}, samenplan.Errorf(samenplan.EINVALID, "Ongeldige cursor / invalid cursor (ahead of the server); pull again without one")
	}
	current, err := r.scopesOf(ctx, tx, a)
	if err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}

	out := cursor{V: cursorVersion, R: r.name, S: in.S, F: in.F, K: in.K}
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
		out.F, out.K = 0, nil
		var added []string
		for _, s := range current {
			if !known[s] || slices.Contains(req.Refetch, s) {
				added = append(added, s)
			}
		}
		if len(added) > 0 {
			out.P, out.F = added, top
			out.H = slices.DeleteFunc(out.H, func(s string) bool { return slices.Contains(added, s) })
		}
	}

	changes, more, err := r.page(ctx, tx, &out, top, limit)
	if err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
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
		out.S, out.F, out.K = top, 0, nil
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
	// Only scopes the user really held and lost are recorded. The cursor is
	// the device's word: a forged one is told to evict what it names, but
	// must not leave an eviction on record.
	lost, err := lostScopes(ctx, tx, a, evict)
	if err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}
	if err := tx.Rollback(); err != nil {
		return protocol.PullResponse{}, fmt.Errorf("pull: %w", err)
	}
	if proofDue || len(lost) > 0 {
		if err := r.recordEvictions(ctx, a.DeviceID, lost, proofDue, req.HeldHash, known); err != nil {
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
// field together) and moves c past them. First the log walk, in seq order:
// held scopes after S, and pending scopes after F (what changed behind the
// fill position). Once the walk has reached top, the rest of the page fills
// the pending scopes in key order after K. more is false when both are done.
func (r *Region) page(ctx context.Context, tx *sql.Tx, c *cursor, top int64, limit int) ([]pulled, bool, error) {
	n := limit + sameSeqMargin
	held, err := r.walk(ctx, tx, c.H, c.S, top, nil, n)
	if err != nil {
		return nil, false, err
	}
	var behind []pulled
	if len(c.P) > 0 && c.K != nil {
		if behind, err = r.walk(ctx, tx, c.P, c.F, top, c.K, n); err != nil {
			return nil, false, err
		}
	}
	all := held
	if len(behind) > 0 {
		all = mergeBySeq(held, behind)
	}
	if len(all) > limit {
		taken := limit
		for taken < len(all) && all[taken].seq == all[taken-1].seq {
			taken++
		}
		last := all[taken-1].seq
		c.S = max(c.S, last)
		if len(c.P) > 0 {
			c.F = max(c.F, last)
		}
		return all[:taken], true, nil
	}
	// The walk has delivered everything up to top.
	c.S = top
	if len(c.P) == 0 {
		return all, false, nil
	}
	c.F = top
	room := limit - len(all)
	if room <= 0 {
		return all, true, nil
	}
	filled, done, err := r.fill(ctx, tx, c, room)
	if err != nil {
		return nil, false, err
	}
	if len(all) == 0 {
		return filled, !done, nil
	}
	return append(all, filled...), !done, nil
}

// walk reads the current winners logged after seq of the rows of scopes, in
// seq order, at most n; with upTo (a fill key), only those at or before it:
// the fill delivers the others.
func (r *Region) walk(ctx context.Context, tx *sql.Tx, scopes []string, after, top int64, upTo []string, n int) ([]pulled, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	if slices.Contains(scopes, r.regionScope) {
		if upTo == nil {
			return r.readAll(ctx, tx, after, n)
		}
		return r.readRows(ctx, tx, `SELECT l.collection, l.id, l.field, l.value, l.hlc, l.seq, ?3 FROM change_log l
			CROSS JOIN fields f ON f.collection = l.collection AND f.id = l.id AND f.field = l.field
			WHERE l.seq > ?1 AND f.seq = l.seq AND (?3, l.collection, l.id, l.field) <= (?4, ?5, ?6, ?7)
			ORDER BY l.seq LIMIT ?2`, after, n, r.regionScope, upTo[0], upTo[1], upTo[2], upTo[3])
	}
	// The heads of the scopes say which of them were written after the
	// cursor; an empty poll stops here instead of scanning the log written
	// since, in everyone's scopes.
	changed, rows, err := changedScopes(ctx, tx, scopes, after)
	if err != nil {
		return nil, err
	}
	if len(changed) == 0 {
		return nil, nil
	}
	r.walks.Add(1)
	// Two ways to the same rows: the log after the cursor, in everyone's
	// scopes (its cost: the rows logged since), or the changed scopes' rows
	// and their fields (about ten a row). Busy regions make the first long.
	byScope := walkByScope(top-after, rows)
	if byScope {
		r.scopeWalks.Add(1)
	}
	walk, order := qWalkLog, ` ORDER BY l.seq LIMIT ?3`
	if byScope {
		walk, order = qWalkScopes, ` ORDER BY f.seq LIMIT ?3`
	}
	if upTo == nil {
		return r.readRows(ctx, tx, walk+order, after, jsonStrings(changed), n)
	}
	return r.readRows(ctx, tx, walk+` AND (r.scope, r.collection, r.id, f.field) <= (?4, ?5, ?6, ?7)`+order,
		after, jsonStrings(changed), n, upTo[0], upTo[1], upTo[2], upTo[3])
}

// The walk's two statements: the same rows (the winners logged after ?1 of
// the rows of the scopes in the JSON array ?2, with the scope), from the
// log's end, or from the scopes' rows.
const (
	qWalkLog = `SELECT l.collection, l.id, l.field, l.value, l.hlc, l.seq, r.scope
		FROM change_log l
		CROSS JOIN fields f ON f.collection = l.collection AND f.id = l.id AND f.field = l.field
		CROSS JOIN row_scopes r ON r.collection = l.collection AND r.id = l.id
		WHERE l.seq > ?1 AND f.seq = l.seq AND r.scope IN (SELECT value FROM json_each(?2))`
	qWalkScopes = `SELECT f.collection, f.id, f.field, l.value, l.hlc, l.seq, r.scope
		FROM json_each(?2) j
		CROSS JOIN row_scopes r INDEXED BY row_scopes_scope ON r.scope = j.value
		CROSS JOIN fields f ON f.collection = r.collection AND f.id = r.id
		CROSS JOIN change_log l ON l.seq = f.seq
		WHERE f.seq > ?1`
)

// fieldsPerRow is the walk's estimate of the fields of a row.
const fieldsPerRow = 10

// walkByScope chooses the walk over the changed scopes' rows when that
// reads fewer rows than the log written since the cursor.
var walkByScope = func(logged, scopeRows int64) bool { return scopeRows*fieldsPerRow < logged }

// changedScopes returns the scopes of scopes whose head is after seq, and
// how many rows they hold.
func changedScopes(ctx context.Context, tx *sql.Tx, scopes []string, after int64) ([]string, int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT s.scope, (SELECT count(*) FROM row_scopes r WHERE r.scope = s.scope)
		FROM json_each(?) j CROSS JOIN scope_sums s ON s.scope = j.value WHERE s.head > ?`, jsonStrings(scopes), after)
	if err != nil {
		return nil, 0, fmt.Errorf("read scope heads: %w", err)
	}
	defer rows.Close()
	var out []string
	var total int64
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, 0, fmt.Errorf("read scope heads: %w", err)
		}
		out, total = append(out, s), total+n
	}
	return out, total, rows.Err()
}

// Statements of the fill: the winners of one scope (or, for the region
// scope, of every row) after a key (collection, id, field), in key order.
// SQLite hands the page back packed in one text value (see readPacked):
// one step and one copy for the whole page instead of one per field, which
// was most of a caseload pull's server time (docs/benchmarks.md § Pull).
const (
	qFillScope = `SELECT coalesce(group_concat(rec, char(30)), '') FROM (
		SELECT concat_ws(char(31), r.collection, r.id, f.field, l.hlc, l.seq, octet_length(l.value), l.value) AS rec
		FROM row_scopes r INDEXED BY row_scopes_scope
		CROSS JOIN fields f ON f.collection = r.collection AND f.id = r.id
		CROSS JOIN change_log l ON l.seq = f.seq
		WHERE r.scope = ?1 AND (r.collection, r.id) >= (?2, ?3) AND ((r.collection, r.id) > (?2, ?3) OR f.field > ?4)
		ORDER BY r.collection, r.id, f.field LIMIT ?5)`
	qFillRegion = `SELECT coalesce(group_concat(rec, char(30)), '') FROM (
		SELECT concat_ws(char(31), f.collection, f.id, f.field, l.hlc, l.seq, octet_length(l.value), l.value) AS rec
		FROM fields f CROSS JOIN change_log l ON l.seq = f.seq
		WHERE (f.collection, f.id, f.field) > (?2, ?3, ?4)
		ORDER BY f.collection, f.id, f.field LIMIT ?5)`
)

// fill reads up to room winners of the pending scopes after c.K in key
// order (scope, collection, id, field) and moves c.K to the last one. done
// reports that the pending scopes are complete.
func (r *Region) fill(ctx context.Context, tx *sql.Tx, c *cursor, room int) ([]pulled, bool, error) {
	scopes := slices.Sorted(slices.Values(c.P))
	out := make([]pulled, 0, room+1)
	for _, sc := range scopes {
		from := []string{"", "", ""}
		if c.K != nil {
			if sc < c.K[0] {
				continue
			}
			if sc == c.K[0] {
				from = c.K[1:]
			}
		}
		q := qFillScope
		if sc == r.regionScope {
			q = qFillRegion
		}
		var err error
		if out, err = readPacked(ctx, tx, out, sc, q, sc, from[0], from[1], from[2], room-len(out)+1); err != nil {
			return nil, false, err
		}
		if len(out) > room {
			out = out[:room]
			last := out[len(out)-1]
			c.K = []string{last.Scope, last.Collection, last.ID, last.Field}
			return out, false, nil
		}
	}
	return out, true, nil
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

// readPacked runs a fill statement, which returns its rows in key order
// (collection, id, field) packed in one text: the rows joined by 0x1E, each
// the fields collection, id, field, hlc, seq and the value's length in
// bytes joined by 0x1F, then 0x1F and the value. Only the value can hold
// any byte (ids are UUIDs, stamps parsed, names the schema's), so it is
// read by its length. The strings of the changes share the packed text;
// their values share one copy of it. Every change gets scope; they are
// appended to dst.
func readPacked(ctx context.Context, tx *sql.Tx, dst []pulled, scope, query string, args ...any) ([]pulled, error) {
	var packed string
	if err := tx.QueryRowContext(ctx, query, args...).Scan(&packed); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	all, err := unpack(dst, packed, scope)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	out := all[len(dst):]
	// group_concat keeps the order its subquery returns rows in, which
	// SQLite does not promise: check it, and sort if it ever differs.
	inOrder := func(a, b *pulled) int {
		if c := strings.Compare(a.Collection, b.Collection); c != 0 {
			return c
		}
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Field, b.Field)
	}
	for i := 1; i < len(out); i++ {
		if inOrder(&out[i-1], &out[i]) >= 0 {
			slices.SortFunc(out, func(a, b pulled) int { return inOrder(&a, &b) })
			break
		}
	}
	return all, nil
}

// unpack appends the packed rows of a fill statement (see readPacked) to
// out.
func unpack(out []pulled, packed, scope string) ([]pulled, error) {
	if packed == "" {
		return out, nil
	}
	values := []byte(packed)
	start := len(out)
	bad := func(why string) ([]pulled, error) {
		return nil, fmt.Errorf("unpack row %d: %s", len(out)-start, why)
	}
	for i := 0; i < len(packed); {
		var f [6]string
		for k := range f {
			n := strings.IndexByte(packed[i:], 0x1f)
			if n < 0 {
				return bad("too few fields")
			}
			f[k], i = packed[i:i+n], i+n+1
		}
		seq, err1 := strconv.ParseInt(f[4], 10, 64)
		size, err2 := strconv.Atoi(f[5])
		if err1 != nil || err2 != nil || size < 0 || size > len(packed)-i {
			return bad("bad seq or value length")
		}
		end := i + size
		if end < len(packed) && (packed[end] != 0x1e || end+1 == len(packed)) {
			return bad("value does not end the row")
		}
		out = append(out, pulled{Change: protocol.Change{Collection: f[0], ID: f[1], Field: f[2], HLC: f[3],
			Value: values[i:end:end], Scope: scope}, seq: seq})
		i = end + 1
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

// lostScopes keeps the scopes of evict that a's user once held: family
// scopes with a former_access row for the user, and every other scope (the
// intake or region scope a role or region change took away).
func lostScopes(ctx context.Context, tx *sql.Tx, a Actor, evict []string) ([]string, error) {
	var out []string
	for _, s := range evict {
		fam, ok := strings.CutPrefix(s, schema.FamilyScopePrefix)
		if !ok {
			out = append(out, s)
			continue
		}
		var held bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM former_access WHERE family_id = ? AND user_id = ?)`,
			fam, a.UserID).Scan(&held); err != nil {
			return nil, fmt.Errorf("check former access: %w", err)
		}
		if held {
			out = append(out, s)
		}
	}
	return out, nil
}
