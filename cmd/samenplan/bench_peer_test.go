package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/internal/loadtest"
)

// TestBenchPeer_CountsEveryRecordAndByte runs the peer workload small
// (1,000 records, one batch of 1,000) against the real server: the Samenplan
// half always, pouchdb-server too when bench/peer is installed (make bench).
// Every phase must move every record, in the requests the batch sizes imply,
// and every phase's bytes must be counted.
func TestBenchPeer_CountsEveryRecordAndByte(t *testing.T) {
	root := repoRoot(t)
	cfg := PeerConfig{Dir: filepath.Join(root, "bench", "peer"), Records: 1_000, Batch: 1_000, Region: "kempen",
		Rules: filepath.Join(root, "rules", "regions")}
	if _, err := os.Stat(pouchBin(cfg.Dir)); err != nil {
		t.Logf("pouchdb-server half skipped: %s not installed (make bench installs it)", cfg.Dir)
		cfg.Dir, cfg.reason = "none", "not installed"
	}
	var progress bytes.Buffer
	rep, err := BenchPeer(context.Background(), cfg, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.Print(&table)
	t.Log("\n" + table.String())

	// 1,000 records × 8 fields exceed protocol.MaxBatch (5,000): two pushes
	// of 500 records, pull pages of 4,000 fields.
	if got, want := rep.PushFields, 4_000; got != want {
		t.Errorf("Samenplan push size = %d fields, want %d", got, want)
	}
	sp := rep.Samenplan
	for _, c := range []struct {
		name           string
		ph             PeerPhase
		requests       int
		minUp, minDown int64
	}{
		// Each pushed field carries at least its 36-byte id (the requests
		// are plain); each update its id and the new follow_up. Answers may
		// come gzipped, but no gzip packs a record's random id (122 bits)
		// in under 15 bytes.
		{"push", sp.Push, 2, 1_000 * 8 * 36, 1},
		// 8,000 contact fields and the 10 families' 100 fields, 4,000 a page.
		{"pull", sp.Pull, 3, 1, 1_000 * 15},
		{"update", sp.Update, 1, 1_000 * (36 + 40), 1},
	} {
		if c.ph.Records != 1_000 || c.ph.Requests != c.requests {
			t.Errorf("Samenplan %s: %d records in %d requests, want 1000 in %d", c.name, c.ph.Records, c.ph.Requests, c.requests)
		}
		if c.ph.Sent < c.minUp || c.ph.Received < c.minDown {
			t.Errorf("Samenplan %s: %d bytes up, %d down counted; want at least %d and %d", c.name, c.ph.Sent, c.ph.Received, c.minUp, c.minDown)
		}
		if c.ph.Dur <= 0 || c.ph.PerSec() <= 0 {
			t.Errorf("Samenplan %s: not timed (%s)", c.name, c.ph.Dur)
		}
	}
	if sp.Update.Sent >= sp.Push.Sent/4 {
		t.Errorf("Samenplan sent %d bytes for one field a record, %d for eight: not a one-field update", sp.Update.Sent, sp.Push.Sent)
	}
	if rep.SamenplanPullFields != 1_000*8+100 {
		t.Errorf("Samenplan pull: %d fields, want %d", rep.SamenplanPullFields, 1_000*8+100)
	}
	if cfg.Dir == "none" {
		if !strings.Contains(table.String(), "skipped: not installed") {
			t.Error("the table does not say the peer was skipped")
		}
		return
	}
	pd := rep.Pouch
	for _, c := range []struct {
		name     string
		ph       PeerPhase
		requests int
	}{
		{"push", pd.Push, 1}, {"pull", pd.Pull, 2}, {"update", pd.Update, 1}, // 1 page full, 1 empty
	} {
		if c.ph.Records != 1_000 || c.ph.Requests != c.requests {
			t.Errorf("pouchdb-server %s: %d records in %d requests, want 1000 in %d", c.name, c.ph.Records, c.ph.Requests, c.requests)
		}
		if c.ph.Sent == 0 || c.ph.Received == 0 || c.ph.Dur <= 0 {
			t.Errorf("pouchdb-server %s: %d bytes up, %d down, %s: not counted", c.name, c.ph.Sent, c.ph.Received, c.ph.Dur)
		}
	}
	// The whole document goes up again for a one-field change.
	if pd.Update.Sent < pd.Push.Sent*9/10 {
		t.Errorf("pouchdb-server update sent %d bytes, push %d: whole documents expected", pd.Update.Sent, pd.Push.Sent)
	}
	for _, row := range []string{"ratio push Samenplan ÷ pouchdb-server", "ratio pull Samenplan ÷ pouchdb-server",
		"ratio update Samenplan ÷ pouchdb-server", "update bytes Samenplan ÷ pouchdb-server"} {
		if !strings.Contains(table.String(), row) {
			t.Errorf("the table has no row %q", row)
		}
	}
}

// TestBenchPeer_PullCountMismatchFails: the pull checks its count, so a
// workload that lost records cannot print a throughput.
func TestBenchPeer_PullCountMismatchFails(t *testing.T) {
	root := repoRoot(t)
	cfg := PeerConfig{Region: "kempen", Rules: filepath.Join(root, "rules", "regions")}
	sp, err := openPeerSamenplan(context.Background(), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	recs := make([]peerRecord, 10)
	for i := range recs {
		cs := loadtest.Contacts(nil, sp.trajs[i%len(sp.trajs)], sp.coachID, 1)
		recs[i] = peerRecord{id: cs[0].ID, fields: cs}
	}
	push := sp.pushSteps(recs, 5)
	for more := true; more; {
		var err error
		if _, more, _, err = push(); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.newPuller(); err != nil {
		t.Fatal(err)
	}
	pull := sp.pullSteps(4_000, len(recs)+1)
	_, more, _, err := pull()
	if err == nil || more {
		t.Fatalf("pulling 10 records where 11 were expected: more %v, err %v; want an error", more, err)
	}
	if !strings.Contains(err.Error(), "pulled 10 contacts, pushed 11") {
		t.Errorf("err = %v", err)
	}
	// And the update check notices a value that is not the new one.
	other, _ := json.Marshal("iets anders")
	update := sp.updateSteps(recs, 10, other)
	if _, _, _, err := update(); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal("de nieuwe tekst")
	if err := sp.checkUpdated(context.Background(), recs, want); err == nil {
		t.Error("checkUpdated accepted a follow_up that is not the new text")
	}
}

// TestInterleave_AdvancesTheSlowerSide: steps alternate by records done,
// so a side with smaller steps takes more turns, and both finish.
func TestInterleave_AdvancesTheSlowerSide(t *testing.T) {
	var order []string
	steps := func(name string, per, total int) peerStepper {
		done := 0
		return func() (int, bool, time.Duration, error) {
			order = append(order, name)
			done += per
			return per, done < total, time.Millisecond, nil
		}
	}
	a := &peerRun{stepper: steps("a", 500, 2_000), wire: &wireCounter{}}
	b := &peerRun{stepper: steps("b", 1_000, 2_000), wire: &wireCounter{}}
	if err := interleave(a, b); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, ""), "ababaa"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
	if a.phase().Records != 2_000 || a.phase().Requests != 4 || b.phase().Requests != 2 || a.phase().Dur != 4*time.Millisecond {
		t.Errorf("a %+v, b %+v", a.phase(), b.phase())
	}
}

// TestBenchPeer_GzipRequestsApply: with --peer-gzip-requests the Samenplan
// client's pushes go gzipped, are applied, and cost fewer bytes.
func TestBenchPeer_GzipRequestsApply(t *testing.T) {
	root := repoRoot(t)
	sp, err := openPeerSamenplan(context.Background(), PeerConfig{Region: "kempen", Rules: filepath.Join(root, "rules", "regions")}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	sent := map[bool]int64{}
	for _, gz := range []bool{false, true} {
		sp.gzipRequests = gz
		before := sp.wire.sent.Load()
		if _, _, _, err := sp.pushSteps(peerRecords(sp, 50), 50)(); err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		sent[gz] = sp.wire.sent.Load() - before
	}
	if sent[true] <= 0 || sent[true] >= sent[false]/2 {
		t.Errorf("a push of 400 fields sent %d bytes gzipped, %d plain", sent[true], sent[false])
	}
	if err := sp.newPuller(); err != nil {
		t.Fatal(err)
	}
	if n, more, _, err := sp.pullSteps(4_000, 100)(); err != nil || more || n != 100 {
		t.Errorf("pull after the pushes: %d records, more %v, %v; want 100", n, more, err)
	}
}

// TestPeerConfig_RunsThePeerOnlyWhenInstalled: which half runs, and the
// reason printed when pouchdb-server does not.
func TestPeerConfig_RunsThePeerOnlyWhenInstalled(t *testing.T) {
	installed := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(pouchBin(installed)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pouchBin(installed), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := t.TempDir()
	for _, c := range []struct {
		args       []string
		quick      bool
		dir        string // "" = the --peer given
		reasonHas  string
		usageError bool
	}{
		{args: []string{"--peer", installed}, dir: installed},
		{args: []string{"--peer", missing}, dir: "none", reasonHas: "not installed"},
		{args: []string{"--peer", "none"}, dir: "none", reasonHas: "--peer none"},
		{args: nil, quick: true, dir: "none", reasonHas: "--quick"},
		{args: []string{"--peer", installed}, quick: true, dir: installed},
		{args: []string{"--peer-records", "0"}, usageError: true},
	} {
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		cfg := peerFlags(fs, c.quick)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		err := cfg.check(c.quick, fs)
		if c.usageError {
			if !errors.Is(err, errUsage) {
				t.Errorf("%v: err = %v, want a usage error", c.args, err)
			}
			continue
		}
		if _, nodeErr := exec.LookPath("node"); nodeErr != nil && c.dir == installed {
			c.dir, c.reasonHas = "none", "no node"
		}
		if err != nil || cfg.Dir != c.dir || !strings.Contains(cfg.reason, c.reasonHas) || (c.reasonHas == "") != (cfg.reason == "") {
			t.Errorf("%v (quick %v): dir %q, reason %q, %v; want dir %q, reason with %q", c.args, c.quick, cfg.Dir, cfg.reason, err, c.dir, c.reasonHas)
		}
	}
}
