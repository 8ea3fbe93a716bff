package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samenplan/samenplan/internal/loadtest"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// The benchmarks of DESIGN §8 for push and pull, through the real HTTP
// stack on loopback. docs/benchmarks.md records their figures.
//
//	go test -run '^$' -bench . -benchtime 3s -count 3 ./server/

// benchEnv is a server like testEnv's, built for a *testing.B: the real
// Echo stack (every middleware, auth, audit, metrics) served on loopback,
// with a handler wrapper that measures server time per sync request, and
// logs discarded (one line per request in production, as here).
type benchEnv struct {
	b      *testing.B
	stores *store.Stores
	auth   *auth.Service
	region *store.Region
	url    string
	timer  *loadtest.Timer
	http   *http.Client
	users  map[string]auth.User
}

func newBenchEnv(b *testing.B, usernames ...string) *benchEnv {
	b.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := crdt.NewClock("server", nil)
	stores, err := store.Open(ctx, b.TempDir(), []string{"kempen"}, store.Options{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	aud, err := audit.Open(ctx, stores.Main, audit.Config{})
	if err != nil {
		b.Fatal(err)
	}
	au, err := auth.Open(ctx, stores.Main, auth.Config{Audit: aud, Logger: logger,
		Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		b.Fatal(err)
	}
	srv := New(Config{Addr: "127.0.0.1:0", Logger: logger, Stores: stores, Auth: au, Audit: aud, Clock: clock})
	timer := &loadtest.Timer{Next: srv.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: timer, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	region, _ := stores.Region("kempen")
	e := &benchEnv{b: b, stores: stores, auth: au, region: region, url: "http://" + ln.Addr().String(), timer: timer,
		http:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		users: map[string]auth.User{}}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		au.Close()
		aud.Close()
		stores.Close()
	})
	for _, name := range usernames {
		role := auth.RoleCoach
		if strings.HasPrefix(name, "coordinator") {
			role = auth.RoleCoordinator
		}
		u, err := au.CreateUser(ctx, auth.NewUser{Username: name, DisplayName: name, Role: role, Regions: []string{"kempen"},
			Password: testPassword, FTE: 1}, auth.System("bench"))
		if err != nil {
			b.Fatal(err)
		}
		e.users[name] = u
	}
	return e
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

// quantile returns the q-quantile of ds (sorted in place).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// family creates, as server writes, a family with an active trajectory led
// by coach and contacts×8 contact fields; it returns the trajectory id.
func (e *benchEnv) family(coach string, contacts int) string {
	e.b.Helper()
	fam, traj := newUUID(), newUUID()
	writes := []store.FieldWrite{
		{Collection: "families", ID: fam, Field: "region", Value: jsonValue("kempen")},
		{Collection: "families", ID: fam, Field: "label", Value: jsonValue("Gezin " + fam[len(fam)-6:])},
		{Collection: "families", ID: fam, Field: "municipality", Value: jsonValue("Geel")},
		{Collection: "families", ID: fam, Field: "language", Value: jsonValue("nl")},
		{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
		{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue("kempen")},
		{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(e.users[coach].ID)},
		{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("active")},
		{Collection: "trajectories", ID: traj, Field: "started_on", Value: jsonValue("2026-01-12")},
		{Collection: "trajectories", ID: traj, Field: "mandated", Value: jsonValue(false)},
	}
	if _, err := e.region.ServerWrite(context.Background(), store.Actor{Role: store.RoleServer}, writes); err != nil {
		e.b.Fatal(err)
	}
	for done := 0; done < contacts; done += 125 {
		var ws []store.FieldWrite
		for _, c := range loadtest.Contacts(nil, traj, e.users[coach].ID, min(125, contacts-done)) {
			ws = append(ws, store.FieldWrite{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value})
		}
		if _, err := e.region.ServerWrite(context.Background(), store.Actor{Role: store.RoleServer}, ws); err != nil {
			e.b.Fatal(err)
		}
	}
	return traj
}

// benchClient is one logged-in device speaking JSON over HTTP.
type benchClient struct {
	e      *benchEnv
	token  string
	device string
	clock  *crdt.Clock
	userID string
}

func (e *benchEnv) login(username string) *benchClient {
	e.b.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	c := &benchClient{e: e, userID: e.users[username].ID}
	if err := c.post("/v1/auth/login", map[string]string{"username": username, "password": testPassword, "device_name": "bench"}, &out); err != nil {
		e.b.Fatal(err)
	}
	c.token, c.device, c.clock = out.AccessToken, out.DeviceID, crdt.NewClock(out.DeviceID, nil)
	return c
}

// post encodes in as JSON, sends it and decodes the 200 answer into out.
func (c *benchClient) post(path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", c.e.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		buf, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, buf)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

const batchRows = 125 // × 8 fields = 1,000 changes per push

// httpPusher is coach.a pushing her batches through the HTTP server.
type httpPusher struct {
	c       *benchClient
	batches [][]protocol.Change
	timer   *loadtest.Timer
}

func newHTTPPusher(b *testing.B) *httpPusher {
	e := newBenchEnv(b, "coach.a")
	traj := e.family("coach.a", 0)
	c := e.login("coach.a")
	p := &httpPusher{c: c, batches: make([][]protocol.Change, b.N), timer: e.timer}
	for i := range p.batches {
		p.batches[i] = loadtest.Contacts(c.clock, traj, c.userID, batchRows)
	}
	e.timer.Take()
	return p
}

// push sends batch i: JSON encoding, HTTP on loopback, the answer decoded.
func (p *httpPusher) push(b *testing.B, i int) {
	req := protocol.PushRequest{DeviceID: p.c.device, BatchID: newUUID(), SchemaVersion: schema.Version, Changes: p.batches[i]}
	var resp protocol.PushResponse
	if err := p.c.post("/v1/sync/push", req, &resp); err != nil {
		b.Fatal(err)
	}
	if resp.Applied != len(p.batches[i]) {
		b.Fatalf("applied %d of %d: %+v", resp.Applied, len(p.batches[i]), resp.Rejected)
	}
}

// bareUpserter is the yardstick (loadtest.BareUpserter) with its b.N
// batches made before the timer starts.
type bareUpserter struct {
	*loadtest.BareUpserter
	batches [][]protocol.Change
}

func newBareUpserter(b *testing.B) *bareUpserter {
	bu, err := loadtest.OpenBareUpserter(filepath.Join(b.TempDir(), "bare.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bu.Close() })
	u := &bareUpserter{BareUpserter: bu, batches: make([][]protocol.Change, b.N)}
	clock := crdt.NewClock(newUUID(), nil)
	traj, coachID := newUUID(), newUUID()
	for i := range u.batches {
		u.batches[i] = loadtest.Contacts(clock, traj, coachID, batchRows)
	}
	return u
}

func (u *bareUpserter) upsert(b *testing.B, i int) {
	if err := u.Upsert(u.batches[i]); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPushVsBare measures, in one run, field changes per second of a
// coach pushing batches of 1,000 new contact fields (125 contacts × 8) on her
// own trajectory through the HTTP server (JSON encoding on the client side
// included), through Region.Push alone (no HTTP, no JSON), and a bare
// batched SQLite upsert of the same rows: the yardstick of DESIGN §8 (aim:
// PushHTTP at least half of BareUpsert). Interleaved alternates one HTTP
// push and one bare batch, so that both see the same load on a shared
// machine, and reports the ratio itself.
func BenchmarkPushVsBare(b *testing.B) {
	rates := map[string]float64{}
	b.Run("PushHTTP", func(b *testing.B) {
		p := newHTTPPusher(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.push(b, i)
		}
		b.StopTimer()
		rates["PushHTTP"] = float64(b.N*batchRows*8) / b.Elapsed().Seconds()
		b.ReportMetric(rates["PushHTTP"], "fields/s")
		b.ReportMetric(float64(sum(p.timer.Take()).Microseconds())/1000/float64(b.N), "server-ms/op")
	})
	b.Run("RegionPush", func(b *testing.B) {
		e := newBenchEnv(b, "coach.a")
		traj := e.family("coach.a", 0)
		c := e.login("coach.a")
		a := store.Actor{UserID: c.userID, DeviceID: c.device, Role: store.RoleCoach}
		batches := make([][]protocol.Change, b.N)
		for i := range batches {
			batches[i] = loadtest.Contacts(c.clock, traj, c.userID, batchRows)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			resp, err := e.region.Push(context.Background(), a, protocol.PushRequest{DeviceID: c.device, BatchID: newUUID(),
				SchemaVersion: schema.Version, Changes: batches[i]})
			if err != nil || resp.Applied != len(batches[i]) {
				b.Fatalf("push: %v %+v", err, resp.Rejected)
			}
		}
		b.StopTimer()
		rates["RegionPush"] = float64(b.N*batchRows*8) / b.Elapsed().Seconds()
		b.ReportMetric(rates["RegionPush"], "fields/s")
	})
	b.Run("BareUpsert", func(b *testing.B) {
		u := newBareUpserter(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			u.upsert(b, i)
		}
		b.StopTimer()
		rates["BareUpsert"] = float64(b.N*batchRows*8) / b.Elapsed().Seconds()
		b.ReportMetric(rates["BareUpsert"], "fields/s")
	})
	b.Run("Interleaved", func(b *testing.B) {
		p, u := newHTTPPusher(b), newBareUpserter(b)
		var inHTTP, inBare time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			p.push(b, i)
			t1 := time.Now()
			u.upsert(b, i)
			inHTTP, inBare = inHTTP+t1.Sub(t0), inBare+time.Since(t1)
		}
		b.StopTimer()
		inServer := sum(p.timer.Take())
		fields := float64(b.N * batchRows * 8)
		b.ReportMetric(fields/inHTTP.Seconds(), "http-fields/s")
		b.ReportMetric(fields/inBare.Seconds(), "bare-fields/s")
		// ratio is the client's view: its JSON encoding, loopback and the
		// answer's decoding included. server-ratio counts only the server's
		// time on the pushes (loadtest.Timer), as the bare upsert is all server.
		b.ReportMetric(inBare.Seconds()/inHTTP.Seconds(), "ratio")
		b.ReportMetric(inBare.Seconds()/inServer.Seconds(), "server-ratio")
	})
	if bare := rates["BareUpsert"]; bare > 0 {
		// Printed rather than logged: a parent benchmark's log is not shown.
		fmt.Printf("BenchmarkPushVsBare ratio: PushHTTP/BareUpsert = %.3f, RegionPush/BareUpsert = %.3f (aim: PushHTTP ≥ 0.5)\n",
			rates["PushHTTP"]/bare, rates["RegionPush"]/bare)
	}
}

// caseload creates a coach's caseload of 10 families of ~1,000 fields each
// (10 family fields, 124 contacts × 8), about 10k fields.
func (e *benchEnv) caseload(coach string) int {
	for i := 0; i < 10; i++ {
		e.family(coach, 124)
	}
	return 10 * (10 + 124*8)
}

// pullAll pulls from cursor until more is false; it returns the new cursor,
// the changes received and the pages.
func (c *benchClient) pullAll(cursor string, limit int) (string, int, int, error) {
	var n, pages int
	for {
		var resp protocol.PullResponse
		if err := c.post("/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: cursor, Limit: limit}, &resp); err != nil {
			return "", 0, 0, err
		}
		n, pages, cursor = n+len(resp.Changes), pages+1, resp.Cursor
		if !resp.More {
			return cursor, n, pages, nil
		}
	}
}

// BenchmarkPullCaseload measures a new device of a coach pulling her whole
// caseload (10 families, ~10k fields) from an empty cursor, page by page.
// server-ms/op is the server's time over all pages (target: < 30 ms);
// ns/op adds the client's JSON decoding and loopback.
func BenchmarkPullCaseload(b *testing.B) {
	for _, limit := range []int{protocol.DefaultLimit, protocol.MaxPullLimit} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			e := newBenchEnv(b, "coach.a", "coach.b")
			want := e.caseload("coach.a")
			e.caseload("coach.b") // another coach's families, not pulled
			c := e.login("coach.a")
			e.timer.Take()
			b.ResetTimer()
			var pages int
			for i := 0; i < b.N; i++ {
				_, n, p, err := c.pullAll("", limit)
				if err != nil {
					b.Fatal(err)
				}
				if n != want {
					b.Fatalf("pulled %d changes, want %d", n, want)
				}
				pages = p
			}
			b.StopTimer()
			b.ReportMetric(float64(sum(e.timer.Take()).Microseconds())/1000/float64(b.N), "server-ms/op")
			b.ReportMetric(float64(pages), "pages/op")
			b.ReportMetric(float64(want), "fields/op")
		})
	}
}

// BenchmarkPullEmpty measures an incremental pull with nothing new: one
// device polling, and 500 devices of 50 coaches polling in a closed loop
// with 64 requests in flight (target: p99 server time < 2 ms with 500
// devices polling). The coaches hold 10 families each. The closed loop
// saturates both cores, so its p99 is mostly queueing: pulls/s is its
// figure of merit.
func BenchmarkPullEmpty(b *testing.B) {
	b.Run("devices=1", func(b *testing.B) {
		e := newBenchEnv(b, "coach.a")
		e.caseload("coach.a")
		c := e.login("coach.a")
		cursor, _, _, err := c.pullAll("", protocol.MaxPullLimit)
		if err != nil {
			b.Fatal(err)
		}
		e.timer.Take()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, n, _, err := c.pullAll(cursor, 0); err != nil || n != 0 {
				b.Fatalf("pull: %v, %d changes", err, n)
			}
		}
		b.StopTimer()
		reportQuantiles(b, e.timer.Take())
	})
	b.Run("devices=500", func(b *testing.B) {
		var names []string
		for i := 0; i < 50; i++ {
			names = append(names, fmt.Sprintf("coach.%02d", i))
		}
		e := newBenchEnv(b, names...)
		for _, name := range names {
			for f := 0; f < 10; f++ {
				e.family(name, 4)
			}
		}
		type device struct {
			c      *benchClient
			cursor string
		}
		devices := make([]device, 500)
		for i := range devices {
			c := e.login(names[i%len(names)])
			cursor, _, _, err := c.pullAll("", protocol.MaxPullLimit)
			if err != nil {
				b.Fatal(err)
			}
			devices[i] = device{c, cursor}
		}
		var next atomic.Int64
		e.timer.Take()
		b.ResetTimer()
		b.SetParallelism(32) // 64 requests in flight on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d := devices[next.Add(1)%int64(len(devices))]
				if _, n, _, err := d.c.pullAll(d.cursor, 0); err != nil || n != 0 {
					b.Errorf("pull: %v, %d changes", err, n)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pulls/s")
		reportQuantiles(b, e.timer.Take())
	})
}

func reportQuantiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	b.ReportMetric(float64(quantile(ds, 0.5).Microseconds()), "p50-server-µs")
	b.ReportMetric(float64(quantile(ds, 0.99).Microseconds()), "p99-server-µs")
}
