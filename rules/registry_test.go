package rules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
)

var fixedNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func newTestRegistry(t *testing.T) (*Registry, string) {
	t.Helper()
	dir := copyRegions(t)
	reg := NewRegistry(dir, RegistryOptions{Now: func() time.Time { return fixedNow }, Debounce: 50 * time.Millisecond})
	if err := reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg, dir
}

func crisisLabel(t *testing.T, reg *Registry) string {
	t.Helper()
	r, ok := reg.Region("kempen")
	if !ok {
		t.Fatal("kempen not active")
	}
	for _, c := range r.EvalIntake(IntakeInput{}).Exclude {
		if c.ID == "crisis" {
			return c.Label
		}
	}
	t.Fatal("no crisis exclude")
	return ""
}

// waitFor polls cond every 10ms until it holds or 2s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not within 2s: %s", what)
}

func TestRegistry_LoadActivatesPassingRegionsAndRecordsThem(t *testing.T) {
	reg, _ := newTestRegistry(t)
	for _, name := range []string{"kempen", "maasland"} {
		st, ok := reg.Status(name)
		if !ok {
			t.Fatalf("%s: no status", name)
		}
		if st.LoadStatus != LoadOK || st.ActiveVersion == "" || st.Source != SourceStartup {
			t.Errorf("%s: got status %+v", name, st)
		}
		if st.TestsFailed != 0 || st.TestsPassed == 0 {
			t.Errorf("%s: tests passed %d failed %d", name, st.TestsPassed, st.TestsFailed)
		}
		hist, err := reg.History(context.Background(), name)
		if err != nil || len(hist) != 1 || hist[0].Hash != st.ActiveVersion || !hist[0].ActivatedAt.Equal(fixedNow) {
			t.Errorf("%s: history %v %v", name, hist, err)
		}
	}
}

func TestRegistry_WatchSwapsAnEditWithin2sAndKeepsTheLastGoodOnABrokenEdit(t *testing.T) {
	reg, dir := newTestRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	<-reg.Watching()
	before, _ := reg.Status("kempen")
	path := filepath.Join(dir, "kempen", "intake.yaml")
	original := readFile(t, path)

	writeFile(t, path, strings.Replace(original, `label: "Nood aan crisishulp"`, `label: "Crisishulp is nodig"`, 1))
	start := time.Now()
	waitFor(t, "the edited label is active", func() bool { return crisisLabel(t, reg) == "Crisishulp is nodig" })
	t.Logf("new version active after %v", time.Since(start))
	good, _ := reg.Status("kempen")
	if good.ActiveVersion == before.ActiveVersion || good.Source != SourceWatch || good.LoadStatus != LoadOK {
		t.Errorf("status after edit: %+v", good)
	}

	broken := strings.Replace(original, "when: referral.crisis\n", "when: referral.crisiss\n", 1)
	writeFile(t, path, broken)
	waitFor(t, "the broken edit is reported", func() bool {
		st, _ := reg.Status("kempen")
		return st.LoadStatus == LoadError
	})
	st, _ := reg.Status("kempen")
	if st.ActiveVersion != good.ActiveVersion {
		t.Errorf("active version: got %s, want the last good %s", st.ActiveVersion, good.ActiveVersion)
	}
	if got := crisisLabel(t, reg); got != "Crisishulp is nodig" {
		t.Errorf("active label: got %q, want the last good one", got)
	}
	if len(st.Errors) == 0 || !strings.Contains(st.Errors[0].String(), "intake.yaml:") || !strings.Contains(st.Errors[0].String(), ": crisis: unknown name referral.crisiss (known: received_on, waiting_days") {
		t.Errorf("errors: got %v", st.Errors)
	}
	if st.AttemptedVersion == "" || st.AttemptedVersion == st.ActiveVersion {
		t.Errorf("attempted version: got %q", st.AttemptedVersion)
	}

	// A file that compiles but fails its own tests is also refused.
	writeFile(t, path, strings.Replace(original, "max_waiting_points: {value: 28", "max_waiting_points: {value: 21", 1))
	waitFor(t, "the failing tests are reported", func() bool {
		st, _ := reg.Status("kempen")
		return st.TestsFailed > 0
	})
	if st, _ := reg.Status("kempen"); st.ActiveVersion != good.ActiveVersion || st.LoadStatus != LoadError {
		t.Errorf("a region with failing tests was activated: %+v", st)
	}

	// Fixing the file brings the region back to ok.
	writeFile(t, path, original)
	waitFor(t, "the fixed file is active", func() bool {
		st, _ := reg.Status("kempen")
		return st.LoadStatus == LoadOK && st.ActiveVersion == before.ActiveVersion
	})
}

