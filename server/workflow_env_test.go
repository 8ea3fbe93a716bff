package server

import (
	"context"
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
	we := &workflowEnv{dir: copyRuleRegions(t), now: func() time.Time { return time.Now().In(brussels()) }}
	e := &testEnv{t: t, users: map[string]auth.User{}, families: map[string]string{}, trajectories: map[string]string{}, logs: &lockedBuffer{}}
	we.testEnv = e
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	e.clock = crdt.NewClock("server", nil)
	var model *view.Model
	var err error
	e.stores, err = store.Open(ctx, t.TempDir(), []string{"kempen", "maasland"}, store.Options{Clock: e.clock,
		OnCommit: func(c store.Commit) {
			if model != nil {
				model.Apply(c)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, e.stores); err != nil {
		t.Fatal(err)
	}
	if e.audit, err = audit.Open(ctx, e.stores.Main, audit.Config{}); err != nil {
		t.Fatal(err)
	}
	e.auth, err = auth.Open(ctx, e.stores.Main, auth.Config{Audit: e.audit, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	versions, err := OpenRuleVersions(ctx, e.stores.Main)
	if err != nil {
		t.Fatal(err)
	}
	we.registry = rules.NewRegistry(we.dir, rules.RegistryOptions{Versions: versions, Logger: logger, Debounce: 50 * time.Millisecond})
	if err := we.registry.Load(ctx); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return we.now() }
	model = view.New(e.stores, we.registry, clock)
	model.SetLogger(logger)
	if err := model.Build(ctx); err != nil {
		t.Fatal(err)
	}
	we.model = model
	e.srv = New(Config{Addr: "127.0.0.1:0", Logger: logger, Stores: e.stores, Auth: e.auth, Audit: e.audit, Clock: e.clock,
		BodyLimit: 4 << 20, Rules: we.registry, View: model, Now: clock})
	if err := e.srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.srv.Close(ctx)
		e.auth.Close()
		e.audit.Close()
		e.stores.Close()
	})
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

// setNow moves the server's and the model's clock and refreshes the model.
func (we *workflowEnv) setNow(t time.Time) {
	we.t.Helper()
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
