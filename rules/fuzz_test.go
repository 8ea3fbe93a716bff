package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Run the fuzzers with a short minimisation time: the seeds are whole rule
// files, and minimising each new input to the byte takes minutes.
//
//	go test ./rules -run XXX -fuzz FuzzLoad -fuzztime 60s -fuzzminimizetime 2s

// FuzzLoad feeds arbitrary bytes as one of a region's files: loading must
// give a region or diagnostics, never panic, and a loaded region must run
// its tests and evaluate without panicking.
func FuzzLoad(f *testing.F) {
	for i, rs := range Rulesets {
		for _, region := range []string{"kempen", "maasland"} {
			b, err := os.ReadFile(filepath.Join("regions", region, rs+".yaml"))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, content []byte, which uint8) {
		rs := Rulesets[int(which)%len(Rulesets)]
		files := minimalFiles(map[string]string{rs: string(content)})
		reg, diags := CompileRegion("testland", "testland", files)
		for _, d := range diags {
			if d.File == "" || d.Message == "" || d.Severity == "" {
				t.Fatalf("incomplete diagnostic %+v", d)
			}
		}
		if reg == nil {
			if !HasErrors(diags) {
				t.Fatal("region rejected without an error")
			}
			return
		}
		reg.RunTests()
		reg.EvalIntake(IntakeInput{Family: FamilyFacts{Members: []MemberFacts{{Role: "child", AgeYears: 4, Willing: true}}}})
		reg.EvalCapacity(CapacityInput{Coach: CoachFacts{FTE: 0.5}})
		reg.EvalSignals(SignalsInput{Trajectory: &TrajectoryFacts{Status: "active"}, Referral: &PendingFacts{Status: "open"}})
	})
}

// FuzzExpr compiles arbitrary text as a condition and as a score: it must
// compile or give a positioned error, and evaluate without panicking.
func FuzzExpr(f *testing.F) {
	for _, seed := range []string{
		"any(family.members, .willing)",
		"len(family.children) > 0 || family.pregnancy",
		"referral.municipality in region.municipalities",
		"min(referral.waiting_days * params.min_age, 28)",
		"referral.articulated ? 0 : 20",
		"today - referral.received_on > duration(\"168h\")",
		"date(\"2026-01-01\") < today",
		"len(map(1..1000000, #)) > 0",
		"all(1..5000, all(1..5000, # > 0))",
		"now() > today",
		"((((((((",
		"family.members[9].age_years > 3",
		"1 / 0 > 1",
		"repeat(\"x\", 1000000) != \"\"",
		"region.municipalities[0] == region.name || \"Aa\" in region.municipalities",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if strings.ContainsAny(expr, "\x00") {
			return
		}
		quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(expr)
		intake := "ruleset: intake\nparams:\n  min_age: {value: 3, label: M}\neligibility:\n  require:\n    - id: r\n      label: R\n      when: \"" + quoted + "\"\npriority:\n  parts:\n    - id: p\n      label: P\n      score: \"" + quoted + "\"\n"
		reg, diags := CompileRegion("testland", "testland", minimalFiles(map[string]string{RulesetIntake: intake}))
		for _, d := range diags {
			if d.Severity == SeverityError && (d.Line == 0 || d.File == "") {
				t.Fatalf("error without a position: %s", d)
			}
		}
		if reg != nil {
			reg.EvalIntake(IntakeInput{Today: NewDate(2026, 3, 2), Family: FamilyFacts{Members: []MemberFacts{{Role: "child", AgeYears: 4}}}})
		}
	})
}
