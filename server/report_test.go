package server

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/sync/store"
)

// reportFixture is a small, known year of kempen: the figures the tests
// expect are worked out by hand beside each row.
type reportFixture struct {
	famA, fam4, fam5, fam6 string
}

// writes collects server writes of one region.
type writes []store.FieldWrite

func (w *writes) set(coll, id string, fields map[string]any) {
	for k, v := range fields {
		*w = append(*w, store.FieldWrite{Collection: coll, ID: id, Field: k, Value: jsonValue(v)})
	}
}

func (w *writes) contact(traj, coachID, at string) {
	w.set("contacts", newUUID(), map[string]any{"trajectory_id": traj, "coach_id": coachID, "occurred_at": at, "mode": "home_visit", "minutes": 60})
}

// seedReportYear writes the known data set (now is 2026-11-23, so the
// year 2026 is counted up to that day):
//
//	traj  coach        started     closed      reason          mandated rtj  contacts in 2026
//	Ta    a            2026-01-10  —           —               no       no   2 (02-01, 03-01)
//	Tb    b            2025-12-01  —           —               yes      no   1 (01-05; 2025-12-15 not)
//	Tc    c            2026-03-01  2026-05-30  doelen_bereikt  yes      no   1 (04-01)
//	T4    a (co b)     2025-06-01  2026-02-15  gezin_stopt     no       yes  1 (02-10; 2025-09-01 not)
//	T5    b            2026-10-01  2026-10-11  verhuisd        no       no   0
//	T6    a            2026-11-01  —           —               no       yes  1 (11-20)
//	T7    b            2024-01-01  2025-03-01  andere          no       yes  — (did not run in 2026)
func seedReportYear(t *testing.T, we *workflowEnv) reportFixture {
	t.Helper()
	a, b, c := we.users["coach.a"].ID, we.users["coach.b"].ID, we.users["coach.c"].ID
	f := reportFixture{famA: we.families["coach.a"], fam4: newUUID(), fam5: newUUID(), fam6: newUUID()}
	fam7 := newUUID()
	ta, tb, tc := we.trajectories["coach.a"], we.trajectories["coach.b"], we.trajectories["coach.c"]
	t4, t5, t6, t7 := newUUID(), newUUID(), newUUID(), newUUID()
	var w writes
	w.set("trajectories", ta, map[string]any{"started_on": "2026-01-10", "mandated": false})
	w.set("trajectories", tb, map[string]any{"started_on": "2025-12-01", "mandated": true})
	w.set("trajectories", tc, map[string]any{"started_on": "2026-03-01", "mandated": true, "status": "closed", "closed_on": "2026-05-30", "closure_reason": "doelen_bereikt"})
	for fam, label := range map[string]string{f.fam4: "Gezin Vier", f.fam5: "Gezin Vijf", f.fam6: "Gezin Zes", fam7: "Gezin Zeven"} {
		w.set("families", fam, map[string]any{"region": "kempen", "label": label})
	}
	w.set("trajectories", t4, map[string]any{"family_id": f.fam4, "region": "kempen", "lead_coach_id": a, "co_coach_ids": []string{b},
		"status": "closed", "started_on": "2025-06-01", "closed_on": "2026-02-15", "closure_reason": "gezin_stopt", "mandated": false, "rtj_requested": true})
	w.set("trajectories", t5, map[string]any{"family_id": f.fam5, "region": "kempen", "lead_coach_id": b,
		"status": "closed", "started_on": "2026-10-01", "closed_on": "2026-10-11", "closure_reason": "verhuisd", "mandated": false})
	w.set("trajectories", t6, map[string]any{"family_id": f.fam6, "region": "kempen", "lead_coach_id": a,
		"status": "active", "started_on": "2026-11-01", "mandated": false, "rtj_requested": true})
	w.set("trajectories", t7, map[string]any{"family_id": fam7, "region": "kempen", "lead_coach_id": b,
		"status": "closed", "started_on": "2024-01-01", "closed_on": "2025-03-01", "closure_reason": "andere", "rtj_requested": true})
	w.contact(ta, a, "2026-02-01T10:00:00Z")
	w.contact(ta, a, "2026-03-01T10:00:00Z")
	w.contact(tb, b, "2025-12-15T10:00:00Z")
	w.contact(tb, b, "2026-01-05T10:00:00Z")
	w.contact(tc, c, "2026-04-01T10:00:00Z")
	w.contact(t4, a, "2025-09-01T10:00:00Z")
	w.contact(t4, a, "2026-02-10T10:00:00Z")
	w.contact(t6, a, "2026-11-20T10:00:00Z")
	w.contact(t7, b, "2025-01-10T10:00:00Z")

	// Referrals: received 4 in 2026 (R1, R2, R3, R5), 1 mandated (R2), 2
	// not articulated (R2, R3: unset counts as not articulated).
	r1, r2, r3, r4, r5 := newUUID(), newUUID(), newUUID(), newUUID(), newUUID()
	w.set("referrals", r1, map[string]any{"region": "kempen", "family_id": f.fam4, "received_on": "2026-01-05", "articulated": true, "status": "started"})
	w.set("referrals", r2, map[string]any{"region": "kempen", "received_on": "2026-02-20", "articulated": false, "mandated": true, "status": "declined"})
	w.set("referrals", r3, map[string]any{"region": "kempen", "family_id": f.fam5, "received_on": "2026-10-01", "status": "redirected"})
	w.set("referrals", r4, map[string]any{"region": "kempen", "received_on": "2025-12-20", "articulated": false})
	w.set("referrals", r5, map[string]any{"region": "kempen", "received_on": "2026-11-23", "articulated": true, "status": "consult_only"})

	// Consults: 2 in 2026, 50 minutes (one of coach.a: 20).
	w.set("consults", newUUID(), map[string]any{"region": "kempen", "at": "2026-03-03T09:30:00Z", "minutes": 20, "coach_id": a})
	w.set("consults", newUUID(), map[string]any{"region": "kempen", "at": "2026-11-20T09:30:00Z", "minutes": 30, "coach_id": b})
	w.set("consults", newUUID(), map[string]any{"region": "kempen", "at": "2025-12-30T09:30:00Z", "minutes": 10, "coach_id": a})
	we.serverWrite("kempen", w...)

	// Decisions, as the intake API records them: 5 in 2026 (start 2,
	// decline 1, redirect 1, consult 1; 1 override); days to decision
	// 4, 10, 1, 0 (D6 has no received_on) → median 2.5.
	region, _ := we.stores.Region("kempen")
	for _, d := range []struct{ ref, fam, kind, coach, override, received, decided string }{
		{r1, f.fam4, "start", a, "Team akkoord / team agreed", "2026-01-05", "2026-01-09"}, // D1: 4 days
		{r2, "", "decline", "", "", "2026-02-20", "2026-03-02"},                            // D2: 10 days
		{r3, f.fam5, "redirect", "", "", "2026-10-01", "2026-10-02"},                       // D3: 1 day
		{r5, "", "consult", "", "", "2026-11-23", "2026-11-23"},                            // D4: 0 days
		{newUUID(), "", "start", b, "", "2025-12-20", "2025-12-22"},                        // D5: last year
		{newUUID(), "", "start", b, "", "", "2026-06-01"},                                  // D6: no received_on
	} {
		if _, err := region.DB().Writer.ExecContext(context.Background(), `INSERT INTO intake_decisions
			(referral_id, family_id, week, kind, coach_id, override_reason, received_on, decided_on, decided_at, decided_by, seq)
			VALUES (?, ?, '2026-W01', ?, ?, ?, ?, ?, ?, ?, 0)`,
			d.ref, d.fam, d.kind, d.coach, d.override, d.received, d.decided, d.decided+"T10:00:00Z", we.users["coordinator.k"].ID); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func fptr(t *testing.T, name string, got *float64, want float64) {
	t.Helper()
	if got == nil || *got != want {
		if got == nil {
			t.Errorf("%s: got null, want %v", name, want)
		} else {
			t.Errorf("%s: got %v, want %v", name, *got, want)
		}
	}
}

func ieq(t *testing.T, name string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %d, want %d", name, got, want)
	}
}

func TestReport_RegionFiguresOfAKnownYear(t *testing.T) {
	we := newWorkflowEnv(t)
	we.setNow(time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()))
	seedReportYear(t, we)

	var r Report
	if st := we.login("coordinator.k").do("GET", "/v1/regions/kempen/report?year=2026", nil, &r); st != http.StatusOK {
		t.Fatalf("report: %d", st)
	}
	if r.Scope != "region" || r.Year != 2026 || r.From.String() != "2026-01-01" || r.To.String() != "2026-12-31" || r.AsOf.String() != "2026-11-23" || r.RulesVersion == "" {
		t.Errorf("header: %+v", r)
	}
	ieq(t, "referrals.received", r.Referrals.Received, 4)
	ieq(t, "referrals.mandated", r.Referrals.Mandated, 1)
	ieq(t, "referrals.non_articulated", r.Referrals.NonArticulated, 2)
	fptr(t, "referrals.non_articulated_share", r.Referrals.NonArticulatedShare, 0.5)
	ieq(t, "consults.count", r.Consults.Count, 2)
	ieq(t, "consults.minutes", r.Consults.Minutes, 50)
	ieq(t, "decisions.total", r.Decisions.Total, 5)
	for k, want := range map[string]int{"start": 2, "decline": 1, "redirect": 1, "consult": 1} {
		ieq(t, "decisions."+k, r.Decisions.ByKind[k], want)
	}
	ieq(t, "decisions.overrides", r.Decisions.Overrides, 1)
	fptr(t, "decisions.median_days_to_decision", r.Decisions.MedianDaysToDecision, 2.5) // 0 1 | 4 10
	tr := r.Trajectories
	ieq(t, "started", tr.Started, 4) // Ta, Tc, T5, T6
	ieq(t, "started_mandated", tr.StartedMandated, 1)
	ieq(t, "started_non_mandated", tr.StartedNonMandated, 3)
	fptr(t, "target", tr.Target, 200)
	fptr(t, "mandated_reserve", tr.MandatedReserve, 60)
	fptr(t, "non_mandated_ceiling", tr.NonMandatedCeiling, 140)
	fptr(t, "target_remaining", tr.TargetRemaining, 196)
	ieq(t, "running_at_end", tr.RunningAtEnd, 3) // Ta, Tb, T6
	ieq(t, "closed", tr.Closed, 3)               // Tc 90 days, T4 259, T5 10
	fptr(t, "avg_duration_days", tr.AvgDurationDays, 119.67)
	fptr(t, "median_duration_days", tr.MedianDurationDays, 90)
	ieq(t, "rtj_requests", tr.RTJRequests, 2) // T4, T6; T7 did not run in 2026
	// Days run in 2026 (both ends counted): Ta 318, Tb 327, Tc 91, T4 46,
	// T5 11, T6 23 = 816 = 116.57 weeks; 6 contacts.
	ieq(t, "contacts.count", r.Contacts.Count, 6)
	if r.Contacts.TrajectoryWeeks != 116.57 {
		t.Errorf("trajectory_weeks: got %v, want 116.57", r.Contacts.TrajectoryWeeks)
	}
	fptr(t, "per_trajectory_week", r.Contacts.PerTrajectoryWk, 0.05) // 6 / 116.57
	want := []ReportClosure{
		{"doelen_bereikt", "Doelen van het gezinsplan bereikt", "Family plan goals reached", 1},
		{"rtj_gestart", "Overgang naar RTJ-hulp", "Moved on to RTJ help", 0},
		{"gezin_stopt", "Gezin stopt de samenwerking", "Family ends the cooperation", 1},
		{"verhuisd", "Verhuisd buiten de regio", "Moved out of the region", 1},
		{"andere", "Andere reden", "Other reason", 0},
	}
	if len(r.ClosureReasons) != len(want) {
		t.Fatalf("closure reasons: %+v", r.ClosureReasons)
	}
	for i := range want {
		if r.ClosureReasons[i] != want[i] {
			t.Errorf("closure reason %d: got %+v, want %+v", i, r.ClosureReasons[i], want[i])
		}
	}

	// The year before: Tb and T4 started, T7 closed (andere, 425 days).
	if st := we.login("reviewer.k").do("GET", "/v1/regions/kempen/report?year=2025", nil, &r); st != http.StatusOK {
		t.Fatalf("report 2025: %d", st)
	}
	if r.AsOf.String() != "2025-12-31" || r.Trajectories.Started != 2 || r.Trajectories.StartedMandated != 1 || r.Trajectories.Closed != 1 ||
		r.Trajectories.RunningAtEnd != 2 || r.Decisions.Total != 1 || r.Referrals.Received != 1 || r.Consults.Count != 1 {
		t.Errorf("2025: %+v", r)
	}
	fptr(t, "2025 median duration", r.Trajectories.MedianDurationDays, 425) // 2024-01-01 → 2025-03-01
}

