package server

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/view/viewtest"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

const noContact = "no_contact_10_days"

// signalIDsByFamily returns the ids of the fired signals per family id.
func signalIDsByFamily(items []SignalItem) map[string][]string {
	out := map[string][]string{}
	for _, it := range items {
		out[it.FamilyID] = append(out[it.FamilyID], it.ID)
	}
	return out
}

func containsSignal(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// pushContactAt has c's device log a contact at at on traj.
func pushContactAt(t *testing.T, c *testClient, traj, coachID string, at time.Time) {
	t.Helper()
	id := newUUID()
	req := c.pushRequest(
		c.change("contacts", id, "trajectory_id", traj),
		c.change("contacts", id, "coach_id", coachID),
		c.change("contacts", id, "occurred_at", at.UTC().Format(time.RFC3339)),
		c.change("contacts", id, "mode", "home_visit"),
		c.change("contacts", id, "note", "Huisbezoek."),
	)
	var resp protocol.PushResponse
	if st := c.do("POST", "/v1/sync/push", req, &resp); st != http.StatusOK || resp.Applied != 5 {
		t.Fatalf("push contact: %d %+v", st, resp)
	}
}

// pullLastPage pulls from an empty cursor until more is false and returns the
// last page.
func pullLastPage(t *testing.T, c *testClient) protocol.PullResponse {
	t.Helper()
	cursor := ""
	for i := 0; i < 100; i++ {
		var resp protocol.PullResponse
		if st := c.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: cursor, Limit: 5}, &resp); st != http.StatusOK {
			t.Fatalf("pull: %d", st)
		}
		if resp.More && len(resp.Signals) > 0 {
			t.Errorf("a page with more=true carries %d signals; only the last page does", len(resp.Signals))
		}
		if !resp.More {
			return resp
		}
		cursor = resp.Cursor
	}
	t.Fatal("pull did not end")
	return protocol.PullResponse{}
}

func TestSignals_NoContactFor10DaysFiresAndANewContactClearsIt(t *testing.T) {
	we := newWorkflowEnv(t)
	coord := we.login("coordinator.k")
	var list SignalList
	if st := coord.do("GET", "/v1/regions/kempen/signals", nil, &list); st != http.StatusOK {
		t.Fatalf("signals: %d", st)
	}
	if containsSignal(signalIDsByFamily(list.Items)[we.families["coach.a"]], noContact) {
		t.Fatalf("a trajectory started today already has %s", noContact)
	}

	later := we.now().Add(12 * 24 * time.Hour) // started today, no contact: 12 days
	we.setNow(later)
	if st := coord.do("GET", "/v1/regions/kempen/signals", nil, &list); st != http.StatusOK {
		t.Fatalf("signals: %d", st)
	}
	by := signalIDsByFamily(list.Items)
	for _, coach := range []string{"coach.a", "coach.b", "coach.c"} {
		if !containsSignal(by[we.families[coach]], noContact) {
			t.Errorf("%s's family: signals %v, want %s", coach, by[we.families[coach]], noContact)
		}
	}
	if _, ok := by[we.families["coach.m"]]; ok {
		t.Error("a maasland family in the kempen list")
	}
	if list.Scope != "region" || list.Region != "kempen" || list.RulesVersion == "" {
		t.Errorf("list: scope %q region %q rules_version %q", list.Scope, list.Region, list.RulesVersion)
	}
	var item SignalItem
	for _, it := range list.Items {
		if it.FamilyID == we.families["coach.a"] && it.ID == noContact {
			item = it
		}
	}
	if item.Label != "Meer dan 10 dagen geen contact met het gezin" || item.LabelEN != "No contact with the family for more than 10 days" ||
		item.Severity != "warning" || item.About != "trajectory" || item.SubjectID != we.trajectories["coach.a"] ||
		item.FamilyLabel != "Gezin coach.a" || item.RulesVersion == "" || item.Region != "kempen" {
		t.Errorf("item: %+v", item)
	}
	if list.BySeverity["warning"] < 3 || list.Total != len(list.Items) {
		t.Errorf("by_severity %v, total %d of %d items", list.BySeverity, list.Total, len(list.Items))
	}

	// coach.a visits her family: the read model re-evaluates on the commit.
	pushContactAt(t, we.login("coach.a"), we.trajectories["coach.a"], we.users["coach.a"].ID, later.Add(-time.Hour))
	if st := coord.do("GET", "/v1/regions/kempen/signals", nil, &list); st != http.StatusOK {
		t.Fatalf("signals: %d", st)
	}
	by = signalIDsByFamily(list.Items)
	if containsSignal(by[we.families["coach.a"]], noContact) {
		t.Errorf("after a contact coach.a's family still has %s", noContact)
	}
	if !containsSignal(by[we.families["coach.b"]], noContact) {
		t.Errorf("coach.b's family lost %s without a contact", noContact)
	}
	var fam SignalList
	if st := coord.do("GET", "/v1/families/"+we.families["coach.a"]+"/signals", nil, &fam); st != http.StatusOK {
		t.Fatalf("family signals: %d", st)
	}
	if containsSignal(signalIDsByFamily(fam.Items)[we.families["coach.a"]], noContact) {
		t.Errorf("family endpoint still shows %s: %+v", noContact, fam.Items)
	}
}

