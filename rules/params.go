package rules

import "sync"

// Param is one entry of a ruleset file's params: the value the rules use
// for params.<Name>, with its labels. Value is an int, a float64, a bool or
// a string, as written in the file.
type Param struct {
	Name    string `json:"name"`
	Value   any    `json:"value"`
	Label   string `json:"label"`
	LabelEN string `json:"label_en,omitempty"`
}

// paramsByHash caches the params of a ruleset file by the file's hash: a
// region's files never change once compiled, and there are only as many
// entries as versions ever activated.
var paramsByHash sync.Map // hash → []Param

// Params returns the params of the region's ruleset file (RulesetIntake,
// RulesetCapacity, RulesetSignals) in file order; nil when the region has no
// such file or the file has no params. The slice is shared: do not modify it.
func (r *Region) Params(ruleset string) []Param {
	if r == nil {
		return nil
	}
	for _, f := range r.Files {
		if f.Name != ruleset+".yaml" {
			continue
		}
		if ps, ok := paramsByHash.Load(f.Hash); ok {
			return ps.([]Param)
		}
		var diags []Diagnostic
		s := &src{path: ruleset + ".yaml", diags: &diags}
		fd := s.parseRuleset([]byte(f.Content), ruleset, r.Name)
		if fd == nil {
			return nil
		}
		ps := make([]Param, 0, len(fd.params))
		for _, p := range fd.params {
			ps = append(ps, Param{Name: p.name, Value: p.value, Label: p.label, LabelEN: p.labelEN})
		}
		paramsByHash.Store(f.Hash, ps)
		return ps
	}
	return nil
}

// ParamNumber returns params.<name> of the region's ruleset file as a
// number, and false when the file has no such param or it is not a number.
func (r *Region) ParamNumber(ruleset, name string) (float64, bool) {
	for _, p := range r.Params(ruleset) {
		if p.Name != name {
			continue
		}
		switch v := p.Value.(type) {
		case int:
			return float64(v), true
		case float64:
			return v, true
		}
		return 0, false
	}
	return 0, false
}
