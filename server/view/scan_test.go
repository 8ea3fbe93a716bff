package view

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/samenplan/samenplan/server/view/viewtest"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// TestScanInto_SameStateAsMergingEachChange: the start-up load (the store's
// packed scan, merged a row at a time with mergeRow) gives the very state
// that merging every scanned change on its own gives, rows split across the
// scan's batches included.
func TestScanInto_SameStateAsMergingEachChange(t *testing.T) {
	ctx := context.Background()
	stores, err := store.Open(ctx, t.TempDir(), []string{"kempen"}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()
	region, _ := stores.Region("kempen")
	seeded, err := viewtest.Seed(ctx, region, viewtest.Options{Families: 120, Coaches: []string{newID(), newID()}, Today: today})
	if err != nil {
		t.Fatal(err)
	}
	if seeded.Fields < 2*scanBatch {
		t.Fatalf("seeded %d fields, want more than two scan batches", seeded.Fields)
	}
	got := newRegionState("kempen")
	if _, err := scanInto(ctx, region, got); err != nil {
		t.Fatal(err)
	}
	want := newRegionState("kempen")
	n := 0
	if err := region.Scan(ctx, func(c protocol.Change) error {
		want.merge(c)
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != seeded.Fields {
		t.Fatalf("scanned %d fields, seeded %d", n, seeded.Fields)
	}
	if len(got.rows) != len(want.rows) {
		t.Fatalf("%d collections, want %d", len(got.rows), len(want.rows))
	}
	cells := func(st *regionState, r *rawRow) []string {
		var out []string
		for _, c := range r.cells {
			out = append(out, fmt.Sprintf("%s=%s@%d-%d-%s", fieldNames[c.field], c.v, c.wall, c.counter, st.nodeNames[c.node]))
		}
		slices.Sort(out)
		return out
	}
	for coll, rows := range want.rows {
		if len(got.rows[coll]) != len(rows) {
			t.Fatalf("%s: %d rows, want %d", coll, len(got.rows[coll]), len(rows))
		}
		for id, w := range rows {
			g := got.rows[coll][id]
			if g == nil {
				t.Fatalf("%s/%s missing", coll, id)
			}
			if gc, wc := cells(got, g), cells(want, w); !slices.Equal(gc, wc) {
				t.Fatalf("%s/%s: cells %q, want %q", coll, id, gc, wc)
			}
		}
	}
}