func TestRegistry_WatchPicksUpANewRegionFolder(t *testing.T) {
	reg, dir := newTestRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go reg.Watch(ctx)
	<-reg.Watching()
	folder := filepath.Join(dir, "testland")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	for rs, content := range minimalFiles(nil) {
		writeFile(t, filepath.Join(folder, rs+".yaml"), string(content))
	}
	waitFor(t, "testland is active", func() bool { _, ok := reg.Region("testland"); return ok })
}

func TestRegistry_PutValidatesWritesAndActivates(t *testing.T) {
	reg, dir := newTestRegistry(t)
	ctx := context.Background()
	path := filepath.Join(dir, "kempen", "intake.yaml")
	original := readFile(t, path)
	edited := strings.Replace(original, `label: "Nood aan crisishulp"`, `label: "Crisis"`, 1)

	st, err := reg.Put(ctx, "kempen", "intake", []byte(edited), "coord.kempen")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != edited {
		t.Error("the file on disk is not the put content")
	}
	if st.ActivatedBy != "coord.kempen" || st.Source != SourcePut || crisisLabel(t, reg) != "Crisis" {
		t.Errorf("status: %+v", st)
	}
	hist, _ := reg.History(ctx, "kempen")
	if len(hist) != 2 || hist[0].ActivatedBy != "coord.kempen" || hist[0].Hash != st.ActiveVersion {
		t.Errorf("history: %+v", hist)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "kempen")); len(entries) != 4 {
		t.Errorf("folder has %d entries, want the 4 rule files (no temp files left)", len(entries))
	}
}

func TestRegistry_PutOfABrokenFileChangesNothing(t *testing.T) {
	reg, dir := newTestRegistry(t)
	ctx := context.Background()
	path := filepath.Join(dir, "kempen", "intake.yaml")
	original := readFile(t, path)
	before, _ := reg.Status("kempen")

	_, err := reg.Put(ctx, "kempen", "intake", []byte(strings.Replace(original, "referral.crisis\n", "referral.crisis +\n", 1)), "coord")
	var ve *ValidationError
	if !errors.As(err, &ve) || samenplan.ErrorCode(err) != samenplan.EINVALID {
		t.Fatalf("got %v, want a ValidationError with code invalid", err)
	}
	if len(ve.Diagnostics) == 0 || ve.Diagnostics[0].RuleID != "crisis" {
		t.Errorf("diagnostics: %v", ve.Diagnostics)
	}
	if got := readFile(t, path); got != original {
		t.Error("a rejected put changed the file")
	}
	if st, _ := reg.Status("kempen"); st.ActiveVersion != before.ActiveVersion || st.LoadStatus != LoadOK {
		t.Errorf("status changed: %+v", st)
	}
}

func TestRegistry_PutRejectsUnknownRegionAndRuleset(t *testing.T) {
	reg, _ := newTestRegistry(t)
	ctx := context.Background()
	tests := []struct {
		region, ruleset, code string
	}{
		{"nergens", "intake", samenplan.ENOTFOUND},
		{"../kempen", "intake", samenplan.EINVALID},
		{"kempen", "../../etc/passwd", samenplan.EINVALID},
		{"kempen", "extra", samenplan.EINVALID},
	}
	for _, tt := range tests {
		_, err := reg.Put(ctx, tt.region, tt.ruleset, []byte("x: 1\n"), "coord")
		if got := samenplan.ErrorCode(err); got != tt.code {
			t.Errorf("put %s/%s: got code %q (%v), want %q", tt.region, tt.ruleset, got, err, tt.code)
		}
	}
}

