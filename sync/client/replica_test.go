package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// wallClock is a settable wall clock for Options.Now.
type wallClock struct {
	mu sync.Mutex
	t  time.Time
}

func newWallClock(t time.Time) *wallClock { return &wallClock{t: t} }

func (c *wallClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *wallClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func openAt(t *testing.T, path string, f *fakeServer, opts Options) *Replica {
	t.Helper()
	if opts.BaseURL == "" {
		opts.BaseURL = f.URL()
	}
	r, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// newReplica opens a replica in a temp dir and logs it in as ann.
func newReplica(t *testing.T, f *fakeServer, opts Options) (*Replica, string) {
	t.Helper()
	f.addUser("ann", "secret")
	path := filepath.Join(t.TempDir(), "replica.db")
	r := openAt(t, path, f, opts)
	if _, err := r.Login(context.Background(), "ann", "secret", "phone"); err != nil {
		t.Fatalf("Login: %v", err)
	}
	return r, path
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

func field(t *testing.T, r *Replica, collection, id, name string) string {
	t.Helper()
	m, err := r.Get(context.Background(), collection, id)
	if err != nil {
		t.Fatalf("Get %s %s: %v", collection, id, err)
	}
	return string(m[name])
}

// dropResponses is a chaos transport: while armed, a push reaches the
// server and is handled, then its answer is thrown away.
type dropResponses struct {
	armed atomic.Bool
}

func (d *dropResponses) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && d.armed.Load() && req.URL.Path == "/v1/sync/push" {
		resp.Body.Close()
		return nil, errors.New("chaos: answer lost")
	}
	return resp, err
}

func TestWrite_StampedAndQueuedWithBase(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{})
	fid := r.NewID()
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	must(t, r.Write(ctx, "families", fid, "label", "Gezin A"))
	must(t, r.Write(ctx, "families", fid, "label", "Gezin B"))

	pending, err := r.Pending(ctx)
	must(t, err)
	if len(pending) != 3 {
		t.Fatalf("pending = %d, want 3", len(pending))
	}
	prev := crdt.Stamp{}
	for _, c := range pending {
		s, err := crdt.ParseStamp(c.HLC)
		must(t, err)
		if s.Node != r.DeviceID() {
			t.Errorf("stamp node = %q, want device %q", s.Node, r.DeviceID())
		}
		if s.Compare(prev) <= 0 {
			t.Errorf("stamp %s not after %s", s, prev)
		}
		prev = s
	}
	if got, want := pending[1].Base, ""; got != want {
		t.Errorf("base of first label write = %q, want %q", got, want)
	}
	if got, want := pending[2].Base, pending[1].HLC; got != want {
		t.Errorf("base of second label write = %q, want %q", got, want)
	}
	if got, want := field(t, r, "families", fid, "label"), `"Gezin B"`; got != want {
		t.Errorf("label = %s, want %s", got, want)
	}
	st, err := r.State(ctx)
	must(t, err)
	if got := st[crdt.Key{Collection: "families", ID: fid, Field: "label"}].HLC; got != pending[2].HLC {
		t.Errorf("local stamp = %s, want %s", got, pending[2].HLC)
	}
	sc, err := r.Checksums(ctx)
	must(t, err)
	if _, ok := sc[schema.FamilyScope(fid)]; !ok {
		t.Errorf("a new family's row is not in its own scope: %v", sc)
	}

	for _, tc := range []struct {
		name                  string
		collection, id, field string
		value                 any
		code                  string
	}{
		{"unknown collection", "cases", fid, "label", "x", samenplan.EINVALID},
		{"unknown field", "families", fid, "colour", "x", samenplan.EINVALID},
		{"bad id", "families", "F1", "label", "x", samenplan.EINVALID},
		{"wrong type", "families", fid, "label", 3, samenplan.EINVALID},
		{"fixed field changed", "families", fid, "region", "maasland", samenplan.EINVALID},
		{"server-only field", "referrals", r.NewID(), "status", "started", samenplan.EFORBIDDEN},
		{"server-created row", "trajectories", r.NewID(), "rtj_requested", true, samenplan.EFORBIDDEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, r.Write(ctx, tc.collection, tc.id, tc.field, tc.value), tc.code)
		})
	}
	if pending, _ := r.Pending(ctx); len(pending) != 3 {
		t.Errorf("refused writes were queued: pending = %d", len(pending))
	}
}

