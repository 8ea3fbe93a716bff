package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/store"
)

// workflowEnv is the whole server as `samenplan serve` wires it: stores
// whose commits feed the read model, the workflow tables, the rules of a
// copy of rules/regions (watched, versions recorded) and every route. Its
// accounts are testEnv's plus coach.c (kempen); each coach has one family
// with an active trajectory (families, trajectories).
type workflowEnv struct {
	*testEnv
	dir      string
	registry *rules.Registry
	model    *view.Model
	// now is the server's and the model's wall clock; tests may move it
	// with setNow before they call model.Refresh.
	now func() time.Time
}

func newWorkflowEnv(t *testing.T) *workflowEnv {
	t.Helper()
	ctx := context.Background()
	e := &testEnv{t: t, users: map[string]auth.User{}, families: map[string]string{}, trajectories: map[string]string{}, logs: &lockedBuffer{}}
	we := &workflowEnv{testEnv: e}
	st := newWorkflowStack(t, e.logs, &we.now)
	we.dir, we.registry, we.model = st.dir, st.registry, st.model
	e.stores, e.audit, e.auth, e.clock, e.srv = st.stores, st.audit, st.auth, st.clock, st.srv
	for _, u := range []auth.NewUser{
		{Username: "coach.a", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1},
		{Username: "coach.b", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1},
		{Username: "coach.c", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 0.5},
		{Username: "coach.m", Role: auth.RoleCoach, Regions: []string{"maasland"}, FTE: 1},
		{Username: "coordinator.k", Role: auth.RoleCoordinator, Regions: []string{"kempen"}},
		{Username: "coordinator.m", Role: auth.RoleCoordinator, Regions: []string{"maasland"}},
		{Username: "reviewer.k", Role: auth.RoleReviewer, Regions: []string{"kempen"}},
		{Username: "admin", Role: auth.RoleAdmin},
	} {
		u.Password = testPassword
		u.DisplayName = u.Username
		created, err := e.auth.CreateUser(ctx, u, auth.System("test"))
		if err != nil {
			t.Fatal(err)
		}
		e.users[u.Username] = created
	}
	for _, coach := range []string{"coach.a", "coach.b", "coach.c", "coach.m"} {
		region := e.users[coach].Regions[0]
		fam, traj := newUUID(), newUUID()
		e.serverWrite(region,
			store.FieldWrite{Collection: "families", ID: fam, Field: "region", Value: jsonValue(region)},
			store.FieldWrite{Collection: "families", ID: fam, Field: "label", Value: jsonValue("Gezin " + coach)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue(region)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(e.users[coach].ID)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("active")},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "started_on", Value: jsonValue(we.now().Format("2006-01-02"))},
		)
		e.families[coach], e.trajectories[coach] = fam, traj
	}
	return we
}

// workflowStack is the server of newWorkflowEnv without accounts or data,
// for tests and benchmarks alike.
type workflowStack struct {
	dir      string
	stores   *store.Stores
	audit    *audit.Logger
	auth     *auth.Service
	clock    *crdt.Clock
	registry *rules.Registry
	model    *view.Model
	srv      *Server
}

// newWorkflowStack opens and serves the stack on loopback; *now (set to
// the wall clock in Europe/Brussels when nil) is read on every call, so a
// test can move it. Everything closes when tb ends.
func newWorkflowStack(tb testing.TB, logs io.Writer, now *func() time.Time) *workflowStack {
	tb.Helper()
	ctx := context.Background()
	if *now == nil {
		*now = func() time.Time { return time.Now().In(brussels()) }
	}
	clock := func() time.Time { return (*now)() }
	st := &workflowStack{dir: copyRuleRegions(tb), clock: crdt.NewClock("server", nil)}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	var model *view.Model
	var err error
	st.stores, err = store.Open(ctx, tb.TempDir(), []string{"kempen", "maasland"}, store.Options{Clock: st.clock,
		OnCommit: func(c store.Commit) {
			if model != nil {
				model.Enqueue(c) // as samenplan serve wires it: reads wait for it, writers do not
			}
		}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.stores.Close() })
	if err := Migrate(ctx, st.stores); err != nil {
		tb.Fatal(err)
	}
	if st.audit, err = audit.Open(ctx, st.stores.Main, audit.Config{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.audit.Close() })
	st.auth, err = auth.Open(ctx, st.stores.Main, auth.Config{Audit: st.audit, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.auth.Close() })
	versions, err := OpenRuleVersions(ctx, st.stores.Main)
	if err != nil {
		tb.Fatal(err)
	}
	st.registry = rules.NewRegistry(st.dir, rules.RegistryOptions{Versions: versions, Logger: logger, Debounce: 50 * time.Millisecond})
	if err := st.registry.Load(ctx); err != nil {
		tb.Fatal(err)
	}
	model = view.New(st.stores, st.registry, clock)
	model.SetLogger(logger)
	if err := model.Build(ctx); err != nil {
		tb.Fatal(err)
	}
	st.model = model
	applierCtx, stopApplier := context.WithCancel(context.Background())
	applierDone := make(chan struct{})
	go func() {
		defer close(applierDone)
		model.RunApplier(applierCtx)
	}()
	tb.Cleanup(func() { stopApplier(); <-applierDone })
	st.srv = New(Config{Addr: "127.0.0.1:0", Logger: logger, Stores: st.stores, Auth: st.auth, Audit: st.audit, Clock: st.clock,
		BodyLimit: 4 << 20, Rules: st.registry, View: model, Now: clock})
	if err := st.srv.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.srv.Close(ctx)
	})
	return st
}

// setNow moves the server's and the model's clock and refreshes the model.
func (we *workflowEnv) setNow(t time.Time) {
	we.t.Helper()
	we.model.Settle() // the applier reads the clock while it applies
	we.now = func() time.Time { return t.In(brussels()) }
	if err := we.model.Refresh(context.Background()); err != nil {
		we.t.Fatal(err)
	}
}

func TestWorkflowEnv_ServesTheReadModel(t *testing.T) {
	we := newWorkflowEnv(t)
	var page familiesPage
	if st := we.login("coordinator.k").do("GET", "/v1/families?region=kempen", nil, &page); st != 200 {
		t.Fatalf("families: %d", st)
	}
	if page.Total != 3 {
		t.Fatalf("kempen families = %d, want 3 (coach.a, coach.b, coach.c)", page.Total)
	}
}
