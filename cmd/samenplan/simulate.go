package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// SimConfig drives `samenplan simulate`.
type SimConfig struct {
	Devices int
	Writes  int
	Seed    uint64
	Region  string
	Rules   string
	Dir     string // working directory; a temporary one when empty
	Chaos   bool   // inject faults (see Chaos)
}

// SimReport is what a simulation found.
type SimReport struct {
	Devices     int
	Writes      int // writes made on devices
	Pushed      int // changes acknowledged by the server
	Applied     int // of those, the ones that became a field's value
	Ignored     int // logged but lost to a later write (or already known)
	Rejected    int
	Quarantined int
	Lost        int // writes made but found neither in the log nor in quarantine
	Diverged    int // devices whose state differs from the server's for their scopes
	Fields      int // fields on the server
	Elapsed     time.Duration
}

// Converged reports whether every replica matches the server and nothing was lost.
func (r SimReport) Converged() bool { return r.Diverged == 0 && r.Lost == 0 }

func runSimulate(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := SimConfig{}
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.Devices, "devices", 20, "number of devices")
	fs.IntVar(&cfg.Writes, "writes", 2000, "number of field writes across all devices")
	fs.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "random seed (a failure replays with the same seed)")
	fs.StringVar(&cfg.Region, "region", "kempen", "region to simulate")
	fs.StringVar(&cfg.Rules, "rules", envOr("SAMENPLAN_RULES", "rules/regions"), "rules directory")
	fs.StringVar(&cfg.Dir, "dir", "", "working directory (kept); a temporary one when empty")
	fs.BoolVar(&cfg.Chaos, "chaos", false, "inject faults: offline periods, duplicated, reordered and lost pushes, clock skew, reassignments, a server restart")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: simulate: %v", errUsage, err)
	}
	if cfg.Devices < 1 || cfg.Writes < 0 {
		return fmt.Errorf("%w: simulate: --devices must be ≥ 1 and --writes ≥ 0", errUsage)
	}
	if cfg.Chaos {
		return runChaos(ctx, cfg, stdout)
	}
	fmt.Fprintf(stdout, "simulate: %d devices, %d writes, seed %d\n", cfg.Devices, cfg.Writes, cfg.Seed)
	rep, err := Simulate(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "writes made %d, acknowledged %d, applied %d, ignored (stale) %d, rejected %d, quarantined %d, lost %d\n",
		rep.Writes, rep.Pushed, rep.Applied, rep.Ignored, rep.Rejected, rep.Quarantined, rep.Lost)
	fmt.Fprintf(stdout, "server fields %d, devices diverged %d, in %s\n", rep.Fields, rep.Diverged, rep.Elapsed.Round(time.Millisecond))
	if !rep.Converged() {
		fmt.Fprintln(stdout, "NOT CONVERGED")
		return fmt.Errorf("simulation did not converge (seed %d)", cfg.Seed)
	}
	fmt.Fprintln(stdout, "converged: every replica equals the server for its scopes; 0 writes lost")
	return nil
}

// simWritable lists, per collection, fields a coach's device may write, with
// a generator of random values.
var simWritable = map[string][]struct {
	field string
	value func(r *rand.Rand) any
}{
	"contacts": {
		{"note", func(r *rand.Rand) any { return fmt.Sprintf("Notitie %d na het huisbezoek.", r.IntN(1_000_000)) }},
		{"minutes", func(r *rand.Rand) any { return 15 + r.IntN(120) }},
		{"follow_up", func(r *rand.Rand) any { return fmt.Sprintf("Opvolging %d", r.IntN(1000)) }},
	},
	"plan_goals": {
		{"scale", func(r *rand.Rand) any { return r.IntN(11) }},
		{"goal", func(r *rand.Rand) any { return fmt.Sprintf("Doel in de woorden van het gezin %d", r.IntN(1000)) }},
		{"status", func(r *rand.Rand) any { return []string{"open", "in_progress", "achieved"}[r.IntN(3)] }},
	},
	"persons":         {{"willing", func(r *rand.Rand) any { return r.IntN(2) == 0 }}},
	"network_members": {{"phone", func(r *rand.Rand) any { return fmt.Sprintf("014 %06d", r.IntN(1_000_000)) }}},
	"families":        {{"label", func(r *rand.Rand) any { return fmt.Sprintf("Gezin %d", r.IntN(10000)) }}},
}