func TestPush_LostResponseResendsSameBatchID(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	chaos := &dropResponses{}
	r, path := newReplica(t, f, Options{Transport: chaos})
	fid := r.NewID()
	f.grant(r.DeviceID(), schema.FamilyScope(fid))
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	must(t, r.Write(ctx, "families", fid, "label", "Gezin A"))

	chaos.armed.Store(true)
	_, err := r.Push(ctx)
	if !IsOffline(err) {
		t.Fatalf("Push with a lost answer: err = %v, want an offline error", err)
	}
	st, err := r.Status(ctx)
	must(t, err)
	if st.Pending != 2 || st.PendingBatches != 1 || st.LastError == "" {
		t.Fatalf("after a lost answer: status = %+v, want 2 pending in 1 batch and the error", st)
	}
	// A write made meanwhile must not join the batch in flight.
	must(t, r.Write(ctx, "families", fid, "language", "nl"))

	// The process dies and comes back.
	must(t, r.Close())
	chaos.armed.Store(false)
	r = openAt(t, path, f, Options{Transport: chaos})
	res, err := r.Push(ctx)
	must(t, err)

	f.mu.Lock()
	pushes := append([]string(nil), f.pushes...)
	f.mu.Unlock()
	if len(pushes) != 3 || pushes[0] != pushes[1] || pushes[2] == pushes[0] {
		t.Fatalf("batch ids sent = %v, want [b b c]", pushes)
	}
	if res.Batches != 2 || res.Sent != 3 || res.Applied != 3 {
		t.Errorf("push result = %+v, want 2 batches, 3 sent, 3 applied (the first answer replayed)", res)
	}
	if st, _ := r.Status(ctx); st.Pending != 0 || st.PendingBatches != 0 || st.LastError != "" {
		t.Errorf("after push: status = %+v, want nothing pending and no error", st)
	}
	if got := len(f.snapshot()); got != 3 {
		t.Errorf("server holds %d fields, want 3", got)
	}
}

func TestOutbox_SurvivesReopen(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, path := newReplica(t, f, Options{})
	dev := r.DeviceID()
	fid := r.NewID()
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	must(t, r.Write(ctx, "families", fid, "label", "Gezin A"))
	before, err := r.Pending(ctx)
	must(t, err)
	must(t, r.Close())

	r = openAt(t, path, f, Options{})
	if r.DeviceID() != dev {
		t.Errorf("device id after reopen = %q, want %q", r.DeviceID(), dev)
	}
	after, err := r.Pending(ctx)
	must(t, err)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("outbox after reopen = %v, want %v", after, before)
	}
	f.grant(dev, schema.FamilyScope(fid))
	if _, err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync after reopen with the saved tokens: %v", err)
	}
	assertConverged(t, f, r)
}

func TestClock_NeverGoesBackwardsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	wall := newWallClock(time.Now())
	r, path := newReplica(t, f, Options{Now: wall.Now})
	fid := r.NewID()
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	must(t, r.Write(ctx, "families", fid, "label", "voor"))
	last := r.Clock()
	must(t, r.Close())

	wall.Set(wall.Now().Add(-time.Hour)) // the user sets the phone's clock back
	r = openAt(t, path, f, Options{Now: wall.Now})
	if got := r.Clock(); got.Compare(last) < 0 {
		t.Fatalf("clock after reopen = %s, before close %s", got, last)
	}
	must(t, r.Write(ctx, "families", fid, "label", "na"))
	pending, err := r.Pending(ctx)
	must(t, err)
	a, _ := crdt.ParseStamp(pending[1].HLC)
	b, _ := crdt.ParseStamp(pending[2].HLC)
	if b.Compare(a) <= 0 {
		t.Errorf("stamp after the wall clock went back %s, want after %s", b, a)
	}
	if got, want := field(t, r, "families", fid, "label"), `"na"`; got != want {
		t.Errorf("label = %s, want %s (the later write)", got, want)
	}
}

