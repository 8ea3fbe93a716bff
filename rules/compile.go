package rules

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"
)

// Bounds on expressions. A larger expression is rejected at load time; an
// evaluation that allocates past MemoryBudget stops with an error.
const (
	MaxExprBytes = 2048
	MaxExprNodes = 256
	MemoryBudget = 50_000
)

// disabledBuiltins read the clock or the time-zone database.
var disabledBuiltins = []string{"now", "timezone"}

type resultKind int

const (
	wantBool resultKind = iota
	wantNumber
)

// compiled is one rule ready to run.
type compiled struct {
	def  *ruleDef
	prog *vm.Program
}

// fileCompiler compiles the expressions of one file and lints them.
type fileCompiler struct {
	*src
	lines  []string
	params map[string]*param
	region RegionEnv
}

func newFileCompiler(s *src, content []byte, params []*param, region RegionEnv) *fileCompiler {
	fc := &fileCompiler{src: s, lines: strings.Split(string(content), "\n"), params: map[string]*param{}, region: region}
	for _, p := range params {
		if _, dup := fc.params[p.name]; dup {
			fc.errf(p.key, CodeDuplicateID, p.name, "param %q is defined twice", p.name)
			continue
		}
		fc.params[p.name] = p
	}
	return fc
}

// at returns the file position of rune offset from inside the expression
// scalar n.
func (fc *fileCompiler) at(n *yaml.Node, from int) (line, col int) {
	source := n.Value
	exprLine, exprCol := 0, 0
	for i, r := range []rune(source) {
		if i >= from {
			break
		}
		if r == '\n' {
			exprLine++
			exprCol = 0
		} else {
			exprCol++
		}
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		line = n.Line + 1 + exprLine
	default:
		line = n.Line + exprLine
		if exprLine == 0 {
			col = n.Column + exprCol
			if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
				col++
			}
			return line, col
		}
	}
	indent := 0
	if line-1 < len(fc.lines) {
		l := fc.lines[line-1]
		indent = len(l) - len(strings.TrimLeft(l, " "))
	}
	return line, indent + exprCol + 1
}

func (fc *fileCompiler) exprDiag(r *ruleDef, loc file.Location, sev Severity, code, format string, args ...any) {
	line, col := fc.at(r.expr, loc.From)
	*fc.diags = append(*fc.diags, Diagnostic{File: fc.path, Line: line, Column: col, RuleID: r.id,
		Severity: sev, Code: code, Message: fmt.Sprintf(format, args...)})
}

// compile type-checks r's expression against env (a zero env struct; the
// programs run on a pointer to one) and returns its program, or nil after
// reporting why not.
func (fc *fileCompiler) compile(r *ruleDef, env any, want resultKind, lintConstant bool) (prog *vm.Program) {
	defer func() {
		// expr must never take the loader down; a panic is a bug in expr
		// or here, reported as an error on the rule.
		if p := recover(); p != nil {
			fc.exprDiag(r, file.Location{}, SeverityError, CodeSyntax, "expression could not be compiled: %v", p)
			prog = nil
		}
	}()
	source := r.expr.Value
	if strings.TrimSpace(source) == "" {
		fc.errf(r.expr, CodeSyntax, r.id, "empty expression")
		return nil
	}
	if len(source) > MaxExprBytes {
		fc.errf(r.expr, CodeTooLarge, r.id, "expression is %d bytes, more than the %d allowed", len(source), MaxExprBytes)
		return nil
	}
	if !utf8.ValidString(source) {
		fc.errf(r.expr, CodeSyntax, r.id, "expression is not valid UTF-8")
		return nil
	}
	config := conf.CreateNew()
	expr.Env(env)(config)
	expr.MaxNodes(MaxExprNodes)(config)
	for _, name := range disabledBuiltins {
		expr.DisableBuiltin(name)(config)
		delete(config.Builtins, name)
	}
	config.Check()

	tree, err := parser.ParseWithConfig(source, config)
	if err != nil {
		fc.exprError(r, err)
		return nil
	}
	if !fc.resolveParams(r, &tree.Node) {
		return nil
	}
	typ, err := checker.Check(tree, config)
	if err != nil {
		fc.exprError(r, err)
		return nil
	}
	switch want {
	case wantBool:
		if typ == nil || typ.Kind() != reflect.Bool {
			fc.errf(r.expr, CodeType, r.id, "%s must give yes/no (bool), this gives %s", r.section, typeName(typ))
			return nil
		}
	case wantNumber:
		if !isNumber(typ) {
			fc.errf(r.expr, CodeType, r.id, "%s must give a number, this gives %s", r.section, typeName(typ))
			return nil
		}
	}
	fc.lintTree(r, &tree.Node, lintConstant)
	if err := optimizer.Optimize(&tree.Node, config); err != nil {
		fc.exprError(r, err)
		return nil
	}
	p, err := compiler.Compile(tree, config)
	if err != nil {
		fc.exprError(r, err)
		return nil
	}
	return p
}

