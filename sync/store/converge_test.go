package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"pgregory.net/rapid"
)

// TestPush_LWWConvergesInAnyOrderWithDuplicates delivers random batches of
// several devices to two stores in different random orders, with batches
// replayed and changes resent in other batches: both stores end with the
// same winner for every field, equal to a pure merge, and both logs hold
// every distinct write exactly once.
func TestPush_LWWConvergesInAnyOrderWithDuplicates(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rows := []string{uid(1), uid(2), uid(3)}
		devices := []Actor{
			{UserID: uid(2001), DeviceID: "dev-a", Role: RoleCoordinator},
			{UserID: uid(2002), DeviceID: "dev-b", Role: RoleCoordinator},
			{UserID: uid(2003), DeviceID: "dev-c", Role: RoleCoordinator},
		}
		fields := []string{"municipality", "label", "language"}
		type batch struct {
			a       Actor
			id      string
			changes []protocol.Change
		}
		var batches []batch
		want := crdt.NewState()
		distinct := map[string]bool{}
		nb := rapid.IntRange(1, 12).Draw(rt, "batches")
		for b := 0; b < nb; b++ {
			a := devices[rapid.IntRange(0, len(devices)-1).Draw(rt, "device")]
			n := rapid.IntRange(1, 6).Draw(rt, "changes")
			var cs []protocol.Change
			for i := 0; i < n; i++ {
				row := rows[rapid.IntRange(0, len(rows)-1).Draw(rt, "row")]
				field := fields[rapid.IntRange(0, len(fields)-1).Draw(rt, "field")]
				// A small stamp space makes equal stamps with different values happen.
				st := crdt.Stamp{Wall: epoch.UnixMilli() + int64(rapid.IntRange(0, 5).Draw(rt, "ms")),
					Counter: uint16(rapid.IntRange(0, 1).Draw(rt, "counter")), Node: a.DeviceID}
				val := rapid.SampledFrom([]string{"Geel", "Mol", "Dessel", "Balen"}).Draw(rt, "value")
				c := ch("families", row, field, val, st.String())
				cs = append(cs, c)
				want.Apply(crdt.Change{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value, HLC: st})
				distinct[c.ID+c.Field+c.HLC+string(c.Value)] = true
			}
			batches = append(batches, batch{a: a, id: fmt.Sprint("b", b), changes: cs})
		}
		deliver := func(e *env, order []int, dup bool) {
			for _, i := range order {
				b := batches[i]
				e.push(b.a, b.id, b.changes...)
				if dup {
					e.push(b.a, b.id, b.changes...)          // replay
					e.push(b.a, b.id+"-again", b.changes...) // resent under a new batch id
				}
			}
		}
		var envs []*env
		for k := 0; k < 2; k++ {
			e := newEnv(t)
			for _, row := range rows {
				e.serverWrite(fw("families", row, "region", testRegion))
			}
			order := rapid.Permutation(seq(len(batches))).Draw(rt, "order")
			deliver(e, order, k == 1)
			envs = append(envs, e)
		}
		for _, e := range envs {
			got := e.state(e.r)
			want.Each(func(c crdt.Change) {
				g, ok := got[c.Key()]
				if !ok || g.HLC != c.HLC.String() || string(g.Value) != string(c.Value) {
					rt.Fatalf("%v: got %s=%s, want %s=%s", c.Key(), g.HLC, g.Value, c.HLC, c.Value)
				}
			})
			if n := e.count(`SELECT count(*) FROM change_log WHERE collection = 'families' AND field <> 'region'`); n != len(distinct) {
				rt.Fatalf("log holds %d writes, want %d distinct", n, len(distinct))
			}
			checkSums(t, e)
		}
	})
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestBackup_DuringWritesOpensAndPassesIntegrityCheck(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	e.family(uid(1), uid(2), c.UserID)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, err := e.r.Push(ctx, c, protocol.PushRequest{DeviceID: c.DeviceID, BatchID: fmt.Sprint("b", i),
				SchemaVersion: schema.Version, Changes: benchBatch(i, uid(2), c.UserID, c.DeviceID)[:80]})
			if err != nil && ctx.Err() == nil {
				t.Errorf("push during backup: %v", err)
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	dir := filepath.Join(t.TempDir(), "backup")
	paths, err := e.stores.Backup(e.ctx, dir)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("backup wrote %v", paths)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
		db, err := OpenDB(p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.IntegrityCheck(e.ctx)
		db.Close()
		if err != nil || res != "ok" {
			t.Fatalf("%s: integrity %q %v", p, res, err)
		}
	}
	// The copy opens as a store and its checksums still add up.
	b := &env{t: t, ctx: e.ctx, clock: e.clock}
	s, err := Open(e.ctx, dir, []string{testRegion, "maasland"}, Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b.stores = s
	b.r, _ = s.Region(testRegion)
	if len(b.state(b.r)) == 0 {
		t.Fatal("backup holds no fields")
	}
	checkSums(t, b)
	if _, err := e.stores.Backup(e.ctx, dir); err == nil {
		t.Fatal("a second backup into the same directory overwrote it")
	}
}

func FuzzCursor(f *testing.F) {
	f.Add("")
	f.Add(cursor{V: cursorVersion, R: testRegion, S: 10, F: 3, K: []string{"family:x", "contacts", uid(2), "note"}, H: []string{"intake:kempen"}, P: []string{schema.FamilyScope(uid(1))}}.encode())
	f.Add(cursor{V: cursorVersion, R: testRegion}.encode())
	f.Add("eyJ2IjoxfQ")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s, testRegion)
		if err != nil {
			if codeOf(err) != "invalid" {
				t.Fatalf("error code %q", codeOf(err))
			}
			return
		}
		if c.S < 0 || c.F < 0 || c.R != testRegion || (len(c.P) == 0 && (c.F != 0 || c.K != nil)) || (c.K != nil && len(c.K) != 4) {
			t.Fatalf("accepted an inconsistent cursor %+v", c)
		}
		// A decoded cursor encodes to one that decodes to the same.
		again, err := decodeCursor(c.encode(), testRegion)
		if err != nil {
			t.Fatalf("re-encoded cursor: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(c) {
			t.Fatalf("round trip: %+v != %+v", again, c)
		}
	})
}
