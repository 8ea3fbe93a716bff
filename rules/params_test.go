package rules

import (
	"reflect"
	"testing"
)

func TestParams_ShippedCapacityParamsAreReadable(t *testing.T) {
	set, diags, err := Load("regions")
	if err != nil || HasErrors(diags) {
		t.Fatalf("load: %v\n%s", err, diagLines(diags))
	}
	kempen := set.Regions["kempen"]
	for _, tc := range []struct {
		name string
		want float64
	}{{"families_per_fte", 12}, {"yearly_trajectories", 200}, {"mandated_reserve", 60}} {
		got, ok := kempen.ParamNumber(RulesetCapacity, tc.name)
		if !ok || got != tc.want {
			t.Errorf("kempen %s: got %v (%v), want %v", tc.name, got, ok, tc.want)
		}
	}
	if got, ok := set.Regions["maasland"].ParamNumber(RulesetCapacity, "yearly_trajectories"); !ok || got != 200 {
		t.Errorf("maasland yearly_trajectories (a report param): got %v (%v), want 200", got, ok)
	}
	if _, ok := set.Regions["maasland"].ParamNumber(RulesetCapacity, "mandated_reserve"); ok {
		t.Error("maasland has no mandated_reserve in capacity.yaml, yet ParamNumber found one")
	}
	ps := kempen.Params(RulesetCapacity)
	if len(ps) != 3 || ps[1] != (Param{Name: "yearly_trajectories", Value: 200, Label: "Trajecten per jaar", LabelEN: "Trajectories a year"}) {
		t.Errorf("kempen capacity params: %+v", ps)
	}
	if again := kempen.Params(RulesetCapacity); !reflect.DeepEqual(again, ps) {
		t.Errorf("second read (cached): %+v", again)
	}
}

func TestParams_KindsAndAbsence(t *testing.T) {
	r, diags := CompileRegion("testland", "testland", minimalFiles(map[string]string{RulesetCapacity: `ruleset: capacity
params:
  per_fte: {value: 9.5, label: "Per VTE"}
  strict: {value: true, label: "Streng"}
limit: params.per_fte * coach.fte
checks:
  - id: caseload
    label: "Plaats"
    when: coach.active_families < limit && params.strict
`}))
	if r == nil {
		t.Fatalf("compile: %s", diagLines(diags))
	}
	if got, ok := r.ParamNumber(RulesetCapacity, "per_fte"); !ok || got != 9.5 {
		t.Errorf("per_fte: got %v %v, want 9.5", got, ok)
	}
	if _, ok := r.ParamNumber(RulesetCapacity, "strict"); ok {
		t.Error("a yes/no param is not a number")
	}
	if _, ok := r.ParamNumber(RulesetCapacity, "missing"); ok {
		t.Error("an absent param was found")
	}
	if ps := r.Params("nonsense"); ps != nil {
		t.Errorf("unknown ruleset: %+v", ps)
	}
	var nilRegion *Region
	if ps := nilRegion.Params(RulesetCapacity); ps != nil {
		t.Errorf("nil region: %+v", ps)
	}
}