func typeName(t reflect.Type) string {
	if t == nil || t.Kind() == reflect.Interface {
		return "an unknown type"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "yes/no (bool)"
	case reflect.String:
		return "text (string)"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	if isNumber(t) {
		return "a number"
	}
	return t.String()
}

func isNumber(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func (fc *fileCompiler) exprError(r *ruleDef, err error) {
	var fe *file.Error
	if errors.As(err, &fe) {
		code := CodeSyntax
		msg := fe.Message
		switch {
		case strings.Contains(msg, "unknown name"), strings.Contains(msg, "unknown func"),
			strings.Contains(msg, "has no field"), strings.Contains(msg, "undefined"):
			code = CodeUnknownName
		case strings.Contains(msg, "exceeds maximum allowed nodes"):
			code = CodeTooLarge
			msg = fmt.Sprintf("expression has more than %d parts (nodes)", MaxExprNodes)
		case strings.Contains(msg, "mismatched types"), strings.Contains(msg, "invalid operation"),
			strings.Contains(msg, "cannot use"), strings.Contains(msg, "not enough arguments"),
			strings.Contains(msg, "too many arguments"), strings.Contains(msg, "expected"):
			code = CodeType
		}
		fc.exprDiag(r, fe.Location, SeverityError, code, "%s", friendly(msg))
		return
	}
	msg := err.Error()
	code := CodeSyntax
	if strings.Contains(msg, "exceeds maximum allowed nodes") {
		code = CodeTooLarge
		msg = fmt.Sprintf("expression has more than %d parts (nodes)", MaxExprNodes)
	}
	fc.exprDiag(r, file.Location{}, SeverityError, code, "%s", msg)
}

// resolveParams replaces every params.<name> by the param's value, marks the
// param used, and reports unknown params, a bare `params`, and builtins that
// would read the time-zone database.
func (fc *fileCompiler) resolveParams(r *ruleDef, root *ast.Node) bool {
	v := &paramVisitor{fc: fc, r: r, ok: true}
	ast.Walk(root, v)
	return v.ok
}

type paramVisitor struct {
	fc *fileCompiler
	r  *ruleDef
	ok bool
}

func (v *paramVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		id, isIdent := n.Node.(*ast.IdentifierNode)
		if isIdent && id.Value == "region" {
			v.regionConstant(node, n)
			return
		}
		if !isIdent || id.Value != "params" {
			return
		}
		prop, isStr := n.Property.(*ast.StringNode)
		if !isStr {
			v.fc.exprDiag(v.r, n.Location(), SeverityError, CodeUnknownName, "params must be followed by .name")
			v.ok = false
			return
		}
		p, found := v.fc.params[prop.Value]
		if !found {
			v.fc.exprDiag(v.r, n.Location(), SeverityError, CodeUnknownName, "unknown param %q (defined: %s)", prop.Value, strings.Join(v.fc.paramNames(), ", "))
			v.ok = false
			return
		}
		p.used = true
		var lit ast.Node
		switch val := p.value.(type) {
		case int:
			lit = &ast.IntegerNode{Value: val}
		case float64:
			lit = &ast.FloatNode{Value: val}
		case bool:
			lit = &ast.BoolNode{Value: val}
		case string:
			lit = &ast.StringNode{Value: val}
		}
		ast.Patch(node, lit)
	case *ast.IdentifierNode:
		if forbidden := forbiddenNames(v.r); forbidden[n.Value] != "" {
			v.fc.exprDiag(v.r, n.Location(), SeverityError, CodeUnknownName, "%s", forbidden[n.Value])
			v.ok = false
		}
	case *ast.BuiltinNode:
		if n.Name == "date" && len(n.Arguments) > 2 {
			v.fc.exprDiag(v.r, n.Location(), SeverityError, CodeType, "date() takes a date and at most a layout; time zones are not available")
			v.ok = false
		}
	case *ast.IntegerNode:
		v.fc.bareNumber(v.r, n.Location(), float64(n.Value))
	case *ast.FloatNode:
		v.fc.bareNumber(v.r, n.Location(), n.Value)
	}
}

// regionConstant replaces region.name and region.municipalities by their
// values: they are fixed per version, and a constant list lets expr turn
// `x in region.municipalities` into a map lookup.
func (v *paramVisitor) regionConstant(node *ast.Node, n *ast.MemberNode) {
	prop, isStr := n.Property.(*ast.StringNode)
	if !isStr {
		return
	}
	switch prop.Value {
	case "name":
		ast.Patch(node, &ast.StringNode{Value: v.fc.region.Name})
	case "municipalities":
		if len(v.fc.region.Municipalities) == 0 {
			return
		}
		arr := &ast.ArrayNode{}
		for _, m := range v.fc.region.Municipalities {
			arr.Nodes = append(arr.Nodes, &ast.StringNode{Value: m})
		}
		ast.Patch(node, arr)
	}
}

func (fc *fileCompiler) paramNames() []string {
	names := make([]string, 0, len(fc.params))
	for name := range fc.params {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// bareNumber warns when a literal equals the value of a numeric param.
func (fc *fileCompiler) bareNumber(r *ruleDef, loc file.Location, v float64) {
	for _, name := range fc.paramNames() {
		p := fc.params[name]
		if p == nil {
			continue
		}
		var pv float64
		switch x := p.value.(type) {
		case int:
			pv = float64(x)
		case float64:
			pv = x
		default:
			continue
		}
		if pv == v {
			fc.exprDiag(r, loc, SeverityWarning, CodeBareNumber, "the number %v equals params.%s; use the param so one edit changes both", v, name)
			return
		}
	}
}

// lintTree runs the lints that need types: float equality and constant
// conditions.
func (fc *fileCompiler) lintTree(r *ruleDef, root *ast.Node, lintConstant bool) {
	l := &typedLinter{}
	ast.Walk(root, l)
	for _, loc := range l.floatEq {
		fc.exprDiag(r, loc, SeverityWarning, CodeFloatEquality, "== or != between numbers with decimals is unreliable; compare with < or >, or round first")
	}
	if lintConstant && !l.dynamic {
		fc.warnf(r.expr, CodeConstant, r.id, "condition does not depend on the input: it is always %s", constantValue(*root))
	}
}

func constantValue(n ast.Node) string {
	if b, ok := n.(*ast.BoolNode); ok {
		return fmt.Sprint(b.Value)
	}
	return "the same"
}

type typedLinter struct {
	floatEq []file.Location
	dynamic bool
}

func (l *typedLinter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode, *ast.PointerNode, *ast.VariableDeclaratorNode:
		l.dynamic = true
	case *ast.BinaryNode:
		if n.Operator == "==" || n.Operator == "!=" {
			if isFloat(n.Left.Type()) || isFloat(n.Right.Type()) {
				l.floatEq = append(l.floatEq, n.Location())
			}
		}
	}
}

func isFloat(t reflect.Type) bool {
	return t != nil && (t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32)
}

var (
	limitForbidden      = map[string]string{"limit": "limit cannot use its own result"}
	trajectoryForbidden = map[string]string{"referral": "a signal about trajectory cannot use referral (set about: referral)"}
	referralForbidden   = map[string]string{"trajectory": "a signal about referral cannot use trajectory"}
)

// forbiddenNames are env names a rule may not use although its env has them.
func forbiddenNames(r *ruleDef) map[string]string {
	switch {
	case r.section == "limit":
		return limitForbidden
	case r.section == "signals" && r.about == AboutReferral:
		return referralForbidden
	case r.section == "signals":
		return trajectoryForbidden
	}
	return nil
}

// envNames maps the env struct types to the names a coordinator writes.
var envNames = map[string]reflect.Type{
	"region":     reflect.TypeFor[RegionEnv](),
	"year":       reflect.TypeFor[YearEnv](),
	"referral":   reflect.TypeFor[ReferralEnv](),
	"family":     reflect.TypeFor[FamilyEnv](),
	"member":     reflect.TypeFor[MemberEnv](),
	"coach":      reflect.TypeFor[CoachEnv](),
	"trajectory": reflect.TypeFor[TrajectoryEnv](),
}

var (
	noFieldRE = regexp.MustCompile(`type rules\.(\w+) has no field (\w+)`)
	envTypeRE = regexp.MustCompile(`rules\.(\w+)`)
)

// friendly rewrites expr's messages in the vocabulary of the rule files
// instead of Go type names.
func friendly(msg string) string {
	if m := noFieldRE.FindStringSubmatch(msg); m != nil {
		name, t := vocabName(m[1])
		known := []string{}
		if t != nil {
			for i := 0; i < t.NumField(); i++ {
				known = append(known, t.Field(i).Tag.Get("expr"))
			}
		}
		return fmt.Sprintf("unknown name %s.%s (known: %s)", name, m[2], strings.Join(known, ", "))
	}
	msg = envTypeRE.ReplaceAllStringFunc(msg, func(s string) string {
		name, _ := vocabName(strings.TrimPrefix(s, "rules."))
		return name
	})
	return strings.ReplaceAll(msg, "time.Time", "date")
}

func vocabName(goType string) (string, reflect.Type) {
	switch goType {
	case "CapacityRefEnv":
		return "referral", reflect.TypeFor[CapacityRefEnv]()
	case "PendingEnv":
		return "referral", reflect.TypeFor[PendingEnv]()
	}
	for name, t := range envNames {
		if t.Name() == goType {
			return name, t
		}
	}
	return goType, nil
}
