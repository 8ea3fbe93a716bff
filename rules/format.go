package rules

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Ruleset names; each is also the base name of its file.
const (
	RulesetRegion   = "region"
	RulesetIntake   = "intake"
	RulesetCapacity = "capacity"
	RulesetSignals  = "signals"
)

// Rulesets lists the files of a region in version-hash order.
var Rulesets = []string{RulesetRegion, RulesetIntake, RulesetCapacity, RulesetSignals}

// MaxFileSize bounds a rule file; larger files are rejected unread.
const MaxFileSize = 1 << 20

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// src is the parser's view of one file: its display path and where to put
// diagnostics.
type src struct {
	path  string
	diags *[]Diagnostic
}

func (s *src) add(n *yaml.Node, sev Severity, code, id, format string, args ...any) {
	d := Diagnostic{File: s.path, RuleID: id, Severity: sev, Code: code, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		d.Line, d.Column = n.Line, n.Column
	}
	*s.diags = append(*s.diags, d)
}

func (s *src) errf(n *yaml.Node, code, id, format string, args ...any) {
	s.add(n, SeverityError, code, id, format, args...)
}

func (s *src) warnf(n *yaml.Node, code, id, format string, args ...any) {
	s.add(n, SeverityWarning, code, id, format, args...)
}

// parseDoc parses YAML bytes into the document's root mapping, or reports a
// syntax error with its line.
func (s *src) parseDoc(content []byte, ruleset string) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		line := 1 // yaml.v3 names no line for some errors (control characters)
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		msg = yamlLineRE.ReplaceAllString(msg, "")
		*s.diags = append(*s.diags, Diagnostic{File: s.path, Line: line, Column: 1, RuleID: ruleset,
			Severity: SeverityError, Code: CodeSyntax, Message: "YAML: " + msg})
		return nil
	}
	if len(doc.Content) == 0 {
		*s.diags = append(*s.diags, Diagnostic{File: s.path, Line: 1, Column: 1, RuleID: ruleset,
			Severity: SeverityError, Code: CodeSchema, Message: "empty file"})
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		s.errf(root, CodeSchema, ruleset, "the file must be a mapping of keys, found %s", kindName(root))
		return nil
	}
	return root
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// field is one key of a mapping with its value node.
type field struct {
	key *yaml.Node
	val *yaml.Node
}