func TestPull_NewerLocalPendingWriteStays(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	now := time.Now()
	wallA, wallB := newWallClock(now.Add(-time.Minute)), newWallClock(now)
	a, _ := newReplica(t, f, Options{Now: wallA.Now})
	b, _ := newReplica(t, f, Options{Now: wallB.Now})
	fid := a.NewID()
	for _, r := range []*Replica{a, b} {
		f.grant(r.DeviceID(), schema.FamilyScope(fid))
	}
	must(t, a.Write(ctx, "families", fid, "region", "kempen"))
	must(t, a.Write(ctx, "families", fid, "label", "van A"))
	_, err := a.Sync(ctx)
	must(t, err)

	// B writes the same field later, still pending, then pulls A's older write.
	must(t, b.Write(ctx, "families", fid, "label", "van B"))
	res, err := b.Pull(ctx)
	must(t, err)
	if got, want := field(t, b, "families", fid, "label"), `"van B"`; got != want {
		t.Errorf("B's label after pull = %s, want %s (the newer pending write stays)", got, want)
	}
	if res.Received == 0 {
		t.Errorf("pull received nothing")
	}
	if got := field(t, b, "families", fid, "region"); got != `"kempen"` {
		t.Errorf("B's region = %s, want A's write", got)
	}
	_, err = b.Sync(ctx)
	must(t, err)
	_, err = a.Sync(ctx)
	must(t, err)
	assertConverged(t, f, a, b)
	if got, want := field(t, a, "families", fid, "label"), `"van B"`; got != want {
		t.Errorf("A's label = %s, want %s", got, want)
	}
}

func TestPull_NewerRemoteWriteBeatsOlderLocalPendingWrite(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	now := time.Now()
	wallA, wallB := newWallClock(now.Add(-time.Minute)), newWallClock(now)
	a, _ := newReplica(t, f, Options{Now: wallA.Now})
	b, _ := newReplica(t, f, Options{Now: wallB.Now})
	fid := a.NewID()
	for _, r := range []*Replica{a, b} {
		f.grant(r.DeviceID(), schema.FamilyScope(fid))
	}
	f.write("families", fid, "region", "kempen")
	_, err := a.Pull(ctx)
	must(t, err)
	_, err = b.Pull(ctx)
	must(t, err)

	must(t, a.Write(ctx, "families", fid, "label", "oud")) // offline, earlier
	must(t, b.Write(ctx, "families", fid, "label", "nieuw"))
	_, err = b.Sync(ctx)
	must(t, err)
	_, err = a.Pull(ctx)
	must(t, err)
	if got, want := field(t, a, "families", fid, "label"), `"nieuw"`; got != want {
		t.Errorf("A's label = %s, want %s", got, want)
	}
	if p, _ := a.Pending(ctx); len(p) != 1 {
		t.Errorf("A's losing write left the outbox before it was pushed: pending = %v", p)
	}
	res, err := a.Sync(ctx)
	must(t, err)
	if res.Push.Ignored != 1 {
		t.Errorf("A's stale write: push result = %+v, want it ignored (logged) by the server", res.Push)
	}
	assertConverged(t, f, a, b)
}

