package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// referralSpec is what pushReferral pushes from a coach's device.
type referralSpec struct {
	region, municipality, language string
	crisis, mandated, noFamily     bool
	receivedDaysAgo                int
}

// pushReferral pushes, from c's device, a new family (a willing parent and a
// child of 7) and a referral for it, as the permanence line logs them. It
// returns the family's and the referral's ids.
func pushReferral(t *testing.T, c *testClient, today time.Time, spec referralSpec) (fam, ref string) {
	t.Helper()
	if spec.region == "" {
		spec.region = "kempen"
	}
	fam, ref = newUUID(), newUUID()
	parent, child := newUUID(), newUUID()
	var chs []protocol.Change
	if !spec.noFamily {
		chs = append(chs,
			c.change("families", fam, "region", spec.region),
			c.change("families", fam, "label", "Gezin "+spec.municipality),
			c.change("families", fam, "municipality", spec.municipality),
			c.change("persons", parent, "family_id", fam),
			c.change("persons", parent, "role", "parent"),
			c.change("persons", parent, "birth_date", today.AddDate(-34, 0, 0).Format("2006-01-02")),
			c.change("persons", parent, "willing", true),
			c.change("persons", child, "family_id", fam),
			c.change("persons", child, "role", "child"),
			c.change("persons", child, "birth_date", today.AddDate(-7, 0, -3).Format("2006-01-02")),
			c.change("referrals", ref, "family_id", fam),
		)
		if spec.language != "" {
			chs = append(chs, c.change("families", fam, "language", spec.language))
		}
	} else {
		fam = ""
	}
	chs = append(chs,
		c.change("referrals", ref, "region", spec.region),
		c.change("referrals", ref, "received_on", today.AddDate(0, 0, -spec.receivedDaysAgo).Format("2006-01-02")),
		c.change("referrals", ref, "channel", "permanentie"),
		c.change("referrals", ref, "question", "Ouders zoeken hulp bij de opvoeding (vertrouwelijk-a91)"),
		c.change("referrals", ref, "municipality", spec.municipality),
		c.change("referrals", ref, "articulated", true),
		c.change("referrals", ref, "consent", true),
		c.change("referrals", ref, "crisis", spec.crisis),
		c.change("referrals", ref, "mandated", spec.mandated),
	)
	var resp protocol.PushResponse
	if st := c.do("POST", "/v1/sync/push", c.pushRequest(chs...), &resp); st != http.StatusOK || len(resp.Rejected) > 0 || resp.Applied != len(chs) {
		t.Fatalf("push referral: %d %+v", st, resp)
	}
	return fam, ref
}

func getBoard(t *testing.T, c *testClient, path string) IntakeBoard {
	t.Helper()
	var b IntakeBoard
	if st := c.do("GET", path, nil, &b); st != http.StatusOK {
		t.Fatalf("GET %s: %d", path, st)
	}
	return b
}

func boardReferral(b IntakeBoard, id string) (BoardReferral, int, bool) {
	for i, r := range b.Referrals {
		if r.ID == id {
			return r, i, true
		}
	}
	return BoardReferral{}, -1, false
}

func coachOf(b IntakeBoard, id string) CoachCapacity {
	for _, c := range b.Coaches {
		if c.CoachID == id {
			return c
		}
	}
	return CoachCapacity{}
}

// decide posts a decision and returns the status and the raw answer.
func decide(t *testing.T, c *testClient, region string, body any) (int, []byte) {
	t.Helper()
	var raw []byte
	if b, ok := body.([]byte); ok {
		raw = b
	} else {
		raw = jsonValue(body)
	}
	return c.raw("POST", "/v1/regions/"+region+"/intake/decisions", c.token, raw)
}

func mustDecide(t *testing.T, c *testClient, body map[string]any) Decision {
	t.Helper()
	st, raw := decide(t, c, "kempen", body)
	if st != http.StatusCreated {
		t.Fatalf("decide %v: %d %s", body, st, raw)
	}
	var d Decision
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func errCode(t *testing.T, raw []byte) string {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body %q: %v", raw, err)
	}
	return e.Code
}

// storeRow returns the winning values of one row of region.
func storeRow(t *testing.T, e *testEnv, region, collection, id string) map[string]string {
	t.Helper()
	r, _ := e.stores.Region(region)
	out := map[string]string{}
	if err := r.Scan(context.Background(), func(c protocol.Change) error {
		if c.Collection == collection && c.ID == id {
			out[c.Field] = string(c.Value)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// pullAll pulls everything c's device may hold, page by page.
func pullAll(t *testing.T, c *testClient) []protocol.Change {
	t.Helper()
	var all []protocol.Change
	cursor := ""
	for i := 0; i < 100; i++ {
		var resp protocol.PullResponse
		if st := c.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: cursor}, &resp); st != http.StatusOK {
			t.Fatalf("pull: %d", st)
		}
		all = append(all, resp.Changes...)
		cursor = resp.Cursor
		if !resp.More {
			return all
		}
	}
	t.Fatal("pull never ended")
	return nil
}

// waitDecisionAudit waits for the asynchronous audit log to hold an
// intake.decision entry for referral that ok accepts.
func waitDecisionAudit(t *testing.T, we *workflowEnv, referral string, ok func(audit.Entry, map[string]any) bool) {
	t.Helper()
	var es []audit.Entry
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		es, err = we.audit.Query(context.Background(), audit.Filter{Action: audit.ActionDecision, Target: "referral:" + referral})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			var detail map[string]any
			json.Unmarshal(e.Detail, &detail)
			if ok(e, detail) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no matching audit entry for referral %s: %+v", referral, es)
}

// fillCoach gives coach n more running families.
func fillCoach(we *workflowEnv, coach string, n int) {
	for i := 0; i < n; i++ {
		fam, traj := newUUID(), newUUID()
		we.serverWrite("kempen",
			store.FieldWrite{Collection: "families", ID: fam, Field: "region", Value: jsonValue("kempen")},
			store.FieldWrite{Collection: "families", ID: fam, Field: "label", Value: jsonValue("Extra gezin")},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue("kempen")},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(we.users[coach].ID)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("active")},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "started_on", Value: jsonValue(we.now().Format("2006-01-02"))},
		)
	}
}

