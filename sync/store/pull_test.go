package store

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// checkSums recomputes every scope's checksum from the fields and
// row_scopes tables and compares it with scope_sums.
func checkSums(t *testing.T, e *env) {
	t.Helper()
	want := map[string]uint64{}
	rows, err := e.r.db.Reader.Query(`SELECT f.collection, f.id, f.field, l.hlc, r.scope FROM fields f
		JOIN change_log l ON l.seq = f.seq JOIN row_scopes r ON r.collection = f.collection AND r.id = f.id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c, id, f, h, s string
		if err := rows.Scan(&c, &id, &f, &h, &s); err != nil {
			t.Fatal(err)
		}
		want[s] ^= crdt.FieldSum(c, id, f, h)
	}
	rows.Close()
	var region uint64
	for k, c := range e.state(e.r) {
		region ^= crdt.FieldSum(k.Collection, k.ID, k.Field, c.HLC)
	}
	want[e.r.regionScope] = region
	for s, w := range want {
		got, err := e.r.Checksum(e.ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if got != crdt.FormatSum(w) {
			t.Errorf("checksum of %s: got %s, want %s", s, got, crdt.FormatSum(w))
		}
	}
}

// recomputed returns the checksum of a replica's copy of a scope.
func (rep *replica) recomputed(scope string) string {
	var sum uint64
	for k, c := range rep.scopes[scope] {
		sum ^= crdt.FieldSum(k.Collection, k.ID, k.Field, c.HLC)
	}
	return crdt.FormatSum(sum)
}

func TestPull_NewScopeDeliversItsFullState(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam1, fam2 := uid(1), uid(3)
	e.family(fam1, uid(2), c.UserID)
	e.family(fam2, uid(4), uid(1009)) // another coach's family, with history
	e.serverWrite(fw("persons", uid(5), "family_id", fam2), fw("persons", uid(5), "given_name", "Noor"))
	rep := newReplica()
	e.pullAll(c, rep, 100, "")
	if _, ok := rep.scopes[schema.FamilyScope(fam2)]; ok {
		t.Fatal("received a family she does not hold")
	}
	// Nothing changes in fam2 when she becomes its co-coach: its state is
	// old, below her cursor, and must still arrive in full.
	e.serverWrite(fw("trajectories", uid(4), "co_coach_ids", []string{c.UserID}))
	e.pullAll(c, rep, 100, "")
	got := rep.scopes[schema.FamilyScope(fam2)]
	want := 0
	for k := range e.state(e.r) {
		if k.ID == fam2 || k.ID == uid(4) || k.ID == uid(5) {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("got %d fields of the new family, want %d", len(got), want)
	}
	for s, sum := range rep.sums {
		if rep.recomputed(s) != sum {
			t.Errorf("scope %s: replica sum %s, server %s", s, rep.recomputed(s), sum)
		}
	}
}

func TestPull_PagingDeliversEverythingOncePerScope(t *testing.T) {
	for _, limit := range []int{1, 2, 3, 7, 1000} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			e := newEnv(t)
			c := coach(1)
			fam, traj := uid(1), uid(2)
			e.family(fam, traj, c.UserID)
			h := func(i uint16) string { return stamp(1000, i, c.DeviceID) }
			// A referral linked to the family is in two scopes.
			e.push(c, "b1",
				ch("referrals", uid(3), "region", testRegion, h(0)),
				ch("referrals", uid(3), "family_id", fam, h(1)),
				ch("referrals", uid(3), "question", "Vraag", h(2)),
				ch("consults", uid(4), "region", testRegion, h(3)),
				ch("persons", uid(5), "family_id", fam, h(4)),
				ch("persons", uid(5), "given_name", "Lien", h(5)))
			rep := newReplica()
			e.pullAll(c, rep, limit, "")
			fields := 0
			for _, m := range rep.scopes {
				fields += len(m)
			}
			if rep.got != fields {
				t.Fatalf("got %d deliveries for %d fields", rep.got, fields)
			}
			if n := len(rep.scopes[schema.FamilyScope(fam)]); n != 2+4+3+2 {
				t.Fatalf("family scope holds %d fields", n)
			}
			if n := len(rep.scopes[e.r.intakeScope]); n != 3+1 {
				t.Fatalf("intake scope holds %d fields", n)
			}
			// New writes arrive once, in the next pull.
			e.push(c, "b2", ch("persons", uid(5), "given_name", "Lien V.", stamp(2000, 0, c.DeviceID)))
			before := rep.got
			e.pullAll(c, rep, limit, "")
			if rep.got-before != 1 {
				t.Fatalf("incremental pull delivered %d changes, want 1", rep.got-before)
			}
			for s, sum := range rep.sums {
				if rep.recomputed(s) != sum {
					t.Errorf("scope %s: replica %s, server %s", s, rep.recomputed(s), sum)
				}
			}
		})
	}
}

func TestPull_CoordinatorHoldsTheWholeRegion(t *testing.T) {
	e := newEnv(t)
	e.family(uid(1), uid(2), uid(1001))
	e.family(uid(3), uid(4), uid(1002))
	rep := newReplica()
	e.pullAll(coordinator, rep, 5, "")
	if got, want := len(rep.scopes[e.r.regionScope]), len(e.state(e.r)); got != want {
		t.Fatalf("got %d fields, want %d", got, want)
	}
	if rep.sums[e.r.regionScope] != rep.recomputed(e.r.regionScope) {
		t.Fatal("region checksum differs")
	}
}

func TestChecksums_EqualARecomputationFromScratch(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	e.family(uid(1), uid(2), c.UserID)
	for i := 0; i < 20; i++ {
		h := stamp(int64(1000+i), 0, c.DeviceID)
		e.push(c, fmt.Sprint("b", i),
			ch("contacts", uid(100+i%5), "trajectory_id", uid(2), h),
			ch("contacts", uid(100+i%5), "note", fmt.Sprint("notitie ", i), h),
			ch("families", uid(1), "label", fmt.Sprint("label ", i), h),
			ch("referrals", uid(200+i%3), "region", testRegion, h),
			ch("referrals", uid(200+i%3), "family_id", uid(1), h))
	}
	e.serverWrite(fw("trajectories", uid(2), "status", "paused"))
	checkSums(t, e)
}

func TestPull_TamperedCursorIsInvalid(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	e.family(uid(1), uid(2), c.UserID)
	rep := newReplica()
	e.pullAll(c, rep, 100, "")
	good := rep.cursor
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	bad := []string{
		"garbage!",
		good[:len(good)-3],
		base64.RawURLEncoding.EncodeToString(append(raw, ' ', '1')),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"r":"kempen","s":0,"a":0,"h":[],"p":[]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":0,"a":0,"h":[],"p":[]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"maasland","s":0,"f":0,"h":[],"p":[]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":1,"f":-2,"h":[],"p":["intake:kempen"]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":1,"f":2,"h":["intake:kempen"],"p":[]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":1,"k":["a"],"h":[],"p":["intake:kempen"]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":1,"f":99999,"h":[],"p":["intake:kempen"]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":99999,"f":0,"h":["intake:kempen"],"p":[]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":0,"f":0,"h":["family:x"],"p":[]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":0,"f":0,"h":["intake:kempen","intake:kempen"],"p":[]}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"r":"kempen","s":0,"f":0,"h":[],"p":[],"x":1}`)),
	}
	for _, cur := range bad {
		_, err := e.r.Pull(e.ctx, c, protocol.PullRequest{DeviceID: c.DeviceID, SchemaVersion: schema.Version, Cursor: cur})
		if codeOf(err) != samenplan.EINVALID {
			t.Errorf("cursor %q: got %v, want invalid", cur, err)
		}
	}
}