func TestReport_ACoachSeesHerOwnCaseload(t *testing.T) {
	we := newWorkflowEnv(t)
	we.setNow(time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()))
	seedReportYear(t, we)

	var r Report
	if st := we.login("coach.a").do("GET", "/v1/regions/kempen/report", nil, &r); st != http.StatusOK {
		t.Fatalf("report: %d", st)
	}
	// coach.a leads Ta, T4 and T6.
	if r.Scope != "coach" || r.CoachID != we.users["coach.a"].ID || r.Year != 2026 {
		t.Errorf("scope %q coach %q year %d", r.Scope, r.CoachID, r.Year)
	}
	tr := r.Trajectories
	ieq(t, "started", tr.Started, 2) // Ta, T6
	ieq(t, "closed", tr.Closed, 1)   // T4
	ieq(t, "running_at_end", tr.RunningAtEnd, 2)
	ieq(t, "rtj_requests", tr.RTJRequests, 2)
	fptr(t, "median_duration_days", tr.MedianDurationDays, 259)
	if tr.Target != nil || tr.MandatedReserve != nil {
		t.Errorf("a coach's report has the region's target: %v %v", tr.Target, tr.MandatedReserve)
	}
	ieq(t, "contacts.count", r.Contacts.Count, 4) // Ta 2, T4 1, T6 1 over 318+46+23 days
	fptr(t, "per_trajectory_week", r.Contacts.PerTrajectoryWk, 0.07)
	ieq(t, "referrals.received", r.Referrals.Received, 1) // R1 of family 4
	ieq(t, "consults.count", r.Consults.Count, 1)
	ieq(t, "decisions.total", r.Decisions.Total, 1) // D1
	ieq(t, "decisions.start", r.Decisions.ByKind["start"], 1)
	fptr(t, "median_days_to_decision", r.Decisions.MedianDaysToDecision, 4)

	// coach.b co-leads T4: it counts for her too.
	if st := we.login("coach.b").do("GET", "/v1/regions/kempen/report?year=2026", nil, &r); st != http.StatusOK {
		t.Fatalf("report: %d", st)
	}
	ieq(t, "coach.b started", r.Trajectories.Started, 1) // T5
	ieq(t, "coach.b closed", r.Trajectories.Closed, 2)   // T4, T5
}

