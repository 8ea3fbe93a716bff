package rules

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/samenplan/samenplan"
)

// TestRegistryCheck_BrokenFileIsDiagnosedAndNothingChanges: a check of a
// file with an unknown name reports it at its line and column, runs no
// tests, and leaves the disk, the active version, the status and the
// history as they were.
func TestRegistryCheck_BrokenFileIsDiagnosedAndNothingChanges(t *testing.T) {
	reg, dir := newTestRegistry(t)
	path := filepath.Join(dir, "kempen", "intake.yaml")
	orig := readFile(t, path)
	before, _ := reg.Status("kempen")
	active, _ := reg.Region("kempen")
	broken := strings.Replace(orig, "when: referral.crisis", "when: referral.crisiss", 1)

	c, err := reg.Check("kempen", RulesetIntake, []byte(broken))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := findDiag(c.Diagnostics, CodeUnknownName)
	if c.OK() || !ok {
		t.Fatalf("check of a broken file: ok %v, diagnostics %s", c.OK(), diagLines(c.Diagnostics))
	}
	line := lineOf(broken, "referral.crisiss")
	if d.File != path || d.Line != line || d.Column != strings.Index(strings.Split(broken, "\n")[line-1], "crisiss")+1 || d.RuleID != "crisis" {
		t.Errorf("diagnostic %+v, want %s line %d at crisiss, rule crisis", d, path, line)
	}
	if len(c.Tests) != 0 || c.Passed+c.Failed != 0 || c.Version != RegionVersion(withFile(t, dir, RulesetIntake, broken)) {
		t.Errorf("tests %d (%d/%d), version %s", len(c.Tests), c.Passed, c.Failed, c.Version)
	}
	after, _ := reg.Status("kempen")
	now, _ := reg.Region("kempen")
	hist, _ := reg.History(context.Background(), "kempen")
	if readFile(t, path) != orig || now != active || !reflect.DeepEqual(after, before) || len(hist) != 1 {
		t.Errorf("a check changed something: disk same %v, region same %v, status %+v -> %+v, history %d",
			readFile(t, path) == orig, now == active, before, after, len(hist))
	}
}

// TestRegistryCheck_PassingFileCountsEveryTestOfTheRegion: a valid edit
// compiles, every test of the four files runs, and the version is the one
// Put would record.
func TestRegistryCheck_PassingFileCountsEveryTestOfTheRegion(t *testing.T) {
	reg, dir := newTestRegistry(t)
	orig := readFile(t, filepath.Join(dir, "kempen", "intake.yaml"))
	edited := orig + "\n# opmerking / a comment\n"
	c, err := reg.Check("kempen", RulesetIntake, []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	if !c.OK() || c.Failed != 0 || c.Passed == 0 || c.Passed != c.Region.TestCount() || len(c.Tests) != c.Passed {
		t.Fatalf("ok %v, passed %d, failed %d, tests %d: %s", c.OK(), c.Passed, c.Failed, len(c.Tests), diagLines(c.Diagnostics))
	}
	st, _ := reg.Status("kempen")
	if c.Passed != st.TestsPassed {
		t.Errorf("check ran %d tests, loading the region ran %d", c.Passed, st.TestsPassed)
	}
	if want := RegionVersion(withFile(t, dir, RulesetIntake, edited)); c.Version != want || c.Version == st.ActiveVersion {
		t.Errorf("version %s, want %s (not the active %s)", c.Version, want, st.ActiveVersion)
	}
	if _, err := reg.Put(context.Background(), "kempen", RulesetIntake, []byte(edited), "test"); err != nil {
		t.Fatal(err)
	}
	if st, _ := reg.Status("kempen"); st.ActiveVersion != c.Version {
		t.Errorf("Put activated %s, the check said %s", st.ActiveVersion, c.Version)
	}
}

// TestRegistryCheck_FailingTestMakesItNotOK: a file that compiles but
// breaks one of its tests is not OK, and says which test.
func TestRegistryCheck_FailingTestMakesItNotOK(t *testing.T) {
	reg, dir := newTestRegistry(t)
	orig := readFile(t, filepath.Join(dir, "kempen", "intake.yaml"))
	edited := strings.Replace(orig, "when: referral.crisis", "when: referral.crisis && referral.mandated", 1)
	c, err := reg.Check("kempen", RulesetIntake, []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	if c.OK() || c.Failed == 0 || c.Passed == 0 || c.Region != nil {
		t.Fatalf("ok %v, passed %d, failed %d", c.OK(), c.Passed, c.Failed)
	}
	d, ok := findDiag(c.Diagnostics, CodeTestFailed)
	if !ok || !strings.Contains(d.Message, "Crisis sluit altijd uit") {
		t.Errorf("no failed-test diagnostic naming the crisis test: %s", diagLines(c.Diagnostics))
	}
}

func TestRegistryCheck_RefusesWhatPutRefuses(t *testing.T) {
	reg, _ := newTestRegistry(t)
	for _, tc := range []struct {
		region, ruleset string
		content         []byte
		code            string
	}{
		{"kempen", "eligibility", []byte("x"), samenplan.EINVALID},
		{"Kempen!", RulesetIntake, []byte("x"), samenplan.EINVALID},
		{"nowhere", RulesetIntake, []byte("x"), samenplan.ENOTFOUND},
		{"kempen", RulesetIntake, make([]byte, MaxFileSize+1), samenplan.ETOOLARGE},
	} {
		if _, err := reg.Check(tc.region, tc.ruleset, tc.content); samenplan.ErrorCode(err) != tc.code {
			t.Errorf("Check(%s, %s): %v, want code %s", tc.region, tc.ruleset, err, tc.code)
		}
	}
}

func withFile(t *testing.T, dir, ruleset, content string) map[string][]byte {
	t.Helper()
	files, _ := ReadRegionFiles(dir, "kempen")
	files[ruleset] = []byte(content)
	return files
}

func lineOf(s, substr string) int {
	return strings.Count(s[:strings.Index(s, substr)], "\n") + 1
}