func TestPull_EvictionDeletesRowsKeepsIntakeCopyAndProves(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{PageSize: 2})
	dev := r.DeviceID()
	fid, pid, rid, cid := r.NewID(), r.NewID(), r.NewID(), r.NewID()
	f.write("families", fid, "region", "kempen")
	f.write("families", fid, "label", "Gezin A")
	f.write("persons", pid, "family_id", fid)
	f.write("persons", pid, "given_name", "Jonas")
	f.write("referrals", rid, "region", "kempen")
	f.write("referrals", rid, "family_id", fid)
	f.write("referrals", rid, "question", "Ondersteuning thuis")
	f.grant(dev, schema.FamilyScope(fid))
	f.grant(dev, schema.IntakeScope("kempen"))
	f.grant(dev, schema.IntakeScope("maasland")) // held, but empty: still part of the proof
	res, err := r.Pull(ctx)
	must(t, err)
	if res.Pages < 2 {
		t.Errorf("pages = %d, want several with page size 2", res.Pages)
	}
	scopes, _ := r.Scopes(ctx)
	if want := []string{"family:" + fid, "intake:kempen", "intake:maasland"}; !reflect.DeepEqual(scopes, want) {
		t.Fatalf("scopes = %v, want %v", scopes, want)
	}
	assertConverged(t, f, r)

	// A note written offline for the family, then the family is reassigned.
	must(t, r.Write(ctx, "network_members", cid, "family_id", fid))
	must(t, r.Write(ctx, "network_members", cid, "name", "Buurvrouw Lies"))
	f.take(dev, schema.FamilyScope(fid))
	res, err = r.Pull(ctx)
	must(t, err)
	if !reflect.DeepEqual(res.Evicted, []string{"family:" + fid}) {
		t.Errorf("evicted = %v", res.Evicted)
	}
	for _, row := range [][2]string{{"families", fid}, {"persons", pid}, {"network_members", cid}} {
		if _, err := r.Get(ctx, row[0], row[1]); code(err) != samenplan.ENOTFOUND {
			t.Errorf("%s %s after eviction: err = %v, want not_found", row[0], row[1], err)
		}
	}
	if got := field(t, r, "referrals", rid, "question"); got != `"Ondersteuning thuis"` {
		t.Errorf("referral (also in intake:kempen) = %s, want kept", got)
	}
	st, _ := r.State(ctx)
	for k := range st {
		if k.Collection != "referrals" {
			t.Errorf("field %v left after eviction", k)
		}
	}
	scopes, _ = r.Scopes(ctx)
	if want := []string{"intake:kempen", "intake:maasland"}; !reflect.DeepEqual(scopes, want) {
		t.Fatalf("scopes = %v, want %v", scopes, want)
	}

	_, err = r.Pull(ctx)
	must(t, err)
	_, err = r.Pull(ctx)
	must(t, err)
	if got, want := f.device(dev).proofs, []string{crdt.ScopesHash([]string{"intake:maasland", "intake:kempen"})}; !reflect.DeepEqual(got, want) {
		t.Errorf("held_hash sent = %v, want once %v", got, want)
	}

	// The offline note is not lost: pushed and quarantined.
	pres, err := r.Push(ctx)
	must(t, err)
	if len(pres.Quarantined) != 2 {
		t.Errorf("quarantined = %+v, want the 2 writes of the note", pres.Quarantined)
	}
	status, _ := r.Status(ctx)
	if len(status.Quarantined) != 2 || status.Pending != 0 {
		t.Errorf("status = %+v, want 2 quarantined kept for the UI, none pending", status)
	}
	must(t, r.Dismiss(ctx, status.Quarantined[0].ID))
	if status, _ := r.Status(ctx); len(status.Quarantined) != 1 {
		t.Errorf("after dismiss: %d quarantined, want 1", len(status.Quarantined))
	}
}