func TestSignals_EachRoleSeesWhatItMay(t *testing.T) {
	we := newWorkflowEnv(t)
	we.setNow(we.now().Add(12 * 24 * time.Hour))
	famA, famB := we.families["coach.a"], we.families["coach.b"]

	// The region list.
	for _, tc := range []struct {
		user   string
		status int
		scope  string
		want   []string // families expected in the list
		absent []string
	}{
		{"coordinator.k", 200, "region", []string{famA, famB, we.families["coach.c"]}, []string{we.families["coach.m"]}},
		{"reviewer.k", 200, "region", []string{famA, famB, we.families["coach.c"]}, nil},
		{"coach.a", 200, "coach", []string{famA}, []string{famB, we.families["coach.c"]}},
		{"coach.m", 404, "", nil, nil},
		{"coordinator.m", 404, "", nil, nil},
		{"admin", 403, "", nil, nil},
	} {
		var list SignalList
		st := we.login(tc.user).do("GET", "/v1/regions/kempen/signals", nil, &list)
		if st != tc.status {
			t.Errorf("%s: status %d, want %d", tc.user, st, tc.status)
			continue
		}
		if st != 200 {
			continue
		}
		by := signalIDsByFamily(list.Items)
		if list.Scope != tc.scope {
			t.Errorf("%s: scope %q, want %q", tc.user, list.Scope, tc.scope)
		}
		for _, f := range tc.want {
			if !containsSignal(by[f], noContact) {
				t.Errorf("%s: family %s lacks %s", tc.user, f, noContact)
			}
		}
		for _, f := range tc.absent {
			if _, ok := by[f]; ok {
				t.Errorf("%s: sees family %s", tc.user, f)
			}
		}
	}

	// One family's signals.
	for _, tc := range []struct {
		user, family string
		status       int
	}{
		{"coach.a", famA, 200},
		{"coach.a", famB, 404},
		{"coordinator.k", famB, 200},
		{"reviewer.k", famA, 200},
		{"coordinator.m", famA, 404},
		{"coach.m", famA, 404},
		{"admin", famA, 403},
		{"coordinator.k", newUUID(), 404},
	} {
		var list SignalList
		if st := we.login(tc.user).do("GET", "/v1/families/"+tc.family+"/signals", nil, &list); st != tc.status {
			t.Errorf("%s on %s: status %d, want %d", tc.user, tc.family, st, tc.status)
			continue
		}
		if tc.status == 200 && (list.Scope != "family" || list.FamilyID != tc.family || !containsSignal(signalIDsByFamily(list.Items)[tc.family], noContact)) {
			t.Errorf("%s: %+v", tc.user, list)
		}
	}

	// Filters and bad query parameters.
	coord := we.login("coordinator.k")
	var list SignalList
	if st := coord.do("GET", "/v1/regions/kempen/signals?severity=info", nil, &list); st != 200 || list.Total != 0 {
		t.Errorf("severity=info: %d, %d items", st, list.Total)
	}
	if st := coord.do("GET", "/v1/regions/kempen/signals?signal="+noContact, nil, &list); st != 200 || list.Total != 3 {
		t.Errorf("signal=%s: %d, %d items", noContact, st, list.Total)
	}
	var page1, page2 SignalList
	if st := coord.do("GET", "/v1/regions/kempen/signals?limit=2", nil, &page1); st != 200 || len(page1.Items) != 2 || page1.Total != 3 || page1.BySeverity["warning"] != 3 {
		t.Errorf("limit=2: %d, %d items of %d, %v", st, len(page1.Items), page1.Total, page1.BySeverity)
	}
	if st := coord.do("GET", "/v1/regions/kempen/signals?limit=2&offset=2", nil, &page2); st != 200 || len(page2.Items) != 1 || page2.Total != 3 {
		t.Errorf("offset=2: %d, %d items of %d", st, len(page2.Items), page2.Total)
	}
	if len(page1.Items) == 2 && len(page2.Items) == 1 {
		seen := map[string]bool{}
		for _, it := range append(page1.Items, page2.Items...) {
			seen[it.SubjectID+it.ID] = true
		}
		if len(seen) != 3 || page1.Items[0].FamilyLabel == "" || page2.Items[0].FamilyLabel == "" {
			t.Errorf("pages overlap or lack labels: %+v %+v", page1.Items, page2.Items)
		}
	}
	for _, q := range []string{"severity=loud", "limit=0", "limit=1001", "offset=-1", "limit=many"} {
		var e ErrorBody
		if st := coord.do("GET", "/v1/regions/kempen/signals?"+q, nil, &e); st != 400 || e.Code != "invalid" {
			t.Errorf("%s: %d %+v", q, st, e)
		}
	}
}

