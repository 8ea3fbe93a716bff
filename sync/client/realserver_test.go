// The client against the real server (server.New over store, auth and audit
// on a temp dir, port :0).
package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

type realServer struct {
	now    *serverClock
	url    string
	stores *store.Stores
	auth   *auth.Service
	region *store.Region
	close  func() // idempotent
}

func startRealServer(t *testing.T) *realServer {
	t.Helper()
	s := startRealServerAt(t, t.TempDir())
	t.Cleanup(s.close)
	return s
}

// startRealServerAt runs a server on the databases in dir (created when
// missing); the caller closes it.
func startRealServerAt(t *testing.T, dir string) *realServer {
	t.Helper()
	ctx := context.Background()
	clock := crdt.NewClock("server", nil)
	stores, err := store.Open(ctx, dir, []string{"kempen"}, store.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	aud, err := audit.Open(ctx, stores.Main, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := &serverClock{}
	au, err := auth.Open(ctx, stores.Main, auth.Config{Audit: aud, Logger: logger, Now: now.Now,
		Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Addr: "127.0.0.1:0", Logger: logger, Stores: stores, Auth: au, Audit: aud, Clock: clock})
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			srv.Close(context.Background())
			au.Close()
			aud.Close()
			stores.Close()
		})
	}
	region, _ := stores.Region("kempen")
	return &realServer{now: now, url: srv.URL(), stores: stores, auth: au, region: region, close: closeAll}
}