func TestIntakeBoard_ReferralLoggedOnADeviceShowsExplainedWithCapacityAndCounters(t *testing.T) {
	we := newWorkflowEnv(t)
	now := we.now()
	coachA, coord := we.login("coach.a"), we.login("coordinator.k")
	// coach.b already coaches a family in Kasterlee: she is the suggestion
	// for a Kasterlee referral, though coach.a has as many free places and
	// comes first by name.
	we.serverWrite("kempen", store.FieldWrite{Collection: "families", ID: we.families["coach.b"], Field: "municipality", Value: jsonValue("Kasterlee")})

	_, eligible := pushReferral(t, coachA, now, referralSpec{municipality: "Kasterlee", receivedDaysAgo: 5})
	_, crisis := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout", crisis: true, receivedDaysAgo: 9})
	_, later := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout", receivedDaysAgo: -8}) // received next week

	b := getBoard(t, coord, "/v1/regions/kempen/intake")
	if want := weekOf(now).String(); b.Week != want || b.Region != "kempen" {
		t.Fatalf("week %q region %q, want %q kempen", b.Week, b.Region, want)
	}
	if b.From.Time().Weekday() != time.Monday || b.To.Time().Weekday() != time.Sunday || b.From.DaysUntil(b.To) != 6 {
		t.Errorf("week bounds %s..%s", b.From, b.To)
	}
	if b.RulesVersion == "" {
		t.Error("no rules version on the board")
	}
	if len(b.Referrals) != 2 || b.Eligible != 1 {
		t.Fatalf("board referrals: got %d (eligible %d), want 2 (1): %+v", len(b.Referrals), b.Eligible, b.Referrals)
	}
	if _, _, ok := boardReferral(b, later); ok {
		t.Error("a referral received after the week's end is on the board")
	}
	el, i, _ := boardReferral(b, eligible)
	if i != 0 || el.Eligibility == nil || !el.Eligibility.Eligible || el.Eligibility.Priority != 5 || len(el.Eligibility.Reasons) != 0 {
		t.Fatalf("eligible referral at %d: %+v", i, el.Eligibility)
	}
	if el.WaitingDays != 5 || el.Family == nil || el.Family.Members != 2 || el.Family.Municipality != "Kasterlee" {
		t.Errorf("eligible referral: waiting %d family %+v", el.WaitingDays, el.Family)
	}
	wantRequire := []rules.Condition{
		{ID: "willing_participant", Label: "Minstens één gezinslid wil samenwerken met de coach", LabelEN: "At least one family member wants to work with the coach", Result: true},
		{ID: "child_or_pregnancy", Label: "Minstens één kind van 0 tot 18 jaar in het gezin, of een zwangerschap", LabelEN: "At least one child aged 0-18 in the family, or a pregnancy", Result: true},
		{ID: "in_region", Label: "Het gezin woont in een gemeente van de werking", LabelEN: "The family lives in one of the programme's municipalities", Result: true},
	}
	if !reflect.DeepEqual(el.Eligibility.Require, wantRequire) {
		t.Errorf("require:\n got %+v\nwant %+v", el.Eligibility.Require, wantRequire)
	}
	for _, x := range el.Eligibility.Exclude {
		if x.Result {
			t.Errorf("exclude %s fired for the eligible referral", x.ID)
		}
	}
	if len(el.Eligibility.Parts) != 1 || el.Eligibility.Parts[0].ID != "waiting_time" || el.Eligibility.Parts[0].Result != 5 {
		t.Errorf("priority parts: %+v", el.Eligibility.Parts)
	}
	if s := el.Suggestion; s == nil || s.CoachID != we.users["coach.b"].ID || s.Basis != "municipality" || !strings.Contains(s.Reason, "Kasterlee") {
		t.Errorf("suggestion: %+v, want coach.b by municipality", s)
	}

	cr, i, _ := boardReferral(b, crisis)
	if i != 1 || cr.Eligibility == nil || cr.Eligibility.Eligible || !reflect.DeepEqual(cr.Eligibility.Reasons, []string{"crisis"}) || cr.Suggestion != nil {
		t.Fatalf("crisis referral at %d: %+v suggestion %+v", i, cr.Eligibility, cr.Suggestion)
	}
	var crisisExcl rules.Condition
	for _, x := range cr.Eligibility.Exclude {
		if x.ID == "crisis" {
			crisisExcl = x
		}
	}
	if !crisisExcl.Result || crisisExcl.Label != "Nood aan crisishulp" {
		t.Errorf("crisis exclude: %+v", crisisExcl)
	}

	if len(b.Coaches) != 3 {
		t.Fatalf("coaches: %+v", b.Coaches)
	}
	for _, tc := range []struct {
		coach        string
		fte, limit   float64
		active, free int
	}{{"coach.a", 1, 12, 1, 11}, {"coach.b", 1, 12, 1, 11}, {"coach.c", 0.5, 6, 1, 5}} {
		got := coachOf(b, we.users[tc.coach].ID)
		if got.Username != tc.coach || got.DisplayName != tc.coach || got.FTE != tc.fte || got.Limit != tc.limit || got.ActiveFamilies != tc.active || got.Free != tc.free || got.LimitError != "" {
			t.Errorf("%s: got %+v, want fte %v limit %v active %d free %d", tc.coach, got, tc.fte, tc.limit, tc.active, tc.free)
		}
	}
	y := b.Year
	if y.Year != now.Year() || y.Started != 3 || y.Mandated != 0 || y.NonMandated != 3 {
		t.Errorf("year counters: %+v", y)
	}
	if y.Target == nil || *y.Target != 200 || y.Reserve == nil || *y.Reserve != 60 || *y.Remaining != 197 || *y.ReserveOpen != 60 || *y.NonMandatedRoom != 137 {
		t.Errorf("target and reserve: %+v", y)
	}
	if len(b.Decisions) != 0 {
		t.Errorf("decisions before any: %+v", b.Decisions)
	}

	// Maasland's rules have a yearly target (a floor, report: true) and no
	// mandated reserve: null, not 0.
	var mb map[string]any
	if st := we.login("coordinator.m").do("GET", "/v1/regions/maasland/intake", nil, &mb); st != 200 {
		t.Fatalf("maasland board: %d", st)
	}
	if year := mb["year"].(map[string]any); year["target"] != 200.0 || year["mandated_reserve"] != nil {
		t.Errorf("maasland year: %v", year)
	}

	// A past week's board shows what was received by its end.
	past := weekOf(now.AddDate(0, 0, -21)).String()
	pb := getBoard(t, coord, "/v1/regions/kempen/intake?week="+past)
	if pb.Week != past || len(pb.Referrals) != 0 {
		t.Errorf("board of %s: %d referrals", past, len(pb.Referrals))
	}
	for _, bad := range []string{"2026-48", "2026-W54", "2025-W53", "2026-W00", "W48", "2026-W4"} {
		var e ErrorBody
		if st := coord.do("GET", "/v1/regions/kempen/intake?week="+bad, nil, &e); st != 400 || e.Code != samenplan.EINVALID {
			t.Errorf("week %q: %d %+v", bad, st, e)
		}
	}
	if st := coord.do("GET", "/v1/regions/kempen/intake?week=2026-W53", nil, nil); st != 200 {
		t.Errorf("2026-W53 (31 December 2026 is a Thursday): %d", st)
	}
}

