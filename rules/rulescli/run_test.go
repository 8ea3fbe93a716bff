package rulescli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const regions = "../regions"

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// copyDir copies the shipped regions into a temp dir.
func copyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, region := range []string{"kempen", "maasland"} {
		os.MkdirAll(filepath.Join(dir, region), 0o755)
		for _, f := range []string{"region.yaml", "intake.yaml", "capacity.yaml", "signals.yaml"} {
			b, err := os.ReadFile(filepath.Join(regions, region, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, region, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lineOf returns the 1-based line of the first occurrence of substr in path.
func lineOf(t *testing.T, path, substr string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), substr)
	if i < 0 {
		t.Fatalf("%s has no %q", path, substr)
	}
	return strings.Count(string(b[:i]), "\n") + 1
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestCheck_ShippedRulesPass(t *testing.T) {
	code, out, errOut := run(t, "", "check", "--dir", regions)
	if code != 0 || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestCheck_ErrorExitsOneWithFileLineColIDMessage(t *testing.T) {
	dir := copyDir(t)
	edit(t, filepath.Join(dir, "maasland", "intake.yaml"), "when: referral.consent", "when: referral.consentt")
	code, out, _ := run(t, "", "check", "--dir", dir)
	if code != 1 {
		t.Errorf("exit: got %d, want 1", code)
	}
	want := fmt.Sprintf("%s:%d:22: consent: unknown name referral.consentt", filepath.Join(dir, "maasland", "intake.yaml"),
		lineOf(t, filepath.Join(dir, "maasland", "intake.yaml"), "when: referral.consentt"))
	if !strings.HasPrefix(out, want) {
		t.Errorf("got %q, want prefix %q", out, want)
	}
}

func TestTest_ShippedRulesPassAndCloseWithTheCount(t *testing.T) {
	code, out, _ := run(t, "", "test", "--dir", regions)
	if code != 0 {
		t.Errorf("exit: got %d, want 0\n%s", code, out)
	}
	if got, want := lastLine(out), "61 passed, 0 failed"; got != want {
		t.Errorf("last line: got %q, want %q", got, want)
	}
	_, out, _ = run(t, "", "test", "--dir", regions, "--region", "maasland")
	if got, want := lastLine(out), "22 passed, 0 failed"; got != want {
		t.Errorf("last line for maasland: got %q, want %q", got, want)
	}
}

func TestTest_FailingTestExitsOneAndIsCounted(t *testing.T) {
	dir := copyDir(t)
	edit(t, filepath.Join(dir, "kempen", "capacity.yaml"), "mandated_reserve: {value: 60", "mandated_reserve: {value: 70")
	code, out, _ := run(t, "", "test", "--dir", dir, "--region", "kempen")
	if code != 1 {
		t.Errorf("exit: got %d, want 1", code)
	}
	if got, want := lastLine(out), "38 passed, 1 failed"; got != want {
		t.Errorf("last line: got %q, want %q\n%s", got, want, out)
	}
	want := fmt.Sprintf(`capacity.yaml:%d:5: capacity: test "Grens: 139 niet-gemandateerde starts, nog één plaats": ok: got false, want true`,
		lineOf(t, filepath.Join(dir, "kempen", "capacity.yaml"), `- name: "Grens: 139`))
	if !strings.Contains(out, want) {
		t.Errorf("no positioned failure in:\n%s", out)
	}
}

func TestTest_UnknownRegionExitsOne(t *testing.T) {
	if code, _, _ := run(t, "", "test", "--dir", regions, "--region", "nergens"); code != 1 {
		t.Errorf("exit: got %d, want 1", code)
	}
}

func TestEval_ReadsStdinAndPrintsTheExplainedDecision(t *testing.T) {
	in := `{"today":"2026-03-02","referral":{"received_on":"2026-02-27","municipality":"Beerse","nrtj_requested":true},
	"family":{"members":[{"role":"parent","age_years":29,"willing":true},{"role":"child","age_years":17}]}}`
	code, out, errOut := run(t, in, "eval", "--dir", regions, "--region", "kempen", "--ruleset", "intake", "--input", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var d struct {
		Region   string   `json:"region"`
		Version  string   `json:"version"`
		Eligible bool     `json:"eligible"`
		Reasons  []string `json:"reasons"`
		Priority float64  `json:"priority"`
		Exclude  []struct {
			ID     string `json:"id"`
			Result bool   `json:"result"`
		} `json:"exclude"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d.Eligible || strings.Join(d.Reasons, ",") != "nrtj_request" || d.Priority != 3 || len(d.Version) != 64 || len(d.Exclude) != 5 {
		t.Errorf("got %+v", d)
	}
}

func TestEval_ReadsAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.json")
	os.WriteFile(path, []byte(`{"today":"2026-03-02","trajectory":{"status":"active","days_since_last_contact":12}}`), 0o644)
	code, out, errOut := run(t, "", "eval", "--dir", regions, "--region", "maasland", "--ruleset", "signals", "--input", path)
	if code != 0 || !strings.Contains(out, `"fired": [`) || !strings.Contains(out, `"no_contact_10_days"`) {
		t.Errorf("exit %d, out %s, err %s", code, out, errOut)
	}
}

func TestEval_BadInputExitsOneWithAMessage(t *testing.T) {
	tests := []struct {
		name, ruleset, input, want string
	}{
		{"unknown key", "intake", `{"referal":{}}`, `unknown field "referal"`},
		{"not JSON", "intake", `{`, "intake input"},
		{"unknown ruleset", "quota", `{}`, `unknown ruleset "quota"`},
		{"bad date", "capacity", `{"today":"morgen"}`, `invalid date "morgen"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(t, tt.input, "eval", "--dir", regions, "--region", "kempen", "--ruleset", tt.ruleset, "--input", "-")
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q, want it to contain %q", code, errOut, tt.want)
			}
		})
	}
}

func TestDryrun_ListsTheDecisionsThatWouldChange(t *testing.T) {
	newDir := copyDir(t)
	// The team drops the exclusion for other help within the month, and
	// updates the test that pinned it.
	intake := filepath.Join(newDir, "kempen", "intake.yaml")
	edit(t, intake, "      when: referral.other_help_within_month\n", "      when: referral.other_help_within_month && referral.mandated\n")
	edit(t, intake, "expect: {eligible: false, reasons: [other_help_within_month]}", "expect: {eligible: true, reasons: []}")
	data := filepath.Join(t.TempDir(), "referrals.json")
	os.WriteFile(data, []byte(`[
	 {"id":"r1","region":"kempen","today":"2026-03-02","referral":{"municipality":"Lille","other_help_within_month":true},
	  "family":{"members":[{"role":"parent","age_years":40,"willing":true},{"role":"child","age_years":6}]}},
	 {"id":"r2","region":"kempen","today":"2026-03-02","referral":{"municipality":"Lille","crisis":true},
	  "family":{"members":[{"role":"parent","age_years":40,"willing":true},{"role":"child","age_years":6}]}},
	 {"id":"m1","region":"maasland","today":"2026-03-02","referral":{"municipality":"Maaseik","consent":true}}
	]`), 0o644)
	code, out, errOut := run(t, "", "dryrun", "--dir", regions, "--against", newDir, "--data", data)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "kempen r1: eligible false -> true; reasons [other_help_within_month] -> []; priority 0 -> 0\n1 of 3 decisions would change\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	code, out, _ = run(t, "", "dryrun", "--dir", regions, "--against", newDir, "--data", data, "--json", "--region", "kempen")
	if code != 0 || !strings.Contains(out, `"id": "r1"`) || strings.Contains(out, `"id": "r2"`) {
		t.Errorf("json: exit %d\n%s", code, out)
	}
}

func TestRun_BadUsageExitsTwo(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"check"},
		{"eval", "--dir", regions, "--region", "kempen"},
		{"test", "--dir", regions, "extra"},
	} {
		if code, _, _ := run(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