// fields returns the keys of mapping n, reporting duplicates and keys not in
// allowed (when allowed is non-nil).
func (s *src) fields(n *yaml.Node, id string, allowed ...string) map[string]field {
	out := map[string]field{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		s.errf(n, CodeSchema, id, "expected a mapping, found %s", kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode {
			s.errf(v, CodeSchema, id, "YAML aliases are not supported")
			continue
		}
		if _, dup := out[k.Value]; dup {
			s.errf(k, CodeDuplicateID, id, "key %q appears twice", k.Value)
			continue
		}
		if allowed != nil && !contains(allowed, k.Value) {
			s.errf(k, CodeSchema, id, "unknown key %q (allowed: %s)", k.Value, strings.Join(allowed, ", "))
			continue
		}
		out[k.Value] = field{k, v}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns the string scalar at f, reporting a wrong type; "" if absent.
func (s *src) str(f field, id string) string {
	if f.val == nil {
		return ""
	}
	if f.val.Kind != yaml.ScalarNode || f.val.Tag == "!!null" {
		s.errf(f.val, CodeSchema, id, "%s: expected text, found %s", f.key.Value, kindName(f.val))
		return ""
	}
	return f.val.Value
}

// need reports a missing required key of mapping n.
func (s *src) need(n *yaml.Node, fs map[string]field, id string, keys ...string) bool {
	ok := true
	for _, k := range keys {
		if _, found := fs[k]; !found {
			s.errf(n, CodeSchema, id, "missing key %q", k)
			ok = false
		}
	}
	return ok
}

func (s *src) list(f field, id string) []*yaml.Node {
	if f.val == nil {
		return nil
	}
	if f.val.Kind == yaml.ScalarNode && f.val.Tag == "!!null" {
		return nil
	}
	if f.val.Kind != yaml.SequenceNode {
		s.errf(f.val, CodeSchema, id, "%s: expected a list, found %s", f.key.Value, kindName(f.val))
		return nil
	}
	return f.val.Content
}

// Term is an entry of a region's configurable vocabulary (a life domain, a
// closure reason, a referral channel): a stable id and a Dutch label.
type Term struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	LabelEN string `json:"label_en,omitempty"`
}

// PermanenceBlock is a weekly period in which permanence is held.
type PermanenceBlock struct {
	Day  string `json:"day"`  // monday … sunday
	From string `json:"from"` // "09:00"
	To   string `json:"to"`   // "17:00"
	Mode string `json:"mode,omitempty"`
	// OnDuty are the usernames of who is on duty in the block; the server
	// resolves them to accounts (an unknown username is shown as such).
	OnDuty []string `json:"on_duty,omitempty"`
}

// RegionConfig is the content of region.yaml.
type RegionConfig struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Municipalities   []string          `json:"municipalities"`
	LifeDomains      []Term            `json:"life_domains"`
	ClosureReasons   []Term            `json:"closure_reasons"`
	ReferralChannels []Term            `json:"referral_channels"`
	Permanence       []PermanenceBlock `json:"permanence"`
}

var weekdays = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

var clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

func (s *src) parseRegion(content []byte, id string) *RegionConfig {
	root := s.parseDoc(content, RulesetRegion)
	if root == nil {
		return nil
	}
	fs := s.fields(root, RulesetRegion, "region", "name", "municipalities", "life_domains",
		"closure_reasons", "referral_channels", "permanence")
	s.need(root, fs, RulesetRegion, "region", "name", "municipalities")
	rc := &RegionConfig{ID: id, Name: s.str(fs["name"], RulesetRegion)}
	if f, ok := fs["region"]; ok {
		if v := s.str(f, RulesetRegion); v != id {
			s.errf(f.val, CodeSchema, RulesetRegion, "region %q does not match its folder %q", v, id)
		}
	}
	seen := map[string]bool{}
	for _, n := range s.list(fs["municipalities"], RulesetRegion) {
		v := s.str(field{fs["municipalities"].key, n}, RulesetRegion)
		if seen[v] {
			s.errf(n, CodeDuplicateID, RulesetRegion, "municipality %q listed twice", v)
		}
		seen[v] = true
		rc.Municipalities = append(rc.Municipalities, v)
	}
	rc.LifeDomains = s.terms(fs["life_domains"])
	rc.ClosureReasons = s.terms(fs["closure_reasons"])
	rc.ReferralChannels = s.terms(fs["referral_channels"])
	for _, n := range s.list(fs["permanence"], RulesetRegion) {
		bf := s.fields(n, RulesetRegion, "day", "from", "to", "mode", "on_duty")
		if !s.need(n, bf, RulesetRegion, "day", "from", "to") {
			continue
		}
		b := PermanenceBlock{
			Day:  s.str(bf["day"], RulesetRegion),
			From: s.str(bf["from"], RulesetRegion),
			To:   s.str(bf["to"], RulesetRegion),
			Mode: s.str(bf["mode"], RulesetRegion),
		}
		b.OnDuty = s.onDuty(bf["on_duty"])
		if !contains(weekdays, b.Day) {
			s.errf(bf["day"].val, CodeSchema, RulesetRegion, "day %q is not one of %s", b.Day, strings.Join(weekdays, ", "))
		}
		for _, k := range []string{"from", "to"} {
			if v := s.str(bf[k], RulesetRegion); !clockRE.MatchString(v) {
				s.errf(bf[k].val, CodeSchema, RulesetRegion, "%s %q is not a time HH:MM", k, v)
			}
		}
		if b.From >= b.To {
			s.errf(n, CodeSchema, RulesetRegion, "permanence on %s ends (%s) before it starts (%s)", b.Day, b.To, b.From)
		}
		rc.Permanence = append(rc.Permanence, b)
	}
	return rc
}

// onDuty reads a permanence block's on_duty: a list of usernames, each
// non-empty text without spaces, none twice. Absent or empty gives nil.
func (s *src) onDuty(f field) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range s.list(f, RulesetRegion) {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			s.errf(n, CodeSchema, RulesetRegion, "on_duty: expected a username, found %s", kindName(n))
			continue
		}
		v := n.Value
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " \t\r\n") {
			s.errf(n, CodeSchema, RulesetRegion, "on_duty: %q is not a username (non-empty, without spaces)", v)
			continue
		}
		if seen[v] {
			s.errf(n, CodeDuplicateID, RulesetRegion, "on_duty: %q listed twice", v)
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}

func (s *src) terms(f field) []Term {
	var out []Term
	seen := map[string]bool{}
	for _, n := range s.list(f, RulesetRegion) {
		tf := s.fields(n, RulesetRegion, "id", "label", "label_en")
		if !s.need(n, tf, RulesetRegion, "id", "label") {
			continue
		}
		t := Term{ID: s.str(tf["id"], RulesetRegion), Label: s.str(tf["label"], RulesetRegion), LabelEN: s.str(tf["label_en"], RulesetRegion)}
		if seen[t.ID] {
			s.errf(tf["id"].val, CodeDuplicateID, t.ID, "%s: id %q appears twice", f.key.Value, t.ID)
		}
		seen[t.ID] = true
		out = append(out, t)
	}
	return out
}

