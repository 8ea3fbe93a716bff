package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// ChaosReport is what a chaos simulation found. Every count is printed by
// `samenplan simulate --chaos`.
type ChaosReport struct {
	SimReport
	Seed uint64

	// Faults injected.
	OfflinePeriods  int // a device went offline (requests fail before reaching the server)
	OfflineFailures int // requests refused by being offline
	LostResponses   int // the server handled the request, the device never got the answer
	Duplicated      int // a push sent twice in a row
	Replayed        int // an older push batch re-sent after newer ones (reordered)
	ReplayMismatch  int // replays whose answer was not the first answer
	SkewWithin      int // a device's wall clock set ahead within the server's limit
	SkewBeyond      int // a device's wall clock set ahead beyond the limit
	SkewRestamped   int // pending writes stamped anew after the server refused writes with clock_skew
	SkewAfterTrue   int // of those, writes made while the device's wall clock was within the limit
	Reassignments   int // server writes of a trajectory's lead_coach_id
	Restarts        int // the app stopped and reopened on the same data directory
	SyncErrors      int // push or pull errors that were no network failure (answers)

	// Checks.
	Acknowledged    int // writes the server answered (applied, ignored, refused or quarantined)
	AckedNotInLog   int // acknowledged, not refused, yet neither in the change log nor quarantined
	InLog           int // writes found in the change log (winners and losers)
	KeptQuarantined int // writes found in the quarantine
	KeptRefused     int // writes refused by the server, kept as problems on their device (none may be)
	SkewRefused     int // of those, refused with clock_skew
	EvictedScopes   int // scopes devices held and may no longer hold
	EvictedHeld     int // of those, still held by a device at the end
	ScopeMismatch   int // devices whose scopes differ from the server's for them
	ChecksumsOK     int // scopes whose device checksum equals the server's
}

// Converged reports whether every check passed: every write made is in
// the server's change log or its quarantine (none lost, none left refused
// on a device: the workload writes only what the server accepts, and a
// clock_skew refusal must be cured by the device), replicas equal the
// server, evicted scopes are gone and replays got their first answers.
func (r ChaosReport) Converged() bool {
	return r.Diverged == 0 && r.Lost == 0 && r.KeptRefused == 0 && r.AckedNotInLog == 0 && r.EvictedHeld == 0 &&
		r.ScopeMismatch == 0 && r.ReplayMismatch == 0 && r.InLog+r.KeptQuarantined == r.Writes
}

// chaosNet is what every device's transport shares: the server's current
// address (it changes when the app restarts) and whether faults are on.
type chaosNet struct {
	host  atomic.Value // string: host:port of the running server
	calm  atomic.Bool  // no faults (the final syncs)
	mu    sync.Mutex
	stats *ChaosReport
}

// chaosTransport is one device's network: offline periods, lost answers,
// duplicated pushes and replays of older push batches, driven by its own
// seeded random source.
type chaosTransport struct {
	net     *chaosNet
	rnd     *rand.Rand
	offline atomic.Bool
	pushes  [][]byte // bodies of pushes the server answered, for replays
	base    http.RoundTripper
}

// chaosMaxAhead is the server's limit on stamps ahead of its clock (docs/protocol.md).
const chaosMaxAhead = 5 * time.Minute

var errChaosOffline = errors.New("chaos: device offline")
var errChaosLost = errors.New("chaos: response lost")

func (t *chaosTransport) send(req *http.Request, body []byte) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Host = t.net.host.Load().(string)
	r.Host = r.URL.Host
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return t.base.RoundTrip(r)
}

func (t *chaosTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	calm := t.net.calm.Load()
	if !calm && t.offline.Load() {
		t.count(func(s *ChaosReport) { s.OfflineFailures++ })
		return nil, errChaosOffline
	}
	push := strings.HasSuffix(req.URL.Path, "/v1/sync/push")
	if calm {
		return t.send(req, body)
	}
	p := t.rnd.IntN(100)
	if push && p < 10 { // duplicated: the same request twice, the device sees the second answer
		if resp, err := t.send(req, body); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			t.count(func(s *ChaosReport) { s.Duplicated++ })
		}
	}
	resp, err := t.send(req, body)
	if err != nil {
		return nil, err
	}
	if push && resp.StatusCode == http.StatusOK {
		answer, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(answer))
		// Reordered: after this batch, re-send an older one; the server
		// must answer with that batch's first answer and change nothing.
		if len(t.pushes) > 0 && t.rnd.IntN(100) < 15 {
			old := t.pushes[t.rnd.IntN(len(t.pushes))]
			t.replay(req, old)
		}
		t.pushes = append(t.pushes, body)
	}
	if (push || strings.HasSuffix(req.URL.Path, "/v1/sync/pull")) && t.rnd.IntN(100) < 12 {
		// Lost: the server handled it, the answer never arrives.
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.count(func(s *ChaosReport) { s.LostResponses++ })
		return nil, errChaosLost
	}
	return resp, nil
}

