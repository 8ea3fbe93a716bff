package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/samenplan/samenplan"
)

// EvalIntake explains the intake decision for in.
func (r *Region) EvalIntake(in IntakeInput) IntakeDecision { return r.Intake.Eval(&in) }

// EvalCapacity explains the capacity decision for in.
func (r *Region) EvalCapacity(in CapacityInput) CapacityDecision { return r.Capacity.Eval(&in) }

// EvalSignals explains which signals fire for in.
func (r *Region) EvalSignals(in SignalsInput) SignalsDecision { return r.Signals.Eval(&in) }

// EvalJSON decodes input (a JSON object, unknown keys rejected) for ruleset
// (intake, capacity or signals) and returns the explained decision. When
// the input has no today, today is used. A bad ruleset name or input gives a
// *samenplan.Error with code invalid.
func (r *Region) EvalJSON(ruleset string, input []byte, today Date) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	switch ruleset {
	case RulesetIntake:
		var in IntakeInput
		if err := dec.Decode(&in); err != nil {
			return nil, samenplan.Errorf(samenplan.EINVALID, "intake input: %v", err)
		}
		if in.Today.IsZero() {
			in.Today = today
		}
		return r.EvalIntake(in), nil
	case RulesetCapacity:
		var in CapacityInput
		if err := dec.Decode(&in); err != nil {
			return nil, samenplan.Errorf(samenplan.EINVALID, "capacity input: %v", err)
		}
		if in.Today.IsZero() {
			in.Today = today
		}
		return r.EvalCapacity(in), nil
	case RulesetSignals:
		var in SignalsInput
		if err := dec.Decode(&in); err != nil {
			return nil, samenplan.Errorf(samenplan.EINVALID, "signals input: %v", err)
		}
		if in.Today.IsZero() {
			in.Today = today
		}
		return r.EvalSignals(in), nil
	}
	return nil, samenplan.Errorf(samenplan.EINVALID, "unknown ruleset %q (want intake, capacity or signals)", ruleset)
}

// PermanenceAt reports whether permanence is held at t (in t's location).
func (c *RegionConfig) PermanenceAt(t time.Time) bool {
	day := weekdays[t.Weekday()]
	hm := fmt.Sprintf("%02d:%02d", t.Hour(), t.Minute())
	for _, b := range c.Permanence {
		if b.Day == day && hm >= b.From && hm < b.To {
			return true
		}
	}
	return false
}
