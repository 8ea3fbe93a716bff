package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestAuditLists_EveryCaseListIsAccountedFor: the lists that show case
// content (families, intake board, permanence, region signals, a week's
// decisions) each leave a case.list entry naming the families shown, by id
// only; the admin's family filter finds a list read of a family; a coach's
// list names only her families; a search term is not stored.
func TestAuditLists_EveryCaseListIsAccountedFor(t *testing.T) {
	we := newWorkflowEnv(t)
	admin, coord, coachA := we.login("admin"), we.login("coordinator.k"), we.login("coach.a")
	famA, famB, famM := we.families["coach.a"], we.families["coach.b"], we.families["coach.m"]

	for _, path := range []string{
		"/v1/families?region=kempen",
		"/v1/families?region=kempen&q=Gezin+coach",
		"/v1/regions/kempen/intake",
		"/v1/regions/kempen/permanence",
		"/v1/regions/kempen/signals",
		"/v1/regions/kempen/intake/decisions",
	} {
		if st := coord.do("GET", path, nil, nil); st != http.StatusOK {
			t.Fatalf("GET %s: %d", path, st)
		}
	}
	if st := coachA.do("GET", "/v1/families", nil, nil); st != http.StatusOK {
		t.Fatalf("coach's families: %d", st)
	}
	// A refused list read is not a read.
	if st := coord.do("GET", "/v1/families?region=maasland", nil, nil); st == http.StatusOK {
		t.Fatal("a kempen coordinator listed maasland")
	}

	page := waitAuditAPI(t, admin, "action=case.list", 7)
	if len(page.Items) != 7 {
		t.Fatalf("case.list entries: %d, want 7 (the refused read is not one)", len(page.Items))
	}
	views := map[string]int{}
	for _, e := range page.Items {
		var d struct {
			View     string            `json:"view"`
			Items    int               `json:"items"`
			Families []string          `json:"families"`
			Query    map[string]string `json:"query"`
		}
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatalf("detail %s: %v", e.Detail, err)
		}
		views[d.View]++
		if e.Region != "kempen" || e.TargetKind != "list" || e.TargetID != "kempen" {
			t.Errorf("entry %+v: want region and target list:kempen", e)
		}
		if strings.Contains(string(e.Detail), "Gezin") {
			t.Errorf("a list entry holds case content or the search term: %s", e.Detail)
		}
		if slices.Contains(d.Families, famM) {
			t.Errorf("a kempen list names a maasland family: %s", e.Detail)
		}
		if d.View == "families" && e.Username == "coach.a" && !slices.Equal(d.Families, []string{famA}) {
			t.Errorf("coach.a's list names %v, want only her family %s", d.Families, famA)
		}
		if d.View == "families" && e.Username == "coordinator.k" && (!slices.Contains(d.Families, famA) || !slices.Contains(d.Families, famB)) {
			t.Errorf("the coordinator's list names %v, want her region's families", d.Families)
		}
		if q, ok := d.Query["q"]; ok && q != "(given)" {
			t.Errorf("the search term is stored: %q", q)
		}
	}
	for _, v := range []string{"families", "intake", "permanence", "signals", "decisions"} {
		if views[v] == 0 {
			t.Errorf("no case.list entry for the %s view (got %v)", v, views)
		}
	}

	// The family filter finds the lists that showed famA: the coordinator's
	// two family lists and the coach's own.
	if got := auditPage(t, admin, "action=case.list&family="+famA); len(got.Items) != 3 {
		t.Fatalf("case.list entries naming famA: %d, want 3", len(got.Items))
	}
	if got := auditPage(t, admin, "action=case.list&family="+famM); len(got.Items) != 0 {
		t.Fatalf("case.list entries naming the maasland family: %d, want 0", len(got.Items))
	}
}