// replay re-sends an older push body and checks the answer names its batch.
func (t *chaosTransport) replay(req *http.Request, body []byte) {
	var sent protocol.PushRequest
	if err := jsonUnmarshal(body, &sent); err != nil {
		return
	}
	resp, err := t.send(req, body)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var got protocol.PushResponse
	b, _ := io.ReadAll(resp.Body)
	ok := resp.StatusCode == http.StatusOK && jsonUnmarshal(b, &got) == nil && got.BatchID == sent.BatchID
	t.count(func(s *ChaosReport) {
		s.Replayed++
		if !ok {
			s.ReplayMismatch++
		}
	})
}

func (t *chaosTransport) count(f func(*ChaosReport)) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	f(t.net.stats)
}

// chaosDevice is one replica with its fault controls.
type chaosDevice struct {
	r      *client.Replica
	tr     *chaosTransport
	skew   atomic.Int64 // wall clock offset in nanoseconds
	held   map[string]bool
	actor  store.Actor
	writes []chaosWrite
	skewed map[chaosWrite]bool // writes made while the wall clock was beyond the limit
}

type chaosWrite struct {
	key crdt.Key
	hlc string
}

// restamped follows the writes the device stamped anew after a clock_skew
// refusal: each is looked for under its new stamp. The restamps of one
// answer (one batch id) apply together, since a new stamp may equal the old
// stamp of another write restamped with it.
func (d *chaosDevice) restamped(rs []client.Restamp, rep *ChaosReport) {
	for i := 0; i < len(rs); {
		j := i
		next := map[chaosWrite]string{}
		for ; j < len(rs) && rs[j].BatchID == rs[i].BatchID; j++ {
			next[chaosWrite{rs[j].Key, rs[j].Old}] = rs[j].New
		}
		for k, w := range d.writes {
			if n, ok := next[w]; ok {
				nw := chaosWrite{w.key, n}
				d.writes[k] = nw
				if d.skewed[w] {
					delete(d.skewed, w)
					d.skewed[nw] = true
				} else {
					rep.SkewAfterTrue++
				}
				rep.SkewRestamped++
			}
		}
		i = j
	}
}

