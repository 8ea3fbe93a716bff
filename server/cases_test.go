package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/view"
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