func TestPull_WholeRequestErrors(t *testing.T) {
	e := newEnv(t)
	_, err := e.r.Pull(e.ctx, coordinator, protocol.PullRequest{DeviceID: coordinator.DeviceID, SchemaVersion: 99})
	if codeOf(err) != samenplan.EUPGRADEREQUIRED {
		t.Fatalf("got %v, want upgrade_required", err)
	}
	admin := Actor{UserID: uid(3000), DeviceID: "dev-admin", Role: RoleAdmin}
	_, err = e.r.Pull(e.ctx, admin, protocol.PullRequest{DeviceID: admin.DeviceID, SchemaVersion: schema.Version})
	if codeOf(err) != samenplan.EFORBIDDEN {
		t.Fatalf("admin: got %v, want forbidden", err)
	}
}

func TestSync_LostFamilyIsEvictedProvenAndLateWritesAreQuarantined(t *testing.T) {
	e := newEnv(t)
	c1, c2 := coach(1), coach(2)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c1.UserID)
	rep := newReplica()
	e.pullAll(c1, rep, 100, "")
	if _, ok := rep.scopes[schema.FamilyScope(fam)]; !ok {
		t.Fatal("family not delivered")
	}

	// The coordinator reassigns the trajectory to coach 2.
	e.serverWrite(fw("trajectories", traj, "lead_coach_id", c2.UserID))
	e.pullAll(c1, rep, 100, "")
	if !slices.Contains(rep.evict, schema.FamilyScope(fam)) {
		t.Fatalf("evict %v, want the family", rep.evict)
	}
	evs, _ := e.r.Evictions(e.ctx, EvictionFilter{DeviceID: c1.DeviceID})
	if len(evs) != 1 || evs[0].ProvenAt != nil {
		t.Fatalf("evictions %+v", evs)
	}
	// The next pull proves the eviction.
	e.pullAll(c1, rep, 100, heldHash(t, e.r, rep.cursor))
	evs, _ = e.r.Evictions(e.ctx, EvictionFilter{Scope: schema.FamilyScope(fam)})
	if len(evs) != 1 || evs[0].ProvenAt == nil || evs[0].Proof == "" {
		t.Fatalf("evictions after proof %+v", evs)
	}

	// A note written offline before she synced arrives late: quarantined.
	contact := uid(3)
	h := stamp(500, 0, c1.DeviceID)
	resp := e.push(c1, "late",
		ch("contacts", contact, "trajectory_id", traj, h),
		ch("contacts", contact, "note", "Huisbezoek, offline geschreven", h),
		ch("families", fam, "label", "Nieuwe naam", h))
	if len(resp.Quarantined) != 3 || len(resp.Rejected) != 0 || resp.Applied != 0 {
		t.Fatalf("got %+v", resp)
	}
	if e.value("contacts", contact, "note") != "" {
		t.Fatal("a quarantined write was applied")
	}
	open, _ := e.r.Quarantine(e.ctx, QuarantineOpen)
	if len(open) != 3 || open[0].UserID != c1.UserID {
		t.Fatalf("quarantine %+v", open)
	}

	// The coordinator accepts the note: the contact is created whole.
	var noteID int64
	for _, q := range open {
		if q.Field == "note" {
			noteID = q.ID
		}
	}
	if err := e.r.DecideQuarantine(e.ctx, noteID, true, coordinator); err != nil {
		t.Fatal(err)
	}
	if got := e.value("contacts", contact, "note"); got != `"Huisbezoek, offline geschreven"` {
		t.Fatalf("accepted note: %s", got)
	}
	if err := e.r.DecideQuarantine(e.ctx, noteID, true, coordinator); codeOf(err) != samenplan.ECONFLICT {
		t.Fatalf("deciding twice: got %v, want conflict", err)
	}
	open, _ = e.r.Quarantine(e.ctx, QuarantineOpen)
	if len(open) != 1 || open[0].Field != "label" {
		t.Fatalf("still open %+v", open)
	}
	if err := e.r.DecideQuarantine(e.ctx, open[0].ID, false, coordinator); err != nil {
		t.Fatal(err)
	}
	if got := e.value("families", fam, "label"); got == `"Nieuwe naam"` {
		t.Fatal("a discarded write was applied")
	}
	// Coach 2 now sees the accepted note.
	rep2 := newReplica()
	e.pullAll(c2, rep2, 100, "")
	if _, ok := rep2.scopes[schema.FamilyScope(fam)][crdt.Key{Collection: "contacts", ID: contact, Field: "note"}]; !ok {
		t.Fatal("the new coach did not receive the accepted note")
	}
	checkSums(t, e)
}

