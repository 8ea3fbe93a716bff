package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/store"
)

// newCasesServer builds the read model over the harness's stores and a
// second server (same auth) that serves it; clients talk to it through base.
func newCasesServer(t *testing.T, e *testEnv) string {
	t.Helper()
	reg := rules.NewRegistry(filepath.Join("..", "rules", "regions"), rules.RegistryOptions{})
	if err := reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	model := view.New(e.stores, reg, time.Now)
	if err := model.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stores: e.stores, Auth: e.auth, Audit: e.audit, Clock: e.clock, View: model})
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv.URL()
}

type familiesPage struct {
	Items []view.CaseSummary `json:"items"`
	Total int                `json:"total"`
}

func TestFamilies_EachRoleSeesWhatItMay(t *testing.T) {
	e := newTestEnv(t)
	base := newCasesServer(t, e)
	as := func(username string) *testClient {
		c := e.login(username)
		c.base = base
		return c
	}
	coach := as("coach.a")
	var page familiesPage
	if status := coach.do("GET", "/v1/families", nil, &page); status != http.StatusOK || page.Total != 1 || page.Items[0].FamilyID != e.families["coach.a"] {
		t.Fatalf("coach.a list: %d %+v", status, page)
	}
	if status := coach.do("GET", "/v1/families/"+e.families["coach.b"], nil, nil); status != http.StatusNotFound {
		t.Fatalf("coach.a reads coach.b's family: %d, want 404", status)
	}
	var cs view.Case
	if status := coach.do("GET", "/v1/families/"+e.families["coach.a"], nil, &cs); status != http.StatusOK || cs.Family.Label != "Gezin coach.a" {
		t.Fatalf("coach.a reads her family: %d %+v", status, cs.Family)
	}
	if status := coach.do("GET", "/v1/families?coach="+e.users["coach.b"].ID, nil, nil); status != http.StatusForbidden {
		t.Fatalf("coach.a lists coach.b's families: %d, want 403", status)
	}
	reviewer := as("reviewer.k")
	if status := reviewer.do("GET", "/v1/families?region=kempen", nil, &page); status != http.StatusOK || page.Total != 2 {
		t.Fatalf("reviewer list: %d total %d, want 2", status, page.Total)
	}
	if status := reviewer.do("GET", "/v1/families/"+e.families["coach.m"], nil, nil); status != http.StatusNotFound {
		t.Fatalf("reviewer.k reads a maasland family: %d, want 404", status)
	}
	if status := as("coordinator.k").do("GET", "/v1/families?region=maasland", nil, nil); status != http.StatusNotFound {
		t.Fatalf("coordinator.k lists maasland: %d, want 404", status)
	}
	if status := as("admin").do("GET", "/v1/families", nil, nil); status != http.StatusForbidden {
		t.Fatalf("admin lists families: %d, want 403", status)
	}
	if status := (&testClient{t: t, base: base}).do("GET", "/v1/families", nil, nil); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", status)
	}
	if status := reviewer.do("GET", "/v1/families?limit=0", nil, nil); status != http.StatusBadRequest {
		t.Fatalf("limit=0: %d, want 400", status)
	}
	e.audit.Close() // drains the queue
	reads, err := e.audit.Query(context.Background(), audit.Filter{Action: audit.ActionCaseRead})
	if err != nil || len(reads) != 1 || reads[0].TargetID != e.families["coach.a"] {
		t.Fatalf("audited case reads: %+v %v; want exactly coach.a's read of her family", reads, err)
	}
}

