package schema

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/samenplan/samenplan"
)

func TestValidate(t *testing.T) {
	long := `"` + strings.Repeat("x", 20001) + `"`
	tests := []struct {
		collection, field, value string
		ok                       bool
	}{
		{"contacts", "note", `"Huisbezoek"`, true},
		{"contacts", "note", `null`, true},
		{"contacts", "note", long, false},
		{"contacts", "note", `12`, false},
		{"contacts", "minutes", `45`, true},
		{"contacts", "minutes", `45.5`, false},
		{"contacts", "minutes", `-1`, false},
		{"contacts", "minutes", `"45"`, false},
		{"contacts", "mode", `"home_visit"`, true},
		{"contacts", "mode", `"teleport"`, false},
		{"contacts", "occurred_at", `"2026-11-23T10:00:00+01:00"`, true},
		{"contacts", "occurred_at", `"2026-11-23"`, false},
		{"contacts", "trajectory_id", `null`, false},
		{"contacts", "trajectory_id", `"0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11"`, true},
		{"contacts", "trajectory_id", `"0195B7D2-7C1E-7A4E-9B1F-2A1D4C0E9F11"`, false},
		{"contacts", "participants", `["moeder","coach"]`, true},
		{"contacts", "participants", `"moeder"`, false},
		{"contacts", "_deleted", `true`, true},
		{"contacts", "_deleted", `"yes"`, false},
		{"persons", "birth_date", `"2009-02-30"`, false},
		{"persons", "birth_date", `"2009-02-28"`, true},
		{"plan_goals", "scale", `10`, true},
		{"plan_goals", "scale", `11`, false},
		{"families", "label", `"Gezin\nX"`, false},
		{"trajectories", "co_coach_ids", `["0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11"]`, true},
		{"trajectories", "co_coach_ids", `["nope"]`, false},
		{"nonsense", "x", `1`, false},
		{"contacts", "nonsense", `1`, false},
		{"contacts", "note", ``, false},
	}
	for _, tt := range tests {
		err := CaseFile.Validate(tt.collection, tt.field, json.RawMessage(tt.value))
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%s.%s = %.30s) = %v, want ok=%v", tt.collection, tt.field, tt.value, err, tt.ok)
		}
		if err != nil && samenplan.ErrorCode(err) != samenplan.EINVALID {
			t.Errorf("Validate(%s.%s): code %q, want invalid", tt.collection, tt.field, samenplan.ErrorCode(err))
		}
	}
}

func TestCaseFile_EveryCollectionOfTheDesignWithScopeAndParent(t *testing.T) {
	for _, name := range []string{"families", "persons", "referrals", "consults", "trajectories", "plan_goals", "network_members", "contacts"} {
		c := CaseFile.Collection(name)
		if c == nil {
			t.Fatalf("collection %s missing", name)
		}
		if c.Field("_deleted") == nil {
			t.Errorf("%s has no _deleted field", name)
		}
		if c.Parent != "" {
			f := c.Field(c.Parent)
			if f == nil || f.Type != Ref {
				t.Errorf("%s: parent %s is not a ref field", name, c.Parent)
			}
		}
	}
	var back Schema
	if err := json.Unmarshal(CaseFile.JSON(), &back); err != nil || len(back.Collections) != len(CaseFile.Collections) || back.Version != Version {
		t.Fatalf("schema JSON does not round-trip: %v", err)
	}
}

func TestSupported_CurrentAndPrevious(t *testing.T) {
	if !Supported(Version) {
		t.Fatal("current version refused")
	}
	for _, v := range []int{0, -1, Version + 1, 99} {
		if Supported(v) && v != Version-1 {
			t.Errorf("Supported(%d) = true", v)
		}
	}
}