func TestIntakeDecision_StartCreatesTheTrajectoryAndCoachBPullsTheFamily(t *testing.T) {
	we := newWorkflowEnv(t)
	now := we.now()
	today := now.Format("2006-01-02")
	coachA, coachB, coord := we.login("coach.a"), we.login("coach.b"), we.login("coordinator.k")
	fam, ref := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout", mandated: true, receivedDaysAgo: 3})
	pullAll(t, coachB) // coach.b's device is up to date before the decision

	d := mustDecide(t, coord, map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.b"].ID,
		"co_coach_ids": []string{we.users["coach.c"].ID}})
	if d.ID == 0 || d.Kind != "start" || d.TrajectoryID == "" || d.CoachID != we.users["coach.b"].ID || d.FamilyID != fam ||
		!d.Mandated || d.Week != weekOf(now).String() || d.DecidedOn != today || d.DecidedBy != we.users["coordinator.k"].ID ||
		d.RulesVersion == "" || d.Seq == 0 || d.ReceivedOn != now.AddDate(0, 0, -3).Format("2006-01-02") {
		t.Fatalf("decision: %+v", d)
	}
	var elig rules.IntakeDecision
	if err := json.Unmarshal(d.Eligibility, &elig); err != nil || !elig.Eligible || elig.RegionVersion != d.RulesVersion {
		t.Errorf("recorded eligibility: %s (%v)", d.Eligibility, err)
	}
	var capd rules.CapacityDecision
	if err := json.Unmarshal(d.Capacity, &capd); err != nil || !capd.OK || capd.Limit != 12 || len(capd.Checks) != 3 {
		t.Errorf("recorded capacity: %s (%v)", d.Capacity, err)
	}

	// The read model has applied the write: the case has the trajectory.
	cs, ok := we.model.Case(fam)
	if !ok || cs.Trajectory == nil {
		t.Fatalf("case %s: %v %+v", fam, ok, cs)
	}
	tr := cs.Trajectory
	if tr.ID != d.TrajectoryID || tr.LeadCoachID != we.users["coach.b"].ID || !reflect.DeepEqual(tr.CoCoachIDs, []string{we.users["coach.c"].ID}) ||
		tr.Status != "active" || !tr.Mandated || tr.StartedOn.String() != today || tr.ReferralID != ref || tr.Region != "kempen" {
		t.Errorf("trajectory in the read model: %+v", tr)
	}
	if r, _ := we.model.Referral(ref); r.Status != "started" {
		t.Errorf("referral status %q, want started", r.Status)
	}
	// The store holds the fields, written by the coordinator through the
	// merge path.
	got := storeRow(t, we.testEnv, "kempen", "trajectories", d.TrajectoryID)
	want := map[string]string{
		"family_id": string(jsonValue(fam)), "referral_id": string(jsonValue(ref)), "region": `"kempen"`,
		"lead_coach_id": string(jsonValue(we.users["coach.b"].ID)), "co_coach_ids": string(jsonValue([]string{we.users["coach.c"].ID})),
		"mandated": "true", "status": `"active"`, "started_on": string(jsonValue(today)),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trajectory in the store:\n got %v\nwant %v", got, want)
	}
	if got := storeRow(t, we.testEnv, "kempen", "referrals", ref)["status"]; got != `"started"` {
		t.Errorf("referral status in the store: %s", got)
	}
	// Coach B's next pull brings the family, its members and the trajectory.
	seen := map[string]bool{}
	for _, c := range pullAll(t, coachB) {
		seen[c.Collection+"/"+c.ID] = true
	}
	if !seen["families/"+fam] || !seen["trajectories/"+d.TrajectoryID] || !seen["referrals/"+ref] {
		t.Errorf("coach.b's pull after the start lacks the family: %v", seen)
	}
	// The board no longer lists it; the week's decisions do.
	b := getBoard(t, coord, "/v1/regions/kempen/intake")
	if _, _, ok := boardReferral(b, ref); ok {
		t.Error("the started referral is still on the board")
	}
	if len(b.Decisions) != 1 || b.Decisions[0].ID != d.ID {
		t.Errorf("board decisions: %+v", b.Decisions)
	}
	if c := coachOf(b, we.users["coach.b"].ID); c.ActiveFamilies != 2 || c.Free != 10 {
		t.Errorf("coach.b after the start: %+v", c)
	}
	if b.Year.Started != 4 || b.Year.Mandated != 1 || *b.Year.ReserveOpen != 59 {
		t.Errorf("year after a mandated start: %+v", b.Year)
	}
	// The report's source sees it on today.
	day, _ := rules.ParseDate(today)
	ds, err := we.srv.decisionsBetween(context.Background(), "kempen", day, day)
	if err != nil || len(ds) != 1 || ds[0].ID != d.ID || ds[0].TrajectoryID != d.TrajectoryID || !reflect.DeepEqual(ds[0].CoCoachIDs, d.CoCoachIDs) {
		t.Errorf("decisionsBetween today: %+v %v", ds, err)
	}
	if ds, _ := we.srv.decisionsBetween(context.Background(), "kempen", rules.DateOf(now.AddDate(0, 0, 1)), rules.Date{}); len(ds) != 0 {
		t.Errorf("decisionsBetween from tomorrow: %+v", ds)
	}
	waitDecisionAudit(t, we, ref, func(e audit.Entry, detail map[string]any) bool {
		return e.Region == "kempen" && e.UserID == we.users["coordinator.k"].ID && detail["kind"] == "start" &&
			detail["coach_id"] == we.users["coach.b"].ID && detail["override"] == false && detail["trajectory_id"] == d.TrajectoryID &&
			!strings.Contains(string(e.Detail), "vertrouwelijk")
	})

	// A second decision on the same referral is a conflict.
	st, raw := decide(t, coord, "kempen", map[string]any{"referral_id": ref, "kind": "decline", "reason": "toch niet"})
	if st != http.StatusConflict || errCode(t, raw) != samenplan.ECONFLICT {
		t.Errorf("second decision: %d %s", st, raw)
	}
}

