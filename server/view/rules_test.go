package view

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
)

// switchable is a RuleSource whose kempen rules a test swaps.
type switchable struct {
	base   RuleSource
	kempen atomic.Pointer[rules.Region]
}

func (s *switchable) Region(name string) (*rules.Region, bool) {
	if name == "kempen" {
		if r := s.kempen.Load(); r != nil {
			return r, true
		}
	}
	return s.base.Region(name)
}

// patchedKempen loads the shipped kempen rules with one text replaced in a
// file.
func patchedKempen(t *testing.T, file, old, new string) *rules.Region {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(rulesDir, "kempen")
	if err := os.MkdirAll(filepath.Join(dir, "kempen"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == file {
			if !strings.Contains(string(b), old) {
				t.Fatalf("%s has no %q", file, old)
			}
			b = []byte(strings.Replace(string(b), old, new, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, "kempen", e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, diags := rules.LoadRegion(dir, "kempen")
	if r == nil {
		t.Fatalf("patched rules do not load: %v", diags)
	}
	return r
}

func TestModel_RulesChangedReevaluatesTheRegion(t *testing.T) {
	f := newFixture(t)
	src := &switchable{base: f.rules}
	f.model = New(f.stores, src, f.clock.Now)
	if err := f.model.Build(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.hook.Store(f.model)

	fam, traj, coach, other, ref := newID(), newID(), newID(), newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Sleedoorn", true),
		trajectoryRow("kempen", traj, fam, coach, 60), goalRow(newID(), traj, "wonen", "open"),
		contactRow(newID(), traj, coach, 15))...)
	f.write("kempen", append(familyRows("kempen", other, "Gezin Zegge", true), referralRow("kempen", ref, other, 2))...)
	c, _ := f.model.Case(fam)
	if got := signalIDs(c.Signals); !contains(got, "no_contact_10_days") {
		t.Fatalf("signals = %v, want no_contact_10_days", got)
	}
	before, _ := f.model.Info("kempen")

	events := f.model.Subscribe(t.Context())
	src.kempen.Store(patchedKempen(t, "signals.yaml", "max_days_without_contact: {value: 10", "max_days_without_contact: {value: 30"))
	f.model.RulesChanged("kempen")

	c, _ = f.model.Case(fam)
	if got := signalIDs(c.Signals); contains(got, "no_contact_10_days") {
		t.Errorf("signals with 30 days allowed = %v, want no no_contact_10_days", got)
	}
	info, _ := f.model.Info("kempen")
	if info.RulesVersion == before.RulesVersion || info.RulesVersion != src.kempen.Load().Version {
		t.Errorf("rules version = %s, want the patched %s", info.RulesVersion, src.kempen.Load().Version)
	}
	r, _ := f.model.Referral(ref)
	if r.Eligibility.RegionVersion != info.RulesVersion {
		t.Errorf("the open referral was decided by %s, want %s", r.Eligibility.RegionVersion, info.RulesVersion)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case e := <-events:
			got[e.FamilyID] = true
		case <-time.After(time.Second):
			t.Fatalf("events for %v, want both families", got)
		}
	}

	// A version activated without RulesChanged is noticed by the next
	// commit, which evaluates the whole region with it.
	src.kempen.Store(patchedKempen(t, "intake.yaml", "points_per_waiting_day: {value: 1", "points_per_waiting_day: {value: 5"))
	f.write("kempen", row{"families", fam, map[string]any{"label": "Gezin Sleedoorn-Ereprijs"}})
	r, _ = f.model.Referral(ref)
	if r.Eligibility.Priority != 10 || r.Eligibility.RegionVersion != src.kempen.Load().Version {
		t.Errorf("priority = %v by %s, want 10 by the new version", r.Eligibility.Priority, r.Eligibility.RegionVersion)
	}
}
