package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalRegion = `region: testland
name: Testland
municipalities: [Aa, Bb]
`

const minimalIntake = `ruleset: intake
params:
  min_age: {value: 3, label: "Minimum"}
eligibility:
  require:
    - id: willing
      label: "Bereid"
      when: any(family.members, .willing)
  exclude:
    - id: crisis
      label: "Crisis"
      when: referral.crisis
priority:
  parts:
    - id: young
      label: "Jong kind"
      score: "any(family.children, .age_years < params.min_age) ? 5 : 0"
`

const minimalCapacity = `ruleset: capacity
params:
  per_fte: {value: 10, label: "Per VTE"}
limit: params.per_fte * coach.fte
checks:
  - id: caseload
    label: "Plaats"
    when: coach.active_families < limit
`

const minimalSignals = `ruleset: signals
params:
  days: {value: 10, label: "Dagen"}
signals:
  - id: no_contact
    label: "Geen contact"
    when: trajectory.days_since_last_contact > params.days
`

// minimalFiles returns a valid region "testland" with one file replaced
// where override names it.
func minimalFiles(override map[string]string) map[string][]byte {
	files := map[string][]byte{
		RulesetRegion:   []byte(minimalRegion),
		RulesetIntake:   []byte(minimalIntake),
		RulesetCapacity: []byte(minimalCapacity),
		RulesetSignals:  []byte(minimalSignals),
	}
	for k, v := range override {
		if v == "<missing>" {
			delete(files, k)
			continue
		}
		files[k] = []byte(v)
	}
	return files
}

// copyRegions copies the shipped regions into a temp dir and returns it.
func copyRegions(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, region := range []string{"kempen", "maasland"} {
		if err := os.MkdirAll(filepath.Join(dir, region), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, rs := range Rulesets {
			b, err := os.ReadFile(filepath.Join("regions", region, rs+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, region, rs+".yaml"), string(b))
		}
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// findDiag returns the first diagnostic with code, or false.
func findDiag(ds []Diagnostic, code string) (Diagnostic, bool) {
	for _, d := range ds {
		if d.Code == code {
			return d, true
		}
	}
	return Diagnostic{}, false
}

func diagLines(ds []Diagnostic) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteString("\n")
	}
	return b.String()
}
