package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// Statements of every push, prepared once per region (writerQueries).
const (
	qLookupRows = `SELECT r.collection, r.id, r.scope FROM json_each(?) j
		CROSS JOIN row_scopes r ON r.collection = j.value->>0 AND r.id = j.value->>1`
	qLookupFields = `SELECT f.collection, f.id, f.field, l.value, l.hlc, f.seq FROM json_each(?) j
		CROSS JOIN fields f ON f.collection = j.value->>0 AND f.id = j.value->>1 AND f.field = j.value->>2
		CROSS JOIN change_log l ON l.seq = f.seq`
	qStaleLogged = `SELECT count(*) FROM change_log WHERE id = ? AND collection = ? AND field = ? AND hlc = ? AND value = ?`
	qConflict    = `INSERT INTO conflicts (collection, row_id, field, winner_seq, loser_seq, detected_at)
		SELECT collection, id, field, ?, ?, ? FROM change_log WHERE seq = ?`
	qQuarantine = `INSERT OR IGNORE INTO quarantine (device_id, user_id, batch_id, collection, row_id, field, value, hlc, scope, reason, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qScopeSum = `INSERT INTO scope_sums (scope, sum, head) VALUES (?, ?, ?)
		ON CONFLICT (scope) DO UPDATE SET sum = (sum | excluded.sum) & ~(sum & excluded.sum), head = max(head, excluded.head)`
	qBatchGet      = `SELECT response FROM batches WHERE device_id = ? AND batch_id = ?`
	qBatchPut      = `INSERT INTO batches (device_id, batch_id, response, received_at) VALUES (?, ?, ?, ?)`
	qFieldsFromLog = `INSERT INTO fields (collection, id, field, seq)
		SELECT collection, id, field, seq FROM change_log WHERE seq BETWEEN ?1 AND ?2 AND outcome = 'applied' ORDER BY seq
		ON CONFLICT (collection, id, field) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > fields.seq`
	qLogBatch = `INSERT INTO log_batches (user_id, device_id, batch_id, received_at) VALUES (?, ?, ?, ?)`
)

// codeQuarantined reports a change kept aside in quarantine.
const codeQuarantined = "quarantined"

type rowKey struct{ collection, id string }

type fieldKey struct{ collection, id, field string }

// rowState is what one apply knows about one row it writes or refers to.
type rowState struct {
	key     rowKey
	col     *schema.Collection
	first   int  // index of the row's first change in the batch
	exists  bool // the row is in the store
	present uint64
	parent  string // parent id written in the batch

	scopes    []string // scopes the row is in (stored or derived)
	addScopes []string // scopes an existing row joins in this apply
	code, msg string   // row-level rejection
	qscope    string   // set when the row's writes go to quarantine
	regionBad bool

	summed bool      // a winner of the row changed: summer and delta are set
	summer rowSummer // FieldSum of the row's fields
	delta  uint64    // XOR of the changes to the row's scope checksums
}

// winner is the current value of one field during an apply.
type winner struct {
	row      *rowState
	field    string
	value    []byte
	stamp    crdt.Stamp
	hlc      string
	seq      int64
	storeHLC string // the stored winner's stamp at the start, "" if none
	oldValue []byte // the stored winner's value, for the referral link
	dirty    bool
}

// write is one change being applied.
type write struct {
	col   *schema.Collection
	fld   *schema.Field
	row   *rowState
	c     *protocol.Change
	value []byte
	stamp crdt.Stamp
	code  string
	msg   string
}

// logEntry is one change_log row to insert.
type logEntry struct {
	seq   int64
	w     *write
	stale bool
}

// applier applies one batch of changes in one write transaction.
type applier struct {
	r       *Region
	tx      *sql.Tx
	actor   Actor
	device  string
	batchID string
	now     int64
	server  bool

	writes  []write
	rows    []*rowState
	rowIdx  map[rowKey]*rowState
	stored  map[rowKey][]string // scopes of stored rows touched or referred to
	winners map[fieldKey]*winner
	access  map[string]bool // families the coach holds
	lost    map[string]bool // scopes the coach or device once held
	created []string        // families a coach creates in this batch

	nextSeq   int64
	logs      []logEntry
	conflicts [][2]int64
	staleSeen map[fieldKey][][]byte // stale writes logged in this batch, by stamp
	maxStamp  crdt.Stamp

	applied, ignored      int
	rejected, quarantined []protocol.Problem
	committed             []protocol.Change
}

var fieldIndex = func() map[*schema.Field]uint {
	m := make(map[*schema.Field]uint)
	for _, c := range schema.CaseFile.Collections {
		if len(c.Fields) > 64 {
			panic("store: a collection has more than 64 fields")
		}
		for i := range c.Fields {
			m[&c.Fields[i]] = uint(i)
		}
	}
	return m
}()

func newApplier(r *Region, tx *sql.Tx, a Actor, batchID string, n int) *applier {
	return &applier{
		r: r, tx: tx, actor: a, device: a.DeviceID, batchID: batchID,
		now:      r.opts.Now().UnixMilli(),
		writes:   make([]write, n),
		rowIdx:   make(map[rowKey]*rowState, n/4+1),
		winners:  make(map[fieldKey]*winner, n),
		rejected: []protocol.Problem{}, quarantined: []protocol.Problem{},
	}
}

func (ap *applier) reject(i int, code, msg string) {
	ap.writes[i].code, ap.writes[i].msg = code, msg
}

// check validates each change on its own and groups changes by row.
func (ap *applier) check(changes []protocol.Change) {
	maxWall := ap.now + ap.r.opts.MaxAhead.Milliseconds()
	coach := ap.actor.Role == RoleCoach
	for i := range changes {
		c := &changes[i]
		w := &ap.writes[i]
		w.c = c
		w.value = bytes.TrimSpace(c.Value)
		if !utf8.Valid(w.value) {
			ap.reject(i, samenplan.EINVALID, c.Field+": value is not UTF-8")
			continue
		}
		if err := schema.CaseFile.Validate(c.Collection, c.Field, w.value); err != nil {
			ap.reject(i, samenplan.ErrorCode(err), samenplan.ErrorMessage(err))
			continue
		}
		w.col = schema.CaseFile.Collection(c.Collection)
		w.fld = w.col.Field(c.Field)
		if !schema.ValidID(c.ID) {
			ap.reject(i, samenplan.EINVALID, "id must be a lowercase UUID")
			continue
		}
		st, err := crdt.ParseStamp(c.HLC)
		if err != nil {
			ap.reject(i, samenplan.EINVALID, "hlc: "+err.Error())
			continue
		}
		if c.Base != "" {
			if _, err := crdt.ParseStamp(c.Base); err != nil {
				ap.reject(i, samenplan.EINVALID, "base: "+err.Error())
				continue
			}
		}
		if !ap.server {
			if st.Wall > maxWall {
				ap.reject(i, samenplan.ECLOCKSKEW, fmt.Sprintf("hlc is %d ms ahead of the server clock", st.Wall-ap.now))
				continue
			}
			if st.Node != ap.device {
				ap.reject(i, samenplan.EINVALID, "hlc node must be the device id")
				continue
			}
		}
		w.stamp = st
		if coach && w.fld.ServerOnly {
			ap.reject(i, samenplan.EFORBIDDEN, c.Field+" is written by the server or a coordinator")
			continue
		}
		k := rowKey{c.Collection, c.ID}
		row := ap.rowIdx[k]
		if row == nil {
			row = &rowState{key: k, col: w.col, first: i}
			ap.rowIdx[k] = row
			ap.rows = append(ap.rows, row)
		}
		w.row = row
		if c.Field == "region" && !bytes.Equal(w.value, ap.regionJSON()) {
			ap.reject(i, samenplan.EOUTOFSCOPE, "region must be "+ap.r.name)
			row.regionBad = true
			continue
		}
		row.present |= 1 << fieldIndex[w.fld]
		if c.Field == w.col.Parent && w.value[0] == '"' {
			row.parent = unquote(w.value)
		}
	}
}

func (ap *applier) regionJSON() []byte { return []byte(strconv.Quote(ap.r.name)) }

// unquote returns the string of a validated JSON string holding a UUID or
// schema name (no escapes).
func unquote(v []byte) string { return string(v[1 : len(v)-1]) }

// lookup loads, in one query each, the scopes of every row touched or
// referred to and the stored winners of every field touched.
func (ap *applier) lookup(ctx context.Context) error {
	keys := make([]rowKey, 0, len(ap.rows)*2)
	seen := make(map[rowKey]bool, len(ap.rows)*2)
	addKey := func(k rowKey) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, row := range ap.rows {
		addKey(row.key)
		if row.parent != "" {
			addKey(rowKey{row.col.Field(row.col.Parent).Ref, row.parent})
		}
	}
	ap.stored = make(map[rowKey][]string)
	if len(keys) == 0 {
		return nil
	}
	buf := jsonKeys(nil, len(keys), func(i int) []string { return []string{keys[i].collection, keys[i].id} })
	st, err := ap.r.stmt(ctx, ap.tx, qLookupRows)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, string(buf))
	if err != nil {
		return fmt.Errorf("look up rows: %w", err)
	}
	for rows.Next() {
		var k rowKey
		var scope string
		if err := rows.Scan(&k.collection, &k.id, &scope); err != nil {
			rows.Close()
			return fmt.Errorf("look up rows: %w", err)
		}
		ap.stored[k] = append(ap.stored[k], scope)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("look up rows: %w", err)
	}

	var fks []fieldKey
	for i := range ap.writes {
		w := &ap.writes[i]
		if w.row == nil {
			continue
		}
		if _, ok := ap.stored[w.row.key]; !ok {
			continue
		}
		fk := fieldKey{w.c.Collection, w.c.ID, w.c.Field}
		if _, ok := ap.winners[fk]; !ok {
			ap.winners[fk] = nil
			fks = append(fks, fk)
		}
	}
	if len(fks) == 0 {
		return nil
	}
	buf = jsonKeys(buf, len(fks), func(i int) []string { return []string{fks[i].collection, fks[i].id, fks[i].field} })
	st, err = ap.r.stmt(ctx, ap.tx, qLookupFields)
	if err != nil {
		return err
	}
	rows, err = st.QueryContext(ctx, string(buf))
	if err != nil {
		return fmt.Errorf("look up fields: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fk fieldKey
		w := &winner{}
		if err := rows.Scan(&fk.collection, &fk.id, &fk.field, &w.value, &w.hlc, &w.seq); err != nil {
			return fmt.Errorf("look up fields: %w", err)
		}
		if w.stamp, err = crdt.ParseStamp(w.hlc); err != nil {
			return fmt.Errorf("stored stamp of %s/%s/%s: %w", fk.collection, fk.id, fk.field, err)
		}
		w.storeHLC, w.field, w.oldValue = w.hlc, fk.field, w.value
		ap.winners[fk] = w
	}
	return rows.Err()
}

// scopesOf returns the scopes of a row that is stored or created by a
// change before index before, and whether it exists.
func (ap *applier) scopesOf(k rowKey, before int) ([]string, bool) {
	if s, ok := ap.stored[k]; ok {
		return s, true
	}
	if row := ap.rowIdx[k]; row != nil && row.first < before && row.code == "" && row.scopes != nil {
		return row.scopes, true
	}
	return nil, false
}

// decideRows derives each row's scopes and decides, per row, whether the
// actor may write it: rejected, quarantined or accepted.
func (ap *applier) decideRows(ctx context.Context) error {
	for _, row := range ap.rows {
		if s, ok := ap.stored[row.key]; ok {
			row.exists = true
			row.scopes = s
		} else {
			ap.deriveNew(row)
			if row.code != "" {
				continue
			}
		}
		if ap.actor.writesAnything() {
			continue
		}
		if err := ap.authorize(ctx, row); err != nil {
			return err
		}
	}
	return nil
}

// deriveNew checks a row that is not stored yet and derives its scopes.
func (ap *applier) deriveNew(row *rowState) {
	col := row.col
	if row.regionBad {
		row.code, row.msg = samenplan.EOUTOFSCOPE, "region must be "+ap.r.name
		return
	}
	if col.ServerCreated && !ap.actor.writesAnything() {
		row.code, row.msg = samenplan.EFORBIDDEN, col.Name+" are created by the server"
		return
	}
	for i := range col.Fields {
		if col.Fields[i].Required && row.present&(1<<uint(i)) == 0 {
			row.code, row.msg = samenplan.EINVALID, fmt.Sprintf("a new %s row needs %s in the same batch", col.Name, col.Fields[i].Name)
			return
		}
	}
	var parentScopes []string
	if row.parent != "" {
		ref := col.Field(col.Parent).Ref
		s, ok := ap.scopesOf(rowKey{ref, row.parent}, row.first)
		if !ok {
			row.code, row.msg = samenplan.EINVALID, fmt.Sprintf("%s %s does not exist", ref, row.parent)
			return
		}
		parentScopes = s
	}
	switch col.Scope {
	case schema.ScopeFamilySelf:
		row.scopes = []string{schema.FamilyScope(row.key.id)}
	case schema.ScopeViaFamily:
		row.scopes = []string{schema.FamilyScope(row.parent)}
	case schema.ScopeViaParent:
		row.scopes = parentScopes
	case schema.ScopeIntake:
		row.scopes = []string{ap.r.intakeScope}
		if row.parent != "" {
			row.scopes = append(row.scopes, schema.FamilyScope(row.parent))
		}
	default:
		row.code, row.msg = samenplan.EINTERNAL, "unknown scope kind"
	}
}

// authorize decides a coach's right to write a row: she holds one of its
// scopes, or creates a new family; a family she or the device once held
// sends the writes to quarantine.
func (ap *applier) authorize(ctx context.Context, row *rowState) error {
	if row.code != "" {
		return nil
	}
	if !row.exists && row.col.Scope == schema.ScopeFamilySelf {
		ap.created = append(ap.created, row.key.id)
		if ap.access == nil {
			if err := ap.loadAccess(ctx); err != nil {
				return err
			}
		}
		ap.access[row.key.id] = true
		return nil
	}
	var fam string
	for _, s := range row.scopes {
		if s == ap.r.intakeScope {
			return nil
		}
		f := familyOf(s)
		if f == "" {
			continue
		}
		if ap.access == nil {
			if err := ap.loadAccess(ctx); err != nil {
				return err
			}
		}
		if ap.access[f] {
			return nil
		}
		if fam == "" {
			fam = s
		}
	}
	if ap.lost == nil {
		if err := ap.loadLost(ctx); err != nil {
			return err
		}
	}
	for _, s := range row.scopes {
		if ap.lost[s] {
			row.qscope = s
			return nil
		}
	}
	row.code, row.msg = samenplan.EOUTOFSCOPE, "this row is not in a scope of yours"
	return nil
}

func (ap *applier) loadAccess(ctx context.Context) error {
	ap.access = make(map[string]bool)
	rows, err := ap.tx.QueryContext(ctx, `SELECT DISTINCT family_id FROM family_access WHERE user_id = ?`, ap.actor.UserID)
	if err != nil {
		return fmt.Errorf("load family access: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return fmt.Errorf("load family access: %w", err)
		}
		ap.access[f] = true
	}
	return rows.Err()
}

func (ap *applier) loadLost(ctx context.Context) error {
	ap.lost = make(map[string]bool)
	// Former access is the server's own record of a family the user held
	// and lost; evictions are not consulted, since they follow the device's
	// cursor.
	rows, err := ap.tx.QueryContext(ctx, `SELECT 'family:' || family_id FROM former_access WHERE user_id = ?`, ap.actor.UserID)
	if err != nil {
		return fmt.Errorf("load former access: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("load former access: %w", err)
		}
		ap.lost[s] = true
	}
	return rows.Err()
}

var nullJSON = []byte("null")

// merge decides every change in batch order: rejected, quarantined, a new
// winner, stale, or a duplicate.
func (ap *applier) merge(ctx context.Context) error {
	next, err := maxSeq(ctx, ap.tx)
	if err != nil {
		return err
	}
	ap.nextSeq = next
	// Sized for a batch of new values, the common push: one log entry and
	// one new winner per change, allocated at once rather than one by one.
	ap.logs = make([]logEntry, 0, len(ap.writes))
	fresh := make([]winner, 0, len(ap.writes))
	if ap.r.opts.OnCommit != nil {
		ap.committed = make([]protocol.Change, 0, len(ap.writes))
	}
	for i := range ap.writes {
		w := &ap.writes[i]
		if w.code == "" && w.row.code != "" {
			w.code, w.msg = w.row.code, w.row.msg
		}
		if w.code != "" {
			ap.rejected = append(ap.rejected, protocol.Problem{Index: i, Code: w.code, Message: w.msg})
			continue
		}
		if w.row.qscope != "" {
			ap.quarantined = append(ap.quarantined, protocol.Problem{Index: i, Code: codeQuarantined,
				Message: "kept for the coordinator: you no longer hold " + w.row.qscope})
			continue
		}
		fk := fieldKey{w.c.Collection, w.c.ID, w.c.Field}
		cur := ap.winners[fk]
		if code, msg := ap.checkFixed(i, w, cur); code != "" {
			w.code, w.msg = code, msg
			ap.rejected = append(ap.rejected, protocol.Problem{Index: i, Code: code, Message: msg})
			continue
		}
		if w.stamp.Compare(ap.maxStamp) > 0 {
			ap.maxStamp = w.stamp
		}
		incoming := crdt.Change{Value: w.value, HLC: w.stamp}
		switch {
		case cur == nil || crdt.Wins(incoming, crdt.Change{Value: cur.value, HLC: cur.stamp}):
			ap.nextSeq++
			ap.logs = append(ap.logs, logEntry{seq: ap.nextSeq, w: w})
			if cur == nil {
				fresh = append(fresh, winner{row: w.row, field: w.c.Field})
				cur = &fresh[len(fresh)-1]
				ap.winners[fk] = cur
			} else if w.fld.Type == schema.Text && cur.stamp.Node != w.stamp.Node && !bytes.Equal(cur.value, w.value) &&
				w.c.Base != "" && w.c.Base != cur.hlc {
				ap.conflicts = append(ap.conflicts, [2]int64{ap.nextSeq, cur.seq})
			}
			cur.row = w.row
			cur.value, cur.stamp, cur.hlc, cur.seq, cur.dirty = w.value, w.stamp, w.c.HLC, ap.nextSeq, true
			ap.applied++
			if ap.r.opts.OnCommit != nil {
				ap.committed = append(ap.committed, protocol.Change{Collection: w.c.Collection, ID: w.c.ID,
					Field: w.c.Field, Value: w.value, HLC: w.c.HLC})
			}
		case cur.stamp == w.stamp && bytes.Equal(cur.value, w.value):
			ap.ignored++ // the current winner, seen again
		default:
			ap.ignored++
			logged, err := ap.staleLogged(ctx, fk, w)
			if err != nil {
				return err
			}
			if logged {
				continue
			}
			ap.nextSeq++
			ap.logs = append(ap.logs, logEntry{seq: ap.nextSeq, w: w, stale: true})
			if w.fld.Type == schema.Text && cur.stamp.Node != w.stamp.Node && !bytes.Equal(cur.value, w.value) {
				ap.conflicts = append(ap.conflicts, [2]int64{cur.seq, ap.nextSeq})
			}
		}
	}
	return nil
}

// checkFixed enforces fields that never change once set, and the referral's
// family link that is set once from empty.
func (ap *applier) checkFixed(i int, w *write, cur *winner) (code, msg string) {
	if w.fld.Fixed && cur != nil && !bytes.Equal(cur.value, w.value) {
		return samenplan.EINVALID, w.c.Field + " cannot change once set"
	}
	if w.c.Collection != "referrals" || w.c.Field != "family_id" {
		return "", ""
	}
	if cur != nil && !bytes.Equal(cur.value, nullJSON) && !bytes.Equal(cur.value, w.value) {
		return samenplan.EINVALID, "family_id of a referral is set once"
	}
	if w.row.exists && !bytes.Equal(w.value, nullJSON) {
		fam := unquote(w.value)
		if _, ok := ap.scopesOf(rowKey{"families", fam}, i); !ok {
			if err := ap.lookupFamily(fam); err != nil {
				return samenplan.EINVALID, "families " + fam + " does not exist"
			}
		}
	}
	return "", ""
}

// lookupFamily loads the scopes of a family referred to by a referral link
// that the first lookup did not cover.
func (ap *applier) lookupFamily(fam string) error {
	k := rowKey{"families", fam}
	var scope string
	err := ap.tx.QueryRow(`SELECT scope FROM row_scopes WHERE collection = 'families' AND id = ?`, fam).Scan(&scope)
	if err != nil {
		return err
	}
	ap.stored[k] = []string{scope}
	return nil
}

// staleLogged reports whether a losing write is already in the log (sent
// before), so that it is not logged twice.
func (ap *applier) staleLogged(ctx context.Context, fk fieldKey, w *write) (bool, error) {
	sk := fieldKey{fk.collection, fk.id, fk.field + "\x00" + w.c.HLC}
	for _, v := range ap.staleSeen[sk] {
		if bytes.Equal(v, w.value) {
			return true, nil
		}
	}
	if ap.staleSeen == nil {
		ap.staleSeen = make(map[fieldKey][][]byte)
	}
	ap.staleSeen[sk] = append(ap.staleSeen[sk], w.value)
	// A write applied earlier in this batch and overtaken since is not in
	// the database yet. Stale writes are rare: a scan is enough.
	for _, e := range ap.logs {
		if !e.stale && e.w.c.HLC == w.c.HLC && e.w.c.Field == fk.field && e.w.c.ID == fk.id &&
			e.w.c.Collection == fk.collection && bytes.Equal(e.w.value, w.value) {
			return true, nil
		}
	}
	st, err := ap.r.stmt(ctx, ap.tx, qStaleLogged)
	if err != nil {
		return false, err
	}
	var n int
	if err := st.QueryRowContext(ctx, fk.id, fk.collection, fk.field, w.c.HLC, string(w.value)).Scan(&n); err != nil {
		return false, fmt.Errorf("look up log: %w", err)
	}
	return n > 0, nil
}

// save writes the log, the new winners, scopes, sums, conflicts, quarantine
// and derived access.
func (ap *applier) save(ctx context.Context) error {
	if err := ap.saveLog(ctx); err != nil {
		return err
	}
	if err := ap.saveFields(ctx); err != nil {
		return err
	}
	if err := ap.saveScopes(ctx); err != nil {
		return err
	}
	if len(ap.conflicts) > 0 {
		st, err := ap.r.stmt(ctx, ap.tx, qConflict)
		if err != nil {
			return err
		}
		for _, c := range ap.conflicts {
			if _, err := st.ExecContext(ctx, c[0], c[1], ap.now, c[0]); err != nil {
				return fmt.Errorf("record conflict: %w", err)
			}
		}
	}
	if len(ap.quarantined) > 0 {
		st, err := ap.r.stmt(ctx, ap.tx, qQuarantine)
		if err != nil {
			return err
		}
		for _, q := range ap.quarantined {
			w := &ap.writes[q.Index]
			if _, err := st.ExecContext(ctx, ap.device, ap.actor.UserID, ap.batchID, w.c.Collection, w.c.ID, w.c.Field,
				string(w.value), w.c.HLC, w.row.qscope, "lost access to "+w.row.qscope, ap.now); err != nil {
				return fmt.Errorf("quarantine: %w", err)
			}
		}
	}
	return ap.saveAccess(ctx)
}

// saveLog appends the batch's log entries with multi-row INSERTs (measured
// faster than one INSERT ... SELECT over a JSON array of the rows).
func (ap *applier) saveLog(ctx context.Context) error {
	if len(ap.logs) == 0 {
		return nil
	}
	st, err := ap.r.stmt(ctx, ap.tx, qLogBatch)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, ap.actor.UserID, ap.device, ap.batchID, ap.now)
	if err != nil {
		return fmt.Errorf("append to log: %w", err)
	}
	batch, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("append to log: %w", err)
	}
	b := newBulk(ap.r, ap.tx, logInsert, batch)
	for _, e := range ap.logs {
		outcome := OutcomeApplied
		if e.stale {
			outcome = OutcomeStale
		}
		w := e.w
		if err := b.add(ctx, e.seq, w.c.Collection, w.c.ID, w.c.Field, bytesString(w.value), w.c.HLC, w.c.Base, outcome); err != nil {
			return fmt.Errorf("append to log: %w", err)
		}
	}
	if err := b.flush(ctx); err != nil {
		return fmt.Errorf("append to log: %w", err)
	}
	return nil
}

// bytesString returns b as a string without copying it, for a bound
// argument: the driver copies the text while it binds, and b (a slice of
// the request) does not change during the statement.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// saveFields upserts the batch's new winners straight from the log entries
// just appended: in seq order, the last applied entry of a field is its
// winner. One statement with two bound values, instead of four per field.
func (ap *applier) saveFields(ctx context.Context) error {
	if ap.applied == 0 || len(ap.logs) == 0 {
		return nil
	}
	st, err := ap.r.stmt(ctx, ap.tx, qFieldsFromLog)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, ap.logs[0].seq, ap.nextSeq); err != nil {
		return fmt.Errorf("save fields: %w", err)
	}
	return nil
}

// saveScopes records the scopes of new rows and of referrals linked to a
// family, and updates the scope checksums.
func (ap *applier) saveScopes(ctx context.Context) error {
	// sums holds the XOR delta of every scope the batch touches (a winner
	// changed or a row added), even when the delta is zero: each of them gets
	// its head moved to the batch's last seq.
	sums := make(map[string]uint64, 4)
	b := newBulk(ap.r, ap.tx, scopesInsert)
	for _, row := range ap.rows {
		if row.exists || row.code != "" || row.qscope != "" {
			continue
		}
		for _, s := range row.scopes {
			if err := b.add(ctx, row.key.collection, row.key.id, s); err != nil {
				return fmt.Errorf("save row scopes: %w", err)
			}
		}
	}
	// The XOR deltas are gathered per row (a row's fields share its scopes
	// and the hash of its collection and id) and then applied to the row's
	// scopes once.
	for fk, w := range ap.winners {
		if w == nil || !w.dirty {
			continue
		}
		row := w.row
		if !row.summed {
			row.summer, row.summed = newRowSummer(fk.collection, fk.id), true
		}
		row.delta ^= row.summer.field(fk.field, w.hlc)
		if w.storeHLC != "" {
			row.delta ^= row.summer.field(fk.field, w.storeHLC)
		}
		// A stored referral whose family link is set now joins the family's scope.
		if fk.collection == "referrals" && fk.field == "family_id" && w.row.exists &&
			!bytes.Equal(w.value, nullJSON) && (w.storeHLC == "" || bytes.Equal(w.oldValue, nullJSON)) {
			w.row.addScopes = append(w.row.addScopes, schema.FamilyScope(unquote(w.value)))
		}
	}
	for _, row := range ap.rows {
		if !row.summed {
			continue
		}
		sums[ap.r.regionScope] ^= row.delta
		for _, s := range row.scopes {
			sums[s] ^= row.delta
		}
	}
	for _, row := range ap.rows {
		for _, s := range row.addScopes {
			if err := b.add(ctx, row.key.collection, row.key.id, s); err != nil {
				return fmt.Errorf("save row scopes: %w", err)
			}
		}
	}
	if err := b.flush(ctx); err != nil {
		return fmt.Errorf("save row scopes: %w", err)
	}
	for _, row := range ap.rows {
		for _, s := range row.addScopes {
			sum, err := rowSum(ctx, ap.tx, row.key)
			if err != nil {
				return err
			}
			sums[s] ^= sum
		}
	}
	st, err := ap.r.stmt(ctx, ap.tx, qScopeSum)
	if err != nil {
		return err
	}
	for s, d := range sums {
		if _, err := st.ExecContext(ctx, s, int64(d), ap.nextSeq); err != nil {
			return fmt.Errorf("update checksum: %w", err)
		}
	}
	return nil
}

// rowSummer computes crdt.FieldSum for the fields of one row, hashing the
// row's collection and id once rather than once per field (FNV-1a goes byte
// by byte; it was half of saveScopes). TestRowSummer_IsFieldSum holds it to
// crdt.FieldSum.
type rowSummer uint64

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func newRowSummer(collection, id string) rowSummer {
	return rowSummer(fnvPart(fnvPart(fnvOffset, collection), id))
}

// field returns crdt.FieldSum(collection, id, field, stamp).
func (r rowSummer) field(field, stamp string) uint64 {
	return fnvPart(fnvPart(uint64(r), field), stamp)
}

// fnvPart adds s and its NUL separator to the FNV-1a state h.
func fnvPart(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h * fnvPrime // h ^= 0, then the multiplication
}

// rowSum is the XOR of FieldSum over the stored winners of one row.
func rowSum(ctx context.Context, tx *sql.Tx, k rowKey) (uint64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT f.field, l.hlc FROM fields f
		CROSS JOIN change_log l ON l.seq = f.seq WHERE f.collection = ? AND f.id = ?`, k.collection, k.id)
	if err != nil {
		return 0, fmt.Errorf("sum row: %w", err)
	}
	defer rows.Close()
	var sum uint64
	for rows.Next() {
		var f, h string
		if err := rows.Scan(&f, &h); err != nil {
			return 0, fmt.Errorf("sum row: %w", err)
		}
		sum ^= crdt.FieldSum(k.collection, k.id, f, h)
	}
	return sum, rows.Err()
}

