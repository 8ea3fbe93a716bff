package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// expectation is the parsed expect of a test; nil fields are not checked.
type expectation struct {
	eligible *bool
	reasons  []string
	priority *float64
	ok       *bool
	failed   []string
	limit    *float64
	fired    []string
}

type compiledTest struct {
	ruleset      string
	name         string
	file         string
	line, column int
	intake       *IntakeInput
	capacity     *CapacityInput
	signals      *SignalsInput
	expect       expectation
}

// TestResult is the outcome of one test of a rule file.
type TestResult struct {
	Region   string   `json:"region"`
	Ruleset  string   `json:"ruleset"`
	Name     string   `json:"name"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
}

// Diagnostic returns the failed test as an error diagnostic.
func (t TestResult) Diagnostic() Diagnostic {
	return Diagnostic{File: t.File, Line: t.Line, Column: t.Column, RuleID: t.Ruleset, Severity: SeverityError,
		Code: CodeTestFailed, Message: fmt.Sprintf("test %q: %s", t.Name, strings.Join(t.Failures, "; "))}
}

var inputTypes = map[string]reflect.Type{
	RulesetIntake:   reflect.TypeFor[IntakeInput](),
	RulesetCapacity: reflect.TypeFor[CapacityInput](),
	RulesetSignals:  reflect.TypeFor[SignalsInput](),
}

var expectKeys = map[string][]string{
	RulesetIntake:   {"eligible", "reasons", "priority"},
	RulesetCapacity: {"ok", "failed", "limit"},
	RulesetSignals:  {"fired"},
}

// compileTests turns the tests of fd into inputs and expectations,
// reporting unknown keys, wrong types and ids that name no rule.
func (s *src) compileTests(fd *fileDef) []compiledTest {
	t := inputTypes[fd.ruleset]
	var base any = map[string]any{}
	if fd.testBase != nil && !isNull(fd.testBase) {
		if !s.checkShape(fd.testBase, t, "test_base", fd.ruleset) {
			return nil
		}
		base = nodeValue(fd.testBase)
	}
	ids := map[string][]string{}
	for _, r := range fd.require {
		ids["reasons"] = append(ids["reasons"], r.id)
	}
	for _, r := range fd.exclude {
		ids["reasons"] = append(ids["reasons"], r.id)
	}
	for _, r := range fd.checks {
		ids["failed"] = append(ids["failed"], r.id)
	}
	for _, r := range fd.signals {
		ids["fired"] = append(ids["fired"], r.id)
	}
	var out []compiledTest
	for _, td := range fd.tests {
		ct := compiledTest{ruleset: fd.ruleset, name: td.name, file: s.path, line: td.node.Line, column: td.node.Column}
		ok := true
		merged := base
		if td.given != nil && !isNull(td.given) {
			if !s.checkShape(td.given, t, "given", fd.ruleset) {
				ok = false
			} else {
				merged = merge(base, nodeValue(td.given))
			}
		}
		if !s.parseExpect(td, fd.ruleset, ids, &ct.expect) {
			ok = false
		}
		if !ok {
			continue
		}
		b, err := json.Marshal(merged)
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			v := reflect.New(t)
			if err = dec.Decode(v.Interface()); err == nil {
				switch in := v.Interface().(type) {
				case *IntakeInput:
					ct.intake = in
				case *CapacityInput:
					ct.capacity = in
				case *SignalsInput:
					ct.signals = in
				}
			}
		}
		if err != nil {
			s.errf(td.node, CodeTest, fd.ruleset, "test %q: input: %v", td.name, err)
			continue
		}
		out = append(out, ct)
	}
	return out
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (s *src) parseExpect(td testDef, ruleset string, ids map[string][]string, e *expectation) bool {
	before := len(*s.diags)
	fs := s.fields(td.expect, ruleset, expectKeys[ruleset]...)
	if len(fs) == 0 && len(*s.diags) == before {
		s.errf(td.expect, CodeTest, ruleset, "test %q: expect states nothing (allowed: %s)", td.name, strings.Join(expectKeys[ruleset], ", "))
	}
	for key, f := range fs {
		switch key {
		case "eligible", "ok":
			if f.val.Kind != yaml.ScalarNode || f.val.Tag != "!!bool" {
				s.errf(f.val, CodeTest, ruleset, "test %q: expect.%s: expected true or false, found %s", td.name, key, kindName(f.val))
				continue
			}
			b := f.val.Value == "true"
			if key == "eligible" {
				e.eligible = &b
			} else {
				e.ok = &b
			}
		case "priority", "limit":
			if f.val.Kind != yaml.ScalarNode || (f.val.Tag != "!!int" && f.val.Tag != "!!float") {
				s.errf(f.val, CodeTest, ruleset, "test %q: expect.%s: expected a number, found %s", td.name, key, kindName(f.val))
				continue
			}
			x, err := strconv.ParseFloat(f.val.Value, 64)
			if err != nil {
				s.errf(f.val, CodeTest, ruleset, "test %q: expect.%s: %q is not a number", td.name, key, f.val.Value)
				continue
			}
			if key == "priority" {
				e.priority = &x
			} else {
				e.limit = &x
			}
		case "reasons", "failed", "fired":
			list := []string{}
			for _, n := range s.list(f, ruleset) {
				if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
					s.errf(n, CodeTest, ruleset, "test %q: expect.%s: expected a rule id, found %s", td.name, key, kindName(n))
					continue
				}
				if !contains(ids[key], n.Value) {
					s.errf(n, CodeTest, n.Value, "test %q: expect.%s names %q, which is no rule of %s.yaml", td.name, key, n.Value, ruleset)
					continue
				}
				list = append(list, n.Value)
			}
			switch key {
			case "reasons":
				e.reasons = list
			case "failed":
				e.failed = list
			case "fired":
				e.fired = list
			}
		}
	}
	return !HasErrors((*s.diags)[before:])
}

// checkShape reports keys of n that t has no field for, and scalars of the
// wrong kind, with their positions.
func (s *src) checkShape(n *yaml.Node, t reflect.Type, path, ruleset string) bool {
	before := len(*s.diags)
	s.shape(n, t, path, ruleset)
	return !HasErrors((*s.diags)[before:])
}

var dateType = reflect.TypeFor[Date]()

func (s *src) shape(n *yaml.Node, t reflect.Type, path, ruleset string) {
	if n.Kind == yaml.AliasNode {
		s.errf(n, CodeTest, ruleset, "%s: YAML aliases are not supported", path)
		return
	}
	if t.Kind() == reflect.Pointer {
		if isNull(n) {
			return
		}
		t = t.Elem()
	}
	switch {
	case t == dateType:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.ScalarNode {
			s.errf(n, CodeTest, ruleset, "%s: expected a date YYYY-MM-DD, found %s", path, kindName(n))
			return
		}
		if _, err := ParseDate(n.Value); err != nil {
			s.errf(n, CodeTest, ruleset, "%s: %v", path, err)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			s.errf(n, CodeTest, ruleset, "%s: expected a mapping, found %s", path, kindName(n))
			return
		}
		fields := jsonFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				s.errf(k, CodeTest, ruleset, "%s: key %q appears twice", path, k.Value)
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				s.errf(k, CodeTest, ruleset, "%s: unknown key %q (known: %s)", path, k.Value, strings.Join(sortedKeys(fields), ", "))
				continue
			}
			s.shape(v, ft, path+"."+k.Value, ruleset)
		}
	case t.Kind() == reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			s.errf(n, CodeTest, ruleset, "%s: expected a list, found %s", path, kindName(n))
			return
		}
		for i, c := range n.Content {
			s.shape(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), ruleset)
		}
	default:
		want, ok := "", false
		switch t.Kind() {
		case reflect.Bool:
			want, ok = "true or false", n.Tag == "!!bool"
		case reflect.Int:
			want, ok = "a whole number", n.Tag == "!!int"
			if ok {
				if x, err := strconv.ParseInt(n.Value, 0, 64); err != nil || x > math.MaxInt32 || x < math.MinInt32 {
					ok = false
				}
			}
		case reflect.Float64:
			want, ok = "a number", n.Tag == "!!int" || n.Tag == "!!float"
			if ok {
				if _, err := strconv.ParseFloat(n.Value, 64); err != nil && n.Tag == "!!float" {
					ok = false
				}
			}
		case reflect.String:
			want, ok = "text", n.Tag == "!!str"
		}
		if n.Kind != yaml.ScalarNode {
			ok = false
		}
		if !ok {
			s.errf(n, CodeTest, ruleset, "%s: expected %s, found %s", path, want, kindName(n))
		}
	}
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nodeValue converts a checked YAML node into plain values for JSON.
func nodeValue(n *yaml.Node) any {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = nodeValue(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			l = append(l, nodeValue(c))
		}
		return l
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil
		case "!!bool":
			return n.Value == "true"
		case "!!int":
			if x, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return x
			}
		case "!!float":
			if x, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return x
			}
		}
		return n.Value
	}
	return nil
}

// merge returns over deep-merged onto base: mappings merge key by key,
// everything else (lists included) replaces. Neither argument is modified.
func merge(base, over any) any {
	bm, ok1 := base.(map[string]any)
	om, ok2 := over.(map[string]any)
	if !ok1 || !ok2 {
		return over
	}
	out := make(map[string]any, len(bm)+len(om))
	for k, v := range bm {
		out[k] = v
	}
	for k, v := range om {
		if old, ok := out[k]; ok {
			out[k] = merge(old, v)
		} else {
			out[k] = v
		}
	}
	return out
}

// RunTests runs every test in the region's rule files, in file order.
func (r *Region) RunTests() []TestResult {
	out := make([]TestResult, 0, len(r.tests))
	for i := range r.tests {
		out = append(out, r.runTest(&r.tests[i]))
	}
	return out
}

func (r *Region) runTest(t *compiledTest) TestResult {
	res := TestResult{Region: r.Name, Ruleset: t.ruleset, Name: t.name, File: t.file, Line: t.line, Column: t.column}
	e := &t.expect
	fail := func(format string, args ...any) { res.Failures = append(res.Failures, fmt.Sprintf(format, args...)) }
	switch {
	case t.intake != nil:
		d := r.Intake.Eval(t.intake)
		if e.eligible != nil && *e.eligible != d.Eligible {
			fail("eligible: got %v, want %v", d.Eligible, *e.eligible)
		}
		if e.reasons != nil && !sameSet(d.Reasons, e.reasons) {
			fail("reasons: got [%s], want [%s]", strings.Join(d.Reasons, ", "), strings.Join(e.reasons, ", "))
		}
		if e.priority != nil && !closeTo(d.Priority, *e.priority) {
			fail("priority: got %v, want %v", d.Priority, *e.priority)
		}
		for _, c := range append(append([]Condition{}, d.Require...), d.Exclude...) {
			if c.Error != "" {
				fail("%s: %s", c.ID, c.Error)
			}
		}
		for _, p := range d.Parts {
			if p.Error != "" {
				fail("%s: %s", p.ID, p.Error)
			}
		}
	case t.capacity != nil:
		d := r.Capacity.Eval(t.capacity)
		if e.ok != nil && *e.ok != d.OK {
			fail("ok: got %v, want %v", d.OK, *e.ok)
		}
		if e.failed != nil && !sameSet(d.Failed, e.failed) {
			fail("failed: got [%s], want [%s]", strings.Join(d.Failed, ", "), strings.Join(e.failed, ", "))
		}
		if e.limit != nil && !closeTo(d.Limit, *e.limit) {
			fail("limit: got %v, want %v", d.Limit, *e.limit)
		}
		if d.LimitError != "" {
			fail("limit: %s", d.LimitError)
		}
		for _, c := range d.Checks {
			if c.Error != "" {
				fail("%s: %s", c.ID, c.Error)
			}
		}
	case t.signals != nil:
		d := r.Signals.Eval(t.signals)
		if e.fired != nil && !sameSet(d.Fired, e.fired) {
			fail("fired: got [%s], want [%s]", strings.Join(d.Fired, ", "), strings.Join(e.fired, ", "))
		}
		for _, s := range d.Signals {
			if s.Error != "" {
				fail("%s: %s", s.ID, s.Error)
			}
		}
	}
	res.Passed = len(res.Failures) == 0
	return res
}

func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	for i := range g {
		if g[i] != w[i] {
			return false
		}
	}
	return true
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestCount returns the number of tests in the region's files.
func (r *Region) TestCount() int { return len(r.tests) }
