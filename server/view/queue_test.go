package view

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestQueue_ReadsSeeEveryWriteAndTheModelEqualsARebuild wires the model as
// samenplan serve does (Enqueue, RunApplier): after every write returns, a
// read already sees it (Info's seq is the store's, the case counts agree),
// while readers keep reading; and the model built through the queue,
// with commits merged per drain, equals a rebuild from scratch.
func TestQueue_ReadsSeeEveryWriteAndTheModelEqualsARebuild(t *testing.T) {
	f := newFixture(t)
	f.queued.Store(true)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.model.RunApplier(ctx) }()
	defer func() { stop(); <-done }()

	r, _ := f.stores.Region("kempen")
	// Readers all along, so that reads apply the queue while the applier
	// does too.
	readCtx, stopReads := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for readCtx.Err() == nil {
				f.model.Cases(Filter{Region: "kempen"})
				f.model.OpenReferrals("kempen")
			}
		}()
	}
	rnd := rand.New(rand.NewPCG(5, 3))
	w := &randomWriter{f: f, rnd: rnd, region: "kempen", rows: map[string][]string{}, coach: []string{newID(), newID()}}
	for i := 0; i < 150; i++ {
		w.step()
		top, err := r.MaxSeq(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Read after write: the write has returned, so the model has it.
		if info, _ := f.model.Info("kempen"); info.Seq < top {
			t.Fatalf("step %d: the model is at seq %d after a write at %d", i, info.Seq, top)
		}
		info, _ := f.model.Info("kempen")
		if _, n := f.model.Cases(Filter{Region: "kempen"}); n != info.Cases {
			t.Fatalf("step %d: region counts %d cases, the model has %d", i, info.Cases, n)
		}
	}
	stopReads()
	wg.Wait()
	f.model.Settle()
	if got, want := dump(t, f.model), dump(t, f.newModel()); got != want {
		t.Fatalf("the queued model differs from a rebuild:\n%s", firstDiff(got, want))
	}
	if p := f.model.Pending(); p != 0 {
		t.Fatalf("%d commits still pending after Settle", p)
	}
	t.Log(fmt.Sprintf("%d commits", len(f.commits)))
}

// TestQueue_PeekDoesNotWaitForQueuedCommits: with no applier running, a
// queued commit waits; PeekCase answers without it (the pull's signals),
// Case applies it first.
func TestQueue_PeekDoesNotWaitForQueuedCommits(t *testing.T) {
	f := newFixture(t)
	f.queued.Store(true)
	fam := newID()
	f.write("kempen", row{"families", fam, map[string]any{"region": "kempen", "label": "Gezin Vlinder"}})
	if p := f.model.Pending(); p != 1 {
		t.Fatalf("pending %d, want the one commit", p)
	}
	if _, ok := f.model.PeekCase(fam); ok {
		t.Fatal("PeekCase waited for the queued commit")
	}
	if f.model.Pending() != 1 {
		t.Fatal("PeekCase applied the queue")
	}
	cs, ok := f.model.Case(fam)
	if !ok || cs.Family.Label != "Gezin Vlinder" {
		t.Fatalf("Case after the write: %v %+v", ok, cs)
	}
	if f.model.Pending() != 0 {
		t.Fatal("Case left the queue pending")
	}
}

// TestQueue_SettleForAppliesOnlyForTheDevicesOwnPushes: a pull settles its
// own device's queued pushes (her signals follow her contact) and does not
// wait for another device's.
func TestQueue_SettleForAppliesOnlyForTheDevicesOwnPushes(t *testing.T) {
	f := newFixture(t)
	f.hook.Store(nil) // commits are only recorded; the test enqueues them
	fam := newID()
	f.write("kempen", row{"families", fam, map[string]any{"region": "kempen", "label": "Gezin Kraai"}})
	f.mu.Lock()
	c := f.commits[len(f.commits)-1]
	f.mu.Unlock()
	c.Device = "dev-a"
	f.model.Enqueue(c)

	f.model.SettleFor("dev-b")
	if f.model.Pending() != 1 {
		t.Fatal("another device's pull applied dev-a's push")
	}
	if _, ok := f.model.PeekCase(fam); ok {
		t.Fatal("the family is there before dev-a's push was applied")
	}
	f.model.SettleFor("dev-a")
	if f.model.Pending() != 0 {
		t.Fatal("dev-a's own pull left its push queued")
	}
	if cs, ok := f.model.PeekCase(fam); !ok || cs.Family.Label != "Gezin Kraai" {
		t.Fatalf("after SettleFor: %v %+v", ok, cs)
	}
}
