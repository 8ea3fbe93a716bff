package rules

import (
	"fmt"
	"sort"
	"strings"

	"github.com/samenplan/samenplan"
)

// Severity says whether a Diagnostic blocks activation.
type Severity string

// Severities of a Diagnostic.
const (
	// SeverityError blocks activation of the region.
	SeverityError Severity = "error"
	// SeverityWarning is shown but does not block activation.
	SeverityWarning Severity = "warning"
)

// Diagnostic codes; part of the API (the web client may translate them).
const (
	CodeIO            = "io"             // a file could not be read
	CodeMissingFile   = "missing_file"   // region.yaml or a ruleset file is missing
	CodeSyntax        = "syntax"         // YAML or expression syntax
	CodeSchema        = "schema"         // unknown or missing key, wrong YAML type
	CodeUnknownName   = "unknown_name"   // a name that is not in the vocabulary
	CodeType          = "type"           // an expression of the wrong type
	CodeTooLarge      = "too_large"      // expression source or node count over the bound
	CodeDuplicateID   = "duplicate_id"   // two rules or params with one id
	CodeUnusedParam   = "unused_param"   // a param no expression uses
	CodeConstant      = "constant"       // a condition that does not depend on the input
	CodeFloatEquality = "float_equality" // == or != between floats
	CodeBareNumber    = "bare_number"    // a number where a param with that value exists
	CodeTest          = "test"           // a test in a rule file is malformed
	CodeTestFailed    = "test_failed"    // a test in a rule file does not hold
)

// Diagnostic is one finding about a rule file: a load, compile or lint error
// or warning, or a failed test. Line and Column are 1-based; 0 means unknown.
type Diagnostic struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	RuleID   string   `json:"rule_id"`
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// String formats d as `file:line:col: id: message`; warnings carry
// "warning: " before the message.
func (d Diagnostic) String() string {
	id := d.RuleID
	if id == "" {
		id = "-"
	}
	msg := d.Message
	if d.Severity == SeverityWarning {
		msg = "warning: " + msg
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", d.File, d.Line, d.Column, id, msg)
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Split returns the errors and the warnings of ds, each possibly empty but
// never nil.
func Split(ds []Diagnostic) (errs, warnings []Diagnostic) {
	errs, warnings = []Diagnostic{}, []Diagnostic{}
	for _, d := range ds {
		if d.Severity == SeverityError {
			errs = append(errs, d)
		} else {
			warnings = append(warnings, d)
		}
	}
	return errs, warnings
}

// sortDiagnostics orders by file, line, column, then message.
func sortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Message < b.Message
	})
}

// ValidationError is returned by Registry.Put and Registry.Rollback when the
// new files do not compile, lint or pass their tests. Its chain holds a
// *samenplan.Error with code invalid, so the server maps it to 400/422.
type ValidationError struct {
	Region      string
	Diagnostics []Diagnostic
}

func (e *ValidationError) Error() string {
	errs, _ := Split(e.Diagnostics)
	lines := make([]string, 0, len(errs))
	for _, d := range errs {
		lines = append(lines, d.String())
	}
	return fmt.Sprintf("rules of region %s rejected: %s", e.Region, strings.Join(lines, "; "))
}

// Unwrap exposes the invalid code to samenplan.ErrorCode.
func (e *ValidationError) Unwrap() error {
	return samenplan.Errorf(samenplan.EINVALID, "%s", e.Error())
}
