package rules

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// hashRE blanks version hashes so that editing a comment in a shipped rule
// file does not churn every golden file; the versions have their own tests.
var hashRE = regexp.MustCompile(`"(version|region_version)": "[0-9a-f]{64}"`)

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = hashRE.ReplaceAll(got, []byte(`"$1": "<sha256>"`))
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestEval_ExplainedDecisionsMatchGoldenFiles(t *testing.T) {
	set, diags, err := Load("regions")
	if err != nil || HasErrors(diags) {
		t.Fatalf("load: %v\n%s", err, diagLines(diags))
	}
	inputs, err := filepath.Glob(filepath.Join("testdata", "decisions", "*.input.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		base := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(base, func(t *testing.T) {
			region, ruleset, _ := strings.Cut(base, "_")
			ruleset, _, _ = strings.Cut(ruleset, "_")
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			d, err := set.Regions[region].EvalJSON(ruleset, b, Date{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("decisions", base+".golden.json"), append(out, '\n'))
		})
	}
}
