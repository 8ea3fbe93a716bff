package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/internal/loadtest"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// `samenplan bench`: the load command of DESIGN §8 (docs/benchmarks.md).
// It starts the app on a temporary data directory as serve does, serves it
// on a loopback port and drives it over HTTP with simulated devices:
//
//  1. polling: every device pulls incrementally (nothing new) every --poll;
//  2. mixed: the same polling while --pushers devices push batches of 1,000
//     contact fields back to back;
//  3. side by side: one device's pushes interleaved with a bare batched
//     SQLite upsert of the same fields (the ceiling);
//  4. a new device pulling a whole caseload (10 families, ~10k fields);
//  5. startup: fresh `samenplan serve` processes over a data directory with
//     ~a million fields (bench_startup.go).
//
// Latencies are client-side per request (JSON encoding and loopback
// included); the server time of the same requests is measured by a wrapper
// around the server's handler, as in server/bench_test.go.

// BenchConfig drives `samenplan bench`.
type BenchConfig struct {
	Devices         int
	Duration        time.Duration
	Poll            time.Duration
	Pushers         int
	WriteEvery      time.Duration // mixed phase: each polling device writes a contact this often (0: never)
	SideBySide      int           // batches pushed and upserted side by side
	CaseloadPulls   int
	StartupFamilies int // families seeded for the startup measure (~100 fields each)
	Region          string
	Rules           string
}

