package view

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/sync/store"
)

// The registry is what the server passes as the model's rules.
var _ RuleSource = (*rules.Registry)(nil)

const rulesDir = "../../rules/regions"

var brussels = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return loc
}()

// clock is a settable clock for the model.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a real store on a temp dir with the shipped rules, and a model
// wired to it as OnCommit.
type fixture struct {
	t       testing.TB
	ctx     context.Context
	stores  *store.Stores
	rules   *rules.Registry
	clock   *clock
	model   *Model
	hook    atomic.Pointer[Model]
	queued  atomic.Bool // the hook enqueues (serve's wiring) instead of applying
	commits []store.Commit
	mu      sync.Mutex
}

// today is the model's day in the tests: a Monday.
var today = time.Date(2026, 3, 2, 12, 0, 0, 0, brussels)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), clock: &clock{t: today}}
	var err error
	f.stores, err = store.Open(f.ctx, t.TempDir(), []string{"kempen", "maasland"}, store.Options{OnCommit: func(c store.Commit) {
		f.mu.Lock()
		f.commits = append(f.commits, c)
		f.mu.Unlock()
		if m := f.hook.Load(); m != nil {
			if f.queued.Load() {
				m.Enqueue(c)
			} else {
				m.Apply(c)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.stores.Close() })
	f.rules = rules.NewRegistry(rulesDir, rules.RegistryOptions{})
	if err := f.rules.Load(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"kempen", "maasland"} {
		if _, ok := f.rules.Region(r); !ok {
			t.Fatalf("region %s has no active rules", r)
		}
	}
	f.model = f.newModel()
	f.hook.Store(f.model)
	return f
}

// newModel builds another model from the store.
func (f *fixture) newModel() *Model {
	f.t.Helper()
	m := New(f.stores, f.rules, f.clock.Now)
	if err := m.Build(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return m
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// row is a set of field values of one row.
type row struct {
	coll, id string
	fields   map[string]any
}

// write writes rows in one server write (one commit).
func (f *fixture) write(region string, rows ...row) {
	f.t.Helper()
	r, ok := f.stores.Region(region)
	if !ok {
		f.t.Fatalf("no region %s", region)
	}
	var ws []store.FieldWrite
	for _, rw := range rows {
		for k, v := range rw.fields {
			raw, err := json.Marshal(v)
			if err != nil {
				f.t.Fatal(err)
			}
			ws = append(ws, store.FieldWrite{Collection: rw.coll, ID: rw.id, Field: k, Value: raw})
		}
	}
	if _, err := r.ServerWrite(f.ctx, store.Actor{Role: store.RoleServer}, ws); err != nil {
		f.t.Fatalf("server write: %v", err)
	}
}

func day(daysAgo int) string { return today.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }

func at(daysAgo int) string {
	return today.AddDate(0, 0, -daysAgo).UTC().Format(time.RFC3339)
}

// familyRows is a family in kempen (Turnhout) with a willing parent and,
// with child, a child of 8.
func familyRows(region, fam, label string, child bool) []row {
	rows := []row{
		{"families", fam, map[string]any{"region": region, "municipality": "Turnhout", "label": label, "language": "nl"}},
		{"persons", newID(), map[string]any{"family_id": fam, "given_name": "Noor", "family_name": "Klaproos", "role": "parent", "birth_date": "1990-05-01", "willing": true}},
	}
	if child {
		rows = append(rows, row{"persons", newID(), map[string]any{"family_id": fam, "given_name": "Milan", "family_name": "Klaproos", "role": "child", "birth_date": "2018-01-10"}})
	}
	return rows
}

func referralRow(region, id, fam string, receivedDaysAgo int) row {
	return row{"referrals", id, map[string]any{
		"region": region, "family_id": fam, "received_on": day(receivedDaysAgo), "channel": "permanentie",
		"municipality": "Turnhout", "articulated": true, "consent": true, "crisis": false, "status": "open",
	}}
}

func trajectoryRow(region, id, fam, coach string, startedDaysAgo int) row {
	return row{"trajectories", id, map[string]any{
		"family_id": fam, "region": region, "lead_coach_id": coach, "co_coach_ids": []string{},
		"status": "active", "started_on": day(startedDaysAgo), "mandated": false,
	}}
}

func contactRow(id, traj, coach string, daysAgo int) row {
	return row{"contacts", id, map[string]any{
		"trajectory_id": traj, "coach_id": coach, "occurred_at": at(daysAgo), "mode": "home_visit", "minutes": 60,
		"participants": []string{"moeder", "coach"}, "note": "Huisbezoek.",
	}}
}

func goalRow(id, traj, domain, status string) row {
	return row{"plan_goals", id, map[string]any{"trajectory_id": traj, "life_domain": domain, "goal": "Rustige ochtenden.", "status": status, "scale": 4}}
}

func signalIDs(ss []Signal) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func deref[T any](ps []*T) []T {
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}
