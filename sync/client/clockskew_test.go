// A device whose wall clock runs ahead of the server's, against the real
// server: the writes it refuses with clock_skew are stamped anew and arrive.
package client_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/crdt"
)

// skewedWall is a device's wall clock: the real time plus a settable lead.
type skewedWall struct{ ahead atomic.Int64 }

func (w *skewedWall) Now() time.Time      { return time.Now().Add(time.Duration(w.ahead.Load())) }
func (w *skewedWall) set(d time.Duration) { w.ahead.Store(int64(d)) }

// openAs opens the replica file at path and logs it in as user unless it
// is logged in already.
func (s *realServer) openAs(t *testing.T, path, user string, opts client.Options) *client.Replica {
	t.Helper()
	opts.BaseURL = s.url
	r, err := client.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.DeviceID() == "" {
		if _, err := r.Login(context.Background(), user, "een-lang-wachtwoord", "test"); err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
	}
	return r
}

// assertSameAsServer checks that r holds exactly the server's state: the
// region holds only rows r can read in these tests.
func assertSameAsServer(t *testing.T, s *realServer, r *client.Replica) {
	t.Helper()
	got, err := r.State(context.Background())
	mustDo(t, err)
	if g, w := normalizeState(got), normalizeState(s.state(t)); !reflect.DeepEqual(g, w) {
		t.Errorf("replica differs from the server:\n got %v\nwant %v", g, w)
	}
}

// labels returns the values of a family's label in the server's change
// log, in log order, and checks that every entry was applied with a stamp
// above the one before and that each names the one before as its base.
func labels(t *testing.T, s *realServer, fid string) []string {
	t.Helper()
	hist, err := s.region.History(context.Background(), "families", fid)
	mustDo(t, err)
	var out []string
	prev := ""
	for _, h := range hist {
		if h.Field != "label" {
			continue
		}
		out = append(out, string(h.Value))
		if h.Outcome != "applied" {
			t.Errorf("label %s logged %s, want applied", h.Value, h.Outcome)
		}
		if h.HLC <= prev {
			t.Errorf("label %s stamped %s, not after %s", h.Value, h.HLC, prev)
		}
		if h.Base != prev {
			t.Errorf("label %s has base %q, want the stamp before it %q", h.Value, h.Base, prev)
		}
		prev = h.HLC
	}
	return out
}

func TestRealServer_ClockAheadWritesAreStampedAnewAndArrive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		putRight bool // the wall clock is put right before the first push
	}{
		{"wall clock stays ten minutes ahead", false},
		{"wall clock put right before the push", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := startRealServer(t)
			s.addCoach(t, "ann")
			wall := &skewedWall{}
			path := filepath.Join(t.TempDir(), "phone.db")
			// Batches of two: the first refused batch leaves later writes
			// unbatched, and they must be stamped anew in order with it.
			opts := client.Options{Now: wall.Now, BatchSize: 2}
			phone := s.openAs(t, path, "ann", opts)
			laptop := s.device(t, "ann", client.Options{})

			fid, pid := phone.NewID(), phone.NewID()
			mustDo(t, phone.Write(ctx, "families", fid, "region", "kempen"))
			mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Peeters"))
			sync2(t, phone, laptop)

			// Offline with the wall clock ten minutes ahead: two labels
			// (the second based on the first) and a new person.
			wall.set(10 * time.Minute)
			mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Claes"))
			mustDo(t, phone.Write(ctx, "persons", pid, "family_id", fid))
			mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Claes-Peeters"))
			mustDo(t, phone.Write(ctx, "persons", pid, "given_name", "Lotte"))
			if ahead := time.Until(phone.Clock().Time()); ahead < 9*time.Minute {
				t.Fatalf("the phone's stamps are %s ahead, want about 10 min", ahead)
			}
			if tc.putRight {
				wall.set(0)
			}

			res, err := phone.Push(ctx)
			mustDo(t, err)
			if len(res.Rejected) != 0 || len(res.Quarantined) != 0 {
				t.Fatalf("push left problems: rejected %+v quarantined %+v", res.Rejected, res.Quarantined)
			}
			if len(res.Restamped) != 4 {
				t.Fatalf("restamped %d writes, want the 4 written ahead: %+v", len(res.Restamped), res.Restamped)
			}
			for _, r := range res.Restamped {
				if r.New >= r.Old {
					t.Errorf("restamp %+v did not lower the stamp", r)
				}
				if limit := time.Now().Add(5 * time.Minute); mustParse(t, r.New).Time().After(limit) {
					t.Errorf("restamped %s is beyond the server's limit", r.New)
				}
			}
			st, err := phone.Status(ctx)
			mustDo(t, err)
			if st.Pending != 0 || len(st.Rejected) != 0 || st.LastError != "" {
				t.Fatalf("after the push: pending %d, rejected %+v, last error %q", st.Pending, st.Rejected, st.LastError)
			}
			wantOffset := !tc.putRight
			if got := st.ClockOffset > 9*time.Minute && st.ClockOffset < 10*time.Minute+5*time.Second; got != wantOffset {
				t.Errorf("clock offset %s, want about 10 min: %v", st.ClockOffset, wantOffset)
			}
			sync2(t, phone, laptop)
			assertSameAsServer(t, s, phone)
			assertSameAsServer(t, s, laptop)
			if got, want := labels(t, s, fid), []string{`"Gezin Peeters"`, `"Gezin Claes"`, `"Gezin Claes-Peeters"`}; !reflect.DeepEqual(got, want) {
				t.Errorf("labels in the log = %v, want %v", got, want)
			}
			m, err := laptop.Get(ctx, "persons", pid)
			mustDo(t, err)
			if string(m["given_name"]) != `"Lotte"` {
				t.Errorf("the laptop sees the person as %v", m)
			}

			// Later writes: the laptop's (a true clock), then the phone's
			// again; the later one wins everywhere and nothing is refused.
			mustDo(t, laptop.Write(ctx, "families", fid, "label", "Gezin Janssens"))
			sync2(t, laptop, phone)
			mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Wouters"))
			res, err = phone.Push(ctx)
			mustDo(t, err)
			if len(res.Restamped) != 0 || len(res.Rejected) != 0 {
				t.Errorf("a write after the correction: restamped %+v rejected %+v", res.Restamped, res.Rejected)
			}
			sync2(t, phone, laptop)
			for _, r := range []*client.Replica{phone, laptop} {
				m, err := r.Get(ctx, "families", fid)
				mustDo(t, err)
				if string(m["label"]) != `"Gezin Wouters"` {
					t.Errorf("label = %s, want the phone's later write", m["label"])
				}
			}
			assertSameAsServer(t, s, phone)

			// The offset survives a restart: reopened, still ahead (or
			// still right), a write goes through at once.
			mustDo(t, phone.Close())
			phone = s.openAs(t, path, "ann", opts)
			st, err = phone.Status(ctx)
			mustDo(t, err)
			if got := st.ClockOffset > 9*time.Minute; got != wantOffset {
				t.Errorf("clock offset after reopening %s", st.ClockOffset)
			}
			mustDo(t, phone.Write(ctx, "families", fid, "language", "nl"))
			res, err = phone.Push(ctx)
			mustDo(t, err)
			if len(res.Restamped) != 0 || res.Applied != 1 {
				t.Errorf("a write after reopening: %+v", res)
			}

			// The wall clock put right at last: the next pull's server_hlc
			// shrinks the offset back to zero and stamps follow the wall.
			wall.set(0)
			sync2(t, phone)
			st, err = phone.Status(ctx)
			mustDo(t, err)
			if st.ClockOffset != 0 {
				t.Errorf("clock offset after the wall clock was put right: %s", st.ClockOffset)
			}
			mustDo(t, phone.Write(ctx, "families", fid, "language", "fr"))
			if d := time.Until(phone.Clock().Time()); d > time.Minute || d < -time.Minute {
				t.Errorf("a stamp after the correction is %s off the real time", d)
			}
			sync2(t, phone, laptop)
			assertSameAsServer(t, s, phone)
			assertSameAsServer(t, s, laptop)
		})
	}
}