func (s *realServer) addCoach(t *testing.T, name string) auth.User {
	t.Helper()
	u, err := s.auth.CreateUser(context.Background(), auth.NewUser{Username: name, Role: auth.RoleCoach,
		Regions: []string{"kempen"}, FTE: 1, Password: "een-lang-wachtwoord"}, auth.System("test"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (s *realServer) device(t *testing.T, user string, opts client.Options) *client.Replica {
	t.Helper()
	opts.BaseURL = s.url
	r, err := client.Open(context.Background(), filepath.Join(t.TempDir(), "replica.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.Login(context.Background(), user, "een-lang-wachtwoord", "test"); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return r
}

func (s *realServer) state(t *testing.T) map[crdt.Key]protocol.Change {
	t.Helper()
	m := map[crdt.Key]protocol.Change{}
	err := s.region.Scan(context.Background(), func(c protocol.Change) error {
		m[crdt.Key{Collection: c.Collection, ID: c.ID, Field: c.Field}] = protocol.Change{
			Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value, HLC: c.HLC}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fataler is what *testing.T and *rapid.T share.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

func mustDo(t fataler, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sync2(t *testing.T, rs ...*client.Replica) {
	t.Helper()
	for round := 0; round < 2; round++ {
		for _, r := range rs {
			res, err := r.Sync(context.Background())
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if len(res.Push.Rejected) > 0 || len(res.Pull.Mismatched) > 0 {
				t.Fatalf("Sync: %+v", res)
			}
		}
	}
}

func TestRealServer_TwoDevicesEditOfflineAndConverge(t *testing.T) {
	ctx := context.Background()
	s := startRealServer(t)
	s.addCoach(t, "ann")
	phone := s.device(t, "ann", client.Options{})
	laptop := s.device(t, "ann", client.Options{PageSize: 3})

	fid, pid := phone.NewID(), phone.NewID()
	mustDo(t, phone.Write(ctx, "families", fid, "region", "kempen"))
	mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Peeters"))
	mustDo(t, phone.Write(ctx, "persons", pid, "family_id", fid))
	mustDo(t, phone.Write(ctx, "persons", pid, "given_name", "Lotte"))
	sync2(t, phone, laptop)
	if _, err := laptop.Get(ctx, "persons", pid); err != nil {
		t.Fatalf("laptop did not receive the person: %v", err)
	}

	// Offline on both: the same field and different fields.
	mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Peeters-Claes"))
	mustDo(t, laptop.Write(ctx, "families", fid, "label", "Gezin Claes"))
	mustDo(t, laptop.Write(ctx, "families", fid, "language", "nl"))
	mustDo(t, phone.Write(ctx, "persons", pid, "willing", true))
	sync2(t, laptop, phone)

	want := s.state(t)
	for i, r := range []*client.Replica{phone, laptop} {
		got, err := r.State(ctx)
		mustDo(t, err)
		if !reflect.DeepEqual(normalizeState(got), normalizeState(want)) {
			t.Errorf("device %d:\n got %v\nwant %v", i, normalizeState(got), normalizeState(want))
		}
	}
}

func TestRealServer_LostFamilyIsEvictedProvenAndOfflineNoteQuarantined(t *testing.T) {
	ctx := context.Background()
	s := startRealServer(t)
	s.addCoach(t, "ann")
	bob := s.addCoach(t, "bob")
	phone := s.device(t, "ann", client.Options{})
	fid, pid, nid := phone.NewID(), phone.NewID(), phone.NewID()
	mustDo(t, phone.Write(ctx, "families", fid, "region", "kempen"))
	mustDo(t, phone.Write(ctx, "persons", pid, "family_id", fid))
	sync2(t, phone)

	// Offline, Ann adds a network member; meanwhile the family starts with Bob.
	mustDo(t, phone.Write(ctx, "network_members", nid, "family_id", fid))
	mustDo(t, phone.Write(ctx, "network_members", nid, "name", "Tante Mia"))
	tid := phone.NewID()
	write := func(coll, id, field string, v string) store.FieldWrite {
		return store.FieldWrite{Collection: coll, ID: id, Field: field, Value: []byte(v)}
	}
	if _, err := s.region.ServerWrite(ctx, store.Actor{Role: "system"}, []store.FieldWrite{
		write("trajectories", tid, "family_id", `"`+fid+`"`),
		write("trajectories", tid, "region", `"kempen"`),
		write("trajectories", tid, "lead_coach_id", `"`+bob.ID+`"`),
		write("trajectories", tid, "status", `"active"`),
	}); err != nil {
		t.Fatalf("server write: %v", err)
	}
	res, err := phone.Sync(ctx)
	mustDo(t, err)
	_, err = phone.Pull(ctx) // carries the proof
	mustDo(t, err)
	t.Logf("sync: push %+v pull %+v", res.Push, res.Pull)
	if _, err := phone.Get(ctx, "families", fid); samenplan.ErrorCode(err) != samenplan.ENOTFOUND {
		t.Errorf("family after losing it: %v", err)
	}
	if len(res.Push.Quarantined) != 2 {
		t.Errorf("quarantined = %+v, want the 2 offline writes", res.Push.Quarantined)
	}
	ev, err := s.region.Evictions(ctx, store.EvictionFilter{DeviceID: phone.DeviceID()})
	mustDo(t, err)
	if len(ev) != 1 || ev[0].Scope != schema.FamilyScope(fid) || ev[0].ProvenAt == nil {
		t.Errorf("evictions = %+v, want family:%s proven", ev, fid)
	}
}

func TestRealServer_RevokedDeviceWipes(t *testing.T) {
	ctx := context.Background()
	s := startRealServer(t)
	s.addCoach(t, "ann")
	phone := s.device(t, "ann", client.Options{})
	fid := phone.NewID()
	mustDo(t, phone.Write(ctx, "families", fid, "region", "kempen"))
	sync2(t, phone)
	mustDo(t, s.auth.RevokeDevice(ctx, phone.DeviceID(), auth.System("test")))
	time.Sleep(10 * time.Millisecond)
	_, err := phone.Sync(ctx)
	if samenplan.ErrorCode(err) != samenplan.EDEVICEREVOKED {
		t.Fatalf("Sync of a revoked device: %v", err)
	}
	if st, _ := phone.State(ctx); len(st) != 0 || phone.DeviceID() != "" {
		t.Errorf("not wiped: %d fields, device %q", len(st), phone.DeviceID())
	}
}

func normalizeState(m map[crdt.Key]protocol.Change) map[crdt.Key]string {
	out := map[crdt.Key]string{}
	for k, c := range m {
		out[k] = string(c.Value) + "@" + c.HLC
	}
	return out
}

// serverClock is the auth service's wall clock, moved forward to expire tokens.
type serverClock struct {
	mu    sync.Mutex
	ahead time.Duration
}

func (c *serverClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.ahead)
}

func (c *serverClock) Forward(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ahead += d
}

// loseAnswers drops the answer of the next push after the server handled it.
type loseAnswers struct{ armed atomic.Bool }

func (l *loseAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.URL.Path == "/v1/sync/push" && l.armed.CompareAndSwap(true, false) {
		resp.Body.Close()
		return nil, errors.New("chaos: answer lost")
	}
	return resp, err
}

func TestRealServer_LostPushAnswerIsResentOnce(t *testing.T) {
	ctx := context.Background()
	s := startRealServer(t)
	s.addCoach(t, "ann")
	chaos := &loseAnswers{}
	phone := s.device(t, "ann", client.Options{Transport: chaos})
	fid := phone.NewID()
	mustDo(t, phone.Write(ctx, "families", fid, "region", "kempen"))
	mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Janssens"))
	chaos.armed.Store(true)
	if _, err := phone.Push(ctx); !client.IsOffline(err) {
		t.Fatalf("push with a lost answer: %v", err)
	}
	res, err := phone.Push(ctx)
	mustDo(t, err)
	if res.Applied != 2 || res.Batches != 1 {
		t.Errorf("re-sent batch: %+v, want the first answer (2 applied)", res)
	}
	hist, err := s.region.History(ctx, "families", fid)
	mustDo(t, err)
	if len(hist) != 2 {
		t.Errorf("history = %d entries, want 2 (nothing applied twice)", len(hist))
	}
	sync2(t, phone)
}

func TestRealServer_ExpiredAccessTokenIsRefreshed(t *testing.T) {
	ctx := context.Background()
	s := startRealServer(t)
	s.addCoach(t, "ann")
	paths := &recordPaths{}
	phone := s.device(t, "ann", client.Options{Transport: paths})
	fid := phone.NewID()
	mustDo(t, phone.Write(ctx, "families", fid, "region", "kempen"))
	s.now.Forward(time.Hour) // past the 15-minute access token
	sync2(t, phone)
	if got := paths.count("/v1/auth/refresh"); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	if st, _ := phone.Status(ctx); st.Pending != 0 {
		t.Errorf("pending after sync = %d", st.Pending)
	}
}

type recordPaths struct {
	mu    sync.Mutex
	paths []string
}

func (r *recordPaths) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.paths = append(r.paths, req.URL.Path)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recordPaths) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.paths {
		if p == path {
			n++
		}
	}
	return n
}

// TestRealServer_RandomOfflineEditsConvergeWithNothingLost: three devices of
// two coaches edit families offline in random order, with lost push answers,
// restarts and a reassignment that takes a family from Ann to Bob; after
// everyone syncs twice, every device holds exactly the server's winners for
// its scopes (checked field by field and by checksum) and every write made is
// in the server's log or its quarantine.
func TestRealServer_RandomOfflineEditsConvergeWithNothingLost(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		s := startRealServer(t)
		s.addCoach(t, "ann")
		bob := s.addCoach(t, "bob")
		type device struct {
			r     *client.Replica
			path  string
			chaos *loseAnswers
		}
		dir := t.TempDir()
		open := func(d *device) {
			r, err := client.Open(ctx, d.path, client.Options{BaseURL: s.url, Transport: d.chaos, BatchSize: 4, PageSize: 5})
			if err != nil {
				rt.Fatal(err)
			}
			d.r = r
		}
		var devs []*device
		for i, user := range []string{"ann", "ann", "bob"} {
			d := &device{path: filepath.Join(dir, fmt.Sprintf("d%d.db", i)), chaos: &loseAnswers{}}
			open(d)
			if _, err := d.r.Login(ctx, user, "een-lang-wachtwoord", "sim"); err != nil {
				rt.Fatal(err)
			}
			devs = append(devs, d)
		}
		defer func() {
			for _, d := range devs {
				d.r.Close()
			}
		}()
		// Ann creates two families on her phone; Bob one on his.
		var annFams []string
		for i := 0; i < 2; i++ {
			fid := client.NewID()
			annFams = append(annFams, fid)
			mustDo(rt, devs[0].r.Write(ctx, "families", fid, "region", "kempen"))
		}
		bobFam := client.NewID()
		mustDo(rt, devs[2].r.Write(ctx, "families", bobFam, "region", "kempen"))
		for _, d := range devs {
			if _, err := d.r.Sync(ctx); err != nil {
				rt.Fatal(err)
			}
		}
		type made struct{ coll, id, field, hlc string }
		var writes []made
		reassigned := false
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for step := 0; step < steps; step++ {
			i := rapid.IntRange(0, len(devs)-1).Draw(rt, "device")
			d := devs[i]
			switch rapid.SampledFrom([]string{"write", "write", "write", "sync", "push", "pull", "lost", "restart", "reassign"}).Draw(rt, "action") {
			case "write":
				fams := annFams
				if i == 2 {
					fams = []string{bobFam}
				}
				fid := rapid.SampledFrom(fams).Draw(rt, "family")
				if _, err := d.r.Get(ctx, "families", fid); err != nil {
					continue // not (or no longer) on this device
				}
				fld := rapid.SampledFrom([]string{"label", "municipality", "language"}).Draw(rt, "field")
				val := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "value")
				mustDo(rt, d.r.Write(ctx, "families", fid, fld, val))
				p, err := d.r.Pending(ctx)
				mustDo(rt, err)
				writes = append(writes, made{"families", fid, fld, p[len(p)-1].HLC})
			case "sync":
				if _, err := d.r.Sync(ctx); err != nil {
					rt.Fatalf("Sync: %v", err)
				}
			case "push":
				if _, err := d.r.Push(ctx); err != nil {
					rt.Fatalf("Push: %v", err)
				}
			case "pull":
				if _, err := d.r.Pull(ctx); err != nil {
					rt.Fatalf("Pull: %v", err)
				}
			case "lost":
				d.chaos.armed.Store(true)
				if _, err := d.r.Push(ctx); err != nil && !client.IsOffline(err) {
					rt.Fatalf("Push: %v", err)
				}
				d.chaos.armed.Store(false)
			case "restart":
				d.r.Close()
				open(d)
			case "reassign":
				if reassigned {
					continue
				}
				reassigned = true
				tid := client.NewID()
				w := func(field, v string) store.FieldWrite {
					return store.FieldWrite{Collection: "trajectories", ID: tid, Field: field, Value: []byte(v)}
				}
				if _, err := s.region.ServerWrite(ctx, store.Actor{Role: "system"}, []store.FieldWrite{
					w("family_id", `"`+annFams[0]+`"`), w("region", `"kempen"`),
					w("lead_coach_id", `"`+bob.ID+`"`), w("status", `"active"`),
				}); err != nil {
					rt.Fatalf("reassign: %v", err)
				}
			}
		}
		for round := 0; round < 2; round++ {
			for _, d := range devs {
				if _, err := d.r.Sync(ctx); err != nil {
					rt.Fatalf("final Sync: %v", err)
				}
			}
		}

		server := s.state(t)
		for i, d := range devs {
			st, err := d.r.State(ctx)
			mustDo(rt, err)
			for k, c := range st {
				if w, ok := server[k]; !ok || w.HLC != c.HLC || string(w.Value) != string(c.Value) {
					rt.Fatalf("device %d holds %v = %s@%s, server %s@%s", i, k, c.Value, c.HLC, w.Value, w.HLC)
				}
			}
			scopes, err := d.r.Scopes(ctx)
			mustDo(rt, err)
			local, err := d.r.Checksums(ctx)
			mustDo(rt, err)
			for _, sc := range scopes {
				want, err := s.region.Checksum(ctx, sc)
				mustDo(rt, err)
				if local[sc] != want {
					rt.Fatalf("device %d scope %s: checksum %s, server %s", i, sc, local[sc], want)
				}
			}
			if p, _ := d.r.Pending(ctx); len(p) != 0 {
				rt.Fatalf("device %d: %d writes still pending", i, len(p))
			}
		}
		kept := map[made]bool{}
		for _, fid := range append(annFams, bobFam) {
			hist, err := s.region.History(ctx, "families", fid)
			mustDo(rt, err)
			for _, h := range hist {
				kept[made{"families", fid, h.Field, h.HLC}] = true
			}
		}
		quarantined, err := s.region.Quarantine(ctx, "")
		mustDo(rt, err)
		for _, q := range quarantined {
			kept[made{q.Collection, q.RowID, q.Field, q.HLC}] = true
		}
		for _, w := range writes {
			if !kept[w] {
				rt.Fatalf("write %+v lost", w)
			}
		}
	})
}