func TestPull_ChecksumMismatchRefetches(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{})
	dev := r.DeviceID()
	fid := r.NewID()
	f.write("families", fid, "region", "kempen")
	f.write("families", fid, "label", "Gezin A")
	f.grant(dev, schema.FamilyScope(fid))
	f.dropOnce(dev, crdt.Key{Collection: "families", ID: fid, Field: "label"})
	res, err := r.Pull(ctx)
	must(t, err)
	want := []string{"family:" + fid}
	if !reflect.DeepEqual(res.Refetched, want) || len(res.Mismatched) != 0 {
		t.Errorf("pull result = %+v, want refetched %v and nothing left mismatched", res, want)
	}
	if got := f.device(dev).refetch; !reflect.DeepEqual(got, [][]string{want}) {
		t.Errorf("refetch requests = %v, want [%v]", got, want)
	}
	assertConverged(t, f, r)
}

func TestPush_RejectedWriteIsKeptAndLocalValueReturnsToServers(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{})
	fid := r.NewID()
	f.write("families", fid, "region", "kempen")
	f.write("families", fid, "language", "nl")
	f.grant(r.DeviceID(), schema.FamilyScope(fid))
	_, err := r.Pull(ctx)
	must(t, err)

	f.reject["language"] = true
	must(t, r.Write(ctx, "families", fid, "language", "fr"))
	other := r.NewID() // a family that is not hers
	must(t, r.Write(ctx, "families", other, "region", "kempen"))
	res, err := r.Sync(ctx)
	must(t, err)
	if len(res.Push.Rejected) != 2 {
		t.Fatalf("rejected = %+v, want 2", res.Push.Rejected)
	}
	if got, want := field(t, r, "families", fid, "language"), `"nl"`; got != want {
		t.Errorf("language after rejection = %s, want the server's %s", got, want)
	}
	if _, err := r.Get(ctx, "families", other); code(err) != samenplan.ENOTFOUND {
		t.Errorf("a rejected new row is still shown: %v", err)
	}
	if sums, _ := r.Checksums(ctx); sums[schema.FamilyScope(other)] != "" {
		t.Errorf("a rejected new row left its scope behind: %v", sums)
	}
	st, _ := r.Status(ctx)
	if len(st.Rejected) != 2 || string(st.Rejected[0].Change.Value) != `"fr"` || st.Rejected[1].Code != samenplan.EOUTOFSCOPE {
		t.Errorf("rejected kept for the UI = %+v", st.Rejected)
	}
	assertConverged(t, f, r)
}

func TestAuth_RefreshOnUnauthorized(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, path := newReplica(t, f, Options{})
	fid := r.NewID()
	f.grant(r.DeviceID(), schema.FamilyScope(fid))
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	f.expireTokens()
	_, err := r.Sync(ctx)
	must(t, err)
	if f.refreshes != 1 {
		t.Errorf("refreshes = %d, want 1", f.refreshes)
	}
	// The rotated pair was saved: a restart uses it without refreshing.
	must(t, r.Close())
	r = openAt(t, path, f, Options{})
	_, err = r.Sync(ctx)
	must(t, err)
	if f.refreshes != 1 {
		t.Errorf("refreshes after restart = %d, want still 1", f.refreshes)
	}
	assertConverged(t, f, r)
}

func TestAuth_DeviceRevokedWipesEverything(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, path := newReplica(t, f, Options{})
	dev := r.DeviceID()
	fid := r.NewID()
	const marker = "Zeer-Geheim-Gezin-7431"
	f.write("families", fid, "region", "kempen")
	f.write("families", fid, "label", marker)
	f.grant(dev, schema.FamilyScope(fid))
	_, err := r.Pull(ctx)
	must(t, err)
	must(t, r.Write(ctx, "families", fid, "language", marker))

	f.revokeDevice(dev)
	_, err = r.Sync(ctx)
	wantCode(t, err, samenplan.EDEVICEREVOKED)
	checkEmpty := func(r *Replica) {
		t.Helper()
		if r.DeviceID() != "" {
			t.Errorf("device id kept: %q", r.DeviceID())
		}
		st, _ := r.State(ctx)
		p, _ := r.Pending(ctx)
		sc, _ := r.Scopes(ctx)
		status, _ := r.Status(ctx)
		if len(st) != 0 || len(p) != 0 || len(sc) != 0 || status.PendingBatches != 0 {
			t.Errorf("after revocation: %d fields, %d pending, scopes %v, %d batches; want none", len(st), len(p), sc, status.PendingBatches)
		}
		_, err := r.Push(ctx)
		wantCode(t, err, samenplan.EUNAUTHORIZED)
	}
	checkEmpty(r)
	must(t, r.Close())
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s still holds case data after the wipe", filepath.Base(p))
		}
	}
	r = openAt(t, path, f, Options{})
	checkEmpty(r)
}

