package client

import (
	"context"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/schema"
)

// TestPush_ClockSkewThatRestampingCannotCureKeepsTheWrites: a server whose
// own clock ran 20 minutes ahead and then went back (its server_hlc is far
// beyond what it accepts) refuses the restamped writes again. Push stops
// with clock_skew and keeps them queued, not as problems; once the server's
// clock is sane again they arrive.
func TestPush_ClockSkewThatRestampingCannotCureKeepsTheWrites(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{BatchSize: 1})
	fid := r.NewID()
	f.write("families", fid, "region", "kempen")
	f.grant(r.DeviceID(), schema.FamilyScope(fid))
	_, err := r.Pull(ctx)
	must(t, err)

	f.mu.Lock()
	must(t, f.clock.Observe(crdt.Stamp{Wall: time.Now().Add(20 * time.Minute).UnixMilli(), Node: "server"}, 0))
	f.mu.Unlock()
	_, err = r.Pull(ctx) // observes the far server_hlc
	must(t, err)
	must(t, r.Write(ctx, "families", fid, "label", "a"))
	must(t, r.Write(ctx, "families", fid, "label", "b"))
	res, err := r.Push(ctx)
	wantCode(t, err, samenplan.ECLOCKSKEW)
	if len(res.Rejected) != 0 || len(res.Restamped) == 0 {
		t.Fatalf("push: rejected %+v, restamped %+v", res.Rejected, res.Restamped)
	}
	st, err := r.Status(ctx)
	must(t, err)
	if st.Pending != 2 || len(st.Rejected) != 0 {
		t.Fatalf("after the refusals: pending %d, rejected %+v; want both writes queued", st.Pending, st.Rejected)
	}
	p, err := r.Pending(ctx)
	must(t, err)
	if p[1].Base != p[0].HLC || p[0].HLC >= p[1].HLC {
		t.Errorf("pending writes out of order or base chain broken: %+v", p)
	}
	if got := field(t, r, "families", fid, "label"); got != `"b"` {
		t.Errorf("local label = %s, want the latest write", got)
	}

	f.mu.Lock()
	f.clock = crdt.NewClock("server", nil) // the server's clock is sane again
	f.mu.Unlock()
	sres, err := r.Sync(ctx)
	must(t, err)
	if sres.Push.Applied != 2 || len(sres.Push.Rejected) != 0 {
		t.Fatalf("push after the server's clock was put right: %+v", sres.Push)
	}
	if got := field(t, r, "families", fid, "label"); got != `"b"` {
		t.Errorf("label = %s, want the later write", got)
	}
	assertConverged(t, f, r)
}
