package server

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/schema"
)

// caseFileOf reads a family's case file as c.
func caseFileOf(t *testing.T, c *testClient, family string) (int, CaseFile) {
	t.Helper()
	var cf CaseFile
	st, _ := tjCall(t, c, "GET", "/v1/families/"+family, nil, &cf)
	return st, cf
}

// TestReassignment_HandsOverEvictsWithProofAndQuarantinesTheLateNote is
// issue 4's reassignment through the API, with Go sync clients: coach.b's
// trajectory goes to coach.c; coach.c's device pulls the family; coach.b's
// device is told to evict at its next pull and proves it at the one after,
// and the proof shows on the trajectory; the note coach.b wrote offline
// lands in quarantine, is listed for the coordinator, and once accepted is
// in the case and on coach.c's device.
func TestReassignment_HandsOverEvictsWithProofAndQuarantinesTheLateNote(t *testing.T) {
	ctx := context.Background()
	we := newWorkflowEnv(t)
	fam, traj := we.families["coach.b"], we.trajectories["coach.b"]
	famScope := schema.FamilyScope(fam)
	b := we.replica(t, "coach.b", "tablet")
	cdev := we.replica(t, "coach.c", "phone")
	mustSync(t, b, cdev)
	if got, _ := cdev.Get(ctx, "families", fam); got != nil {
		t.Fatal("coach.c holds coach.b's family before the reassignment")
	}
	coord := we.login("coordinator.k")

	var d TrajectoryDetail
	if st, e := tjCall(t, coord, "PUT", "/v1/trajectories/"+traj+"/assignment",
		map[string]any{"lead_coach_id": we.users["coach.c"].ID, "co_coach_ids": []string{}}, &d); st != 200 {
		t.Fatalf("reassign: %d %+v", st, e)
	}
	if d.Trajectory.LeadCoachID != we.users["coach.c"].ID || len(d.Coaches) != 1 || d.Coaches[0].Username != "coach.c" ||
		d.Coaches[0].DisplayName != "coach.c" || len(d.Evictions) != 0 || d.FamilyID != fam {
		t.Errorf("assignment answer %+v", d)
	}

	// Offline, not knowing yet, coach.b writes a contact with a note.
	const note = "Moeder belde: de zoon gaat terug naar school."
	contact := b.NewID()
	mustWrite(t, b, "contacts", contact, "trajectory_id", traj)
	mustWrite(t, b, "contacts", contact, "mode", "phone")
	mustWrite(t, b, "contacts", contact, "note", note)

	// coach.c's device receives the family on its next pull.
	mustSync(t, cdev)
	if got, _ := cdev.Get(ctx, "families", fam); string(got["label"]) != `"Gezin coach.b"` {
		t.Fatalf("coach.c's device after the reassignment: %v", got)
	}
	if got, _ := cdev.Get(ctx, "trajectories", traj); string(got["lead_coach_id"]) != string(jsonValue(we.users["coach.c"].ID)) {
		t.Errorf("coach.c's trajectory: %v", got)
	}

	// coach.b's device is told to evict; the eviction shows, unproven.
	res, err := b.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Evicted, famScope) {
		t.Fatalf("coach.b's pull evicted %v, want %s", res.Evicted, famScope)
	}
	tjCall(t, coord, "GET", "/v1/trajectories/"+traj, nil, &d)
	if len(d.Evictions) != 1 || d.Evictions[0].DeviceID != b.DeviceID() || d.Evictions[0].UserID != we.users["coach.b"].ID ||
		d.Evictions[0].Username != "coach.b" || d.Evictions[0].Proven || d.Evictions[0].EvictedAt.IsZero() {
		t.Fatalf("evictions after the evict: %+v", d.Evictions)
	}

	// Her push after the eviction goes to quarantine.
	pres, err := b.Push(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pres.Quarantined) != 3 || pres.Applied != 0 {
		t.Fatalf("push after the reassignment: applied %d, rejected %v, quarantined %v; want 3 quarantined", pres.Applied, pres.Rejected, pres.Quarantined)
	}
	// The pull after that proves the eviction.
	if _, err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	held, _ := b.Scopes(ctx)
	if st, _ := tjCall(t, we.login("reviewer.k"), "GET", "/v1/trajectories/"+traj, nil, &d); st != 200 {
		t.Fatalf("reviewer reads the trajectory: %d", st)
	}
	if len(d.Evictions) != 1 || !d.Evictions[0].Proven || d.Evictions[0].ProvenAt == nil || d.Evictions[0].Proof != crdt.ScopesHash(held) {
		t.Errorf("evictions after the proof: %+v, want proven with %s", d.Evictions, crdt.ScopesHash(held))
	}
	if got, _ := b.Get(ctx, "families", fam); got != nil {
		t.Errorf("the family is still on coach.b's device: %v", got)
	}
	// coach.c reads her new trajectory; coach.b no longer does.
	if st, _ := tjCall(t, we.login("coach.c"), "GET", "/v1/trajectories/"+traj, nil, nil); st != 200 {
		t.Errorf("coach.c reads her new trajectory: %d", st)
	}
	if st, _ := tjCall(t, we.login("coach.b"), "GET", "/v1/trajectories/"+traj, nil, nil); st != 404 {
		t.Errorf("coach.b reads her former trajectory: %d, want 404", st)
	}

	// The quarantine lists her writes for the coordinator and the reviewer.
	var list QuarantineList
	if st, e := tjCall(t, coord, "GET", "/v1/regions/kempen/quarantine", nil, &list); st != 200 || list.Status != "open" || len(list.Items) != 3 {
		t.Fatalf("quarantine: %d %+v %+v", st, e, list)
	}
	var noteItem QuarantineItem
	for _, it := range list.Items {
		if it.FamilyID != fam || it.RowID != contact || it.Collection != "contacts" || it.UserID != we.users["coach.b"].ID ||
			it.Username != "coach.b" || it.DeviceID != b.DeviceID() || it.DeviceName != "tablet" || it.ReceivedAt.IsZero() ||
			it.WrittenAt.IsZero() || it.Reason == "" || it.ReasonText == "" || it.FamilyLabel != "Gezin coach.b" {
			t.Errorf("quarantined write %+v", it)
		}
		if it.Field == "note" {
			noteItem = it
		}
	}
	if string(noteItem.Value) != string(jsonValue(note)) {
		t.Fatalf("the note is not listed: %+v", list.Items)
	}
	for _, tc := range []struct {
		user, path string
		status     int
	}{
		{"reviewer.k", "/v1/regions/kempen/quarantine", 200},
		{"coach.c", "/v1/regions/kempen/quarantine", 403},
		{"coach.b", "/v1/regions/kempen/quarantine", 403},
		{"coordinator.m", "/v1/regions/kempen/quarantine", 404},
		{"admin", "/v1/regions/kempen/quarantine", 403},
		{"coordinator.k", "/v1/regions/kempen/quarantine?status=maybe", 400},
		{"coordinator.k", "/v1/regions/kempen/quarantine?status=accepted", 200},
		{"coordinator.k", "/v1/regions/maasland/quarantine", 404},
		{"coordinator.m", "/v1/regions/maasland/quarantine", 200},
	} {
		if st, e := tjCall(t, we.login(tc.user), "GET", tc.path, nil, nil); st != tc.status {
			t.Errorf("%s GET %s: %d %+v, want %d", tc.user, tc.path, st, e, tc.status)
		}
	}

	// The case shows the open quarantined writes to the coordinator and the
	// reviewer, not to a coach.
	st, cf := caseFileOf(t, coord, fam)
	if st != 200 || cf.Quarantined != 3 || len(cf.QuarantinedWrites) != 3 || len(cf.Evictions) != 1 || !cf.Evictions[0].Proven {
		t.Fatalf("case before the decision: %d quarantined %d %+v evictions %+v", st, cf.Quarantined, cf.QuarantinedWrites, cf.Evictions)
	}
	if st, cf := caseFileOf(t, we.login("reviewer.k"), fam); st != 200 || len(cf.QuarantinedWrites) != 3 {
		t.Errorf("reviewer's case: %d, %d quarantined writes, want 3", st, len(cf.QuarantinedWrites))
	}
	if st, cf := caseFileOf(t, we.login("coach.c"), fam); st != 200 || len(cf.QuarantinedWrites) != 0 {
		t.Errorf("coach.c's case: %d, %d quarantined writes, want none", st, len(cf.QuarantinedWrites))
	}

	// Only the coordinator decides.
	accept := "/v1/regions/kempen/quarantine/" + strconv.FormatInt(noteItem.ID, 10) + "/accept"
	for _, u := range []string{"reviewer.k", "coach.c", "coach.b", "admin"} {
		if st, _ := tjCall(t, we.login(u), "POST", accept, nil, nil); st != 403 {
			t.Errorf("%s accepts: %d, want 403", u, st)
		}
	}
	if st, _ := tjCall(t, we.login("coordinator.m"), "POST", accept, nil, nil); st != 404 {
		t.Errorf("coordinator.m accepts in kempen: %d, want 404", st)
	}
	if st, e := tjCall(t, coord, "POST", accept, []byte(`{"why":1}`), nil); st != 400 {
		t.Errorf("accept with a bad body: %d %+v, want 400", st, e)
	}
	if st, cf := caseFileOf(t, coord, fam); cf.Quarantined != 3 || len(cf.Contacts) != 0 {
		t.Fatalf("refused decisions changed the case: %d %+v", st, cf.Contacts)
	}

	var dec QuarantineDecision
	if st, e := tjCall(t, coord, "POST", accept, nil, &dec); st != 200 || dec.Status != "accepted" || dec.DecidedBy != we.users["coordinator.k"].ID || len(dec.AcceptedWith) != 2 {
		t.Fatalf("accept: %d %+v %+v", st, e, dec)
	}
	for _, path := range []string{accept, "/v1/regions/kempen/quarantine/" + strconv.FormatInt(dec.AcceptedWith[0], 10) + "/discard"} {
		if st, e := tjCall(t, coord, "POST", path, nil, nil); st != 409 || e.Code != "conflict" {
			t.Errorf("decide again %s: %d %+v, want 409", path, st, e)
		}
	}
	for _, id := range []string{"999", "x", "-1"} {
		if st, _ := tjCall(t, coord, "POST", "/v1/regions/kempen/quarantine/"+id+"/accept", nil, nil); st != 404 {
			t.Errorf("accept %s: %d, want 404", id, st)
		}
	}

	// The note is in the case (the read model applied it), nothing is left
	// in quarantine.
	st, cf = caseFileOf(t, coord, fam)
	if st != 200 || cf.Quarantined != 0 || len(cf.QuarantinedWrites) != 0 {
		t.Errorf("case after accept: quarantined %d %+v", cf.Quarantined, cf.QuarantinedWrites)
	}
	if len(cf.Contacts) != 1 || cf.Contacts[0].ID != contact || cf.Contacts[0].Note != note || cf.Contacts[0].Mode != "phone" {
		t.Errorf("case contacts after accept: %+v", cf.Contacts)
	}
	if page := (familiesPage{}); coord.do("GET", "/v1/families?region=kempen&q=coach.b", nil, &page) != 200 || len(page.Items) != 1 || page.Items[0].Quarantined != 0 {
		t.Errorf("case summary after accept: %+v", page)
	}
	tjCall(t, coord, "GET", "/v1/regions/kempen/quarantine", nil, &list)
	if len(list.Items) != 0 {
		t.Errorf("open quarantine after accept: %+v", list.Items)
	}
	tjCall(t, coord, "GET", "/v1/regions/kempen/quarantine?status=accepted", nil, &list)
	if len(list.Items) != 3 || list.Items[0].DecidedAt == nil {
		t.Errorf("accepted quarantine: %+v", list.Items)
	}

	// coach.c's device receives the note at its next pull; coach.b's does not.
	mustSync(t, cdev, b)
	if got, _ := cdev.Get(ctx, "contacts", contact); string(got["note"]) != string(jsonValue(note)) {
		t.Errorf("coach.c's device after the accept: %v", got)
	}
	if got, _ := b.Get(ctx, "contacts", contact); got != nil {
		t.Errorf("coach.b's device has the accepted note: %v", got)
	}
	// The accepted write is logged under the coordinator.
	r, _ := we.stores.Region("kempen")
	hist, _ := r.History(ctx, "contacts", contact)
	if len(hist) != 3 || hist[0].UserID != we.users["coordinator.k"].ID || hist[0].BatchID != "quarantine:"+strconv.FormatInt(noteItem.ID, 10) {
		t.Errorf("history of the accepted contact: %+v", hist)
	}

	assigns := tjAudit(t, we, audit.ActionTrajectoryAssign, func(es []audit.Entry) bool { return len(es) == 1 })
	if len(assigns) == 1 {
		dt := detailOf(assigns[0])
		from, _ := dt["from"].(map[string]any)
		to, _ := dt["to"].(map[string]any)
		if assigns[0].TargetID != traj || assigns[0].UserID != we.users["coordinator.k"].ID ||
			from["lead_coach_id"] != we.users["coach.b"].ID || to["lead_coach_id"] != we.users["coach.c"].ID {
			t.Errorf("assignment audit %+v %v", assigns[0], dt)
		}
	}
	accepts := tjAudit(t, we, audit.ActionQuarantineAccept, func(es []audit.Entry) bool { return len(es) == 1 })
	if len(accepts) == 1 {
		dt := detailOf(accepts[0])
		if accepts[0].TargetID != strconv.FormatInt(noteItem.ID, 10) || accepts[0].Region != "kempen" || dt["family_id"] != fam || dt["field"] != "note" {
			t.Errorf("accept audit %+v %v", accepts[0], dt)
		}
		if _, leaked := dt["value"]; leaked {
			t.Errorf("the audit log holds case content: %v", dt)
		}
	}
	// Reading the trajectory and the quarantine list are case reads.
	tjAudit(t, we, audit.ActionCaseRead, func(es []audit.Entry) bool {
		var traject, quarantine bool
		for _, e := range es {
			dt := detailOf(e)
			traject = traject || (e.TargetKind == "trajectory" && e.TargetID == traj && dt["family_id"] == fam)
			quarantine = quarantine || (e.TargetKind == "quarantine" && e.Region == "kempen" && e.UserID == we.users["coordinator.k"].ID &&
				slices.Contains(anyStrings(dt["families"]), fam))
		}
		return traject && quarantine
	})
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestQuarantine_DiscardKeepsTheWriteRecordedAndOutOfTheCase: coach.a's
// trajectory is closed; her late note is quarantined; the coordinator
// discards it: it stays listed as discarded, never reaches the case.
func TestQuarantine_DiscardKeepsTheWriteRecordedAndOutOfTheCase(t *testing.T) {
	ctx := context.Background()
	we := newWorkflowEnv(t)
	fam, traj := we.families["coach.a"], we.trajectories["coach.a"]
	a := we.replica(t, "coach.a", "phone")
	mustSync(t, a)
	coord := we.login("coordinator.k")
	if st, e := tjCall(t, coord, "POST", "/v1/trajectories/"+traj+"/close", map[string]string{"reason": "verhuisd"}, nil); st != 200 {
		t.Fatalf("close: %d %+v", st, e)
	}
	contact := a.NewID()
	mustWrite(t, a, "contacts", contact, "trajectory_id", traj)
	mustWrite(t, a, "contacts", contact, "note", "Laatste huisbezoek voor de verhuis.")
	res, err := a.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Push.Quarantined) != 2 {
		t.Fatalf("push after the close: %+v", res.Push)
	}
	var list QuarantineList
	tjCall(t, coord, "GET", "/v1/regions/kempen/quarantine", nil, &list)
	if len(list.Items) != 2 {
		t.Fatalf("open quarantine: %+v", list.Items)
	}
	if _, cf := caseFileOf(t, coord, fam); cf.Quarantined != 2 {
		t.Fatalf("case quarantine count %d, want 2", cf.Quarantined)
	}
	for _, it := range list.Items {
		var dec QuarantineDecision
		if st, e := tjCall(t, coord, "POST", "/v1/regions/kempen/quarantine/"+strconv.FormatInt(it.ID, 10)+"/discard", nil, &dec); st != 200 ||
			dec.Status != "discarded" || dec.DecidedAt == nil || len(dec.AcceptedWith) != 0 {
			t.Fatalf("discard %d: %d %+v %+v", it.ID, st, e, dec)
		}
		if st, _ := tjCall(t, coord, "POST", "/v1/regions/kempen/quarantine/"+strconv.FormatInt(it.ID, 10)+"/accept", nil, nil); st != 409 {
			t.Errorf("accept after discard: %d, want 409", st)
		}
	}
	_, cf := caseFileOf(t, coord, fam)
	if cf.Quarantined != 0 || len(cf.QuarantinedWrites) != 0 || len(cf.Contacts) != 0 {
		t.Errorf("case after discard: quarantined %d %+v contacts %+v", cf.Quarantined, cf.QuarantinedWrites, cf.Contacts)
	}
	tjCall(t, coord, "GET", "/v1/regions/kempen/quarantine?status=discarded", nil, &list)
	if len(list.Items) != 2 || list.Items[0].DecidedBy != we.users["coordinator.k"].ID {
		t.Errorf("discarded quarantine: %+v", list.Items)
	}
	r, _ := we.stores.Region("kempen")
	if h, _ := r.History(ctx, "contacts", contact); len(h) != 0 {
		t.Errorf("a discarded write is in the log: %+v", h)
	}
	tjAudit(t, we, audit.ActionQuarantineDiscard, func(es []audit.Entry) bool { return len(es) == 2 })
}
