package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// The coaching work end to end (issue 4, "done when"): devices of the Go
// reference client and the HTTP API of one real server, as `samenplan serve`
// wires it.

// logReferral writes, on a coach's device at the permanence, a new family
// (a willing parent and a child of 7) and its referral; it returns the ids.
func logReferral(t *testing.T, r *client.Replica, municipality string, change func(ref map[string]any)) (fam, ref string) {
	t.Helper()
	fam, ref = r.NewID(), r.NewID()
	today := time.Now().In(brussels())
	for f, v := range map[string]any{"region": "kempen", "municipality": municipality, "label": "Gezin Zonnedauw", "language": "nl"} {
		mustWrite(t, r, "families", fam, f, v)
	}
	parent, child := r.NewID(), r.NewID()
	for f, v := range map[string]any{"family_id": fam, "given_name": "Ilse", "family_name": "Zonnedauw", "role": "parent", "willing": true,
		"birth_date": today.AddDate(-34, 0, 0).Format(time.DateOnly)} {
		mustWrite(t, r, "persons", parent, f, v)
	}
	for f, v := range map[string]any{"family_id": fam, "given_name": "Mats", "family_name": "Zonnedauw", "role": "child",
		"birth_date": today.AddDate(-7, 0, 0).Format(time.DateOnly)} {
		mustWrite(t, r, "persons", child, f, v)
	}
	fields := map[string]any{"region": "kempen", "family_id": fam, "received_on": today.AddDate(0, 0, -2).Format(time.DateOnly),
		"channel": "permanentie", "referrer_name": "Wout Hazelaar", "referrer_org": "CLB", "question": "Moeder vraagt hulp bij de opvoeding.",
		"articulated": false, "mandated": false, "crisis": false, "nrtj_requested": false, "rtj_within_month": false,
		"innovative_help_available": false, "other_help_within_month": false, "consent": true, "municipality": municipality}
	if change != nil {
		change(fields)
	}
	for f, v := range fields {
		mustWrite(t, r, "referrals", ref, f, v)
	}
	mustSync(t, r)
	return fam, ref
}

// boardEntry returns the referral's entry on this week's board, or nil.
func boardEntry(t *testing.T, c *testClient, ref string) (*BoardReferral, IntakeBoard) {
	t.Helper()
	var board IntakeBoard
	if st := c.do("GET", "/v1/regions/kempen/intake", nil, &board); st != http.StatusOK {
		t.Fatalf("board: %d", st)
	}
	for i := range board.Referrals {
		if board.Referrals[i].ID == ref {
			return &board.Referrals[i], board
		}
	}
	return nil, board
}

func reportStarted(t *testing.T, c *testClient) (started, declined int) {
	t.Helper()
	var rep Report
	if st := c.do("GET", fmt.Sprintf("/v1/regions/kempen/report?year=%d", time.Now().In(brussels()).Year()), nil, &rep); st != http.StatusOK {
		t.Fatalf("report: %d", st)
	}
	return rep.Trajectories.Started, rep.Decisions.ByKind["decline"]
}

