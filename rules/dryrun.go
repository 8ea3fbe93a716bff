package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// ReferralSource feeds a dry run with the referrals to decide. The CLI reads
// a JSON file (JSONReferrals); the server will feed the live referrals of a
// region from the store.
type ReferralSource interface {
	// Referrals returns the intake inputs of region.
	Referrals(ctx context.Context, region string) ([]IntakeInput, error)
}

// JSONReferrals is a ReferralSource over a fixed list, as read by
// ReadJSONReferrals. An input with an empty Region belongs to every region.
type JSONReferrals []IntakeInput

var _ ReferralSource = JSONReferrals(nil)

// Referrals returns the inputs whose Region is region or empty.
func (j JSONReferrals) Referrals(_ context.Context, region string) ([]IntakeInput, error) {
	out := make([]IntakeInput, 0, len(j))
	for _, in := range j {
		if in.Region == "" || in.Region == region {
			out = append(out, in)
		}
	}
	return out, nil
}

// ReadJSONReferrals reads a JSON array of intake inputs (unknown keys are an
// error); each should carry an id.
func ReadJSONReferrals(r io.Reader) (JSONReferrals, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var list JSONReferrals
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("read referrals: %w", err)
	}
	return list, nil
}

// DecisionSummary is the part of an intake decision a dry run compares.
type DecisionSummary struct {
	Eligible bool     `json:"eligible"`
	Reasons  []string `json:"reasons"`
	Priority float64  `json:"priority"`
}

// DecisionChange is a referral whose decision differs between two versions.
type DecisionChange struct {
	ID     string          `json:"id"`
	Before DecisionSummary `json:"before"`
	After  DecisionSummary `json:"after"`
}

// DryRunReport says which decisions of a region would change.
type DryRunReport struct {
	Region        string           `json:"region"`
	BeforeVersion string           `json:"before_version"`
	AfterVersion  string           `json:"after_version"`
	Total         int              `json:"total"`
	Changed       []DecisionChange `json:"changed"`
}

// DryRun decides every referral of src for before's region with both
// versions and reports those whose eligibility, reasons or priority differ.
// Inputs without today get today. before and after must be the same region.
func DryRun(ctx context.Context, before, after *Region, src ReferralSource, today Date) (DryRunReport, error) {
	rep := DryRunReport{Region: before.Name, BeforeVersion: before.Version, AfterVersion: after.Version, Changed: []DecisionChange{}}
	inputs, err := src.Referrals(ctx, before.Name)
	if err != nil {
		return rep, fmt.Errorf("dry run %s: %w", before.Name, err)
	}
	for i := range inputs {
		in := &inputs[i]
		if in.Today.IsZero() {
			in.Today = today
		}
		a := before.Intake.Eval(in)
		b := after.Intake.Eval(in)
		rep.Total++
		if a.Eligible != b.Eligible || !slices.Equal(a.Reasons, b.Reasons) || !closeTo(a.Priority, b.Priority) {
			rep.Changed = append(rep.Changed, DecisionChange{ID: in.ID,
				Before: DecisionSummary{a.Eligible, a.Reasons, a.Priority},
				After:  DecisionSummary{b.Eligible, b.Reasons, b.Priority}})
		}
		if i%1024 == 0 && ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	return rep, nil
}