func TestIntakeDecision_DeclineRedirectConsult(t *testing.T) {
	we := newWorkflowEnv(t)
	now := we.now()
	coachA, coord := we.login("coach.a"), we.login("coordinator.k")
	_, ref := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout", crisis: true})

	st, raw := decide(t, coord, "kempen", map[string]any{"referral_id": ref, "kind": "decline"})
	if st != http.StatusBadRequest || errCode(t, raw) != samenplan.EINVALID {
		t.Fatalf("decline without reason: %d %s", st, raw)
	}
	if r, _ := we.model.Referral(ref); r.Status != "open" {
		t.Fatalf("a refused decline changed the referral: %q", r.Status)
	}
	d := mustDecide(t, coord, map[string]any{"referral_id": ref, "kind": "decline", "reason": "Crisishulp nodig; doorgegeven aan het crisismeldpunt"})
	if d.Kind != "decline" || d.TrajectoryID != "" || d.Reason == "" || string(d.Capacity) != "null" {
		t.Errorf("decline: %+v", d)
	}
	if r, _ := we.model.Referral(ref); r.Status != "declined" || r.OutcomeReason != "Crisishulp nodig; doorgegeven aan het crisismeldpunt" {
		t.Errorf("declined referral: %q %q", r.Status, r.OutcomeReason)
	}
	var elig rules.IntakeDecision
	if json.Unmarshal(d.Eligibility, &elig); !reflect.DeepEqual(elig.Reasons, []string{"crisis"}) {
		t.Errorf("recorded eligibility of the decline: %s", d.Eligibility)
	}

	_, ref2 := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout"})
	if st, raw := decide(t, coord, "kempen", map[string]any{"referral_id": ref2, "kind": "redirect"}); st != 400 {
		t.Errorf("redirect without redirect_to: %d %s", st, raw)
	}
	mustDecide(t, coord, map[string]any{"referral_id": ref2, "kind": "redirect", "redirect_to": "CAW Kempen"})
	if r, _ := we.model.Referral(ref2); r.Status != "redirected" || r.OutcomeReason != "redirect_to: CAW Kempen" {
		t.Errorf("redirected referral: %q %q", r.Status, r.OutcomeReason)
	}

	_, ref3 := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout"})
	d3 := mustDecide(t, coord, map[string]any{"referral_id": ref3, "kind": "consult", "week": "2026-W01"})
	if r, _ := we.model.Referral(ref3); r.Status != "consult_only" || d3.Week != "2026-W01" {
		t.Errorf("consult: %q week %s", r.Status, d3.Week)
	}

	// Decisions per week, newest first; the consult was filed under W01.
	var out struct {
		Week      string     `json:"week"`
		Decisions []Decision `json:"decisions"`
	}
	if st := coord.do("GET", "/v1/regions/kempen/intake/decisions", nil, &out); st != 200 || out.Week != weekOf(now).String() ||
		len(out.Decisions) != 2 || out.Decisions[0].Kind != "redirect" || out.Decisions[1].Kind != "decline" {
		t.Errorf("this week's decisions: %d %+v", st, out)
	}
	if st := we.login("reviewer.k").do("GET", "/v1/regions/kempen/intake/decisions?week=2026-W01", nil, &out); st != 200 ||
		len(out.Decisions) != 1 || out.Decisions[0].ID != d3.ID {
		t.Errorf("W01 decisions (reviewer): %d %+v", st, out)
	}
	if st := coord.do("GET", "/v1/regions/kempen/intake/decisions?week=2026-W02", nil, &out); st != 200 || len(out.Decisions) != 0 || out.Decisions == nil {
		t.Errorf("W02 decisions: %d %+v", st, out)
	}
	if st := coord.do("GET", "/v1/regions/kempen/intake/decisions?week=bad", nil, nil); st != 400 {
		t.Errorf("bad week: %d", st)
	}
	for _, ref := range []string{ref, ref2, ref3} {
		waitDecisionAudit(t, we, ref, func(e audit.Entry, detail map[string]any) bool {
			return !strings.Contains(string(e.Detail), "Crisishulp") && detail["override"] == false
		})
	}
}

