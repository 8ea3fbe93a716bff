package rules

import (
	"slices"
	"strings"
	"testing"
)

func TestRegionConfig_OnDutyIsParsedPerBlock(t *testing.T) {
	files := minimalFiles(map[string]string{RulesetRegion: minimalRegion + `permanence:
  - {day: monday, from: "09:00", to: "12:00", mode: phone, on_duty: [coach1.testland, Coach2.testland]}
  - {day: tuesday, from: "09:00", to: "12:00"}
  - day: friday
    from: "13:00"
    to: "16:00"
    on_duty:
      - coach3.testland
`})
	reg, diags := CompileRegion("testland", "testland", files)
	if reg == nil {
		t.Fatal(diagLines(diags))
	}
	got := reg.Config.Permanence
	if len(got) != 3 {
		t.Fatalf("blocks: got %d, want 3", len(got))
	}
	if want := []string{"coach1.testland", "Coach2.testland"}; !slices.Equal(got[0].OnDuty, want) {
		t.Errorf("monday on_duty: got %v, want %v", got[0].OnDuty, want)
	}
	if got[1].OnDuty != nil {
		t.Errorf("tuesday on_duty: got %v, want none", got[1].OnDuty)
	}
	if want := []string{"coach3.testland"}; !slices.Equal(got[2].OnDuty, want) {
		t.Errorf("friday on_duty: got %v, want %v", got[2].OnDuty, want)
	}
}

func TestRegionConfig_BadOnDutyGivesPreciseErrors(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string
		code  string
	}{
		{"not a list", `{day: monday, from: "09:00", to: "12:00", on_duty: coach1}`,
			`testland/region.yaml:5:56: region: on_duty: expected a list, found "coach1"`, CodeSchema},
		{"empty name", `{day: monday, from: "09:00", to: "12:00", on_duty: [coach1, ""]}`,
			`testland/region.yaml:5:65: region: on_duty: "" is not a username (non-empty, without spaces)`, CodeSchema},
		{"name with a space", `{day: monday, from: "09:00", to: "12:00", on_duty: ["an wilgenroos"]}`,
			`testland/region.yaml:5:57: region: on_duty: "an wilgenroos" is not a username (non-empty, without spaces)`, CodeSchema},
		{"a mapping in the list", `{day: monday, from: "09:00", to: "12:00", on_duty: [{user: coach1}]}`,
			`testland/region.yaml:5:57: region: on_duty: expected a username, found a mapping`, CodeSchema},
		{"null entry", `{day: monday, from: "09:00", to: "12:00", on_duty: [~]}`,
			`testland/region.yaml:5:57: region: on_duty: expected a username, found nothing`, CodeSchema},
		{"listed twice", `{day: monday, from: "09:00", to: "12:00", on_duty: [coach1, coach1]}`,
			`testland/region.yaml:5:65: region: on_duty: "coach1" listed twice`, CodeDuplicateID},
		{"misspelt key", `{day: monday, from: "09:00", to: "12:00", on_dutty: [coach1]}`,
			`testland/region.yaml:5:47: region: unknown key "on_dutty" (allowed: day, from, to, mode, on_duty)`, CodeSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := minimalFiles(map[string]string{RulesetRegion: minimalRegion + "permanence:\n  - " + tt.block + "\n"})
			reg, diags := CompileRegion("testland", "testland", files)
			if reg != nil {
				t.Errorf("region was accepted")
			}
			got, ok := findDiag(diags, tt.code)
			if !ok {
				t.Fatalf("no %s diagnostic; got:\n%s", tt.code, diagLines(diags))
			}
			if got.String() != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestShippedRegions_EveryPermanenceBlockHasSomeoneOnDuty(t *testing.T) {
	for _, name := range []string{"kempen", "maasland"} {
		reg, diags := LoadRegion("regions", name)
		if reg == nil {
			t.Fatalf("%s: %s", name, diagLines(diags))
		}
		if len(reg.Config.Permanence) == 0 {
			t.Errorf("%s: no permanence blocks", name)
		}
		for _, b := range reg.Config.Permanence {
			if len(b.OnDuty) == 0 {
				t.Errorf("%s %s %s: nobody on duty", name, b.Day, b.From)
			}
			for _, u := range b.OnDuty {
				// The demo accounts of cmd/samenplan/demo.go.
				if !strings.HasSuffix(u, "."+name+".demo") {
					t.Errorf("%s %s: on_duty %q is not a demo account of the region", name, b.Day, u)
				}
			}
		}
	}
}