func benchDefaults(quick bool) BenchConfig {
	if quick {
		return BenchConfig{Devices: 20, Duration: 2 * time.Second, Poll: 200 * time.Millisecond, Pushers: 1,
			WriteEvery: time.Second, SideBySide: 4, CaseloadPulls: 2, StartupFamilies: 100, Region: "kempen"}
	}
	return BenchConfig{Devices: 500, Duration: 20 * time.Second, Poll: time.Second, Pushers: 2,
		WriteEvery: 30 * time.Second, SideBySide: 40, CaseloadPulls: 30, StartupFamilies: 10_700, Region: "kempen"}
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	quick := slices.Contains(args, "--quick") || slices.Contains(args, "-quick")
	cfg := benchDefaults(quick)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("quick", quick, "a few seconds, small numbers (for the test)")
	fs.IntVar(&cfg.Devices, "devices", cfg.Devices, "simulated devices (10 per coach)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the load (¼ polling only, ¾ polling and pushing)")
	fs.DurationVar(&cfg.Poll, "poll", cfg.Poll, "each device's poll interval (jittered ±50%)")
	fs.IntVar(&cfg.Pushers, "pushers", cfg.Pushers, "devices pushing batches back to back during the mixed phase")
	fs.DurationVar(&cfg.WriteEvery, "write-every", cfg.WriteEvery, "mixed phase: each polling device writes and pushes a contact (8 fields) this often on average (0: never)")
	fs.IntVar(&cfg.SideBySide, "side-by-side", cfg.SideBySide, "batches pushed and bare-upserted side by side")
	fs.IntVar(&cfg.CaseloadPulls, "caseload-pulls", cfg.CaseloadPulls, "full caseload pulls by a new device")
	fs.IntVar(&cfg.StartupFamilies, "startup-families", cfg.StartupFamilies, "families (~100 fields each) seeded for the startup time")
	fs.StringVar(&cfg.Region, "region", cfg.Region, "region to load")
	fs.StringVar(&cfg.Rules, "rules", envOr("SAMENPLAN_RULES", "rules/regions"), "rules directory")
	peer := peerFlags(fs, quick) // bench_peer.go
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: bench: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: bench: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if err := peer.check(quick, fs); err != nil {
		return err
	}
	peer.Region, peer.Rules = cfg.Region, cfg.Rules
	if peer.Only {
		fmt.Fprintf(stdout, "bench --peer-only (GOMAXPROCS %d, load average %s)\n", runtime.GOMAXPROCS(0), loadAverage())
		rep, err := BenchPeer(ctx, *peer, stdout)
		if err != nil {
			return err
		}
		rep.Print(stdout)
		return nil
	}
	if cfg.Devices < 1 || cfg.Pushers < 1 || cfg.Pushers > cfg.Devices || cfg.Duration <= 0 || cfg.Poll <= 0 || cfg.SideBySide < 1 || cfg.CaseloadPulls < 1 {
		return fmt.Errorf("%w: bench: --devices, --pushers (≤ devices), --side-by-side, --caseload-pulls must be ≥ 1, --duration and --poll > 0", errUsage)
	}
	fmt.Fprintf(stdout, "bench: %d devices, %s, poll %s, %d pushers (GOMAXPROCS %d, load average %s)\n",
		cfg.Devices, cfg.Duration, cfg.Poll, cfg.Pushers, runtime.GOMAXPROCS(0), loadAverage())
	rep, err := Bench(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	if rep.Peer, err = BenchPeer(ctx, *peer, stdout); err != nil {
		return err
	}
	rep.Print(stdout)
	return nil
}

// BenchReport is what one run measured.
type BenchReport struct {
	PushFieldsPerSec    float64 // mixed phase, all pushers together
	Push                Quantiles
	PullsPerSec         float64 // mixed phase
	Pull                Quantiles
	Writes              Quantiles // mixed phase: the polling devices' own contacts (8 fields a push)
	EmptyPull           Quantiles // polling phase, client side
	EmptyPullServer     Quantiles // polling phase, server side
	SideHTTP, SideBare  float64   // fields/s, side by side
	Caseload            Quantiles // whole caseload, client side, all pages
	CaseloadServer      Quantiles // the same, server time summed over pages
	CaseloadFields      int
	RSSAfterLoad        int64         // bytes
	Startup             StartupReport // bench_startup.go
	Errors              int64
	Devices, PushFields int
	Peer                PeerReport // bench_peer.go
}

// Quantiles of request latencies.
type Quantiles struct {
	N             int
	P50, P95, P99 time.Duration
}

func quantilesOf(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return Quantiles{N: len(ds), P50: q(0.50), P95: q(0.95), P99: q(0.99)}
}

func (q Quantiles) String() string {
	return fmt.Sprintf("%s / %s / %s (n=%d)", ms(q.P50), ms(q.P95), ms(q.P99), q.N)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + " ms"
}

// Print writes the one table: metric, value, DESIGN §8 aim, met.
func (r BenchReport) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	mark := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	}
	ratio := 0.0
	if r.SideBare > 0 {
		ratio = r.SideHTTP / r.SideBare
	}
	mixedRatio := 0.0
	if r.SideBare > 0 {
		mixedRatio = r.PushFieldsPerSec / r.SideBare
	}
	fmt.Fprintln(tw, "metric\tvalue\taim (DESIGN §8)\tmet?")
	fmt.Fprintf(tw, "push, 1 device, side by side\t%.0f fields/s\t\t\n", r.SideHTTP)
	fmt.Fprintf(tw, "bare SQLite batched upsert (ceiling)\t%.0f fields/s\t\t\n", r.SideBare)
	fmt.Fprintf(tw, "ratio push ÷ ceiling\t%.2f\t≥ 0.5\t%s\n", ratio, mark(ratio >= 0.5))
	fmt.Fprintf(tw, "push with %d devices polling\t%.0f fields/s (%.2f of ceiling)\t\t\n", r.Devices, r.PushFieldsPerSec, mixedRatio)
	fmt.Fprintf(tw, "push latency p50/p95/p99 (1,000 fields)\t%s\t\t\n", r.Push)
	fmt.Fprintf(tw, "contact push by a polling device (8 fields), p50/p95/p99\t%s\t\t\n", r.Writes)
	fmt.Fprintf(tw, "pull during pushes\t%.0f pulls/s\t\t\n", r.PullsPerSec)
	fmt.Fprintf(tw, "pull latency p50/p95/p99\t%s\t\t\n", r.Pull)
	fmt.Fprintf(tw, "empty pull, %d devices polling, client p50/p95/p99\t%s\t\t\n", r.Devices, r.EmptyPull)
	fmt.Fprintf(tw, "empty pull, %d devices polling, server p99\t%s\t< 2 ms\t%s\n", r.Devices, ms(r.EmptyPullServer.P99), mark(r.EmptyPullServer.P99 < 2*time.Millisecond))
	fmt.Fprintf(tw, "caseload pull (%d fields), client p50/p95/p99\t%s\t\t\n", r.CaseloadFields, r.Caseload)
	fmt.Fprintf(tw, "caseload pull, server p99\t%s\t< 30 ms\t%s\n", ms(r.CaseloadServer.P99), mark(r.CaseloadServer.P99 < 30*time.Millisecond))
	fmt.Fprintf(tw, "resident memory after the load\t%d MB\t< 300 MB\t%s\n", r.RSSAfterLoad>>20, mark(r.RSSAfterLoad < 300<<20))
	r.Startup.rows(tw, mark)
	fmt.Fprintf(tw, "request errors\t%d\t0\t%s\n", r.Errors, mark(r.Errors == 0))
	r.Peer.rows(tw, mark)
	tw.Flush()
}