func TestLogin_AnotherUserNeedsWipe(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	f.addUser("bob", "pw")
	r, _ := newReplica(t, f, Options{})
	must(t, r.Write(ctx, "families", r.NewID(), "region", "kempen"))
	_, err := r.Login(ctx, "bob", "pw", "phone")
	wantCode(t, err, samenplan.EFORBIDDEN)
	must(t, r.Wipe(ctx))
	u, err := r.Login(ctx, "bob", "pw", "phone")
	must(t, err)
	if u.Username != "bob" {
		t.Errorf("user = %+v", u)
	}
}

func TestLogin_NewDeviceRestampsOutbox(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{})
	fid := r.NewID()
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	must(t, r.Write(ctx, "families", fid, "label", "a"))
	must(t, r.Write(ctx, "families", fid, "label", "b"))
	old := r.DeviceID()
	lost := r.NewID() // held by the old device, not given to the new one
	f.write("families", lost, "region", "kempen")
	f.grant(old, schema.FamilyScope(lost))
	_, err := r.Pull(ctx)
	must(t, err)
	_, err = r.Login(ctx, "ann", "secret", "phone")
	must(t, err)
	if r.DeviceID() == old {
		t.Fatal("the fake gives a new device id at every login")
	}
	p, err := r.Pending(ctx)
	must(t, err)
	for i, c := range p {
		if !strings.HasSuffix(c.HLC, "-"+r.DeviceID()) {
			t.Errorf("pending %d stamped %s, want the new device", i, c.HLC)
		}
	}
	if p[2].Base != p[1].HLC {
		t.Errorf("base chain broken: %q, want %q", p[2].Base, p[1].HLC)
	}
	f.grant(r.DeviceID(), schema.FamilyScope(fid))
	_, err = r.Sync(ctx)
	must(t, err)
	assertConverged(t, f, r)
	if _, err := r.Get(ctx, "families", lost); code(err) != samenplan.ENOTFOUND {
		t.Errorf("a family only the old device held: err = %v, want not_found", err)
	}
}

func TestPush_OfflineKeepsEverything(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, path := newReplica(t, f, Options{})
	fid := r.NewID()
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	must(t, r.Close())
	r = openAt(t, path, f, Options{BaseURL: "http://127.0.0.1:1"}) // nothing listens there
	_, err := r.Sync(ctx)
	if !IsOffline(err) {
		t.Fatalf("Sync offline: err = %v, want offline", err)
	}
	must(t, r.Write(ctx, "families", fid, "label", "offline"))
	if p, _ := r.Pending(ctx); len(p) != 2 {
		t.Errorf("pending = %d, want 2", len(p))
	}
}

func TestPush_TooLargeSplitsBatch(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	limit := &bodyLimit{max: 600, next: http.DefaultTransport}
	r, _ := newReplica(t, f, Options{Transport: limit})
	fid := r.NewID()
	f.grant(r.DeviceID(), schema.FamilyScope(fid))
	must(t, r.Write(ctx, "families", fid, "region", "kempen"))
	for i := 0; i < 6; i++ {
		must(t, r.Write(ctx, "families", fid, "label", strings.Repeat("x", 60+i)))
	}
	res, err := r.Push(ctx)
	must(t, err)
	if res.Sent != 7 || res.Batches < 2 {
		t.Errorf("push = %+v, want 7 sent in several batches", res)
	}
	assertConverged(t, f, r)
}