// Chaos runs Simulate's workload with faults: offline periods, duplicated,
// reordered and lost pushes and pulls, clock skew within and beyond the
// server's limit, reassignments (with evictions) and a server restart, then
// syncs every device without faults and checks that nothing diverged or was
// lost. A failure replays with the same seed.
func Chaos(ctx context.Context, cfg SimConfig) (ChaosReport, error) {
	start := time.Now()
	rep := ChaosReport{Seed: cfg.Seed}
	rep.Devices = cfg.Devices
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "samenplan-chaos-")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	serveCfg := ServeConfig{Addr: "127.0.0.1:0", Data: filepath.Join(dir, "server"), Rules: cfg.Rules, Demo: true}
	app, err := OpenApp(ctx, serveCfg, logger)
	if err != nil {
		return rep, err
	}
	defer func() { app.Close(context.Background()) }()
	if _, err := SeedDemo(ctx, app); err != nil {
		return rep, err
	}
	if err := app.Server.Open(); err != nil {
		return rep, err
	}
	region, ok := app.Stores.Region(cfg.Region)
	if !ok {
		return rep, fmt.Errorf("no region %q", cfg.Region)
	}
	cnet := &chaosNet{stats: &rep}
	setHost := func() {
		u, _ := url.Parse(app.Server.URL())
		cnet.host.Store(u.Host)
	}
	setHost()
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0xc4a05))
	coaches, err := app.Auth.ListUsers(ctx, auth.UserFilter{Region: cfg.Region, Role: auth.RoleCoach})
	if err != nil || len(coaches) < 2 {
		return rep, fmt.Errorf("need two demo coaches in %s: %v", cfg.Region, err)
	}
	devices := make([]*chaosDevice, cfg.Devices)
	for i := range devices {
		username := coaches[i%len(coaches)].Username
		if i%5 == 4 {
			username = "coordinator." + cfg.Region + ".demo"
		}
		d := &chaosDevice{held: map[string]bool{}, skewed: map[chaosWrite]bool{}}
		d.tr = &chaosTransport{net: cnet, rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i+1))), base: http.DefaultTransport}
		d.r, err = client.Open(ctx, filepath.Join(dir, fmt.Sprintf("device-%02d.db", i)), client.Options{
			BaseURL: app.Server.URL(), PageSize: 200, BatchSize: 20, Transport: d.tr,
			Now: func() time.Time { return time.Now().Add(time.Duration(d.skew.Load())) },
		})
		if err != nil {
			return rep, err
		}
		defer d.r.Close()
		cnet.calm.Store(true)
		u, err := d.r.Login(ctx, username, DemoPassword, fmt.Sprintf("chaos %d", i))
		if err != nil {
			return rep, fmt.Errorf("login %s: %w", username, err)
		}
		if _, err := d.r.Sync(ctx); err != nil {
			return rep, fmt.Errorf("first sync of device %d: %w", i, err)
		}
		d.actor = store.Actor{UserID: u.ID, DeviceID: d.r.DeviceID(), Role: u.Role}
		if err := d.noteScopes(ctx); err != nil {
			return rep, err
		}
		devices[i] = d
	}
	cnet.calm.Store(false)

	answer := func(d *chaosDevice, err error) error {
		if err == nil || client.IsOffline(err) {
			return nil
		}
		rep.SyncErrors++
		return fmt.Errorf("device %s: %w", d.r.DeviceID(), err)
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	restartAt := cfg.Writes / 2
	restarted := false
	for rep.Writes < cfg.Writes {
		if !restarted && rep.Writes >= restartAt {
			restarted = true
			// Stop the app and reopen it on the same data directory; the
			// devices find it at its new address.
			if err := app.Close(ctx); err != nil {
				return rep, fmt.Errorf("restart: close: %w", err)
			}
			app, err = OpenApp(ctx, serveCfg, logger)
			if err != nil {
				return rep, fmt.Errorf("restart: open: %w", err)
			}
			if err := app.Server.Open(); err != nil {
				return rep, fmt.Errorf("restart: serve: %w", err)
			}
			if region, ok = app.Stores.Region(cfg.Region); !ok {
				return rep, fmt.Errorf("restart: no region %q", cfg.Region)
			}
			setHost()
			rep.Restarts++
		}
		d := devices[rnd.IntN(len(devices))]
		switch p := rnd.IntN(1000); {
		case p < 700:
			rows, coll, err := pickRows(ctx, d.r, rnd)
			if err != nil {
				return rep, err
			}
			if len(rows) == 0 {
				continue
			}
			row := rows[rnd.IntN(len(rows))]
			f := simWritable[coll][rnd.IntN(len(simWritable[coll]))]
			if err := d.r.Write(ctx, coll, row.ID, f.field, f.value(rnd)); err != nil {
				return rep, fmt.Errorf("write: %w", err)
			}
			st, err := d.r.State(ctx)
			if err != nil {
				return rep, err
			}
			k := crdt.Key{Collection: coll, ID: row.ID, Field: f.field}
			w := chaosWrite{k, st[k].HLC}
			d.writes = append(d.writes, w)
			if time.Duration(d.skew.Load()) > chaosMaxAhead {
				d.skewed[w] = true
			}
			rep.Writes++
		case p < 820:
			res, err := d.r.Push(ctx)
			d.restamped(res.Restamped, &rep)
			keep(answer(d, err))
			rep.Pushed += res.Sent
		case p < 920:
			_, err := d.r.Pull(ctx)
			keep(answer(d, err))
			keep(d.noteScopes(ctx))
		case p < 950:
			if !d.tr.offline.Load() {
				rep.OfflinePeriods++
			}
			d.tr.offline.Store(!d.tr.offline.Load())
		case p < 980:
			switch q := rnd.IntN(10); {
			case q < 5:
				d.skew.Store(int64(time.Duration(30+rnd.IntN(200)) * time.Second))
				rep.SkewWithin++
			case q < 7:
				d.skew.Store(int64(10 * time.Minute))
				rep.SkewBeyond++
			default:
				d.skew.Store(0)
			}
		default:
			if err := chaosReassign(ctx, region, coaches, rnd); err != nil {
				return rep, fmt.Errorf("reassign: %w", err)
			}
			rep.Reassignments++
		}
	}
	if rep.Reassignments == 0 { // every run moves at least one family
		if err := chaosReassign(ctx, region, coaches, rnd); err != nil {
			return rep, fmt.Errorf("reassign: %w", err)
		}
		rep.Reassignments++
	}

	// No more faults: every device comes online with a true clock and syncs.
	cnet.calm.Store(true)
	for _, d := range devices {
		d.tr.offline.Store(false)
		d.skew.Store(0)
	}
	for round := 0; round < 3; round++ {
		for _, i := range rnd.Perm(len(devices)) {
			d := devices[i]
			res, err := d.r.Sync(ctx)
			d.restamped(res.Push.Restamped, &rep)
			if err != nil {
				return rep, fmt.Errorf("final sync of device %d (seed %d): %w", i, cfg.Seed, err)
			}
			if err := d.noteScopes(ctx); err != nil {
				return rep, err
			}
		}
	}
	if firstErr != nil {
		return rep, fmt.Errorf("during the run (seed %d): %w", cfg.Seed, firstErr)
	}
	if err := chaosCheck(ctx, region, devices, &rep); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// noteScopes remembers every scope the device ever held.
func (d *chaosDevice) noteScopes(ctx context.Context) error {
	scopes, err := d.r.Scopes(ctx)
	for _, s := range scopes {
		d.held[s] = true
	}
	return err
}

// chaosReassign moves a random trajectory to another coach with a server
// write of lead_coach_id, as a coordinator's reassignment does.
func chaosReassign(ctx context.Context, region *store.Region, coaches []auth.User, rnd *rand.Rand) error {
	type lead struct{ traj, coach string }
	var leads []lead
	err := region.Scan(ctx, func(c protocol.Change) error {
		if c.Collection == "trajectories" && c.Field == "lead_coach_id" {
			var id string
			if jsonUnmarshal(c.Value, &id) == nil {
				leads = append(leads, lead{c.ID, id})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(leads) == 0 {
		return errors.New("no trajectories")
	}
	sort.Slice(leads, func(i, j int) bool { return leads[i].traj < leads[j].traj })
	l := leads[rnd.IntN(len(leads))]
	to := coaches[rnd.IntN(len(coaches))].ID
	for to == l.coach {
		to = coaches[rnd.IntN(len(coaches))].ID
	}
	_, err = region.ServerWrite(ctx, store.Actor{Role: store.RoleServer}, []store.FieldWrite{
		{Collection: "trajectories", ID: l.traj, Field: "lead_coach_id", Value: jsonValueOf(to)},
	})
	return err
}

// chaosCheck compares every device with the server and accounts for every
// write made.
func chaosCheck(ctx context.Context, region *store.Region, devices []*chaosDevice, rep *ChaosReport) error {
	server := map[crdt.Key]protocol.Change{}
	if err := region.Scan(ctx, func(c protocol.Change) error {
		server[crdt.Key{Collection: c.Collection, ID: c.ID, Field: c.Field}] = c
		return nil
	}); err != nil {
		return err
	}
	rep.Fields = len(server)
	inLog := map[chaosWrite]bool{}
	rows := map[crdt.Key]bool{}
	for _, d := range devices {
		for _, w := range d.writes {
			rows[crdt.Key{Collection: w.key.Collection, ID: w.key.ID}] = true
		}
	}
	for k := range rows {
		hist, err := region.History(ctx, k.Collection, k.ID)
		if err != nil {
			return err
		}
		for _, h := range hist {
			inLog[chaosWrite{crdt.Key{Collection: k.Collection, ID: k.ID, Field: h.Field}, h.HLC}] = true
		}
	}
	quarantined := map[chaosWrite]bool{}
	qs, err := region.Quarantine(ctx, "")
	if err != nil {
		return err
	}
	for _, q := range qs {
		quarantined[chaosWrite{crdt.Key{Collection: q.Collection, ID: q.RowID, Field: q.Field}, q.HLC}] = true
	}
	for _, d := range devices {
		st, err := d.r.Status(ctx)
		if err != nil {
			return err
		}
		refused := map[chaosWrite]bool{}
		for _, p := range st.Rejected {
			refused[chaosWrite{crdt.Key{Collection: p.Change.Collection, ID: p.Change.ID, Field: p.Change.Field}, p.Change.HLC}] = true
			if p.Code == "clock_skew" {
				rep.SkewRefused++
			}
		}
		for _, w := range d.writes {
			switch {
			case inLog[w]:
				rep.InLog++
				rep.Acknowledged++
			case quarantined[w]:
				rep.KeptQuarantined++
				rep.Acknowledged++
			case refused[w]:
				rep.KeptRefused++
				rep.Acknowledged++
			default:
				rep.Lost++
				if st.Pending == 0 { // the outbox is empty: the server answered it
					rep.Acknowledged++
					rep.AckedNotInLog++
				}
			}
		}
		rep.Quarantined += len(st.Quarantined)
		rep.Rejected += len(st.Rejected)

		// Scopes: the device holds exactly what the server says it may.
		want, err := region.DeviceScopes(ctx, d.actor)
		if err != nil {
			return err
		}
		wantSet := map[string]bool{}
		for _, s := range want {
			wantSet[s] = true
		}
		have, err := d.r.Scopes(ctx)
		if err != nil {
			return err
		}
		haveSet := map[string]bool{}
		for _, s := range have {
			haveSet[s] = true
		}
		for s := range d.held {
			if !wantSet[s] {
				rep.EvictedScopes++
				if haveSet[s] {
					rep.EvictedHeld++
				}
			}
		}
		if len(have) != len(want) || len(haveSet) != len(wantSet) {
			rep.ScopeMismatch++
		} else {
			for s := range wantSet {
				if !haveSet[s] {
					rep.ScopeMismatch++
					break
				}
			}
		}
		if sameAsServer(ctx, d.r, region, server) {
			rep.ChecksumsOK += len(have)
		} else {
			rep.Diverged++
		}
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonValueOf(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// runChaos runs Chaos and prints every count; a failure names its seed.
func runChaos(ctx context.Context, cfg SimConfig, stdout io.Writer) error {
	fmt.Fprintf(stdout, "simulate --chaos: %d devices, %d writes, seed %d\n", cfg.Devices, cfg.Writes, cfg.Seed)
	rep, err := Chaos(ctx, cfg)
	printChaos(stdout, rep)
	if err != nil {
		fmt.Fprintf(stdout, "FAILED (replay with --chaos --seed %d): %v\n", cfg.Seed, err)
		return fmt.Errorf("chaos simulation failed (seed %d): %w", cfg.Seed, err)
	}
	if !rep.Converged() {
		fmt.Fprintf(stdout, "NOT CONVERGED (replay with --chaos --seed %d)\n", cfg.Seed)
		return fmt.Errorf("chaos simulation did not converge (seed %d)", cfg.Seed)
	}
	fmt.Fprintf(stdout, "converged: every replica equals the server for its scopes; every write made is in the log or quarantined, none refused; evicted scopes gone; 0 writes lost (seed %d)\n", cfg.Seed)
	return nil
}

func printChaos(w io.Writer, r ChaosReport) {
	fmt.Fprintf(w, "faults: offline periods %d (requests refused %d), lost responses %d, duplicated pushes %d, replayed older batches %d (wrong answers %d), skew within %d, skew beyond %d, reassignments %d, restarts %d, sync errors %d\n",
		r.OfflinePeriods, r.OfflineFailures, r.LostResponses, r.Duplicated, r.Replayed, r.ReplayMismatch, r.SkewWithin, r.SkewBeyond, r.Reassignments, r.Restarts, r.SyncErrors)
	fmt.Fprintf(w, "clock: writes stamped anew after clock_skew %d (of which %d made after the wall clock was true again)\n",
		r.SkewRestamped, r.SkewAfterTrue)
	fmt.Fprintf(w, "writes made %d, acknowledged %d, in log %d, quarantined %d, refused and kept on device %d (clock_skew %d), acknowledged but not in log %d, lost %d\n",
		r.Writes, r.Acknowledged, r.InLog, r.KeptQuarantined, r.KeptRefused, r.SkewRefused, r.AckedNotInLog, r.Lost)
	fmt.Fprintf(w, "server fields %d, devices diverged %d, scope sets differing %d, scope checksums equal %d, evicted scopes %d (still held %d), in %s\n",
		r.Fields, r.Diverged, r.ScopeMismatch, r.ChecksumsOK, r.EvictedScopes, r.EvictedHeld, r.Elapsed.Round(time.Millisecond))
}
