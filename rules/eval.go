package rules

import (
	"errors"
	"fmt"
	"sync"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Condition is the explained outcome of one require, exclude or check.
type Condition struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	LabelEN string `json:"label_en,omitempty"`
	Result  bool   `json:"result"`
	// Error is set when the expression failed at run time (memory budget,
	// a missing value); the condition then counts against the referral.
	Error string `json:"error,omitempty"`
}

// Part is the explained outcome of one priority part.
type Part struct {
	ID      string  `json:"id"`
	Label   string  `json:"label"`
	LabelEN string  `json:"label_en,omitempty"`
	Result  float64 `json:"result"`
	Error   string  `json:"error,omitempty"`
}

// SignalResult is the explained outcome of one signal.
type SignalResult struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	LabelEN  string `json:"label_en,omitempty"`
	Severity string `json:"severity"`
	About    string `json:"about"`
	Result   bool   `json:"result"`
	Error    string `json:"error,omitempty"`
}

// Stamp names the rules that made a decision. Version is the sha256 (hex) of
// the ruleset file; RegionVersion that of the whole region (see package doc).
type Stamp struct {
	Region        string `json:"region"`
	Ruleset       string `json:"ruleset"`
	Version       string `json:"version"`
	RegionVersion string `json:"region_version"`
}

// IntakeDecision is the explained outcome of intake.yaml for one referral.
// Eligible holds when every require holds and no exclude holds; Reasons lists
// the failed requires then the fired excludes, in file order; Priority is the
// sum of the parts.
type IntakeDecision struct {
	Stamp
	Eligible bool        `json:"eligible"`
	Reasons  []string    `json:"reasons"`
	Priority float64     `json:"priority"`
	Require  []Condition `json:"require"`
	Exclude  []Condition `json:"exclude"`
	Parts    []Part      `json:"parts"`
}

// CapacityDecision is the explained outcome of capacity.yaml for one coach
// and referral. OK holds when every check holds; Failed lists the checks that
// do not.
type CapacityDecision struct {
	Stamp
	OK         bool        `json:"ok"`
	Failed     []string    `json:"failed"`
	Limit      float64     `json:"limit"`
	LimitError string      `json:"limit_error,omitempty"`
	Checks     []Condition `json:"checks"`
}

// SignalsDecision is the explained outcome of signals.yaml for one
// trajectory and/or referral. Signals about an absent subject are left out.
type SignalsDecision struct {
	Stamp
	Fired   []string       `json:"fired"`
	Signals []SignalResult `json:"signals"`
}

// runner evaluates programs with a reused VM.
type runner struct{ vm vm.VM }

func (r *runner) bool(p *vm.Program, env any) (bool, string) {
	out, err := r.vm.Run(p, env)
	if err != nil {
		return false, runtimeMessage(err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Sprintf("result %v is not yes/no", out)
	}
	return b, ""
}

func (r *runner) number(p *vm.Program, env any) (float64, string) {
	out, err := r.vm.Run(p, env)
	if err != nil {
		return 0, runtimeMessage(err)
	}
	switch v := out.(type) {
	case int:
		return float64(v), ""
	case float64:
		return v, ""
	case int64:
		return float64(v), ""
	case int32:
		return float64(v), ""
	case float32:
		return float64(v), ""
	case uint:
		return float64(v), ""
	case uint64:
		return float64(v), ""
	}
	return 0, fmt.Sprintf("result %v is not a number", out)
}

func runtimeMessage(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fe.Message
	}
	return err.Error()
}

// IntakeRules is the compiled intake.yaml of a region.
type IntakeRules struct {
	stamp   Stamp
	region  RegionEnv
	require []compiled
	exclude []compiled
	parts   []compiled
	pool    sync.Pool // *intakeScratch
}

type intakeScratch struct {
	env IntakeEnv
	run runner
}

func (ir *IntakeRules) scratch() *intakeScratch {
	if s, ok := ir.pool.Get().(*intakeScratch); ok {
		return s
	}
	s := &intakeScratch{}
	s.run.vm.MemoryBudget = MemoryBudget
	return s
}

