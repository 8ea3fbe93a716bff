package rules

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

func benchRegion(b *testing.B, name string) *Region {
	b.Helper()
	r, diags := LoadRegion("regions", name)
	if r == nil {
		b.Fatal(diagLines(diags))
	}
	return r
}

func benchIntakeInput() IntakeInput {
	return IntakeInput{
		Today: NewDate(2026, 3, 2),
		Referral: ReferralFacts{ReceivedOn: NewDate(2026, 2, 20), Channel: "permanentie", Municipality: "Vosselaar",
			Articulated: true, Consent: true},
		Family: FamilyFacts{Members: []MemberFacts{
			{Role: "parent", AgeYears: 36, Willing: true},
			{Role: "parent", AgeYears: 38},
			{Role: "child", AgeYears: 9},
			{Role: "child", AgeYears: 4},
		}},
		Year: YearCountFacts{StartedMandated: 20, StartedNonMandated: 75},
	}
}

// BenchmarkIntakeDecision is a full, explained intake decision of Kempen
// (3 requires, 5 excludes, 1 part) for a family of four.
func BenchmarkIntakeDecision(b *testing.B) {
	r := benchRegion(b, "kempen")
	in := benchIntakeInput()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := r.EvalIntake(in)
		if !d.Eligible {
			b.Fatal(d.Reasons)
		}
	}
}

// BenchmarkIntakeDecisionParallel is the same on every core.
func BenchmarkIntakeDecisionParallel(b *testing.B) {
	r := benchRegion(b, "kempen")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		in := benchIntakeInput()
		for pb.Next() {
			r.EvalIntake(in)
		}
	})
}

// BenchmarkReloadRegion is what a hot swap costs: compile, lint and run
// every test of one region's files (read once, outside the loop).
func BenchmarkReloadRegion(b *testing.B) {
	for _, name := range []string{"kempen", "maasland"} {
		b.Run(name, func(b *testing.B) {
			files, diags := ReadRegionFiles("regions", name)
			if HasErrors(diags) {
				b.Fatal(diagLines(diags))
			}
			b.ReportAllocs()
			for b.Loop() {
				r, diags, _, failed := validate(name, filepath.Join("regions", name), files)
				if r == nil || failed > 0 {
					b.Fatal(diagLines(diags))
				}
			}
		})
	}
}

// BenchmarkDryRun10k decides 10,000 referrals with two versions of Kempen.
func BenchmarkDryRun10k(b *testing.B) {
	r := benchRegion(b, "kempen")
	src := make(JSONReferrals, 10_000)
	for i := range src {
		in := benchIntakeInput()
		in.ID = fmt.Sprint(i)
		in.Referral.Crisis = i%7 == 0
		src[i] = in
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DryRun(context.Background(), r, r, src, Date{}); err != nil {
			b.Fatal(err)
		}
	}
}