const (
	benchPassword  = "bench-password-not-secret"
	benchBatchRows = 125 // × 8 fields = 1,000 changes per push, as in server/bench_test.go
)

// Bench runs the load and returns its figures.
func Bench(ctx context.Context, cfg BenchConfig, progress io.Writer) (BenchReport, error) {
	rep := BenchReport{Devices: cfg.Devices}
	dir, err := os.MkdirTemp("", "samenplan-bench-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Cheap password hashing: logins are setup here, not measured.
	argon := auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	app, err := OpenApp(ctx, ServeConfig{Addr: "127.0.0.1:0", Data: filepath.Join(dir, "load"), Rules: cfg.Rules, Argon2: argon}, logger)
	if err != nil {
		return rep, err
	}
	defer app.Close(context.Background())
	region, ok := app.Stores.Region(cfg.Region)
	if !ok {
		return rep, fmt.Errorf("bench: no region %q", cfg.Region)
	}
	// Serve the app's handler on loopback, with the server-time wrapper.
	timer := &loadtest.Timer{Next: app.Server.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	hs := &http.Server{Handler: timer, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	b := &benchHTTP{url: "http://" + ln.Addr().String(),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: cfg.Devices + 16, MaxIdleConnsPerHost: cfg.Devices + 16}}}
	defer b.http.CloseIdleConnections()

	// Coaches (one per 10 devices), 10 families each, and their devices.
	step := time.Now()
	coaches := (cfg.Devices + 9) / 10
	type coach struct {
		id, name string
		trajs    []string
	}
	cs := make([]coach, coaches)
	for i := range cs {
		name := fmt.Sprintf("coach.bench.%03d", i)
		u, err := app.Auth.CreateUser(ctx, auth.NewUser{Username: name, DisplayName: name, Role: auth.RoleCoach,
			Regions: []string{cfg.Region}, Password: benchPassword, FTE: 1}, auth.System("bench"))
		if err != nil {
			return rep, fmt.Errorf("create coach: %w", err)
		}
		cs[i] = coach{id: u.ID, name: name}
		for f := 0; f < 10; f++ {
			traj, err := benchFamily(ctx, region, cfg.Region, u.ID, 4)
			if err != nil {
				return rep, err
			}
			cs[i].trajs = append(cs[i].trajs, traj)
		}
	}
	pushers := make([]coach, cfg.Pushers)
	for i := range pushers {
		name := fmt.Sprintf("coach.bench.push.%02d", i)
		u, err := app.Auth.CreateUser(ctx, auth.NewUser{Username: name, DisplayName: name, Role: auth.RoleCoach,
			Regions: []string{cfg.Region}, Password: benchPassword, FTE: 1}, auth.System("bench"))
		if err != nil {
			return rep, fmt.Errorf("create coach: %w", err)
		}
		traj, err := benchFamily(ctx, region, cfg.Region, u.ID, 4)
		if err != nil {
			return rep, err
		}
		pushers[i] = coach{id: u.ID, name: name, trajs: []string{traj}}
	}
	devices := make([]*benchDevice, cfg.Devices)
	for i := range devices {
		c := cs[i%coaches]
		d, err := b.login(c.name, c.id)
		if err != nil {
			return rep, err
		}
		d.traj = c.trajs[i/coaches%len(c.trajs)]
		if _, _, err := d.pullAll(nil); err != nil {
			return rep, fmt.Errorf("first pull: %w", err)
		}
		devices[i] = d
	}
	fmt.Fprintf(progress, "setup: %d coaches, %d families, %d devices logged in and synced in %s\n",
		coaches, coaches*10, cfg.Devices, time.Since(step).Round(time.Millisecond))

	// 1 and 2: polling, then polling while pushing.
	var errs atomic.Int64
	var mu sync.Mutex
	var pulls, emptyPulls, pushes, writes []time.Duration
	var pushed atomic.Int64
	var mixedPulls atomic.Int64
	var mixed atomic.Bool
	timer.Take() // the setup's pulls
	pollEnd := time.Now().Add(cfg.Duration / 4)
	end := time.Now().Add(cfg.Duration)
	var wg sync.WaitGroup
	for i, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), 7))
			// Spread the first polls over one interval.
			sleepCtx(ctx, time.Duration(rnd.Int64N(int64(cfg.Poll))))
			var mine, mineEmpty, mineWrites []time.Duration
			for ctx.Err() == nil && time.Now().Before(end) {
				inMixed := mixed.Load()
				// A coach's device writes a contact now and then, as
				// on a home visit: one push of 8 fields, which her
				// other devices then pull.
				if inMixed && cfg.WriteEvery > 0 && rnd.Int64N(int64(cfg.WriteEvery)) < int64(cfg.Poll) {
					t0 := time.Now()
					if err := d.push(loadtest.Contacts(d.clock, d.traj, d.userID, 1)); err != nil {
						if errs.Add(1) == 1 {
							fmt.Fprintln(progress, "contact push:", err)
						}
					} else {
						mineWrites = append(mineWrites, time.Since(t0))
					}
				}
				var lat []time.Duration
				n, _, err := d.pullAll(&lat)
				if err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(progress, "pull:", err)
					}
				}
				if inMixed {
					mine = append(mine, lat...)
					mixedPulls.Add(int64(len(lat)))
				} else if n == 0 {
					mineEmpty = append(mineEmpty, lat...)
				}
				sleepCtx(ctx, cfg.Poll/2+time.Duration(rnd.Int64N(int64(cfg.Poll))))
			}
			mu.Lock()
			pulls, emptyPulls = append(pulls, mine...), append(emptyPulls, mineEmpty...)
			writes = append(writes, mineWrites...)
			mu.Unlock()
		}()
	}
	sleepCtx(ctx, time.Until(pollEnd))
	rep.EmptyPullServer = quantilesOf(timer.Take())
	mixed.Store(true)
	mixedStart := time.Now()
	var pwg sync.WaitGroup
	for p := 0; p < cfg.Pushers; p++ {
		// Each pusher is the one device of a coach of her own, so that the
		// polling devices' pulls stay incremental and empty: ten devices
		// downloading every 1,000-field batch would measure bulk transfer.
		d, err := b.login(pushers[p].name, pushers[p].id)
		if err != nil {
			return rep, err
		}
		d.traj = pushers[p].trajs[0]
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			var mine []time.Duration
			for ctx.Err() == nil && time.Now().Before(end) {
				batch := loadtest.Contacts(d.clock, d.traj, d.userID, benchBatchRows)
				t0 := time.Now()
				if err := d.push(batch); err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(progress, "push:", err)
					}
					continue
				}
				mine = append(mine, time.Since(t0))
				pushed.Add(int64(len(batch)))
			}
			mu.Lock()
			pushes = append(pushes, mine...)
			mu.Unlock()
		}()
	}
	pwg.Wait()
	mixedDur := time.Since(mixedStart)
	wg.Wait()
	timer.Take()
	rep.PushFields = int(pushed.Load())
	rep.PushFieldsPerSec = float64(pushed.Load()) / mixedDur.Seconds()
	rep.PullsPerSec = float64(mixedPulls.Load()) / mixedDur.Seconds()
	rep.Push, rep.Pull, rep.EmptyPull = quantilesOf(pushes), quantilesOf(pulls), quantilesOf(emptyPulls)
	rep.Writes = quantilesOf(writes)
	fmt.Fprintf(progress, "load: %d pushes, %d pulls, %d errors\n", len(pushes), len(pulls)+len(emptyPulls), errs.Load())
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	// 3: side by side, one device pushing and the bare upsert, interleaved
	// so that both see the same load.
	bare, err := loadtest.OpenBareUpserter(filepath.Join(dir, "bare.db"))
	if err != nil {
		return rep, err
	}
	defer bare.Close()
	d, err := b.login(cs[0].name, cs[0].id)
	if err != nil {
		return rep, err
	}
	d.traj = cs[0].trajs[1]
	bareClock := crdt.NewClock(uuid.NewString(), nil)
	var inHTTP, inBare time.Duration
	var fields int
	for i := 0; i < cfg.SideBySide; i++ {
		batch := loadtest.Contacts(d.clock, d.traj, d.userID, benchBatchRows)
		same := loadtest.Contacts(bareClock, d.traj, d.userID, benchBatchRows)
		t0 := time.Now()
		if err := d.push(batch); err != nil {
			return rep, err
		}
		t1 := time.Now()
		if err := bare.Upsert(same); err != nil {
			return rep, err
		}
		inHTTP, inBare, fields = inHTTP+t1.Sub(t0), inBare+time.Since(t1), fields+len(batch)
	}
	rep.SideHTTP, rep.SideBare = float64(fields)/inHTTP.Seconds(), float64(fields)/inBare.Seconds()

	// 4: a whole caseload (10 families of 124 contacts: ~10k fields) pulled
	// by a new device of its coach, pages of 1,000.
	u, err := app.Auth.CreateUser(ctx, auth.NewUser{Username: "coach.bench.full", DisplayName: "coach.bench.full", Role: auth.RoleCoach,
		Regions: []string{cfg.Region}, Password: benchPassword, FTE: 1}, auth.System("bench"))
	if err != nil {
		return rep, err
	}
	for f := 0; f < 10; f++ {
		if _, err := benchFamily(ctx, region, cfg.Region, u.ID, 124); err != nil {
			return rep, err
		}
	}
	var full, fullServer []time.Duration
	for i := 0; i < cfg.CaseloadPulls; i++ {
		d, err := b.login(u.Username, u.ID)
		if err != nil {
			return rep, err
		}
		timer.Take()
		t0 := time.Now()
		n, _, err := d.pullAll(nil)
		if err != nil {
			return rep, err
		}
		full = append(full, time.Since(t0))
		var sum time.Duration
		for _, s := range timer.Take() {
			sum += s
		}
		fullServer = append(fullServer, sum)
		rep.CaseloadFields = n
	}
	rep.Caseload, rep.CaseloadServer = quantilesOf(full), quantilesOf(fullServer)
	rep.RSSAfterLoad = residentMemory()
	rep.Errors = errs.Load()
	hs.Close()
	b.http.CloseIdleConnections()
	app.Close(context.Background())

	// 5: startup over a data directory with ~a million fields.
	if rep.Startup, err = benchStartup(ctx, cfg, dir, argon, progress); err != nil {
		return rep, err
	}
	// Failed requests (timeouts under overload) are counted in the table,
	// not fatal: an overloaded server is a result too.
	return rep, nil
}