// param is a named constant of a ruleset file.
type param struct {
	name    string
	value   any // int, float64, bool or string
	label   string
	labelEN string
	key     *yaml.Node
	used    bool
}

// ruleDef is one require, exclude, part, check, signal or the limit.
type ruleDef struct {
	section  string // require, exclude, parts, checks, signals, limit
	id       string
	label    string
	labelEN  string
	severity string
	about    string
	node     *yaml.Node // the mapping (for positions)
	expr     *yaml.Node // the expression scalar
}

type testDef struct {
	name   string
	node   *yaml.Node
	given  *yaml.Node
	expect *yaml.Node
}

// fileDef is the parsed (not yet compiled) content of a ruleset file.
type fileDef struct {
	ruleset  string
	params   []*param
	require  []*ruleDef
	exclude  []*ruleDef
	parts    []*ruleDef
	limit    *ruleDef
	checks   []*ruleDef
	signals  []*ruleDef
	testBase *yaml.Node
	tests    []testDef
}

// Signal severities.
var signalSeverities = []string{"info", "warning", "critical"}

// Signal subjects.
const (
	AboutTrajectory = "trajectory"
	AboutReferral   = "referral"
)

func (s *src) parseRuleset(content []byte, ruleset, region string) *fileDef {
	root := s.parseDoc(content, ruleset)
	if root == nil {
		return nil
	}
	common := []string{"ruleset", "region", "params", "test_base", "tests"}
	var allowed []string
	switch ruleset {
	case RulesetIntake:
		allowed = append(common, "eligibility", "priority")
	case RulesetCapacity:
		allowed = append(common, "limit", "checks")
	case RulesetSignals:
		allowed = append(common, "signals")
	}
	fs := s.fields(root, ruleset, allowed...)
	s.need(root, fs, ruleset, "ruleset")
	if f, ok := fs["ruleset"]; ok {
		if v := s.str(f, ruleset); v != ruleset {
			s.errf(f.val, CodeSchema, ruleset, "ruleset %q does not match the file name %s.yaml", v, ruleset)
		}
	}
	if f, ok := fs["region"]; ok {
		if v := s.str(f, ruleset); v != region {
			s.errf(f.val, CodeSchema, ruleset, "region %q does not match its folder %q", v, region)
		}
	}
	fd := &fileDef{ruleset: ruleset}
	if f, ok := fs["params"]; ok && !(f.val.Kind == yaml.ScalarNode && f.val.Tag == "!!null") {
		pf := s.fields(f.val, ruleset)
		for i := 0; i+1 < len(f.val.Content); i += 2 {
			k := f.val.Content[i]
			if pf[k.Value].key != k {
				continue // reported as duplicate
			}
			if p := s.param(k, f.val.Content[i+1]); p != nil {
				fd.params = append(fd.params, p)
			}
		}
	}
	switch ruleset {
	case RulesetIntake:
		if f, ok := fs["eligibility"]; ok {
			ef := s.fields(f.val, ruleset, "require", "exclude")
			fd.require = s.rules(ef["require"], "require", ruleset)
			fd.exclude = s.rules(ef["exclude"], "exclude", ruleset)
		} else {
			s.errf(root, CodeSchema, ruleset, "missing key %q", "eligibility")
		}
		if f, ok := fs["priority"]; ok {
			pf := s.fields(f.val, ruleset, "parts")
			fd.parts = s.rules(pf["parts"], "parts", ruleset)
		}
	case RulesetCapacity:
		if f, ok := fs["limit"]; ok {
			fd.limit = &ruleDef{section: "limit", id: "limit", label: "Maximale caseload", labelEN: "Maximum caseload", node: f.key, expr: f.val}
			if f.val.Kind != yaml.ScalarNode {
				s.errf(f.val, CodeSchema, "limit", "limit: expected an expression, found %s", kindName(f.val))
				fd.limit = nil
			}
		} else {
			s.errf(root, CodeSchema, ruleset, "missing key %q", "limit")
		}
		fd.checks = s.rules(fs["checks"], "checks", ruleset)
	case RulesetSignals:
		fd.signals = s.rules(fs["signals"], "signals", ruleset)
	}
	if f, ok := fs["test_base"]; ok {
		fd.testBase = f.val
	}
	names := map[string]bool{}
	for _, n := range s.list(fs["tests"], ruleset) {
		tf := s.fields(n, ruleset, "name", "given", "expect")
		if !s.need(n, tf, ruleset, "name", "expect") {
			continue
		}
		t := testDef{name: s.str(tf["name"], ruleset), node: n, given: tf["given"].val, expect: tf["expect"].val}
		if names[t.name] {
			s.warnf(tf["name"].val, CodeDuplicateID, ruleset, "test name %q is used twice", t.name)
		}
		names[t.name] = true
		fd.tests = append(fd.tests, t)
	}
	s.checkDuplicateIDs(fd)
	return fd
}