// Simulate runs a real server with demo data and cfg.Devices Go replicas that
// write offline and sync in random order, then syncs everything and compares.
func Simulate(ctx context.Context, cfg SimConfig) (SimReport, error) {
	start := time.Now()
	rep := SimReport{Devices: cfg.Devices}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "samenplan-sim-")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := OpenApp(ctx, ServeConfig{Addr: "127.0.0.1:0", Data: filepath.Join(dir, "server"), Rules: cfg.Rules, Demo: true}, logger)
	if err != nil {
		return rep, err
	}
	defer app.Close(context.Background())
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
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0x5a3e))
	coaches, err := app.Auth.ListUsers(ctx, auth.UserFilter{Region: cfg.Region, Role: auth.RoleCoach})
	if err != nil || len(coaches) == 0 {
		return rep, fmt.Errorf("no demo coaches in %s: %v", cfg.Region, err)
	}
	devices := make([]*client.Replica, cfg.Devices)
	for i := range devices {
		username := coaches[i%len(coaches)].Username
		if i%5 == 4 {
			username = "coordinator." + cfg.Region + ".demo"
		}
		r, err := client.Open(ctx, filepath.Join(dir, fmt.Sprintf("device-%02d.db", i)), client.Options{BaseURL: app.Server.URL(), PageSize: 500})
		if err != nil {
			return rep, err
		}
		defer r.Close()
		if _, err := r.Login(ctx, username, DemoPassword, fmt.Sprintf("sim %d", i)); err != nil {
			return rep, fmt.Errorf("login %s: %w", username, err)
		}
		if _, err := r.Sync(ctx); err != nil {
			return rep, fmt.Errorf("first sync of device %d: %w", i, err)
		}
		devices[i] = r
	}
	type made struct {
		key crdt.Key
		hlc string
	}
	var writes []made
	record := func(res client.PushResult) {
		rep.Pushed += res.Sent
		rep.Applied += res.Applied
		rep.Ignored += res.Ignored
		rep.Rejected += len(res.Rejected)
		rep.Quarantined += len(res.Quarantined)
	}
	for rep.Writes < cfg.Writes {
		d := devices[rnd.IntN(len(devices))]
		switch p := rnd.IntN(100); {
		case p < 80:
			rows, coll, err := pickRows(ctx, d, rnd)
			if err != nil {
				return rep, err
			}
			if len(rows) == 0 {
				continue
			}
			row := rows[rnd.IntN(len(rows))]
			f := simWritable[coll][rnd.IntN(len(simWritable[coll]))]
			if err := d.Write(ctx, coll, row.ID, f.field, f.value(rnd)); err != nil {
				return rep, fmt.Errorf("write: %w", err)
			}
			st, err := d.State(ctx)
			if err != nil {
				return rep, err
			}
			k := crdt.Key{Collection: coll, ID: row.ID, Field: f.field}
			writes = append(writes, made{k, st[k].HLC})
			rep.Writes++
		case p < 90:
			res, err := d.Push(ctx)
			if err != nil {
				return rep, fmt.Errorf("push: %w", err)
			}
			record(res)
		default:
			if _, err := d.Pull(ctx); err != nil {
				return rep, fmt.Errorf("pull: %w", err)
			}
		}
	}
	for round := 0; round < 2; round++ {
		for _, i := range rnd.Perm(len(devices)) {
			res, err := devices[i].Sync(ctx)
			if err != nil {
				return rep, fmt.Errorf("final sync of device %d: %w", i, err)
			}
			record(res.Push)
		}
	}

	// The server's state, and every write it kept.
	server := map[crdt.Key]protocol.Change{}
	if err := region.Scan(ctx, func(c protocol.Change) error {
		server[crdt.Key{Collection: c.Collection, ID: c.ID, Field: c.Field}] = c
		return nil
	}); err != nil {
		return rep, err
	}
	rep.Fields = len(server)
	kept := map[made]bool{}
	rows := map[crdt.Key]bool{}
	for _, w := range writes {
		rows[crdt.Key{Collection: w.key.Collection, ID: w.key.ID}] = true
	}
	for k := range rows {
		hist, err := region.History(ctx, k.Collection, k.ID)
		if err != nil {
			return rep, err
		}
		for _, h := range hist {
			kept[made{crdt.Key{Collection: k.Collection, ID: k.ID, Field: h.Field}, h.HLC}] = true
		}
	}
	quarantined, err := region.Quarantine(ctx, "")
	if err != nil {
		return rep, err
	}
	for _, q := range quarantined {
		kept[made{crdt.Key{Collection: q.Collection, ID: q.RowID, Field: q.Field}, q.HLC}] = true
	}
	for _, w := range writes {
		if !kept[w] {
			rep.Lost++
		}
	}
	for _, d := range devices {
		if !sameAsServer(ctx, d, region, server) {
			rep.Diverged++
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// pickRows chooses a collection the device has rows of and returns them.
func pickRows(ctx context.Context, d *client.Replica, rnd *rand.Rand) ([]client.Row, string, error) {
	colls := make([]string, 0, len(simWritable))
	for c := range simWritable {
		colls = append(colls, c)
	}
	sort.Strings(colls)
	coll := colls[rnd.IntN(len(colls))]
	if coll == "families" && d.User().Role != auth.RoleCoordinator {
		coll = "contacts"
	}
	rows, err := d.Query(ctx, coll)
	return rows, coll, err
}

// sameAsServer reports whether every field the device holds has the
// server's winning value, nothing is pending, and the device's checksum of
// every scope it holds equals the server's (so it also holds every field).
func sameAsServer(ctx context.Context, d *client.Replica, region *store.Region, server map[crdt.Key]protocol.Change) bool {
	st, err := d.State(ctx)
	if err != nil {
		return false
	}
	for k, c := range st {
		s, ok := server[k]
		if !ok || s.HLC != c.HLC || !jsonEqual(s.Value, c.Value) {
			return false
		}
	}
	if pending, err := d.Pending(ctx); err != nil || len(pending) > 0 {
		return false
	}
	sums, err := d.Checksums(ctx)
	if err != nil {
		return false
	}
	scopes, err := d.Scopes(ctx)
	if err != nil || len(scopes) == 0 {
		return false
	}
	for _, scope := range scopes {
		want, err := region.Checksum(ctx, scope)
		if err != nil || sums[scope] != want {
			return false
		}
	}
	return true
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