// accessFields are the trajectory fields family access is derived from.
var accessFields = map[string]bool{"family_id": true, "lead_coach_id": true, "co_coach_ids": true, "status": true, crdt.Deleted: true}

// saveAccess gives a coach creator access to the families she created and
// recomputes the access to every family whose trajectories changed.
func (ap *applier) saveAccess(ctx context.Context) error {
	for _, f := range ap.created {
		row := ap.rowIdx[rowKey{"families", f}]
		if row == nil || row.code != "" {
			continue
		}
		if _, err := ap.tx.ExecContext(ctx, `INSERT OR IGNORE INTO family_access (family_id, user_id, trajectory_id, kind) VALUES (?, ?, '', 'creator')`,
			f, ap.actor.UserID); err != nil {
			return fmt.Errorf("grant creator access: %w", err)
		}
	}
	var fams []string
	seen := map[string]bool{}
	for fk, w := range ap.winners {
		if w == nil || !w.dirty || fk.collection != "trajectories" || !accessFields[fk.field] {
			continue
		}
		for _, s := range w.row.scopes {
			if f := familyOf(s); f != "" && !seen[f] {
				seen[f] = true
				fams = append(fams, f)
			}
		}
	}
	for _, f := range fams {
		if err := recomputeAccess(ctx, ap.tx, f, ap.now); err != nil {
			return err
		}
	}
	return nil
}