// benchHTTP is the load's HTTP client.
type benchHTTP struct {
	url  string
	http *http.Client
}

// benchDevice is one logged-in device.
type benchDevice struct {
	b      *benchHTTP
	token  string
	device string
	userID string
	traj   string
	cursor string
	clock  *crdt.Clock
}

func (b *benchHTTP) login(username, userID string) (*benchDevice, error) {
	var out struct {
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	d := &benchDevice{b: b, userID: userID}
	if err := d.post("/v1/auth/login", map[string]string{"username": username, "password": benchPassword, "device_name": "bench"}, &out); err != nil {
		return nil, fmt.Errorf("login %s: %w", username, err)
	}
	d.token, d.device, d.clock = out.AccessToken, out.DeviceID, crdt.NewClock(out.DeviceID, nil)
	return d, nil
}

func (d *benchDevice) post(path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", d.b.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		buf, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, buf)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// pullAll pulls from the device's cursor until nothing more is waiting,
// appending each request's latency to lat (when not nil); it returns the
// changes and pages received.
func (d *benchDevice) pullAll(lat *[]time.Duration) (int, int, error) {
	var n, pages int
	for {
		var resp protocol.PullResponse
		t0 := time.Now()
		if err := d.post("/v1/sync/pull", protocol.PullRequest{DeviceID: d.device, SchemaVersion: schema.Version, Cursor: d.cursor}, &resp); err != nil {
			return n, pages, err
		}
		if lat != nil {
			*lat = append(*lat, time.Since(t0))
		}
		n, pages, d.cursor = n+len(resp.Changes), pages+1, resp.Cursor
		if !resp.More {
			return n, pages, nil
		}
	}
}

func (d *benchDevice) push(batch []protocol.Change) error {
	var resp protocol.PushResponse
	req := protocol.PushRequest{DeviceID: d.device, BatchID: uuid.NewString(), SchemaVersion: schema.Version, Changes: batch}
	if err := d.post("/v1/sync/push", req, &resp); err != nil {
		return err
	}
	if resp.Applied != len(batch) {
		return fmt.Errorf("push: applied %d of %d: %+v", resp.Applied, len(batch), resp.Rejected)
	}
	return nil
}

// benchFamily writes, as server writes, a family with an active trajectory
// led by coachID and contacts × 8 contact fields; it returns the trajectory.
func benchFamily(ctx context.Context, r *store.Region, region, coachID string, contacts int) (string, error) {
	fam, traj := uuid.NewString(), uuid.NewString()
	v := func(x any) json.RawMessage { raw, _ := json.Marshal(x); return raw }
	ws := []store.FieldWrite{
		{Collection: "families", ID: fam, Field: "region", Value: v(region)},
		{Collection: "families", ID: fam, Field: "label", Value: v("Gezin " + fam[len(fam)-6:])},
		{Collection: "families", ID: fam, Field: "municipality", Value: v("Geel")},
		{Collection: "families", ID: fam, Field: "language", Value: v("nl")},
		{Collection: "trajectories", ID: traj, Field: "family_id", Value: v(fam)},
		{Collection: "trajectories", ID: traj, Field: "region", Value: v(region)},
		{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: v(coachID)},
		{Collection: "trajectories", ID: traj, Field: "status", Value: v("active")},
		{Collection: "trajectories", ID: traj, Field: "started_on", Value: v("2026-01-12")},
		{Collection: "trajectories", ID: traj, Field: "mandated", Value: v(false)},
	}
	for _, c := range loadtest.Contacts(nil, traj, coachID, contacts) {
		ws = append(ws, store.FieldWrite{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value})
	}
	if _, err := r.ServerWrite(ctx, store.Actor{Role: store.RoleServer}, ws); err != nil {
		return "", fmt.Errorf("bench family: %w", err)
	}
	return traj, nil
}

// residentMemory is VmRSS from /proc/self/status in bytes (0 where there
// is no /proc), read after a GC that returns freed memory to the OS (the
// process also holds the load's clients and what earlier phases freed).
func residentMemory() int64 {
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func loadAverage() string {
	buf, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(buf))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