func hasRow(t *testing.T, r *client.Replica, collection, id string) bool {
	t.Helper()
	row, err := r.Get(context.Background(), collection, id)
	if samenplan.ErrorCode(err) == samenplan.ENOTFOUND {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return row != nil
}

func TestE2E_Workflow_ReferralStartOfflineContactReassignQuarantineAcceptReport(t *testing.T) {
	ctx := context.Background()
	we := newWorkflowEnv(t)
	coord := we.login("coordinator.k")
	startedBefore, _ := reportStarted(t, coord)

	// 1. A referral is logged on coach A's device at the permanence.
	a := we.replica(t, "coach.a", "permanentie-laptop")
	fam, ref := logReferral(t, a, "Kasterlee", nil)

	// 2. It is eligible on the board, with the right explanation.
	entry, board := boardEntry(t, coord, ref)
	if entry == nil {
		t.Fatalf("referral %s not on the board (%d referrals)", ref, len(board.Referrals))
	}
	el := entry.Eligibility
	if el == nil || !el.Eligible || len(el.Reasons) != 0 {
		t.Fatalf("eligibility = %+v, want eligible without reasons", el)
	}
	parts := map[string]float64{}
	for _, p := range el.Parts {
		parts[p.ID] = p.Result
	}
	// Kempen ranks by the time waited: received two days ago.
	if parts["waiting_time"] <= 0 || el.Priority != parts["waiting_time"] {
		t.Errorf("priority %v: want the waiting time's score (parts %+v)", el.Priority, el.Parts)
	}
	for _, r := range el.Require {
		if !r.Result || r.Label == "" {
			t.Errorf("require %s = %v (label %q), want true with a label", r.ID, r.Result, r.Label)
		}
	}
	if board.RulesVersion == "" {
		t.Error("board without a rules version")
	}

	// 3. The team decides "start" with coach B.
	b := we.replica(t, "coach.b", "tablet")
	mustSync(t, b)
	if hasRow(t, b, "families", fam) {
		t.Fatal("coach B holds the family before the start")
	}
	var dec Decision
	if st := coord.do("POST", "/v1/regions/kempen/intake/decisions",
		map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.b"].ID}, &dec); st != http.StatusCreated {
		t.Fatalf("start: %d %+v", st, dec)
	}
	if dec.TrajectoryID == "" || dec.RulesVersion == "" {
		t.Fatalf("decision %+v: want a trajectory and the rules version", dec)
	}
	traj := dec.TrajectoryID
	if e, _ := boardEntry(t, coord, ref); e != nil {
		t.Error("a decided referral is still on the board")
	}

	// 4. B's device pulls the family.
	mustSync(t, b)
	if !hasRow(t, b, "families", fam) || !hasRow(t, b, "trajectories", traj) {
		t.Fatal("coach B's device did not receive the family and its trajectory")
	}

	// 5. B writes a contact offline (not pushed yet).
	const note = "Huisbezoek: moeder en Mats, afspraken over het slapengaan."
	contact := b.NewID()
	mustWrite(t, b, "contacts", contact, "trajectory_id", traj)
	mustWrite(t, b, "contacts", contact, "occurred_at", time.Now().UTC().Format(time.RFC3339))
	mustWrite(t, b, "contacts", contact, "mode", "home_visit")
	mustWrite(t, b, "contacts", contact, "minutes", 60)
	mustWrite(t, b, "contacts", contact, "note", note)

	// 6. The coordinator reassigns the trajectory to coach C.
	c := we.replica(t, "coach.c", "phone")
	mustSync(t, c)
	var detail TrajectoryDetail
	if st := coord.do("PUT", "/v1/trajectories/"+traj+"/assignment",
		map[string]any{"lead_coach_id": we.users["coach.c"].ID, "co_coach_ids": []string{}}, &detail); st != http.StatusOK {
		t.Fatalf("reassign: %d", st)
	}

	// 7. B's device comes back online: its late note is quarantined, the
	// family is evicted, and the proof reaches the trajectory.
	push, err := b.Push(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(push.Quarantined) == 0 {
		t.Fatalf("B's late contact was not quarantined: %+v", push)
	}
	pull, err := b.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pull.Evicted, schema.FamilyScope(fam)) {
		t.Fatalf("B's pull evicted %v, want %s", pull.Evicted, schema.FamilyScope(fam))
	}
	if hasRow(t, b, "families", fam) || hasRow(t, b, "contacts", contact) {
		t.Fatal("B's device still holds the family after the eviction")
	}
	mustSync(t, b) // the proof travels with the next pull
	if st := coord.do("GET", "/v1/trajectories/"+traj, nil, &detail); st != http.StatusOK {
		t.Fatalf("trajectory: %d", st)
	}
	proven := false
	for _, ev := range detail.Evictions {
		if ev.DeviceID == b.DeviceID() && ev.Proven && ev.Proof != "" {
			proven = true
		}
	}
	if !proven {
		t.Fatalf("no eviction proof of B's device on the trajectory: %+v", detail.Evictions)
	}

	// 8. C's device has the family; the note waits in quarantine.
	mustSync(t, c)
	if !hasRow(t, c, "families", fam) {
		t.Fatal("coach C's device did not receive the family")
	}
	if hasRow(t, c, "contacts", contact) {
		t.Fatal("the quarantined note reached C before the coordinator accepted it")
	}
	var q QuarantineList
	if st := coord.do("GET", "/v1/regions/kempen/quarantine", nil, &q); st != http.StatusOK {
		t.Fatalf("quarantine: %d", st)
	}
	var noteItem *QuarantineItem
	for i := range q.Items {
		if q.Items[i].RowID == contact && q.Items[i].Field == "note" {
			noteItem = &q.Items[i]
		}
	}
	if noteItem == nil || string(noteItem.Value) != string(jsonValue(note)) || noteItem.UserID != we.users["coach.b"].ID {
		t.Fatalf("the note is not listed in quarantine as B's: %+v", q.Items)
	}

	// 9. The coordinator accepts it: it is in the case and on C's device.
	if st := coord.do("POST", fmt.Sprintf("/v1/regions/kempen/quarantine/%d/accept", noteItem.ID), nil, nil); st != http.StatusOK {
		t.Fatalf("accept: %d", st)
	}
	mustSync(t, c)
	got, err := c.Get(ctx, "contacts", contact)
	if err != nil {
		t.Fatal(err)
	}
	if string(got["note"]) != string(jsonValue(note)) {
		t.Fatalf("C's device has contact %v, want the accepted note", got)
	}
	var cs struct {
		Contacts []struct {
			ID   string `json:"id"`
			Note string `json:"note"`
		} `json:"contacts"`
		Quarantined int `json:"quarantined"`
	}
	if st := coord.do("GET", "/v1/families/"+fam, nil, &cs); st != http.StatusOK {
		t.Fatalf("family: %d", st)
	}
	if !slices.ContainsFunc(cs.Contacts, func(x struct {
		ID   string `json:"id"`
		Note string `json:"note"`
	}) bool {
		return x.ID == contact && x.Note == note
	}) {
		t.Errorf("the case's timeline lacks the accepted note: %+v", cs.Contacts)
	}
	kempen, _ := we.stores.Region("kempen")
	checkChecksums(t, kempen, c, schema.FamilyScope(fam))

	// 10. The report counts one started trajectory more.
	if started, _ := reportStarted(t, coord); started != startedBefore+1 {
		t.Fatalf("report: %d started, want %d", started, startedBefore+1)
	}
}

func TestE2E_Workflow_DeclineNeedsAReasonAndReachesTheDevice(t *testing.T) {
	ctx := context.Background()
	we := newWorkflowEnv(t)
	coord := we.login("coordinator.k")
	_, declinedBefore := reportStarted(t, coord)
	a := we.replica(t, "coach.a", "permanentie-laptop")
	_, ref := logReferral(t, a, "Turnhout", func(r map[string]any) { r["other_help_within_month"] = true })

	entry, _ := boardEntry(t, coord, ref)
	if entry == nil || entry.Eligibility == nil {
		t.Fatalf("referral not on the board with its eligibility: %+v", entry)
	}
	if entry.Eligibility.Eligible || !slices.Contains(entry.Eligibility.Reasons, "other_help_within_month") {
		t.Fatalf("eligibility %+v: want ineligible for other help within the month", entry.Eligibility)
	}
	var e ErrorBody
	if st := coord.do("POST", "/v1/regions/kempen/intake/decisions", map[string]any{"referral_id": ref, "kind": "decline"}, &e); st != http.StatusBadRequest || e.Code != "invalid" {
		t.Fatalf("decline without reason: %d %+v", st, e)
	}
	if entry, _ := boardEntry(t, coord, ref); entry == nil {
		t.Fatal("a refused decision took the referral off the board")
	}
	const reason = "Andere hulp start binnen de maand (CAW)."
	if st := coord.do("POST", "/v1/regions/kempen/intake/decisions", map[string]any{"referral_id": ref, "kind": "decline", "reason": reason}, nil); st != http.StatusCreated {
		t.Fatalf("decline: %d", st)
	}
	if entry, _ := boardEntry(t, coord, ref); entry != nil {
		t.Fatal("a declined referral is still on the board")
	}
	mustSync(t, a)
	row, err := a.Get(ctx, "referrals", ref)
	if err != nil {
		t.Fatal(err)
	}
	if string(row["status"]) != `"declined"` || string(row["outcome_reason"]) != string(jsonValue(reason)) {
		t.Fatalf("the permanence device sees referral %v, want declined with the reason", row)
	}
	var week struct {
		Items []Decision `json:"decisions"`
	}
	if st := coord.do("GET", "/v1/regions/kempen/intake/decisions", nil, &week); st != http.StatusOK {
		t.Fatalf("decisions: %d", st)
	}
	if !slices.ContainsFunc(week.Items, func(d Decision) bool {
		return d.ReferralID == ref && d.Kind == "decline" && d.Reason == reason &&
			d.FamilyLabel == "Gezin Zonnedauw" && d.DecidedByName == "coordinator.k"
	}) {
		t.Fatalf("this week's decisions lack the decline: %+v", week.Items)
	}
	if _, declined := reportStarted(t, coord); declined != declinedBefore+1 {
		t.Fatalf("report: %d declined, want %d", declined, declinedBefore+1)
	}
}

func TestE2E_Workflow_CapacityRefusalAndOverride(t *testing.T) {
	ctx := context.Background()
	we := newWorkflowEnv(t)
	coord := we.login("coordinator.k")
	// coach.c works half time: in kempen 12 × 0.5 = 6 families. She has one;
	// five more fill her caseload.
	for i := 0; i < 5; i++ {
		fam, traj := newUUID(), newUUID()
		we.serverWrite("kempen",
			store.FieldWrite{Collection: "families", ID: fam, Field: "region", Value: jsonValue("kempen")},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue("kempen")},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(we.users["coach.c"].ID)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("active")},
		)
	}
	a := we.replica(t, "coach.a", "permanentie-laptop")
	fam, ref := logReferral(t, a, "Beerse", nil)

	var refused CapacityRefused
	start := map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.c"].ID}
	if st := coord.do("POST", "/v1/regions/kempen/intake/decisions", start, &refused); st != http.StatusConflict || refused.Code != "capacity_refused" {
		t.Fatalf("start on a full caseload: %d %+v", st, refused)
	}
	if refused.Capacity.OK || !slices.Contains(refused.Capacity.Failed, "caseload") || refused.Capacity.Limit != 6 {
		t.Fatalf("capacity decision %+v: want caseload failed at limit 6", refused.Capacity)
	}
	if entry, _ := boardEntry(t, coord, ref); entry == nil {
		t.Fatal("a refused start took the referral off the board")
	}
	const why = "Gezin kent coach C al van een eerder traject."
	start["override_reason"] = why
	var dec Decision
	if st := coord.do("POST", "/v1/regions/kempen/intake/decisions", start, &dec); st != http.StatusCreated {
		t.Fatalf("override: %d", st)
	}
	if dec.OverrideReason != why || dec.TrajectoryID == "" {
		t.Fatalf("decision %+v: want the override reason and a trajectory", dec)
	}
	c := we.replica(t, "coach.c", "phone")
	mustSync(t, c)
	if !hasRow(t, c, "families", fam) || !hasRow(t, c, "trajectories", dec.TrajectoryID) {
		t.Fatal("coach C's device lacks the family started over her capacity")
	}
	waitAuditEntries(t, we, func(es []map[string]any) bool {
		for _, e := range es {
			if e["action"] == "intake.decision" && e["target_id"] == ref {
				d, _ := e["detail"].(map[string]any)
				return d != nil && d["override"] == true
			}
		}
		return false
	})
	_ = ctx
}

