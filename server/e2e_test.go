package server

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// replica opens a sync/client replica in a temp file and logs it in as
// username: one device of the Go reference client against the real server.
func (e *testEnv) replica(t *testing.T, username, device string) *client.Replica {
	t.Helper()
	ctx := context.Background()
	r, err := client.Open(ctx, filepath.Join(t.TempDir(), device+".db"), client.Options{BaseURL: e.url()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.Login(ctx, username, testPassword, device); err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return r
}

func mustSync(t *testing.T, rs ...*client.Replica) {
	t.Helper()
	for _, r := range rs {
		if _, err := r.Sync(context.Background()); err != nil {
			t.Fatalf("sync %s: %v", r.DeviceID(), err)
		}
	}
}

func mustWrite(t *testing.T, r *client.Replica, collection, id, field string, value any) {
	t.Helper()
	if err := r.Write(context.Background(), collection, id, field, value); err != nil {
		t.Fatal(err)
	}
	// Distinct wall milliseconds make the order of writes on different
	// devices the order of their stamps, so the winner is known.
	time.Sleep(3 * time.Millisecond)
}

// regionState returns the server's winning writes of region, keeping only
// the rows keep accepts (nil keeps all). keep sees a row's fields.
func (e *testEnv) regionState(t *testing.T, region string, keep func(collection, id string, fields map[string]string) bool) map[crdt.Key]string {
	t.Helper()
	r, _ := e.stores.Region(region)
	type rowKey struct{ collection, id string }
	rows := map[rowKey]map[string]protocol.Change{}
	if err := r.Scan(context.Background(), func(c protocol.Change) error {
		k := rowKey{c.Collection, c.ID}
		if rows[k] == nil {
			rows[k] = map[string]protocol.Change{}
		}
		rows[k][c.Field] = c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := map[crdt.Key]string{}
	for k, fields := range rows {
		vals := map[string]string{}
		for f, c := range fields {
			vals[f] = string(c.Value)
		}
		if keep != nil && !keep(k.collection, k.id, vals) {
			continue
		}
		for f, c := range fields {
			out[crdt.Key{Collection: k.collection, ID: k.id, Field: f}] = string(c.Value) + " @ " + c.HLC
		}
	}
	return out
}

// ofFamily keeps the rows of family fam's scope: the family, rows linked to
// it by family_id, and rows of its trajectories.
func ofFamily(e *testEnv, t *testing.T, region, fam string) func(string, string, map[string]string) bool {
	trajs := map[string]bool{}
	for k, v := range e.regionState(t, region, nil) {
		if k.Collection == "trajectories" && k.Field == "family_id" && strings.HasPrefix(v, string(jsonValue(fam))+" @") {
			trajs[k.ID] = true
		}
	}
	return func(collection, id string, f map[string]string) bool {
		if collection == "families" {
			return id == fam
		}
		if f["family_id"] == string(jsonValue(fam)) {
			return true
		}
		var traj string
		json.Unmarshal([]byte(f["trajectory_id"]), &traj)
		return trajs[traj]
	}
}

func replicaState(t *testing.T, r *client.Replica) map[crdt.Key]string {
	t.Helper()
	st, err := r.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[crdt.Key]string, len(st))
	for k, c := range st {
		out[k] = string(c.Value) + " @ " + c.HLC
	}
	return out
}

// diffStates describes how got differs from want, or "" when they are equal.
func diffStates(got, want map[crdt.Key]string) string {
	var lines []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			lines = append(lines, fmt.Sprintf("missing %v = %s", k, w))
		} else if g != w {
			lines = append(lines, fmt.Sprintf("%v: got %s, want %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("extra %v = %s", k, g))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// checkChecksums compares every scope checksum a replica computes with the
// server's, and requires that the replica holds the wanted scopes.
func checkChecksums(t *testing.T, region *store.Region, r *client.Replica, scopes ...string) {
	t.Helper()
	ctx := context.Background()
	sums, err := r.Checksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scopes {
		if _, ok := sums[s]; !ok {
			t.Errorf("device %s holds no scope %s (has %v)", r.DeviceID(), s, sums)
		}
	}
	held, err := r.Scopes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for s, got := range sums {
		if !slices.Contains(held, s) {
			// A coordinator's own writes give her rows a family scope
			// locally that she does not hold (she holds region:<name>);
			// that partial sum is never compared with the server's.
			continue
		}
		want, err := region.Checksum(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("device %s: checksum of %s is %s, server's %s", r.DeviceID(), s, got, want)
		}
	}
}

// TestE2E_TwoDevicesEditOneFamilyOffline_Converge is the first "done when"
// of issue 2: two devices of coach.a and the coordinator edit the same family
// offline, the same fields and different ones, push in either order, pull,
// and end identical to each other and to the server; the losing writes are in
// History, and the two texts of the note in Conflicts.
func TestE2E_TwoDevicesEditOneFamilyOffline_Converge(t *testing.T) {
	for _, order := range []string{"loser pushes first", "winner pushes first"} {
		t.Run(order, func(t *testing.T) {
			ctx := context.Background()
			e := newTestEnv(t)
			fam, traj := e.families["coach.a"], e.trajectories["coach.a"]
			region, _ := e.stores.Region("kempen")
			a1 := e.replica(t, "coach.a", "tablet")
			a2 := e.replica(t, "coach.a", "phone")
			k := e.replica(t, "coordinator.k", "office")
			mustSync(t, a1, a2, k)

			// A contact everyone holds before going offline.
			contact := a1.NewID()
			mustWrite(t, a1, "contacts", contact, "trajectory_id", traj)
			mustWrite(t, a1, "contacts", contact, "mode", "home_visit")
			mustWrite(t, a1, "contacts", contact, "minutes", 30)
			mustWrite(t, a1, "contacts", contact, "note", "Eerste gesprek.")
			mustSync(t, a1, a2, k)
			if got, _ := a2.Get(ctx, "contacts", contact); string(got["note"]) != `"Eerste gesprek."` {
				t.Fatalf("a2 did not receive the contact: %v", got)
			}

			// Offline: the same text field, the same number field, and
			// fields only one device touches. a2 writes last and wins.
			const loserNote, winnerNote = "Moeder was ongerust over school (tablet).", "Moeder ongerust; afspraak met CLB (telefoon)."
			mustWrite(t, a1, "contacts", contact, "note", loserNote)
			mustWrite(t, a1, "contacts", contact, "minutes", 45)
			mustWrite(t, a1, "families", fam, "label", "Gezin Peeters")
			mustWrite(t, k, "contacts", contact, "mode", "phone")
			mustWrite(t, k, "families", fam, "municipality", "Geel")
			mustWrite(t, a2, "contacts", contact, "note", winnerNote)
			mustWrite(t, a2, "contacts", contact, "minutes", 50)
			mustWrite(t, a2, "contacts", contact, "follow_up", "Volgende week bellen.")

			pushers := []*client.Replica{a1, k, a2}
			if order == "winner pushes first" {
				pushers = []*client.Replica{a2, k, a1}
			}
			for _, r := range pushers {
				res, err := r.Push(ctx)
				if err != nil {
					t.Fatalf("push %s: %v", r.DeviceID(), err)
				}
				if len(res.Rejected)+len(res.Quarantined) > 0 {
					t.Fatalf("push %s: rejected %v, quarantined %v", r.DeviceID(), res.Rejected, res.Quarantined)
				}
			}
			for _, r := range pushers {
				if _, err := r.Pull(ctx); err != nil {
					t.Fatalf("pull %s: %v", r.DeviceID(), err)
				}
			}

			// Identical to each other and to the server.
			s1, s2 := replicaState(t, a1), replicaState(t, a2)
			if d := diffStates(s1, s2); d != "" {
				t.Errorf("the two devices of coach.a differ:\n%s", d)
			}
			if d := diffStates(s1, e.regionState(t, "kempen", ofFamily(e, t, "kempen", fam))); d != "" {
				t.Errorf("coach.a's device differs from the server's family:\n%s", d)
			}
			if d := diffStates(replicaState(t, k), e.regionState(t, "kempen", nil)); d != "" {
				t.Errorf("the coordinator's device differs from the server's region:\n%s", d)
			}
			checkChecksums(t, region, a1, schema.FamilyScope(fam))
			checkChecksums(t, region, a2, schema.FamilyScope(fam))
			checkChecksums(t, region, k, store.RegionScopePrefix+"kempen")

			got, _ := a1.Get(ctx, "contacts", contact)
			for f, want := range map[string]string{"note": winnerNote, "minutes": "50", "mode": "phone", "follow_up": "Volgende week bellen."} {
				if f != "minutes" {
					want = string(jsonValue(want))
				}
				if string(got[f]) != want {
					t.Errorf("contact %s = %s, want %s", f, got[f], want)
				}
			}
			if got, _ := a2.Get(ctx, "families", fam); string(got["label"]) != `"Gezin Peeters"` || string(got["municipality"]) != `"Geel"` {
				t.Errorf("family = %v, want both devices' edits", got)
			}

			// The losers are in the history: the tablet's note and minutes.
			hist, err := region.History(ctx, "contacts", contact)
			if err != nil {
				t.Fatal(err)
			}
			var lost []string
			for _, h := range hist {
				if h.DeviceID == a1.DeviceID() && (h.Field == "note" || h.Field == "minutes") &&
					string(h.Value) != "30" && string(h.Value) != `"Eerste gesprek."` {
					lost = append(lost, h.Field+"="+string(h.Value))
				}
				if h.UserID == "" || h.ReceivedAt.IsZero() {
					t.Errorf("history entry without author or time: %+v", h)
				}
			}
			slices.Sort(lost)
			if want := []string{"minutes=45", "note=" + string(jsonValue(loserNote))}; !slices.Equal(lost, want) {
				t.Errorf("tablet's writes in History: %v, want %v\n%+v", lost, want, hist)
			}
			// Nothing of the winner side is missing either: every offline write was logged once.
			if n := len(hist); n != 4+2+1+3 {
				t.Errorf("history of the contact has %d entries, want 10", n)
			}

			// The note, a text field, is a conflict with both texts; the
			// minutes, a number, are plain last-writer-wins.
			conflicts, err := region.Conflicts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(conflicts) != 1 {
				t.Fatalf("conflicts: %+v, want one (the note)", conflicts)
			}
			c := conflicts[0]
			if c.Collection != "contacts" || c.RowID != contact || c.Field != "note" ||
				string(c.Winner.Value) != string(jsonValue(winnerNote)) || string(c.Loser.Value) != string(jsonValue(loserNote)) ||
				c.Winner.DeviceID != a2.DeviceID() || c.Loser.DeviceID != a1.DeviceID() {
				t.Errorf("conflict %+v, want the phone's note over the tablet's", c)
			}
		})
	}
}

// TestE2E_Reassignment_EvictsQuarantinesAndHandsOver: when the server
// reassigns coach.a's trajectory to coach.b, her next pull evicts the family
// and the pull after that proves it; her offline note for the family is
// quarantined, not lost and not applied; coach.b receives the family.
func TestE2E_Reassignment_EvictsQuarantinesAndHandsOver(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	fam, traj := e.families["coach.a"], e.trajectories["coach.a"]
	famScope := schema.FamilyScope(fam)
	region, _ := e.stores.Region("kempen")
	a := e.replica(t, "coach.a", "tablet")
	b := e.replica(t, "coach.b", "tablet")
	mustSync(t, a, b)
	if got, _ := a.Get(ctx, "families", fam); got == nil {
		t.Fatal("coach.a does not hold her family")
	}
	if got, _ := b.Get(ctx, "families", fam); got != nil {
		t.Fatal("coach.b holds coach.a's family before the reassignment")
	}

	e.serverWrite("kempen", store.FieldWrite{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(e.users["coach.b"].ID)})

	// Offline, not knowing yet, coach.a writes a contact with a note.
	const note = "Vader kwam onverwacht thuis; gesprek uitgesteld."
	contact := a.NewID()
	mustWrite(t, a, "contacts", contact, "trajectory_id", traj)
	mustWrite(t, a, "contacts", contact, "note", note)

	res, err := a.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Evicted, famScope) {
		t.Fatalf("pull evicted %v, want %s", res.Evicted, famScope)
	}
	if got, _ := a.Get(ctx, "families", fam); got != nil {
		t.Errorf("the family is still on coach.a's device: %v", got)
	}
	if pending, _ := a.Pending(ctx); len(pending) != 2 {
		t.Errorf("pending after the eviction: %d writes, want her 2 (not lost)", len(pending))
	}
	ev, err := region.Evictions(ctx, store.EvictionFilter{DeviceID: a.DeviceID(), Scope: famScope})
	if err != nil || len(ev) != 1 {
		t.Fatalf("evictions: %+v %v, want one", ev, err)
	}
	if ev[0].ProvenAt != nil {
		t.Errorf("eviction proven before the device proved it: %+v", ev[0])
	}

	// The push after the eviction: her note goes to quarantine.
	pres, err := a.Push(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pres.Quarantined) != 2 || pres.Applied != 0 || len(pres.Rejected) != 0 {
		t.Errorf("push after reassignment: applied %d, rejected %v, quarantined %v; want 2 quarantined", pres.Applied, pres.Rejected, pres.Quarantined)
	}
	q, err := region.Quarantine(ctx, store.QuarantineOpen)
	if err != nil {
		t.Fatal(err)
	}
	var kept bool
	for _, w := range q {
		if w.RowID == contact && w.Field == "note" && string(w.Value) == string(jsonValue(note)) &&
			w.DeviceID == a.DeviceID() && w.UserID == e.users["coach.a"].ID && w.Scope == famScope {
			kept = true
		}
	}
	if !kept {
		t.Errorf("the note is not in quarantine: %+v", q)
	}
	if h, _ := region.History(ctx, "contacts", contact); len(h) != 0 {
		t.Errorf("a quarantined write was applied: %+v", h)
	}

	// The next pull carries the proof, and the server records it.
	if _, err := a.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	held, _ := a.Scopes(ctx)
	ev, _ = region.Evictions(ctx, store.EvictionFilter{DeviceID: a.DeviceID(), Scope: famScope})
	if len(ev) != 1 || ev[0].ProvenAt == nil || ev[0].Proof != crdt.ScopesHash(held) {
		t.Errorf("eviction %+v, want it proven with the hash of %v (%s)", ev, held, crdt.ScopesHash(held))
	}
	if slices.Contains(held, famScope) {
		t.Errorf("coach.a still holds %s: %v", famScope, held)
	}
	for k := range replicaState(t, a) {
		if k.ID == fam || k.ID == traj || k.ID == contact {
			t.Errorf("coach.a's device still has %v", k)
		}
	}

	// coach.b receives the whole family, without the quarantined note.
	mustSync(t, b)
	if got, _ := b.Get(ctx, "families", fam); string(got["label"]) != string(jsonValue("Gezin coach.a")) {
		t.Errorf("coach.b's family = %v", got)
	}
	if got, _ := b.Get(ctx, "trajectories", traj); string(got["lead_coach_id"]) != string(jsonValue(e.users["coach.b"].ID)) {
		t.Errorf("coach.b's trajectory = %v", got)
	}
	if got, _ := b.Get(ctx, "contacts", contact); got != nil {
		t.Errorf("coach.b received a quarantined write: %v", got)
	}
	if d := diffStates(replicaState(t, b), e.regionState(t, "kempen", func(c, id string, f map[string]string) bool {
		return ofFamily(e, t, "kempen", fam)(c, id, f) || ofFamily(e, t, "kempen", e.families["coach.b"])(c, id, f)
	})); d != "" {
		t.Errorf("coach.b differs from the server:\n%s", d)
	}
	checkChecksums(t, region, b, famScope, schema.FamilyScope(e.families["coach.b"]))
}