func TestReport_RolesAndBadParameters(t *testing.T) {
	we := newWorkflowEnv(t)
	we.setNow(time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()))
	for _, tc := range []struct {
		user, path string
		status     int
	}{
		{"coordinator.k", "/v1/regions/kempen/report", 200},
		{"reviewer.k", "/v1/regions/kempen/report?year=2026", 200},
		{"coach.a", "/v1/regions/kempen/report", 200},
		{"coordinator.m", "/v1/regions/kempen/report", 404},
		{"coach.m", "/v1/regions/kempen/report", 404},
		{"admin", "/v1/regions/kempen/report", 403},
		{"admin", "/v1/regions/kempen/report?format=csv", 403},
		{"coach.m", "/v1/regions/kempen/report?format=csv", 404},
		{"coordinator.m", "/v1/regions/maasland/report", 200},
		{"coordinator.k", "/v1/regions/kempen/report?year=twenty", 400},
		{"coordinator.k", "/v1/regions/kempen/report?year=1999", 400},
		{"coordinator.k", "/v1/regions/kempen/report?year=2027", 400},
		{"coordinator.k", "/v1/regions/kempen/report?format=xml", 400},
	} {
		var body map[string]any
		if st := we.login(tc.user).do("GET", tc.path, nil, &body); st != tc.status {
			t.Errorf("%s GET %s: %d, want %d", tc.user, tc.path, st, tc.status)
		} else if st == 400 && body["code"] != "invalid" {
			t.Errorf("%s: %v", tc.path, body)
		}
	}
	// Maasland's capacity rules have a yearly target (report: true) and no
	// mandated reserve: null, not 0.
	var r Report
	we.login("coordinator.m").do("GET", "/v1/regions/maasland/report", nil, &r)
	if r.Trajectories.Target == nil || *r.Trajectories.Target != 200 || r.Trajectories.MandatedReserve != nil {
		t.Errorf("maasland target %v reserve %v", r.Trajectories.Target, r.Trajectories.MandatedReserve)
	}
}