func TestPull_CarriesTheCoachsOwnSignalsOnTheLastPage(t *testing.T) {
	we := newWorkflowEnv(t)
	later := we.now().Add(12 * 24 * time.Hour)
	we.setNow(later)

	coachA := we.login("coach.a")
	last := pullLastPage(t, coachA)
	if len(last.Signals) == 0 {
		t.Fatal("coach.a's last page carries no signals")
	}
	for _, sg := range last.Signals {
		if sg.FamilyID != we.families["coach.a"] {
			t.Errorf("coach.a received a signal of family %s", sg.FamilyID)
		}
	}
	found := false
	for _, sg := range last.Signals {
		if sg.ID == noContact && sg.SubjectID == we.trajectories["coach.a"] && sg.About == "trajectory" &&
			sg.Label != "" && sg.LabelEN != "" && sg.Severity == "warning" && sg.Version != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("coach.a's signals %+v lack %s on her trajectory", last.Signals, noContact)
	}

	// An incremental (empty) pull still brings the whole list.
	var resp protocol.PullResponse
	if st := coachA.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: coachA.device, SchemaVersion: schema.Version, Cursor: last.Cursor}, &resp); st != 200 {
		t.Fatalf("pull: %d", st)
	}
	if len(resp.Changes) != 0 || len(resp.Signals) != len(last.Signals) {
		t.Errorf("empty pull: %d changes, %d signals (want 0, %d)", len(resp.Changes), len(resp.Signals), len(last.Signals))
	}

	// coach.b gets hers, not coach.a's; a coordinator's device gets none.
	for _, sg := range pullLastPage(t, we.login("coach.b")).Signals {
		if sg.FamilyID != we.families["coach.b"] {
			t.Errorf("coach.b received a signal of family %s", sg.FamilyID)
		}
	}
	if got := pullLastPage(t, we.login("coordinator.k")).Signals; len(got) != 0 {
		t.Errorf("coordinator's device received %d signals", len(got))
	}

	// After a contact the signal leaves coach.a's devices too.
	pushContactAt(t, coachA, we.trajectories["coach.a"], we.users["coach.a"].ID, later)
	for _, sg := range pullLastPage(t, coachA).Signals {
		if sg.ID == noContact {
			t.Errorf("after a contact coach.a still receives %s", noContact)
		}
	}
}

// BenchmarkCoachSignals10k measures what a coach's pull adds on its last
// page: her families' fired signals, with 10,000 families in the region
// (12 per coach). An empty pull must stay under 2 ms at p99 (DESIGN §8).
func BenchmarkCoachSignals10k(b *testing.B) {
	now := func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()) }
	st := newWorkflowStack(b, io.Discard, &now)
	coaches := make([]string, 10000/12+1)
	for i := range coaches {
		coaches[i] = newUUID()
	}
	region, _ := st.stores.Region("kempen")
	if _, err := viewtest.Seed(context.Background(), region, viewtest.Options{Families: 10000, Coaches: coaches, Today: now()}); err != nil {
		b.Fatal(err)
	}
	n := 0
	for i := 0; b.Loop(); i++ {
		n += len(st.srv.coachSignals(coaches[i%len(coaches)], "", "kempen"))
	}
	b.ReportMetric(float64(n)/float64(b.N), "signals/op")
}