func TestSync_ClosedTrajectoryEndsAccess(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	e.serverWrite(fw("trajectories", traj, "status", "closed"))
	scopes, err := e.r.DeviceScopes(e.ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(scopes, schema.FamilyScope(fam)) {
		t.Fatalf("scopes %v still hold a closed family", scopes)
	}
}

func TestPull_ConcurrentWithPushesStaysConsistent(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	e.family(uid(1), uid(2), c.UserID)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 30; i++ {
			h := stamp(int64(1000+i), 0, c.DeviceID)
			e.push(c, fmt.Sprint("b", i), ch("contacts", uid(100+i), "trajectory_id", uid(2), h), ch("contacts", uid(100+i), "minutes", i, h))
		}
	}()
	rep := newReplica()
	for i := 0; i < 10; i++ {
		e.pullAll(c, rep, 7, "")
	}
	wg.Wait()
	e.pullAll(c, rep, 7, "")
	for s, sum := range rep.sums {
		if rep.recomputed(s) != sum {
			t.Errorf("scope %s: replica %s, server %s", s, rep.recomputed(s), sum)
		}
	}
}

// TestPull_ChangesDuringFillArriveOnce changes a field behind the fill
// position and one ahead of it while a new family is being filled: both
// arrive, each once, and the checksums agree.
func TestPull_ChangesDuringFillArriveOnce(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	var batch []protocol.Change
	for i := 0; i < 20; i++ {
		h := stamp(1000, uint16(i), c.DeviceID)
		batch = append(batch, ch("contacts", uid(100+i), "trajectory_id", traj, h), ch("contacts", uid(100+i), "minutes", i, h))
	}
	e.push(c, "b1", batch...)
	rep := newReplica()
	resp, err := e.r.Pull(e.ctx, c, protocol.PullRequest{DeviceID: c.DeviceID, SchemaVersion: schema.Version, Limit: 15})
	if err != nil || !resp.More {
		t.Fatalf("first page: %v, more %v", err, resp.More)
	}
	for _, ch := range resp.Changes {
		m := rep.scopes[ch.Scope]
		if m == nil {
			m = map[crdt.Key]protocol.Change{}
			rep.scopes[ch.Scope] = m
		}
		m[crdt.Key{Collection: ch.Collection, ID: ch.ID, Field: ch.Field}] = ch
	}
	rep.cursor = resp.Cursor
	h := stamp(2000, 0, c.DeviceID)
	e.push(c, "b2", ch("contacts", uid(100), "minutes", 90, h), ch("contacts", uid(119), "minutes", 91, h))
	e.pullAll(c, rep, 15, "")
	for i, want := range map[int]string{100: "90", 119: "91"} {
		got := rep.scopes[schema.FamilyScope(fam)][crdt.Key{Collection: "contacts", ID: uid(i), Field: "minutes"}]
		if string(got.Value) != want {
			t.Errorf("contact %d minutes = %s, want %s", i, got.Value, want)
		}
	}
	for s, sum := range rep.sums {
		if rep.recomputed(s) != sum {
			t.Errorf("scope %s: replica %s, server %s", s, rep.recomputed(s), sum)
		}
	}
}