func mustParse(t *testing.T, wire string) crdt.Stamp {
	t.Helper()
	s, err := crdt.ParseStamp(wire)
	mustDo(t, err)
	return s
}

// TestRealServer_ClockAheadOfAServerHLCThatIsAheadToo: the server's clock
// has observed a stamp another device made 4 min 30 s ahead, so its
// server_hlc runs that far ahead of its wall clock. A device 5 min 20 s
// ahead is then within a minute of server_hlc (no offset learned) but past
// the limit; its refused writes must
// still be stamped at or below server_hlc and arrive in the same Push
// (found by TestReplicas_ConvergeWithClocksBeyondTheLimit: the device was
// calibrated with the usual minute's tolerance and refused twice).
func TestRealServer_ClockAheadOfAServerHLCThatIsAheadToo(t *testing.T) {
	ctx := context.Background()
	s := startRealServer(t)
	s.addCoach(t, "ann")
	early, late := &skewedWall{}, &skewedWall{}
	tablet := s.openAs(t, filepath.Join(t.TempDir(), "tablet.db"), "ann", client.Options{Now: early.Now})
	phone := s.openAs(t, filepath.Join(t.TempDir(), "phone.db"), "ann", client.Options{Now: late.Now})

	fid := tablet.NewID()
	mustDo(t, tablet.Write(ctx, "families", fid, "region", "kempen"))
	mustDo(t, tablet.Write(ctx, "families", fid, "label", "Gezin Peeters"))
	sync2(t, tablet, phone)

	early.set(4*time.Minute + 30*time.Second) // within the limit: accepted, and the server's clock follows
	mustDo(t, tablet.Write(ctx, "families", fid, "municipality", "Geel"))
	if _, err := tablet.Push(ctx); err != nil {
		t.Fatal(err)
	}
	late.set(5*time.Minute + 20*time.Second)
	if _, err := phone.Pull(ctx); err != nil { // calibrates with the usual tolerance: within it
		t.Fatal(err)
	}
	mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Claes"))
	res, err := phone.Push(ctx)
	if err != nil {
		t.Fatalf("push: %v (restamped %+v)", err, res.Restamped)
	}
	if res.Applied != 1 || len(res.Rejected) != 0 {
		t.Fatalf("push applied %d, rejected %+v; want the label applied", res.Applied, res.Rejected)
	}
	sync2(t, tablet, phone)
	assertSameAsServer(t, s, phone)
	assertSameAsServer(t, s, tablet)
}