func TestReport_CSVRoundTripsAndIsAudited(t *testing.T) {
	we := newWorkflowEnv(t)
	we.setNow(time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()))
	seedReportYear(t, we)
	rv := we.login("reviewer.k")
	var r Report
	if st := rv.do("GET", "/v1/regions/kempen/report?year=2026", nil, &r); st != 200 {
		t.Fatalf("json: %d", st)
	}

	req, _ := http.NewRequest("GET", we.url()+"/v1/regions/kempen/report?year=2026&format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+rv.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("csv: %d %s", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="samenplan-rapport-kempen-2026.csv"` {
		t.Errorf("content disposition %q", cd)
	}
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("parse csv: %v\n%s", err, raw)
	}
	if len(rows) < 2 || rows[0][0] != "metric" || rows[0][1] != "value" {
		t.Fatalf("header: %v", rows[:1])
	}
	got := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) != 2 {
			t.Fatalf("row %v has %d columns", row, len(row))
		}
		if _, dup := got[row[0]]; dup {
			t.Errorf("metric %s twice", row[0])
		}
		got[row[0]] = row[1]
	}
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	i := strconv.Itoa
	for metric, want := range map[string]string{
		"region": "kempen", "year": "2026", "scope": "region", "as_of": "2026-11-23", "rules_version": r.RulesVersion,
		"referrals.received": i(r.Referrals.Received), "referrals.non_articulated_share": f(r.Referrals.NonArticulatedShare),
		"consults.count": i(r.Consults.Count), "consults.minutes": i(r.Consults.Minutes),
		"decisions.total": i(r.Decisions.Total), "decisions.start": i(r.Decisions.ByKind["start"]), "decisions.decline": "1",
		"decisions.redirect": "1", "decisions.consult": "1", "decisions.overrides": "1", "decisions.median_days_to_decision": "2.5",
		"trajectories.started": "4", "trajectories.started_mandated": "1", "trajectories.started_non_mandated": "3",
		"trajectories.target": "200", "trajectories.mandated_reserve": "60", "trajectories.non_mandated_ceiling": "140",
		"trajectories.target_remaining": "196", "trajectories.running_at_end": "3", "trajectories.closed": "3",
		"trajectories.avg_duration_days": "119.67", "trajectories.median_duration_days": "90", "trajectories.rtj_requests": "2",
		"contacts.count": "6", "contacts.trajectory_weeks": "116.57", "contacts.per_trajectory_week": f(r.Contacts.PerTrajectoryWk),
		"closure_reasons.doelen_bereikt": "1", "closure_reasons.rtj_gestart": "0", "closure_reasons.gezin_stopt": "1",
		"closure_reasons.verhuisd": "1", "closure_reasons.andere": "0",
	} {
		if got[metric] != want {
			t.Errorf("csv %s: got %q, want %q", metric, got[metric], want)
		}
	}
	if len(got) != 38 { // 5 header rows, 4 referrals, 2 consults, 7 decisions, 12 trajectories, 3 contacts, 5 closure reasons
		t.Errorf("csv has %d metrics, want 38", len(got))
	}

	// The export is in the audit log (written asynchronously); the JSON
	// read before it is not an export.
	var es []audit.Entry
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if es, err = we.audit.Query(context.Background(), audit.Filter{Action: audit.ActionExport}); err != nil {
			t.Fatal(err)
		}
		if len(es) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(es) != 1 {
		t.Fatalf("export entries: %+v", es)
	}
	e := es[0]
	if e.UserID != we.users["reviewer.k"].ID || e.Region != "kempen" || e.TargetKind != "report" || e.TargetID != "kempen/2026" {
		t.Errorf("audit entry: %+v", e)
	}
	if !bytes.Contains(e.Detail, []byte(`"year":2026`)) || !bytes.Contains(e.Detail, []byte(`"format":"csv"`)) {
		t.Errorf("audit detail: %s", e.Detail)
	}
}