func TestIntakeDecision_CapacityRefusalIsExplainedAndCanBeOverridden(t *testing.T) {
	we := newWorkflowEnv(t)
	now := we.now()
	coachA, coord := we.login("coach.a"), we.login("coordinator.k")
	fillCoach(we, "coach.c", 5) // 0.5 FTE in kempen: limit 6, now 6 running families
	fam, ref := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout"})
	before := we.dbState(t)

	b := getBoard(t, coord, "/v1/regions/kempen/intake")
	if c := coachOf(b, we.users["coach.c"].ID); c.ActiveFamilies != 6 || c.Limit != 6 || c.Free != 0 {
		t.Fatalf("coach.c full: %+v", c)
	}

	start := map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.c"].ID}
	st, raw := decide(t, coord, "kempen", start)
	var refused CapacityRefused
	if err := json.Unmarshal(raw, &refused); err != nil || st != http.StatusConflict || refused.Code != samenplan.ECAPACITYREFUSED {
		t.Fatalf("start on a full coach: %d %s", st, raw)
	}
	cd := refused.Capacity
	if cd.OK || !reflect.DeepEqual(cd.Failed, []string{"caseload"}) || cd.Limit != 6 || cd.Version == "" {
		t.Errorf("explained refusal: %+v", cd)
	}
	var caseload rules.Condition
	for _, c := range cd.Checks {
		if c.ID == "caseload" {
			caseload = c
		}
	}
	if caseload.Result || caseload.Label != "De coach heeft nog plaats" {
		t.Errorf("caseload check: %+v", caseload)
	}
	if !strings.Contains(refused.Message, "override_reason") {
		t.Errorf("message: %q", refused.Message)
	}
	if after := we.dbState(t); after != before {
		t.Errorf("a refused start changed something: %s → %s", before, after)
	}
	// An override without text is still a refusal.
	start["override_reason"] = "   "
	if st, raw := decide(t, coord, "kempen", start); st != http.StatusConflict || errCode(t, raw) != samenplan.ECAPACITYREFUSED {
		t.Errorf("blank override: %d %s", st, raw)
	}

	start["override_reason"] = "Zus van een gezin dat ze al begeleidt; team akkoord"
	d := mustDecide(t, coord, start)
	if d.OverrideReason != "Zus van een gezin dat ze al begeleidt; team akkoord" || d.TrajectoryID == "" {
		t.Fatalf("override: %+v", d)
	}
	ds, err := we.srv.decisionsOfWeek(context.Background(), "kempen", weekOf(now).String())
	if err != nil || len(ds) != 1 || ds[0].OverrideReason != d.OverrideReason {
		t.Fatalf("decision row: %+v %v", ds, err)
	}
	var recorded rules.CapacityDecision
	if json.Unmarshal(ds[0].Capacity, &recorded); recorded.OK || !reflect.DeepEqual(recorded.Failed, []string{"caseload"}) {
		t.Errorf("recorded capacity of the override: %s", ds[0].Capacity)
	}
	if cs, _ := we.model.Case(fam); cs.Trajectory == nil || cs.Trajectory.LeadCoachID != we.users["coach.c"].ID {
		t.Errorf("case after the override: %+v", cs.Trajectory)
	}
	waitDecisionAudit(t, we, ref, func(e audit.Entry, detail map[string]any) bool {
		return detail["override"] == true && detail["override_reason"] == d.OverrideReason &&
			detail["capacity_ok"] == false && detail["coach_id"] == we.users["coach.c"].ID
	})
}

func TestIntakeDecision_ConcurrentDecisionsOnOneReferral_OneWins(t *testing.T) {
	we := newWorkflowEnv(t)
	_, ref := pushReferral(t, we.login("coach.a"), we.now(), referralSpec{municipality: "Turnhout"})
	coord := we.login("coordinator.k")
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := map[string]any{"referral_id": ref, "kind": "decline", "reason": fmt.Sprintf("reden %d", i)}
			if i%2 == 0 {
				body = map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.b"].ID}
			}
			st, err := coord.try("POST", "/v1/regions/kempen/intake/decisions", body, nil)
			if err != nil {
				t.Error(err)
			}
			statuses <- st
		}(i)
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	if count[201] != 1 || count[409] != n-1 {
		t.Errorf("statuses: %v, want one 201 and %d 409", count, n-1)
	}
	r, _ := we.stores.Region("kempen")
	var decisions, trajectories int
	r.DB().Reader.QueryRow(`SELECT count(*) FROM intake_decisions WHERE referral_id = ?`, ref).Scan(&decisions)
	for _, c := range we.model.All("kempen") {
		if c.Trajectory != nil && c.Trajectory.ReferralID == ref {
			trajectories++
		}
	}
	if decisions != 1 || trajectories > 1 {
		t.Errorf("decisions %d, trajectories %d for one referral", decisions, trajectories)
	}
}