// Eval explains the intake decision for in. It never panics; an expression
// that fails at run time counts against the referral and carries its error.
func (ir *IntakeRules) Eval(in *IntakeInput) IntakeDecision {
	s := ir.scratch()
	defer ir.pool.Put(s)
	s.env.fill(in, &ir.region)
	env := &s.env

	d := IntakeDecision{Stamp: ir.stamp, Eligible: true, Reasons: []string{}}
	conds := make([]Condition, len(ir.require)+len(ir.exclude))
	d.Require = conds[:len(ir.require):len(ir.require)]
	d.Exclude = conds[len(ir.require):]
	for i := range ir.require {
		c := &ir.require[i]
		ok, errMsg := s.run.bool(c.prog, env)
		d.Require[i] = Condition{ID: c.def.id, Label: c.def.label, LabelEN: c.def.labelEN, Result: ok, Error: errMsg}
		if !ok {
			d.Eligible = false
			d.Reasons = append(d.Reasons, c.def.id)
		}
	}
	for i := range ir.exclude {
		c := &ir.exclude[i]
		fired, errMsg := s.run.bool(c.prog, env)
		if errMsg != "" {
			fired = true
		}
		d.Exclude[i] = Condition{ID: c.def.id, Label: c.def.label, LabelEN: c.def.labelEN, Result: fired, Error: errMsg}
		if fired {
			d.Eligible = false
			d.Reasons = append(d.Reasons, c.def.id)
		}
	}
	d.Parts = make([]Part, len(ir.parts))
	for i := range ir.parts {
		c := &ir.parts[i]
		v, errMsg := s.run.number(c.prog, env)
		d.Parts[i] = Part{ID: c.def.id, Label: c.def.label, LabelEN: c.def.labelEN, Result: v, Error: errMsg}
		d.Priority += v
	}
	return d
}

// CapacityRules is the compiled capacity.yaml of a region.
type CapacityRules struct {
	stamp  Stamp
	region RegionEnv
	limit  compiled
	checks []compiled
	pool   sync.Pool // *capacityScratch
}

type capacityScratch struct {
	env CapacityEnv
	run runner
}

// Eval explains the capacity decision for in. A check that fails at run time
// counts as failed.
func (cr *CapacityRules) Eval(in *CapacityInput) CapacityDecision {
	s, ok := cr.pool.Get().(*capacityScratch)
	if !ok {
		s = &capacityScratch{}
		s.run.vm.MemoryBudget = MemoryBudget
	}
	defer cr.pool.Put(s)
	s.env.fill(in, &cr.region)
	d := CapacityDecision{Stamp: cr.stamp, OK: true, Failed: []string{}}
	d.Limit, d.LimitError = s.run.number(cr.limit.prog, &s.env)
	s.env.Limit = d.Limit
	d.Checks = make([]Condition, len(cr.checks))
	for i := range cr.checks {
		c := &cr.checks[i]
		holds, errMsg := s.run.bool(c.prog, &s.env)
		d.Checks[i] = Condition{ID: c.def.id, Label: c.def.label, LabelEN: c.def.labelEN, Result: holds, Error: errMsg}
		if !holds {
			d.OK = false
			d.Failed = append(d.Failed, c.def.id)
		}
	}
	return d
}

// SignalRules is the compiled signals.yaml of a region.
type SignalRules struct {
	stamp   Stamp
	region  RegionEnv
	signals []compiled
	pool    sync.Pool // *signalsScratch
}

type signalsScratch struct {
	env SignalsEnv
	run runner
}

// Eval explains which signals fire for in. A signal whose expression fails at
// run time is reported with its error and does not fire.
func (sr *SignalRules) Eval(in *SignalsInput) SignalsDecision {
	s, ok := sr.pool.Get().(*signalsScratch)
	if !ok {
		s = &signalsScratch{}
		s.run.vm.MemoryBudget = MemoryBudget
	}
	defer sr.pool.Put(s)
	s.env.fill(in, &sr.region)
	d := SignalsDecision{Stamp: sr.stamp, Fired: []string{}, Signals: []SignalResult{}}
	for i := range sr.signals {
		c := &sr.signals[i]
		if (c.def.about == AboutTrajectory && in.Trajectory == nil) || (c.def.about == AboutReferral && in.Referral == nil) {
			continue
		}
		fired, errMsg := s.run.bool(c.prog, &s.env)
		d.Signals = append(d.Signals, SignalResult{ID: c.def.id, Label: c.def.label, LabelEN: c.def.labelEN,
			Severity: c.def.severity, About: c.def.about, Result: fired, Error: errMsg})
		if fired {
			d.Fired = append(d.Fired, c.def.id)
		}
	}
	return d
}