// TestFamilyHistory_ShowsTheWinningAndLosingWritesOfAFieldEditedOnTwoDevices:
// coach.a edits one note on her tablet and her phone offline; the family's
// history has both writes of the field (the loser as stale), with device,
// user and old value, and the case file shows the conflict side by side.
func TestFamilyHistory_ShowsTheWinningAndLosingWritesOfAFieldEditedOnTwoDevices(t *testing.T) {
	we := newWorkflowEnv(t)
	fam, traj := we.families["coach.a"], we.trajectories["coach.a"]
	tablet := we.replica(t, "coach.a", "tablet")
	phone := we.replica(t, "coach.a", "phone")
	mustSync(t, tablet, phone)
	contact := tablet.NewID()
	mustWrite(t, tablet, "contacts", contact, "trajectory_id", traj)
	mustWrite(t, tablet, "contacts", contact, "note", "Eerste gesprek.")
	mustSync(t, tablet, phone)

	const loser, winner = "Gesprek met moeder (tablet).", "Gesprek met moeder en oma (telefoon)."
	mustWrite(t, tablet, "contacts", contact, "note", loser)
	mustWrite(t, phone, "contacts", contact, "note", winner)
	mustSync(t, phone, tablet) // the loser arrives last

	coord := we.login("coordinator.k")
	var h FamilyHistoryAnswer
	if st, e := tjCall(t, coord, "GET", "/v1/families/"+fam+"/history", nil, &h); st != 200 || h.FamilyID != fam || h.Region != "kempen" {
		t.Fatalf("history: %d %+v", st, e)
	}
	var note *store.FieldHistory
	have := map[string]bool{}
	for i, f := range h.Fields {
		have[f.Collection] = true
		if f.Collection == "contacts" && f.ID == contact && f.Field == "note" {
			note = &h.Fields[i]
		}
	}
	for _, c := range []string{"families", "trajectories", "contacts"} {
		if !have[c] {
			t.Errorf("history has no %s: %v", c, have)
		}
	}
	if note == nil {
		t.Fatalf("no history of the note: %+v", h.Fields)
	}
	var got []string
	for _, e := range note.Entries {
		got = append(got, fmt.Sprintf("%s %s→%s %s", e.Outcome, e.OldValue, e.Value, e.DeviceID))
		if e.UserID != we.users["coach.a"].ID || e.ReceivedAt.IsZero() || e.HLC == "" {
			t.Errorf("entry %+v", e)
		}
	}
	want := []string{
		fmt.Sprintf("applied →%s %s", jsonValue("Eerste gesprek."), tablet.DeviceID()),
		fmt.Sprintf("applied %s→%s %s", jsonValue("Eerste gesprek."), jsonValue(winner), phone.DeviceID()),
		fmt.Sprintf("stale →%s %s", jsonValue(loser), tablet.DeviceID()),
	}
	if !slices.Equal(got, want) {
		t.Errorf("note history:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if u := h.Users[we.users["coach.a"].ID]; u.Username != "coach.a" || u.DisplayName != "coach.a" {
		t.Errorf("users: %+v", h.Users)
	}
	// Filters.
	var only FamilyHistoryAnswer
	tjCall(t, coord, "GET", "/v1/families/"+fam+"/history?collection=contacts&row="+contact+"&field=note", nil, &only)
	if len(only.Fields) != 1 || len(only.Fields[0].Entries) != 3 {
		t.Errorf("filtered history: %+v", only.Fields)
	}
	if st, _ := tjCall(t, coord, "GET", "/v1/families/"+fam+"/history?collection=nope", nil, nil); st != 400 {
		t.Errorf("unknown collection: %d, want 400", st)
	}

	// The case file: the conflict with both texts.
	st, cf := caseFileOf(t, coord, fam)
	if st != 200 || cf.Conflicts != 1 || len(cf.ConflictRecords) != 1 {
		t.Fatalf("case conflicts: %d count %d %+v", st, cf.Conflicts, cf.ConflictRecords)
	}
	c := cf.ConflictRecords[0]
	if c.RowID != contact || c.Field != "note" || string(c.Winner.Value) != string(jsonValue(winner)) || string(c.Loser.Value) != string(jsonValue(loser)) ||
		c.Winner.DeviceID != phone.DeviceID() || c.Loser.DeviceID != tablet.DeviceID() || c.Loser.Username != "coach.a" || c.Winner.ReceivedAt.IsZero() {
		t.Errorf("conflict %+v", c)
	}
	if _, cf := caseFileOf(t, we.login("coach.b"), we.families["coach.b"]); len(cf.ConflictRecords) != 0 {
		t.Errorf("coach.b's family shows conflicts of another family: %+v", cf.ConflictRecords)
	}

	// Readers as the case; every read audited.
	for _, tc := range []struct {
		user   string
		status int
	}{{"coach.a", 200}, {"reviewer.k", 200}, {"coach.b", 404}, {"coordinator.m", 404}, {"admin", 403}} {
		if st, _ := tjCall(t, we.login(tc.user), "GET", "/v1/families/"+fam+"/history", nil, nil); st != tc.status {
			t.Errorf("%s reads the history: %d, want %d", tc.user, st, tc.status)
		}
	}
	if st, _ := tjCall(t, coord, "GET", "/v1/families/"+newUUID()+"/history", nil, nil); st != 404 {
		t.Errorf("history of an unknown family: %d, want 404", st)
	}
	tjAudit(t, we, audit.ActionCaseRead, func(es []audit.Entry) bool {
		n := 0
		for _, e := range es {
			if e.TargetID == fam && detailOf(e)["view"] == "history" {
				n++
			}
		}
		return n == 4 // coordinator (twice, filtered once), coach.a, reviewer.k
	})
}
