package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad_BadInputGivesPreciseErrors(t *testing.T) {
	tests := []struct {
		name     string
		override map[string]string
		want     string // the whole diagnostic line, or a prefix ending in ": "
		code     string
	}{
		{
			name:     "YAML syntax error names its line",
			override: map[string]string{RulesetIntake: "ruleset: intake\neligibility:\n  require:\n    - id: a\n     label: x\n"},
			want:     "testland/intake.yaml:3:1: intake: YAML: did not find expected '-' indicator",
			code:     CodeSyntax,
		},
		{
			name:     "wrong YAML type for a list",
			override: map[string]string{RulesetIntake: "ruleset: intake\neligibility:\n  require: yes please\n"},
			want:     `testland/intake.yaml:3:12: intake: require: expected a list, found "yes please"`,
			code:     CodeSchema,
		},
		{
			name:     "wrong type of a param value",
			override: map[string]string{RulesetIntake: "ruleset: intake\nparams:\n  x: {value: [1, 2], label: X}\neligibility: {require: []}\n"},
			want:     "testland/intake.yaml:3:14: x: value: expected a number, yes/no or text, found a list",
			code:     CodeSchema,
		},
		{
			name:     "missing ruleset file",
			override: map[string]string{RulesetSignals: "<missing>"},
			want:     "testland/signals.yaml:1:1: signals: missing signals.yaml",
			code:     CodeMissingFile,
		},
		{
			name:     "ruleset key that does not match the file",
			override: map[string]string{RulesetSignals: "ruleset: intake\nsignals: []\n"},
			want:     `testland/signals.yaml:1:10: signals: ruleset "intake" does not match the file name signals.yaml`,
			code:     CodeSchema,
		},
		{
			name:     "region key that does not match the folder",
			override: map[string]string{RulesetRegion: "region: elders\nname: X\nmunicipalities: []\n"},
			want:     `testland/region.yaml:1:9: region: region "elders" does not match its folder "testland"`,
			code:     CodeSchema,
		},
		{
			name:     "bad permanence time",
			override: map[string]string{RulesetRegion: minimalRegion + "permanence:\n  - {day: monday, from: \"9u\", to: \"17:00\"}\n"},
			want:     `testland/region.yaml:5:25: region: from "9u" is not a time HH:MM`,
			code:     CodeSchema,
		},
		{
			name: "test naming an unknown rule",
			override: map[string]string{RulesetIntake: minimalIntake + `tests:
  - name: t
    given: {referral: {crisis: true}}
    expect: {eligible: false, reasons: [crises]}
`},
			want: `testland/intake.yaml:21:41: crises: test "t": expect.reasons names "crises", which is no rule of intake.yaml`,
			code: CodeTest,
		},
		{
			name: "unknown key in given",
			override: map[string]string{RulesetIntake: minimalIntake + `tests:
  - name: t
    given: {referral: {crisiss: true}}
    expect: {eligible: false}
`},
			want: `testland/intake.yaml:20:24: intake: given.referral: unknown key "crisiss" (known: articulated, channel, `,
			code: CodeTest,
		},
		{
			name: "wrong type in given",
			override: map[string]string{RulesetIntake: minimalIntake + `tests:
  - name: t
    given: {family: {members: [{role: parent, age_years: veertig}]}}
    expect: {eligible: false}
`},
			want: `testland/intake.yaml:20:58: intake: given.family.members[0].age_years: expected a whole number, found "veertig"`,
			code: CodeTest,
		},
		{
			name: "unknown key in expect",
			override: map[string]string{RulesetIntake: minimalIntake + `tests:
  - name: t
    expect: {eligible: true, limit: 3}
`},
			want: `testland/intake.yaml:20:30: intake: unknown key "limit" (allowed: eligible, reasons, priority)`,
			code: CodeSchema,
		},
		{
			name: "bad date in test_base",
			override: map[string]string{RulesetIntake: minimalIntake + `test_base: {today: 2026-02-30}
`},
			want: `testland/intake.yaml:18:20: intake: test_base.today: invalid date "2026-02-30" (want YYYY-MM-DD)`,
			code: CodeTest,
		},
		{
			name:     "signal with an unknown severity",
			override: map[string]string{RulesetSignals: "ruleset: signals\nsignals:\n  - {id: s, label: S, severity: loud, when: trajectory.goals_open > 0}\n"},
			want:     `testland/signals.yaml:3:33: s: severity "loud" is not one of info, warning, critical`,
			code:     CodeSchema,
		},
		{
			name:     "signal about trajectory using the referral",
			override: map[string]string{RulesetSignals: "ruleset: signals\nsignals:\n  - {id: s, label: S, when: referral.waiting_days > 7}\n"},
			want:     `testland/signals.yaml:3:29: s: a signal about trajectory cannot use referral (set about: referral)`,
			code:     CodeUnknownName,
		},
		{
			name:     "file that is not a mapping",
			override: map[string]string{RulesetCapacity: "- just\n- a list\n"},
			want:     `testland/capacity.yaml:1:1: capacity: the file must be a mapping of keys, found a list`,
			code:     CodeSchema,
		},
		{
			name:     "empty file",
			override: map[string]string{RulesetCapacity: ""},
			want:     `testland/capacity.yaml:1:1: capacity: empty file`,
			code:     CodeSchema,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, diags := CompileRegion("testland", "testland", minimalFiles(tt.override))
			if reg != nil {
				t.Errorf("region was accepted")
			}
			got, ok := findDiag(diags, tt.code)
			if !ok {
				t.Fatalf("no %s diagnostic; got:\n%s", tt.code, diagLines(diags))
			}
			if !strings.HasPrefix(got.String(), tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLoad_RegionFolderWithoutRegionYAMLIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "nieuw"), 0o755)
	writeFile(t, filepath.Join(dir, "nieuw", "intake.yaml"), minimalIntake)
	set, diags, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Regions) != 0 {
		t.Errorf("regions: got %v, want none", set.Names())
	}
	d, ok := findDiag(diags, CodeMissingFile)
	if !ok {
		t.Fatalf("no missing_file diagnostic:\n%s", diagLines(diags))
	}
	if want := filepath.Join(dir, "nieuw", "region.yaml") + ":1:1: region: folder has no region.yaml"; !strings.HasPrefix(d.String(), want) {
		t.Errorf("got %s, want prefix %s", d, want)
	}
}

