package client

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/samenplan/samenplan/sync/schema"
)

// TestReplicas_ConvergeAfterRandomOfflineEdits: several devices edit the same
// families offline with wall clocks that jump back and forth, sync, lose
// answers and restart in random order; after everyone syncs twice, every
// replica equals the server and every write was accepted exactly once.
func TestReplicas_ConvergeAfterRandomOfflineEdits(t *testing.T) {
	convergeAfterRandomOfflineEdits(t, 120)
}

// TestReplicas_ConvergeWithClocksBeyondTheLimit: the same with wall clocks
// up to 15 minutes ahead, beyond the server's 5-minute limit: writes the
// server refuses with clock_skew are stamped anew, so still every write is
// accepted exactly once and none is left as a problem.
func TestReplicas_ConvergeWithClocksBeyondTheLimit(t *testing.T) {
	convergeAfterRandomOfflineEdits(t, 900)
}

func convergeAfterRandomOfflineEdits(t *testing.T, maxAheadS int) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		f := newFakeServer(t)
		f.addUser("ann", "secret")
		start := time.Now()
		const n = 3
		type device struct {
			r     *Replica
			path  string
			wall  *wallClock
			chaos *dropResponses
		}
		open := func(d *device) {
			r, err := Open(ctx, d.path, Options{BaseURL: f.URL(), Now: d.wall.Now, Transport: d.chaos, BatchSize: 3, PageSize: 4})
			if err != nil {
				rt.Fatalf("Open: %v", err)
			}
			d.r = r
		}
		dir := t.TempDir()
		devs := make([]*device, n)
		for i := range devs {
			d := &device{path: filepath.Join(dir, fmt.Sprintf("r%d.db", i)), wall: newWallClock(start), chaos: &dropResponses{}}
			open(d)
			if _, err := d.r.Login(ctx, "ann", "secret", fmt.Sprint("device ", i)); err != nil {
				rt.Fatalf("Login: %v", err)
			}
			devs[i] = d
		}
		defer func() {
			for _, d := range devs {
				d.r.Close()
			}
		}()
		families := []string{NewID(), NewID()}
		for _, fid := range families {
			f.write("families", fid, "region", "kempen")
			for _, d := range devs {
				f.grant(d.r.DeviceID(), schema.FamilyScope(fid))
			}
		}
		writes, accepted := 0, 0 // accepted: applied or ignored, as the server answered
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for s := 0; s < steps; s++ {
			d := devs[rapid.IntRange(0, n-1).Draw(rt, "device")]
			skew := time.Duration(rapid.IntRange(-120, maxAheadS).Draw(rt, "skew_s")) * time.Second
			d.wall.Set(start.Add(skew))
			switch rapid.SampledFrom([]string{"write", "write", "write", "sync", "push", "pull", "lost", "restart"}).Draw(rt, "action") {
			case "write":
				fid := rapid.SampledFrom(families).Draw(rt, "family")
				fld := rapid.SampledFrom([]string{"label", "municipality", "language"}).Draw(rt, "field")
				val := rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(rt, "value")
				if err := d.r.Write(ctx, "families", fid, fld, val); err != nil {
					rt.Fatalf("Write: %v", err)
				}
				writes++
			case "sync":
				res, err := d.r.Sync(ctx)
				if err != nil {
					rt.Fatalf("Sync: %v", err)
				}
				accepted += res.Push.Applied + res.Push.Ignored
			case "push":
				res, err := d.r.Push(ctx)
				if err != nil {
					rt.Fatalf("Push: %v", err)
				}
				accepted += res.Applied + res.Ignored
			case "pull":
				if _, err := d.r.Pull(ctx); err != nil {
					rt.Fatalf("Pull: %v", err)
				}
			case "lost":
				d.chaos.armed.Store(true)
				res, err := d.r.Push(ctx)
				d.chaos.armed.Store(false)
				if err != nil && !IsOffline(err) {
					rt.Fatalf("Push with lost answer: %v", err)
				}
				accepted += res.Applied + res.Ignored
			case "restart":
				d.r.Close()
				open(d)
			}
		}
		for round := 0; round < 2; round++ {
			for _, d := range devs {
				res, err := d.r.Sync(ctx) // with the wall clock as the last step left it
				if err != nil {
					rt.Fatalf("final Sync: %v", err)
				}
				accepted += res.Push.Applied + res.Push.Ignored
			}
		}
		if accepted != writes {
			rt.Fatalf("writes accepted = %d, want every one of the %d writes made, once", accepted, writes)
		}
		for i, d := range devs {
			st, err := d.r.Status(ctx)
			if err != nil {
				rt.Fatal(err)
			}
			if st.Pending != 0 || len(st.Rejected) != 0 || len(st.Quarantined) != 0 {
				rt.Fatalf("replica %d: pending %d, rejected %+v, quarantined %+v", i, st.Pending, st.Rejected, st.Quarantined)
			}
		}
		server := normalize(f.snapshot())
		for i, d := range devs {
			st, err := d.r.State(ctx)
			if err != nil {
				rt.Fatal(err)
			}
			if got := normalize(st); !reflect.DeepEqual(got, server) {
				rt.Fatalf("replica %d diverged:\n got %v\nwant %v", i, got, server)
			}
			sums, err := d.r.Checksums(ctx)
			if err != nil {
				rt.Fatal(err)
			}
			if len(sums) != len(families) {
				rt.Fatalf("replica %d checksums = %v", i, sums)
			}
		}
	})
}

// TestReplica_WritesDuringSync: writes made while syncs run are neither lost
// nor stamped below a change the same sync applied.
func TestReplica_WritesDuringSync(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	a, _ := newReplica(t, f, Options{BatchSize: 5, PageSize: 5})
	b, _ := newReplica(t, f, Options{BatchSize: 5, PageSize: 5})
	fid := NewID()
	f.write("families", fid, "region", "kempen")
	for _, r := range []*Replica{a, b} {
		f.grant(r.DeviceID(), schema.FamilyScope(fid))
	}
	done := make(chan error, 2)
	for _, r := range []*Replica{a, b} {
		go func() {
			for i := 0; i < 50; i++ {
				if err := r.Write(ctx, "families", fid, "label", fmt.Sprint("v", i)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		go func() {
			for i := 0; i < 10; i++ {
				if _, err := r.Sync(ctx); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 4; i++ {
		must(t, <-done)
	}
	for round := 0; round < 2; round++ {
		for _, r := range []*Replica{a, b} {
			_, err := r.Sync(ctx)
			must(t, err)
		}
	}
	assertConverged(t, f, a, b)
	for _, r := range []*Replica{a, b} {
		if p, _ := r.Pending(ctx); len(p) != 0 {
			t.Errorf("pending after sync = %d", len(p))
		}
	}
}
