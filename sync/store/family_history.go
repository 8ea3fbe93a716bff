package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/samenplan/samenplan/sync/schema"
)

// FieldHistory is every logged write of one field of a row, in log order:
// winners and losers alike (see HistoryEntry.Outcome).
type FieldHistory struct {
	Collection string         `json:"collection"`
	ID         string         `json:"id"`
	Field      string         `json:"field"`
	Entries    []HistoryEntry `json:"entries"`
}

// familyHistorySQL reads the log of every row in a family's scope: the
// family, its persons, network members and trajectories, the plan goals and
// contacts of those trajectories, and referrals linked to it. The scope
// index (scope, collection, id) yields the rows in key order, and the log's
// row index (id, seq) their entries in log order, so nothing is sorted.
const familyHistorySQL = `SELECT r.collection, r.id, l.seq, l.field, l.value, l.hlc, l.base,
	b.user_id, b.device_id, b.batch_id, b.received_at, l.outcome
	FROM row_scopes r CROSS JOIN change_log l ON l.id = r.id AND l.collection = r.collection
	JOIN log_batches b ON b.id = l.batch
	WHERE r.scope = ?
	ORDER BY r.collection, r.id, l.seq`

// FamilyHistory returns the history of every field of every row in the
// family's scope, from one read snapshot: ordered by collection, row id and
// field, each field's entries in log order, with OldValue set as History
// sets it. Quarantined writes are not in the log until accepted. An unknown
// family has an empty history.
func (r *Region) FamilyHistory(ctx context.Context, familyID string) ([]FieldHistory, error) {
	rows, err := r.db.Reader.QueryContext(ctx, familyHistorySQL, schema.FamilyScope(familyID))
	if err != nil {
		return nil, fmt.Errorf("history of family %s: %w", familyID, err)
	}
	defer rows.Close()
	var out []FieldHistory
	var rowStart int            // index in out of the current row's first field
	byField := map[string]int{} // field → index in out, for the current row
	last := map[string]json.RawMessage{}
	var curCol, curID string
	for rows.Next() {
		var col, id string
		var h HistoryEntry
		var at int64
		if err := rows.Scan(&col, &id, &h.Seq, &h.Field, (*[]byte)(&h.Value), &h.HLC, &h.Base,
			&h.UserID, &h.DeviceID, &h.BatchID, &at, &h.Outcome); err != nil {
			return nil, fmt.Errorf("history of family %s: %w", familyID, err)
		}
		if col != curCol || id != curID {
			sortFields(out[rowStart:])
			curCol, curID, rowStart = col, id, len(out)
			clear(byField)
			clear(last)
		}
		h.ReceivedAt = msTime(at)
		if h.Outcome == OutcomeApplied {
			h.OldValue = last[h.Field]
			last[h.Field] = h.Value
		}
		i, ok := byField[h.Field]
		if !ok {
			i = len(out)
			byField[h.Field] = i
			out = append(out, FieldHistory{Collection: curCol, ID: curID, Field: h.Field})
		}
		out[i].Entries = append(out[i].Entries, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of family %s: %w", familyID, err)
	}
	sortFields(out[rowStart:])
	return out, nil
}

// sortFields orders the field histories of one row by field name.
func sortFields(fs []FieldHistory) {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Field < fs[j].Field })
}

// FamilyConflicts returns the recorded conflicts on the rows of the
// family's scope, oldest first: Conflicts for one family, read through the
// scope index and the conflicts' row index instead of the whole region.
func (r *Region) FamilyConflicts(ctx context.Context, familyID string) ([]Conflict, error) {
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT c.id, c.collection, c.row_id, c.field, c.detected_at,
		w.seq, w.value, w.hlc, wb.user_id, wb.device_id, wb.received_at,
		l.seq, l.value, l.hlc, lb.user_id, lb.device_id, lb.received_at
		FROM row_scopes r CROSS JOIN conflicts c ON c.collection = r.collection AND c.row_id = r.id
		JOIN change_log w ON w.seq = c.winner_seq JOIN log_batches wb ON wb.id = w.batch
		JOIN change_log l ON l.seq = c.loser_seq JOIN log_batches lb ON lb.id = l.batch
		WHERE r.scope = ?
		ORDER BY c.id`, schema.FamilyScope(familyID))
	if err != nil {
		return nil, fmt.Errorf("conflicts of family %s: %w", familyID, err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var c Conflict
		var at, wat, lat int64
		if err := rows.Scan(&c.ID, &c.Collection, &c.RowID, &c.Field, &at,
			&c.Winner.Seq, (*[]byte)(&c.Winner.Value), &c.Winner.HLC, &c.Winner.UserID, &c.Winner.DeviceID, &wat,
			&c.Loser.Seq, (*[]byte)(&c.Loser.Value), &c.Loser.HLC, &c.Loser.UserID, &c.Loser.DeviceID, &lat); err != nil {
			return nil, fmt.Errorf("conflicts of family %s: %w", familyID, err)
		}
		c.DetectedAt, c.Winner.ReceivedAt, c.Loser.ReceivedAt = msTime(at), msTime(wat), msTime(lat)
		out = append(out, c)
	}
	return out, rows.Err()
}