func TestIntakeDecision_ConcurrentStartsDoNotOverfillACoach(t *testing.T) {
	we := newWorkflowEnv(t)
	fillCoach(we, "coach.c", 4) // limit 6, 5 running: one place left
	coachA, coord := we.login("coach.a"), we.login("coordinator.k")
	const n = 6
	refs := make([]string, n)
	for i := range refs {
		_, refs[i] = pushReferral(t, coachA, we.now(), referralSpec{municipality: "Turnhout"})
	}
	type answer struct {
		status int
		code   string
	}
	answers := make(chan answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, ref := range refs {
		wg.Add(1)
		go func(ref string) {
			defer wg.Done()
			<-start
			var e ErrorBody
			st, err := coord.try("POST", "/v1/regions/kempen/intake/decisions",
				map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.c"].ID}, &e)
			if err != nil {
				t.Error(err)
			}
			answers <- answer{st, e.Code}
		}(ref)
	}
	close(start)
	wg.Wait()
	close(answers)
	count := map[answer]int{}
	for a := range answers {
		count[a]++
	}
	if count[answer{201, ""}] != 1 || count[answer{409, samenplan.ECAPACITYREFUSED}] != n-1 {
		t.Errorf("answers: %v, want one start and %d capacity refusals", count, n-1)
	}
	if got := we.model.CoachLoad("kempen")[we.users["coach.c"].ID]; got != 6 {
		t.Errorf("coach.c runs %d families, want 6 (her limit)", got)
	}
}

// dbState summarises what a decision could change: the kempen log's length
// and the decisions table.
func (we *workflowEnv) dbState(t *testing.T) string {
	t.Helper()
	r, _ := we.stores.Region("kempen")
	seq, err := r.MaxSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := r.DB().Reader.QueryRow(`SELECT count(*) FROM intake_decisions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return string(jsonValue(map[string]any{"seq": seq, "decisions": n}))
}

func TestIntakeDecision_BadRequestsAreRefusedAndChangeNothing(t *testing.T) {
	we := newWorkflowEnv(t)
	now := we.now()
	coachA, coachM, coord := we.login("coach.a"), we.login("coach.m"), we.login("coordinator.k")
	_, ref := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout"})
	_, orphan := pushReferral(t, coachA, now, referralSpec{municipality: "Turnhout", noFamily: true})
	_, maas := pushReferral(t, coachM, now, referralSpec{region: "maasland", municipality: "Maasmechelen"})
	before := we.dbState(t)
	start := func(extra map[string]any) map[string]any {
		m := map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.b"].ID}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		msg    string
	}{
		{"malformed JSON", []byte(`{"referral_id": "` + ref + `", "kind": "start"`), 400, samenplan.EINVALID, ""},
		{"not an object", []byte(`[]`), 400, samenplan.EINVALID, ""},
		{"trailing data", []byte(`{"referral_id": "` + ref + `", "kind": "consult"} {}`), 400, samenplan.EINVALID, ""},
		{"unknown field", start(map[string]any{"coach": "x"}), 400, samenplan.EINVALID, ""},
		{"unknown kind", map[string]any{"referral_id": ref, "kind": "waitlist"}, 400, samenplan.EINVALID, "waitlist"},
		{"no referral", map[string]any{"kind": "consult"}, 400, samenplan.EINVALID, "referral_id"},
		{"start without coach", start(map[string]any{"coach_id": ""}), 400, samenplan.EINVALID, "coach"},
		{"start with a coach of another region", start(map[string]any{"coach_id": we.users["coach.m"].ID}), 400, samenplan.EINVALID, "kempen"},
		{"start with a coordinator as coach", start(map[string]any{"coach_id": we.users["coordinator.k"].ID}), 400, samenplan.EINVALID, ""},
		{"co-coach of another region", start(map[string]any{"co_coach_ids": []string{we.users["coach.m"].ID}}), 400, samenplan.EINVALID, ""},
		{"co-coach is the lead", start(map[string]any{"co_coach_ids": []string{we.users["coach.b"].ID}}), 400, samenplan.EINVALID, ""},
		{"start without family", start(map[string]any{"referral_id": orphan}), 400, samenplan.EINVALID, "link a family first"},
		{"decline with a coach", map[string]any{"referral_id": ref, "kind": "decline", "reason": "x", "coach_id": we.users["coach.b"].ID}, 400, samenplan.EINVALID, ""},
		{"bad week", start(map[string]any{"week": "2026-W60"}), 400, samenplan.EINVALID, ""},
		{"reason too long", map[string]any{"referral_id": ref, "kind": "decline", "reason": strings.Repeat("x", 2001)}, 400, samenplan.EINVALID, ""},
		{"unknown referral", start(map[string]any{"referral_id": newUUID()}), 404, samenplan.ENOTFOUND, ""},
		{"referral of another region", start(map[string]any{"referral_id": maas}), 404, samenplan.ENOTFOUND, ""},
	} {
		st, raw := decide(t, coord, "kempen", tc.body)
		var e ErrorBody
		json.Unmarshal(raw, &e)
		if st != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) || !strings.Contains(e.Message, " / ") {
			t.Errorf("%s: got %d %s, want %d %s (%q)", tc.name, st, raw, tc.status, tc.code, tc.msg)
		}
	}
	if after := we.dbState(t); after != before {
		t.Errorf("refused requests changed something: %s → %s", before, after)
	}
	if r, _ := we.model.Referral(ref); r.Status != "open" {
		t.Errorf("referral status %q", r.Status)
	}
}

func TestIntake_RoleCells(t *testing.T) {
	we := newWorkflowEnv(t)
	now := we.now()
	_, ref := pushReferral(t, we.login("coach.a"), now, referralSpec{municipality: "Turnhout"})
	decline := map[string]any{"referral_id": ref, "kind": "decline", "reason": "test"}
	for _, tc := range []struct {
		user, method, path string
		want               int
	}{
		{"coach.a", "GET", "/v1/regions/kempen/intake", 200},
		{"coach.c", "GET", "/v1/regions/kempen/intake", 200},
		{"coordinator.k", "GET", "/v1/regions/kempen/intake", 200},
		{"reviewer.k", "GET", "/v1/regions/kempen/intake", 200},
		{"coordinator.m", "GET", "/v1/regions/kempen/intake", 404},
		{"coach.m", "GET", "/v1/regions/kempen/intake", 404},
		{"admin", "GET", "/v1/regions/kempen/intake", 403},
		{"coach.a", "GET", "/v1/regions/kempen/intake/decisions", 403},
		{"reviewer.k", "GET", "/v1/regions/kempen/intake/decisions", 200},
		{"coordinator.k", "GET", "/v1/regions/kempen/intake/decisions", 200},
		{"coordinator.m", "GET", "/v1/regions/kempen/intake/decisions", 404},
		{"admin", "GET", "/v1/regions/kempen/intake/decisions", 403},
		{"coach.a", "POST", "/v1/regions/kempen/intake/decisions", 403},
		{"reviewer.k", "POST", "/v1/regions/kempen/intake/decisions", 403},
		{"coordinator.m", "POST", "/v1/regions/kempen/intake/decisions", 404},
		{"admin", "POST", "/v1/regions/kempen/intake/decisions", 403},
		{"coordinator.k", "GET", "/v1/regions/nowhere/intake", 404},
	} {
		var body any
		if tc.method == "POST" {
			body = decline
		}
		var e ErrorBody
		if st := we.login(tc.user).do(tc.method, tc.path, body, &e); st != tc.want {
			t.Errorf("%s %s %s: got %d, want %d (%+v)", tc.user, tc.method, tc.path, st, tc.want, e)
		}
	}
	if r, _ := we.model.Referral(ref); r.Status != "open" {
		t.Fatalf("a refused caller decided: %q", r.Status)
	}
	if st := we.login("coordinator.k").do("POST", "/v1/regions/kempen/intake/decisions", decline, nil); st != 201 {
		t.Errorf("coordinator.k: %d", st)
	}
	// Without a token.
	c := &testClient{t: t, base: we.url()}
	if st := c.do("GET", "/v1/regions/kempen/intake", nil, nil); st != 401 {
		t.Errorf("no token: %d", st)
	}
}

func TestSuggester_PrefersMunicipalityThenLanguageThenFreePlacesAndTakesPlaces(t *testing.T) {
	coaches := []CoachCapacity{
		{CoachID: "a", DisplayName: "A", Free: 5},
		{CoachID: "b", DisplayName: "B", Free: 1},
		{CoachID: "c", DisplayName: "C", Free: 2},
		{CoachID: "d", DisplayName: "D", Free: 0},
	}
	held := func(coach, municipality, language string) *view.Case {
		return &view.Case{Family: view.Family{Municipality: municipality, Language: language}, Coaches: []string{coach}}
	}
	cases := []*view.Case{
		held("b", "Geel", "nl"), held("c", "Geel", "ar"), held("c", "Mol", "tr"), held("d", "Dessel", "nl"),
		held("stranger", "Balen", "fr"), // not a coach of the board
	}
	sg := newSuggester(coaches, cases)
	family := func(language string) *view.Case { return &view.Case{Family: view.Family{Language: language}} }
	for _, tc := range []struct {
		municipality, language string
		coach, basis           string
	}{
		{"Geel", "ar", "c", "municipality"},  // municipality and language: c (2 → 1)
		{"geel", "", "b", "municipality"},    // b and c in Geel with 1 place each: b by username (b → 0)
		{"Geel", "", "c", "municipality"},    // b is full now (c → 0)
		{"Geel", "", "a", "free_places"},     // nobody left in Geel
		{"Dessel", "tr", "a", "free_places"}, // d coaches in Dessel but has no place; c (tr) is full
		{"Balen", "", "a", "free_places"},    // a holder who is not on the board does not count
		{"Olen", "", "a", "free_places"},
		{"Olen", "", "a", "free_places"}, // a: 5 → 0
		{"Olen", "", "", "none"},
	} {
		p := sg.propose(&view.Referral{Municipality: tc.municipality}, family(tc.language))
		if p.CoachID != tc.coach || p.Basis != tc.basis || !strings.Contains(p.Reason, " / ") {
			t.Fatalf("%s/%s: got %+v, want %q by %s", tc.municipality, tc.language, p, tc.coach, tc.basis)
		}
	}
	// Language comes before free places.
	sg = newSuggester([]CoachCapacity{{CoachID: "a", Free: 9}, {CoachID: "b", Free: 1}}, []*view.Case{held("b", "Mol", "ar")})
	if p := sg.propose(&view.Referral{Municipality: "Geel"}, family("AR")); p.CoachID != "b" || p.Basis != "language" {
		t.Errorf("language: %+v", p)
	}
	// The family's municipality stands in for a referral without one.
	sg = newSuggester([]CoachCapacity{{CoachID: "a", Free: 9}, {CoachID: "b", Free: 1}}, []*view.Case{held("b", "Mol", "ar")})
	fam := &view.Case{Family: view.Family{Municipality: "Mol"}}
	if p := sg.propose(&view.Referral{}, fam); p.CoachID != "b" || p.Basis != "municipality" {
		t.Errorf("family municipality: %+v", p)
	}
}

func TestISOWeeks(t *testing.T) {
	for _, tc := range []struct {
		week     string
		mon, sun string
	}{
		{"2026-W48", "2026-11-23", "2026-11-29"},
		{"2026-W01", "2025-12-29", "2026-01-04"},
		{"2026-W53", "2026-12-28", "2027-01-03"},
		{"2021-W01", "2021-01-04", "2021-01-10"},
	} {
		w, err := parseWeek(tc.week)
		if err != nil || w.String() != tc.week || w.monday().String() != tc.mon || w.sunday().String() != tc.sun {
			t.Errorf("%s: %v %s %s..%s", tc.week, err, w, w.monday(), w.sunday())
		}
	}
	if _, err := parseWeek("2025-W53"); err == nil {
		t.Error("2025 has no week 53")
	}
	if got := weekOf(time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)).String(); got != "2026-W53" {
		t.Errorf("1 January 2027: %s", got)
	}
}

func TestErrorCodes_EveryCodeHasAStatus(t *testing.T) {
	for _, code := range samenplan.Codes {
		if _, ok := statusOf[code]; !ok {
			t.Errorf("code %s has no status", code)
		}
	}
	if StatusOf(samenplan.ECAPACITYREFUSED) != http.StatusConflict {
		t.Error("capacity_refused is not 409")
	}
}

func TestIntakeBoard_Pages(t *testing.T) {
	we := newWorkflowEnv(t)
	a, coord := we.login("coach.a"), we.login("coordinator.k")
	today := we.now()
	for i, muni := range []string{"Beerse", "Lille", "Ravels"} {
		pushReferral(t, a, today, referralSpec{municipality: muni, receivedDaysAgo: 3 - i, crisis: i == 2})
	}
	all := getBoard(t, coord, "/v1/regions/kempen/intake")
	if all.Total != 3 || len(all.Referrals) != 3 || all.Limit != 100 || all.Eligible != 2 {
		t.Fatalf("whole board: total %d, %d referrals, limit %d, eligible %d", all.Total, len(all.Referrals), all.Limit, all.Eligible)
	}
	p1 := getBoard(t, coord, "/v1/regions/kempen/intake?limit=2")
	p2 := getBoard(t, coord, "/v1/regions/kempen/intake?limit=2&offset=2")
	past := getBoard(t, coord, "/v1/regions/kempen/intake?limit=2&offset=5")
	if p1.Total != 3 || len(p1.Referrals) != 2 || len(p2.Referrals) != 1 || len(past.Referrals) != 0 || p2.Eligible != 2 {
		t.Fatalf("pages: %d+%d+%d referrals of %d", len(p1.Referrals), len(p2.Referrals), len(past.Referrals), p1.Total)
	}
	var got []string
	for _, r := range append(p1.Referrals, p2.Referrals...) {
		got = append(got, r.ID)
	}
	var want []string
	for _, r := range all.Referrals {
		want = append(want, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages %v, whole board %v", got, want)
	}
	// The suggestion of a referral on page 2 is the one of the whole board.
	if p2.Referrals[0].ID != all.Referrals[2].ID || fmt.Sprint(p2.Referrals[0].Suggestion) != fmt.Sprint(all.Referrals[2].Suggestion) {
		t.Fatalf("page 2 differs from the whole board: %+v vs %+v", p2.Referrals[0].Suggestion, all.Referrals[2].Suggestion)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "offset=-1", "limit=x"} {
		var e ErrorBody
		if st := coord.do("GET", "/v1/regions/kempen/intake?"+bad, nil, &e); st != http.StatusBadRequest || e.Code != "invalid" {
			t.Errorf("%s: %d %+v", bad, st, e)
		}
	}
}

// TestIntakeDecision_StartingAnIneligibleReferralNeedsAReason: the team may
// start a referral the intake rules refuse, but only with a reason, which
// the decision and the audit log keep.
func TestIntakeDecision_StartingAnIneligibleReferralNeedsAReason(t *testing.T) {
	we := newWorkflowEnv(t)
	a, coord := we.login("coach.a"), we.login("coordinator.k")
	_, ref := pushReferral(t, a, we.now(), referralSpec{municipality: "Lille", crisis: true, receivedDaysAgo: 1})
	before := we.dbState(t)
	start := map[string]any{"referral_id": ref, "kind": "start", "coach_id": we.users["coach.b"].ID}
	st, raw := decide(t, coord, "kempen", start)
	if st != http.StatusConflict || errCode(t, raw) != "conflict" || !strings.Contains(string(raw), "crisis") {
		t.Fatalf("ineligible start without a reason: %d %s", st, raw)
	}
	if after := we.dbState(t); after != before {
		t.Fatalf("a refused start changed the database:\n%s\n%s", before, after)
	}
	const why = "Crisis is voorbij; het team start toch (overleg met de verwijzer)."
	start["override_reason"] = why
	d := mustDecide(t, coord, start)
	if d.OverrideReason != why || d.TrajectoryID == "" {
		t.Fatalf("decision %+v: want the reason and a trajectory", d)
	}
	var el struct {
		Eligible bool     `json:"eligible"`
		Reasons  []string `json:"reasons"`
	}
	if err := json.Unmarshal(d.Eligibility, &el); err != nil || el.Eligible || !slices.Contains(el.Reasons, "crisis") {
		t.Fatalf("the decision keeps eligibility %s, want the ineligible one it was made with", d.Eligibility)
	}
	waitDecisionAudit(t, we, ref, func(_ audit.Entry, detail map[string]any) bool {
		return detail["override"] == true && detail["override_reason"] == why
	})
}