func TestRegistry_RollbackRestoresAnEarlierVersion(t *testing.T) {
	reg, dir := newTestRegistry(t)
	ctx := context.Background()
	path := filepath.Join(dir, "kempen", "intake.yaml")
	original := readFile(t, path)
	first, _ := reg.Status("kempen")
	if _, err := reg.Put(ctx, "kempen", "intake", []byte(strings.Replace(original, `label: "Nood aan crisishulp"`, `label: "Crisis"`, 1)), "coord"); err != nil {
		t.Fatal(err)
	}
	st, err := reg.Rollback(ctx, "kempen", first.ActiveVersion, "coord")
	if err != nil {
		t.Fatal(err)
	}
	if st.ActiveVersion != first.ActiveVersion || st.Source != SourceRollback || crisisLabel(t, reg) != "Nood aan crisishulp" {
		t.Errorf("status after rollback: %+v", st)
	}
	if got := readFile(t, path); got != original {
		t.Error("rollback did not restore the file")
	}
	if hist, _ := reg.History(ctx, "kempen"); len(hist) != 3 || hist[0].Source != SourceRollback {
		t.Errorf("history: %d entries, newest %+v", len(hist), hist[0])
	}
	if _, err := reg.Rollback(ctx, "kempen", strings.Repeat("0", 64), "coord"); samenplan.ErrorCode(err) != samenplan.ENOTFOUND {
		t.Errorf("rollback to an unknown hash: got %v, want not_found", err)
	}
}

func TestRegistry_ReadersNeverSeeAHalfSwappedRegion(t *testing.T) {
	reg, dir := newTestRegistry(t)
	ctx := context.Background()
	original := readFile(t, filepath.Join(dir, "kempen", "intake.yaml"))
	variants := [][]byte{
		[]byte(strings.Replace(original, `label: "Nood aan crisishulp"`, `label: "A"`, 1)),
		[]byte(strings.Replace(original, `label: "Nood aan crisishulp"`, `label: "B"`, 1)),
	}
	in := IntakeInput{Today: NewDate(2026, 3, 2), Referral: ReferralFacts{Municipality: "Turnhout", Crisis: true},
		Family: FamilyFacts{Members: []MemberFacts{{Role: "parent", AgeYears: 30, Willing: true}, {Role: "child", AgeYears: 3}}}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, _ := reg.Region("kempen")
				d := r.EvalIntake(in)
				if d.Eligible || len(d.Reasons) != 1 || d.Reasons[0] != "crisis" {
					t.Errorf("got %+v", d)
					return
				}
			}
		}()
	}
	for i := range 10 {
		if _, err := reg.Put(ctx, "kempen", "intake", variants[i%2], "coord"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestRegistry_StartupOverABrokenFileKeepsTheLastRecordedVersion(t *testing.T) {
	dir := copyRegions(t)
	versions := &MemoryVersions{}
	opts := RegistryOptions{Versions: versions, Now: func() time.Time { return fixedNow }}
	first := NewRegistry(dir, opts)
	if err := first.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	good, _ := first.Status("kempen")
	writeFile(t, filepath.Join(dir, "kempen", "intake.yaml"), "ruleset: intake\nregion: kempen\neligibility: [\n")

	restarted := NewRegistry(dir, opts)
	if err := restarted.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := restarted.Region("kempen"); !ok {
		t.Fatal("kempen has no active rules after a restart over a broken file")
	}
	st, _ := restarted.Status("kempen")
	if st.ActiveVersion != good.ActiveVersion || st.LoadStatus != LoadError || len(st.Errors) == 0 {
		t.Fatalf("status after restart: active %s (want %s), load %s, %d errors", st.ActiveVersion, good.ActiveVersion, st.LoadStatus, len(st.Errors))
	}
}