func TestLoad_MissingDirectoryIsAnError(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("got nil error for a missing directory")
	}
}

func TestLoad_StrayYAMLFileIsAWarning(t *testing.T) {
	dir := copyRegions(t)
	writeFile(t, filepath.Join(dir, "kempen", "intake.yml"), "x: 1\n")
	set, diags, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Regions["kempen"] == nil {
		t.Fatalf("kempen rejected:\n%s", diagLines(diags))
	}
	if d, ok := findDiag(diags, CodeSchema); !ok || d.Severity != SeverityWarning {
		t.Errorf("got %v %v, want a schema warning", d, ok)
	}
}

func TestEval_MemoryHungryExpressionStopsWithAnError(t *testing.T) {
	intake := intakeWith("", "    - {id: huge, label: H, when: \"len(map(1..10000000, # * 2)) > 0\"}\n    - {id: nested, label: N, when: \"all(1..5000, all(1..5000, # > 0))\"}\n")
	reg, diags := CompileRegion("testland", "testland", minimalFiles(map[string]string{RulesetIntake: intake}))
	if reg == nil {
		t.Fatalf("rejected:\n%s", diagLines(diags))
	}
	d := reg.EvalIntake(IntakeInput{})
	if d.Eligible {
		t.Error("eligible: got true, want false")
	}
	for _, c := range d.Require {
		if !strings.Contains(c.Error, "memory budget exceeded") {
			t.Errorf("%s: error %q, want memory budget exceeded", c.ID, c.Error)
		}
	}
	if got, want := strings.Join(d.Reasons, ","), "huge,nested"; got != want {
		t.Errorf("reasons: got %s, want %s", got, want)
	}
}

func TestRegion_VersionIsTheHashOfItsFiles(t *testing.T) {
	files := minimalFiles(nil)
	a, _ := CompileRegion("testland", "testland", files)
	files[RulesetSignals] = append(files[RulesetSignals], []byte("# comment\n")...)
	b, _ := CompileRegion("testland", "testland", files)
	if a.Version == b.Version {
		t.Error("a changed file kept the region version")
	}
	if a.Intake.stamp.Version != b.Intake.stamp.Version {
		t.Error("an unchanged intake.yaml changed its ruleset version")
	}
	if got, want := a.Intake.stamp.Version, fileHash([]byte(minimalIntake)); got != want {
		t.Errorf("intake version: got %s, want %s", got, want)
	}
}

func TestRegionConfig_PermanenceFollowsTheSchedule(t *testing.T) {
	reg, diags := LoadRegion("regions", "kempen")
	if reg == nil {
		t.Fatal(diagLines(diags))
	}
	tests := []struct {
		at   string
		want bool
	}{
		{"2026-03-02T09:00:00Z", true},  // Monday block opens
		{"2026-03-02T11:59:00Z", true},  // still open
		{"2026-03-02T12:00:00Z", false}, // closed at the end
		{"2026-03-03T10:00:00Z", false}, // Tuesday: none
		{"2026-03-04T13:30:00Z", true},  // Wednesday afternoon
	}
	for _, tt := range tests {
		at, _ := time.Parse(time.RFC3339, tt.at)
		if got := reg.Config.PermanenceAt(at); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.at, got, tt.want)
		}
	}
}