// bodyLimit answers 413 too_large to push bodies over max bytes, like the
// server's body limit.
type bodyLimit struct {
	max  int64
	next http.RoundTripper
}

func (b *bodyLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/sync/push" && req.ContentLength > b.max {
		body := `{"code":"too_large","message":"body too large"}`
		return &http.Response{StatusCode: 413, Header: http.Header{"Content-Type": {"application/json"}},
			Body: ioNopCloser(body), Request: req}, nil
	}
	return b.next.RoundTrip(req)
}

// assertConverged checks that every replica holds exactly the server's
// state for its scopes, and that their checksums agree with it.
func assertConverged(t *testing.T, f *fakeServer, rs ...*Replica) {
	t.Helper()
	ctx := context.Background()
	server := f.snapshot()
	for i, r := range rs {
		st, err := r.State(ctx)
		must(t, err)
		d := f.device(r.DeviceID())
		want := map[crdt.Key]protocol.Change{}
		f.mu.Lock()
		for k, c := range server {
			for _, s := range f.rowScopes(k.Collection, k.ID, nil) {
				if d.grants[s] {
					want[k] = c
				}
			}
		}
		f.mu.Unlock()
		if !reflect.DeepEqual(normalize(st), normalize(want)) {
			t.Errorf("replica %d state:\n got %v\nwant %v", i, normalize(st), normalize(want))
		}
	}
}

func normalize(m map[crdt.Key]protocol.Change) map[crdt.Key]string {
	out := map[crdt.Key]string{}
	for k, c := range m {
		var v any
		_ = json.Unmarshal(c.Value, &v)
		b, _ := json.Marshal(v)
		out[k] = string(b) + "@" + c.HLC
	}
	return out
}

func ioNopCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func TestPull_InvalidCursorStartsOverAndDropsScopesNoLongerHeld(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{})
	dev := r.DeviceID()
	keep, gone := r.NewID(), r.NewID()
	for _, fid := range []string{keep, gone} {
		f.write("families", fid, "region", "kempen")
		f.grant(dev, schema.FamilyScope(fid))
	}
	_, err := r.Pull(ctx)
	must(t, err)

	// The server comes back from a backup taken before "gone" was granted.
	f.mu.Lock()
	f.badCursor = true
	delete(f.devices[dev].grants, schema.FamilyScope(gone))
	f.mu.Unlock()
	_, err = r.Pull(ctx)
	must(t, err)
	f.mu.Lock()
	f.badCursor = false
	f.mu.Unlock()
	if _, err := r.Get(ctx, "families", gone); code(err) != samenplan.ENOTFOUND {
		t.Errorf("family of a scope the server no longer names: err = %v, want not_found", err)
	}
	scopes, _ := r.Scopes(ctx)
	if want := []string{schema.FamilyScope(keep)}; !reflect.DeepEqual(scopes, want) {
		t.Errorf("scopes = %v, want %v", scopes, want)
	}
	_, err = r.Pull(ctx)
	must(t, err)
	assertConverged(t, f, r)
}

func TestAuth_RefreshesShortlyBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	wall := newWallClock(time.Now())
	r, _ := newReplica(t, f, Options{Now: wall.Now})
	f.expireTokens() // what the server would say 15 minutes on
	wall.Set(wall.Now().Add(15 * time.Minute))
	_, err := r.Pull(ctx)
	must(t, err)
	if f.refreshes != 1 || f.expired401 != 0 {
		t.Errorf("refreshes = %d, 401s = %d; want 1 refresh before the request and no 401", f.refreshes, f.expired401)
	}
}
