package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// The fill statements as they were before the rows came back packed: one
// row per field, read by readRows. TestFill_PackedEqualsRowByRow holds the
// packed ones to them.
const (
	qFillScopeRows = `SELECT r.collection, r.id, f.field, l.value, l.hlc, l.seq, r.scope
		FROM row_scopes r INDEXED BY row_scopes_scope
		CROSS JOIN fields f ON f.collection = r.collection AND f.id = r.id
		CROSS JOIN change_log l ON l.seq = f.seq
		WHERE r.scope = ?1 AND (r.collection, r.id) >= (?2, ?3) AND ((r.collection, r.id) > (?2, ?3) OR f.field > ?4)
		ORDER BY r.collection, r.id, f.field LIMIT ?5`
	qFillRegionRows = `SELECT f.collection, f.id, f.field, l.value, l.hlc, l.seq, ?1
		FROM fields f CROSS JOIN change_log l ON l.seq = f.seq
		WHERE (f.collection, f.id, f.field) > (?2, ?3, ?4)
		ORDER BY f.collection, f.id, f.field LIMIT ?5`
)

// TestFill_PackedEqualsRowByRow reads the fill of every scope of a
// caseload (and of the region scope) from many keys with many limits, packed
// and row by row, and wants the same changes in the same order. One value
// holds the separator bytes of the packing.
func TestFill_PackedEqualsRowByRow(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	for f := 0; f < 4; f++ {
		fam, traj := uid(10+2*f), uid(11+2*f)
		e.family(fam, traj, c.UserID)
		batch := benchBatch(f, traj, c.UserID, c.DeviceID)[:200+50*f]
		if _, err := e.r.Push(e.ctx, c, protocol.PushRequest{DeviceID: c.DeviceID, BatchID: fmt.Sprint("f", f),
			SchemaVersion: schema.Version, Changes: batch}); err != nil {
			t.Fatal(err)
		}
	}
	// A value no client can send (JSON has no raw control characters),
	// written behind the store's back: the packing must not depend on it.
	odd := "\"a\x1fb\x1ec\x1f\x1e\""
	if _, err := e.r.db.Writer.Exec(`INSERT INTO change_log (seq, collection, id, field, value, hlc, batch, outcome)
		SELECT max(seq) + 1, 'contacts', ?1, 'note', ?2, '1795450929838-0fff-x', 1, 'applied' FROM change_log`,
		uid(1_000_000), odd); err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.db.Writer.Exec(`UPDATE fields SET seq = (SELECT max(seq) FROM change_log)
		WHERE collection = 'contacts' AND id = ?1 AND field = 'note'`, uid(1_000_000)); err != nil {
		t.Fatal(err)
	}

	scopes, err := e.r.DeviceScopes(e.ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	scopes = append(scopes, e.r.regionScope)
	tx, err := e.r.db.Reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rng := rand.New(rand.NewPCG(7, 8))
	var sawOdd bool
	for _, sc := range scopes {
		packedQ, rowsQ := qFillScope, qFillScopeRows
		if sc == e.r.regionScope {
			packedQ, rowsQ = qFillRegion, qFillRegionRows
		}
		all, err := e.r.readRows(e.ctx, tx, rowsQ, sc, "", "", "", 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == 0 && sc != e.r.intakeScope {
			t.Fatalf("scope %s has no rows", sc)
		}
		keys := [][3]string{{"", "", ""}}
		for range 20 {
			if len(all) > 0 {
				k := all[rng.IntN(len(all))]
				keys = append(keys, [3]string{k.Collection, k.ID, k.Field})
			}
		}
		for _, k := range keys {
			for _, limit := range []int{1, 2, 7, 100, 1001, 5001} {
				want, err := e.r.readRows(e.ctx, tx, rowsQ, sc, k[0], k[1], k[2], limit)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readPacked(e.ctx, tx, nil, sc, packedQ, sc, k[0], k[1], k[2], limit)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(got, want, samePulled) {
					t.Fatalf("scope %s after %q, limit %d: packed read differs\n got %d: %v\nwant %d: %v", sc, k, limit, len(got), head(got), len(want), head(want))
				}
				for _, p := range got {
					sawOdd = sawOdd || string(p.Value) == odd
				}
			}
		}
	}
	if !sawOdd {
		t.Fatal("the value with separator bytes was never read")
	}
}

func samePulled(a, b pulled) bool {
	return a.seq == b.seq && a.Collection == b.Collection && a.ID == b.ID && a.Field == b.Field &&
		string(a.Value) == string(b.Value) && a.HLC == b.HLC && a.Base == b.Base && a.Scope == b.Scope
}

func head(p []pulled) []pulled { return p[:min(len(p), 3)] }

// TestReadPacked_SortsRowsOutOfOrder: should SQLite ever hand the rows of
// group_concat back in another order than its subquery's, they are sorted.
func TestReadPacked_SortsRowsOutOfOrder(t *testing.T) {
	e := newEnv(t)
	tx, err := e.r.db.Reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	row := func(col, id, field, value string, seq int) string {
		return fmt.Sprintf("%s\x1f%s\x1f%s\x1fh%d\x1f%d\x1f%d\x1f%s", col, id, field, seq, seq, len(value), value)
	}
	packed := row("b", "1", "x", `1`, 3) + "\x1e" + row("a", "2", "y", `"two"`, 1) + "\x1e" + row("a", "2", "x", `[]`, 2)
	prior := []pulled{{seq: 9}}
	got, err := readPacked(e.ctx, tx, prior, "s", `SELECT ?`, packed)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range got {
		keys = append(keys, fmt.Sprintf("%s/%s/%s=%s@%d:%s", p.Collection, p.ID, p.Field, p.Value, p.seq, p.Scope))
	}
	want := []string{"//=@9:", `a/2/x=[]@2:s`, `a/2/y="two"@1:s`, `b/1/x=1@3:s`}
	if !slices.Equal(keys, want) {
		t.Fatalf("readPacked = %q, want %q", keys, want)
	}
}

func TestUnpack_RefusesMalformedPacking(t *testing.T) {
	for _, packed := range []string{
		"a\x1fb\x1fc\x1fh\x1f1",                  // too few fields
		"a\x1fb\x1fc\x1fh\x1fx\x1f1\x1f1",        // seq not a number
		"a\x1fb\x1fc\x1fh\x1f1\x1f-1\x1f1",       // negative length
		"a\x1fb\x1fc\x1fh\x1f1\x1f5\x1f1",        // value shorter than its length
		"a\x1fb\x1fc\x1fh\x1f1\x1f1\x1f12",       // value longer than its length
		"a\x1fb\x1fc\x1fh\x1f1\x1f1\x1f1\x1e",    // an empty row after the last
		"a\x1fb\x1fc\x1fh\x1f1\x1f1\x1f1\x1ezzz", // a broken second row
	} {
		if got, err := unpack(nil, packed, "s"); err == nil {
			t.Errorf("unpack(%q) = %v, want an error", packed, got)
		}
	}
	got, err := unpack(nil, "a\x1fb\x1fc\x1fh\x1f1\x1f0\x1f", "s")
	if err != nil || len(got) != 1 || len(got[0].Value) != 0 || got[0].seq != 1 {
		t.Fatalf("unpack of an empty value = %v, %v", got, err)
	}
}

// TestScan_PackedEqualsRowByRow: ScanSeq, which reads packed chunks,
// returns the same changes in the same order as the row-by-row statement it
// replaced, across many chunk boundaries, and stops at fn's error.
func TestScan_PackedEqualsRowByRow(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	for f := 0; f < 3; f++ {
		fam, traj := uid(10+2*f), uid(11+2*f)
		e.family(fam, traj, c.UserID)
		if _, err := e.r.Push(e.ctx, c, protocol.PushRequest{DeviceID: c.DeviceID, BatchID: fmt.Sprint("f", f),
			SchemaVersion: schema.Version, Changes: benchBatch(f, traj, c.UserID, c.DeviceID)[:100]}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := e.r.db.Reader.Query(`SELECT f.collection, f.id, f.field, l.value, l.hlc FROM fields f
		CROSS JOIN change_log l ON l.seq = f.seq ORDER BY f.collection, f.id, f.field`)
	if err != nil {
		t.Fatal(err)
	}
	var want []protocol.Change
	for rows.Next() {
		var c protocol.Change
		if err := rows.Scan(&c.Collection, &c.ID, &c.Field, (*[]byte)(&c.Value), &c.HLC); err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	rows.Close()
	top, err := e.r.MaxSeq(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int) { scanChunk = n }(scanChunk)
	for _, chunk := range []int{1, 7, 100, len(want) - 1, len(want), len(want) + 1, 8192} {
		scanChunk = chunk
		var got []protocol.Change
		seq, err := e.r.ScanSeq(e.ctx, func(c protocol.Change) error {
			got = append(got, c)
			return nil
		})
		if err != nil || seq != top {
			t.Fatalf("chunks of %d: ScanSeq = %d, %v; want %d", chunk, seq, err, top)
		}
		if !slices.EqualFunc(got, want, func(a, b protocol.Change) bool {
			return a.Collection == b.Collection && a.ID == b.ID && a.Field == b.Field && string(a.Value) == string(b.Value) &&
				a.HLC == b.HLC && a.Base == b.Base && a.Scope == b.Scope
		}) {
			t.Fatalf("chunks of %d: ScanSeq gave %d changes, want the %d of the row-by-row statement (first %v, want %v)",
				chunk, len(got), len(want), got[:min(len(got), 1)], want[:1])
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := e.r.Scan(e.ctx, func(protocol.Change) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	}); err != stop || n != 10 {
		t.Fatalf("Scan = %v after %d changes, want stop after 10", err, n)
	}
}
