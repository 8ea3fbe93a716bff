package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// testClock is a wall clock that tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond) // time passes a little with every reading
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type env struct {
	t      testing.TB
	ctx    context.Context
	dir    string
	clock  *testClock
	stores *Stores
	r      *Region
}

const testRegion = "kempen"

func newEnv(t testing.TB, tweak ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), dir: t.TempDir(), clock: &testClock{t: epoch}}
	opts := Options{Now: e.clock.Now, Clock: crdt.NewClock("server", e.clock.Now)}
	for _, f := range tweak {
		f(&opts)
	}
	s, err := Open(e.ctx, e.dir, []string{testRegion, "maasland"}, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	e.stores = s
	e.r, _ = s.Region(testRegion)
	return e
}

// uid returns a lowercase UUID (v7 layout) numbered n.
func uid(n int) string { return fmt.Sprintf("0190a000-0000-7000-8000-%012x", n) }

// Actors.
func coach(n int) Actor {
	return Actor{UserID: uid(1000 + n), DeviceID: fmt.Sprintf("dev-coach-%d", n), Role: RoleCoach}
}

var coordinator = Actor{UserID: uid(2000), DeviceID: "dev-coord", Role: RoleCoordinator}

// stamp returns a device stamp at ms milliseconds after the epoch.
func stamp(ms int64, counter uint16, node string) string {
	return crdt.Stamp{Wall: epoch.UnixMilli() + ms, Counter: counter, Node: node}.String()
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func ch(collection, id, field string, value any, hlc string) protocol.Change {
	return protocol.Change{Collection: collection, ID: id, Field: field, Value: raw(value), HLC: hlc}
}

func (e *env) push(a Actor, batch string, changes ...protocol.Change) protocol.PushResponse {
	e.t.Helper()
	resp, err := e.r.Push(e.ctx, a, protocol.PushRequest{DeviceID: a.DeviceID, BatchID: batch, SchemaVersion: schema.Version, Changes: changes})
	if err != nil {
		e.t.Fatalf("push %s: %v", batch, err)
	}
	return resp
}

func (e *env) serverWrite(ws ...FieldWrite) int64 {
	e.t.Helper()
	seq, err := e.r.ServerWrite(e.ctx, Actor{UserID: "intake", Role: RoleServer}, ws)
	if err != nil {
		e.t.Fatalf("server write: %v", err)
	}
	return seq
}

func fw(collection, id, field string, value any) FieldWrite {
	return FieldWrite{Collection: collection, ID: id, Field: field, Value: raw(value)}
}

// family creates a family with a trajectory led by lead (a user id).
func (e *env) family(fam, traj, lead string) {
	e.t.Helper()
	e.serverWrite(
		fw("families", fam, "region", testRegion),
		fw("families", fam, "label", "Gezin "+fam[len(fam)-4:]),
		fw("trajectories", traj, "family_id", fam),
		fw("trajectories", traj, "region", testRegion),
		fw("trajectories", traj, "lead_coach_id", lead),
		fw("trajectories", traj, "status", "active"),
	)
}

// pulled state: scope → field key → change.
type replica struct {
	cursor string
	scopes map[string]map[crdt.Key]protocol.Change
	got    int
	evict  []string
	sums   map[string]string
}

func newReplica() *replica { return &replica{scopes: map[string]map[crdt.Key]protocol.Change{}} }

// pullAll pulls until more is false, applying evictions and counting
// deliveries; it fails on a field delivered twice for one scope in one
// round.
func (e *env) pullAll(a Actor, rep *replica, limit int, heldHash string) {
	e.t.Helper()
	seen := map[string]bool{}
	for i := 0; ; i++ {
		if i > 10000 {
			e.t.Fatal("pull does not end")
		}
		resp, err := e.r.Pull(e.ctx, a, protocol.PullRequest{DeviceID: a.DeviceID, SchemaVersion: schema.Version,
			Cursor: rep.cursor, Limit: limit, HeldHash: heldHash})
		if err != nil {
			e.t.Fatalf("pull: %v", err)
		}
		heldHash = ""
		for _, s := range resp.Evict {
			delete(rep.scopes, s)
		}
		rep.evict = append(rep.evict, resp.Evict...)
		for _, c := range resp.Changes {
			k := fmt.Sprintf("%s|%s|%s|%s|%s", c.Scope, c.Collection, c.ID, c.Field, c.HLC)
			if seen[k] {
				e.t.Fatalf("delivered twice: %s", k)
			}
			seen[k] = true
			m := rep.scopes[c.Scope]
			if m == nil {
				m = map[crdt.Key]protocol.Change{}
				rep.scopes[c.Scope] = m
			}
			key := crdt.Key{Collection: c.Collection, ID: c.ID, Field: c.Field}
			if old, ok := m[key]; !ok || old.HLC < c.HLC {
				m[key] = c
			}
			rep.got++
		}
		rep.cursor = resp.Cursor
		if !resp.More {
			rep.sums = resp.Checksums
			return
		}
		if resp.Checksums != nil {
			e.t.Fatal("checksums before the last page")
		}
	}
}

// heldHash is the proof a device sends: the hash of the scopes its cursor holds.
func heldHash(t testing.TB, r *Region, cur string) string {
	t.Helper()
	c, err := decodeCursor(cur, r.name)
	if err != nil {
		t.Fatal(err)
	}
	return crdt.ScopesHash(append(append([]string{}, c.H...), c.P...))
}

// state reads the fields table.
func (e *env) state(r *Region) map[crdt.Key]protocol.Change {
	e.t.Helper()
	out := map[crdt.Key]protocol.Change{}
	if err := r.Scan(e.ctx, func(c protocol.Change) error {
		out[crdt.Key{Collection: c.Collection, ID: c.ID, Field: c.Field}] = c
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) value(collection, id, field string) string {
	e.t.Helper()
	var v string
	err := e.r.db.Reader.QueryRow(`SELECT l.value FROM fields f JOIN change_log l ON l.seq = f.seq WHERE f.collection = ? AND f.id = ? AND f.field = ?`, collection, id, field).Scan(&v)
	if err != nil {
		return ""
	}
	return v
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.r.db.Reader.QueryRow(query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func codeOf(err error) string { return samenplan.ErrorCode(err) }

func problemCodes(ps []protocol.Problem) map[int]string {
	m := map[int]string{}
	for _, p := range ps {
		m[p.Index] = p.Code
	}
	return m
}