// waitAuditEntries polls the audit API as admin until ok holds (entries are
// written in the background), for at most 5 s.
func waitAuditEntries(t *testing.T, we *workflowEnv, ok func([]map[string]any) bool) {
	t.Helper()
	admin := we.login("admin")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var page struct {
			Items []map[string]any `json:"items"`
		}
		if st := admin.do("GET", "/v1/audit?limit=1000", nil, &page); st != http.StatusOK {
			t.Fatalf("audit: %d", st)
		}
		if ok(page.Items) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log never showed the expected entry: %v", page.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2E_CoachDeviceKeepsHerSignals: the Go client keeps the signals of
// the last complete pull — her own families' only — and a contact written on
// the device clears "no contact for 10 days" at the next sync.
func TestE2E_CoachDeviceKeepsHerSignals(t *testing.T) {
	ctx := context.Background()
	we := newWorkflowEnv(t)
	we.setNow(we.now().Add(12 * 24 * time.Hour))
	a, b := we.replica(t, "coach.a", "tablet"), we.replica(t, "coach.b", "tablet")
	mustSync(t, a, b)
	fired := func(r *client.Replica, family string) bool {
		ss, err := r.Signals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.ID == "no_contact_10_days" && s.FamilyID == family {
				return true
			}
		}
		return false
	}
	if !fired(a, we.families["coach.a"]) {
		t.Fatal("coach.a's device lacks the no-contact signal of her family")
	}
	if fired(b, we.families["coach.a"]) || !fired(b, we.families["coach.b"]) {
		t.Fatal("coach.b's device has another coach's signal, or lacks her own")
	}
	contact := a.NewID()
	mustWrite(t, a, "contacts", contact, "trajectory_id", we.trajectories["coach.a"])
	mustWrite(t, a, "contacts", contact, "occurred_at", we.now().UTC().Format(time.RFC3339))
	mustWrite(t, a, "contacts", contact, "mode", "phone")
	mustSync(t, a)
	if fired(a, we.families["coach.a"]) {
		t.Fatal("the signal stayed on the device after a contact")
	}
	if err := a.Wipe(ctx); err != nil {
		t.Fatal(err)
	}
	if ss, _ := a.Signals(ctx); len(ss) != 0 {
		t.Fatalf("a wiped device keeps signals: %v", ss)
	}
}