func (s *src) param(k, v *yaml.Node) *param {
	if !idPattern.MatchString(k.Value) {
		s.errf(k, CodeSchema, k.Value, "param name %q must be lower case letters, digits and _ and start with a letter", k.Value)
		return nil
	}
	pf := s.fields(v, k.Value, "value", "label", "label_en", "report")
	if !s.need(v, pf, k.Value, "value", "label") {
		return nil
	}
	p := &param{name: k.Value, key: k, label: s.str(pf["label"], k.Value), labelEN: s.str(pf["label_en"], k.Value)}
	if f, ok := pf["report"]; ok {
		// report: true marks a figure the reports read (a yearly target
		// that is a floor, not a check): no expression needs to use it.
		if f.val.Kind != yaml.ScalarNode || f.val.Tag != "!!bool" {
			s.errf(f.val, CodeSchema, k.Value, "report: expected true or false, found %s", kindName(f.val))
			return nil
		}
		p.used = f.val.Value == "true"
	}
	val := pf["value"].val
	if val.Kind != yaml.ScalarNode {
		s.errf(val, CodeSchema, k.Value, "value: expected a number, yes/no or text, found %s", kindName(val))
		return nil
	}
	switch val.Tag {
	case "!!int":
		n, err := strconv.ParseInt(val.Value, 0, 64)
		if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
			s.errf(val, CodeSchema, k.Value, "value %q is not a usable whole number", val.Value)
			return nil
		}
		p.value = int(n)
	case "!!float":
		f, err := strconv.ParseFloat(val.Value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			s.errf(val, CodeSchema, k.Value, "value %q is not a usable number", val.Value)
			return nil
		}
		p.value = f
	case "!!bool":
		p.value = val.Value == "true"
	case "!!str":
		p.value = val.Value
	default:
		s.errf(val, CodeSchema, k.Value, "value: expected a number, yes/no or text, found %s", kindName(val))
		return nil
	}
	return p
}

func (s *src) rules(f field, section, ruleset string) []*ruleDef {
	var out []*ruleDef
	exprKey := "when"
	allowed := []string{"id", "label", "label_en", "when"}
	switch section {
	case "parts":
		exprKey = "score"
		allowed = []string{"id", "label", "label_en", "score"}
	case "signals":
		allowed = append(allowed, "severity", "about")
	}
	for _, n := range s.list(f, ruleset) {
		rf := s.fields(n, ruleset, allowed...)
		id := s.str(rf["id"], ruleset)
		if !s.need(n, rf, orDefault(id, ruleset), "id", "label", exprKey) {
			continue
		}
		if !idPattern.MatchString(id) {
			s.errf(rf["id"].val, CodeSchema, orDefault(id, ruleset), "id %q must be lower case letters, digits and _ and start with a letter", id)
			continue
		}
		r := &ruleDef{section: section, id: id, node: rf["id"].val,
			label: s.str(rf["label"], id), labelEN: s.str(rf["label_en"], id), expr: rf[exprKey].val}
		if r.expr.Kind != yaml.ScalarNode {
			s.errf(r.expr, CodeSchema, id, "%s: expected an expression, found %s", exprKey, kindName(r.expr))
			continue
		}
		if section == "signals" {
			r.severity = s.str(rf["severity"], id)
			if r.severity == "" {
				r.severity = "warning"
			} else if !contains(signalSeverities, r.severity) {
				s.errf(rf["severity"].val, CodeSchema, id, "severity %q is not one of %s", r.severity, strings.Join(signalSeverities, ", "))
			}
			r.about = s.str(rf["about"], id)
			if r.about == "" {
				r.about = AboutTrajectory
			} else if r.about != AboutTrajectory && r.about != AboutReferral {
				s.errf(rf["about"].val, CodeSchema, id, "about %q is not one of trajectory, referral", r.about)
			}
		}
		out = append(out, r)
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *src) checkDuplicateIDs(fd *fileDef) {
	seen := map[string]*ruleDef{}
	for _, group := range [][]*ruleDef{fd.require, fd.exclude, fd.parts, fd.checks, fd.signals} {
		for _, r := range group {
			if first, dup := seen[r.id]; dup {
				s.errf(r.node, CodeDuplicateID, r.id, "id %q is already used at line %d", r.id, first.node.Line)
				continue
			}
			seen[r.id] = r
		}
	}
}
