package rules

import (
	"strings"
	"testing"
)

func intakeWith(params, require string) string {
	return "ruleset: intake\nparams:\n" + params + "eligibility:\n  require:\n" + require
}

func TestLint_ReportsEachFindingWithPositionAndSeverity(t *testing.T) {
	tests := []struct {
		name     string
		file     string // the intake.yaml
		code     string
		severity Severity
		ruleID   string
		line     int
		col      int
		msg      string // a substring of the message
	}{
		{
			name: "duplicate rule id is an error",
			file: intakeWith("", "    - {id: a, label: A, when: referral.crisis}\n    - {id: a, label: B, when: referral.consent}\n"),
			code: CodeDuplicateID, severity: SeverityError, ruleID: "a", line: 6, col: 12, msg: "already used at line 5",
		},
		{
			name: "id shared by a require and an exclude is an error",
			file: intakeWith("", "    - {id: a, label: A, when: referral.crisis}\n  exclude:\n    - {id: a, label: B, when: referral.consent}\n"),
			code: CodeDuplicateID, severity: SeverityError, ruleID: "a", line: 7,
		},
		{
			name: "unused param is a warning",
			file: intakeWith("  spare: {value: 4, label: Reserve}\n", "    - {id: a, label: A, when: referral.crisis}\n"),
			code: CodeUnusedParam, severity: SeverityWarning, ruleID: "spare", line: 3, col: 3,
		},
		{
			name: "unknown name is an error at its column",
			file: intakeWith("", "    - id: a\n      label: A\n      when: referral.crisis || referal.consent\n"),
			code: CodeUnknownName, severity: SeverityError, ruleID: "a", line: 7, col: 32, msg: "unknown name referal",
		},
		{
			name: "unknown field is an error",
			file: intakeWith("", "    - id: a\n      label: A\n      when: referral.urgent\n"),
			code: CodeUnknownName, severity: SeverityError, ruleID: "a", line: 7,
		},
		{
			name: "unknown param is an error naming the params that exist",
			file: intakeWith("  age: {value: 4, label: Leeftijd}\n", "    - id: a\n      label: A\n      when: referral.waiting_days > params.days\n"),
			code: CodeUnknownName, severity: SeverityError, ruleID: "a", msg: `unknown param "days" (defined: age)`,
		},
		{
			name: "constant condition is a warning",
			file: intakeWith("", "    - {id: a, label: A, when: \"1 < 2\"}\n"),
			code: CodeConstant, severity: SeverityWarning, ruleID: "a", line: 5,
		},
		{
			name: "condition on params only is constant",
			file: intakeWith("  on: {value: true, label: Aan}\n", "    - {id: a, label: A, when: params.on}\n"),
			code: CodeConstant, severity: SeverityWarning, ruleID: "a", msg: "always true",
		},
		{
			name: "float equality is a warning",
			file: "ruleset: capacity\nlimit: coach.fte * 10\nchecks:\n  - id: full_time\n    label: VT\n    when: coach.fte == 1.0\n",
			code: CodeFloatEquality, severity: SeverityWarning, ruleID: "full_time", line: 6, col: 21,
		},
		{
			name: "bare number equal to a param is a warning",
			file: intakeWith("  max_wait: {value: 30, label: Wachten}\n", "    - id: a\n      label: A\n      when: referral.waiting_days < 30 && referral.waiting_days < params.max_wait\n"),
			code: CodeBareNumber, severity: SeverityWarning, ruleID: "a", line: 8, col: 37, msg: "params.max_wait",
		},
		{
			name: "condition of the wrong type is an error",
			file: intakeWith("", "    - {id: a, label: A, when: referral.waiting_days}\n"),
			code: CodeType, severity: SeverityError, ruleID: "a", msg: "must give yes/no",
		},
		{
			name: "comparing text with a number is an error",
			file: intakeWith("", "    - {id: a, label: A, when: referral.channel > 3}\n"),
			code: CodeType, severity: SeverityError, ruleID: "a",
		},
		{
			name: "the clock is not available",
			file: intakeWith("", "    - {id: a, label: A, when: now() > today}\n"),
			code: CodeUnknownName, severity: SeverityError, ruleID: "a",
		},
		{
			name: "expression over the size bound is an error",
			file: intakeWith("", "    - {id: a, label: A, when: \""+strings.Repeat("referral.crisis || ", 120)+"true\"}\n"),
			code: CodeTooLarge, severity: SeverityError, ruleID: "a", msg: "bytes",
		},
		{
			name: "expression over the node bound is an error",
			file: intakeWith("", "    - {id: a, label: A, when: \""+strings.Repeat("1+", 400)+"1 > 0\"}\n"),
			code: CodeTooLarge, severity: SeverityError, ruleID: "a",
		},
		{
			name: "unknown key in a rule is an error",
			file: intakeWith("", "    - {id: a, label: A, when: referral.crisis, severity: high}\n"),
			code: CodeSchema, severity: SeverityError, line: 5, msg: `unknown key "severity"`,
		},
		{
			name: "a Go field outside the vocabulary is unknown",
			file: intakeWith("", "    - {id: a, label: A, when: len(people) > 0}\n"),
			code: CodeUnknownName, severity: SeverityError, ruleID: "a", line: 5, col: 35, msg: "unknown name people",
		},
		{
			name: "limit may not use itself",
			file: "ruleset: capacity\nlimit: limit + 1\nchecks: []\n",
			code: CodeUnknownName, severity: SeverityError, ruleID: "limit", msg: "its own result",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := RulesetIntake
			if strings.HasPrefix(tt.file, "ruleset: capacity") {
				rs = RulesetCapacity
			}
			_, diags := CompileRegion("testland", "testland", minimalFiles(map[string]string{rs: tt.file}))
			got, ok := findDiag(diags, tt.code)
			if !ok {
				t.Fatalf("no %s diagnostic; got:\n%s", tt.code, diagLines(diags))
			}
			if got.Severity != tt.severity {
				t.Errorf("severity: got %s, want %s", got.Severity, tt.severity)
			}
			if tt.ruleID != "" && got.RuleID != tt.ruleID {
				t.Errorf("rule id: got %q, want %q", got.RuleID, tt.ruleID)
			}
			if tt.line != 0 && got.Line != tt.line {
				t.Errorf("line: got %d, want %d (%s)", got.Line, tt.line, got)
			}
			if tt.col != 0 && got.Column != tt.col {
				t.Errorf("column: got %d, want %d (%s)", got.Column, tt.col, got)
			}
			if !strings.Contains(got.Message, tt.msg) {
				t.Errorf("message: got %q, want it to contain %q", got.Message, tt.msg)
			}
			if wantFile := "testland/" + rs + ".yaml"; got.File != wantFile {
				t.Errorf("file: got %q, want %q", got.File, wantFile)
			}
		})
	}
}

func TestLint_WarningsDoNotBlockButErrorsDo(t *testing.T) {
	warnOnly := intakeWith("  spare: {value: 4, label: Reserve}\n", "    - {id: a, label: A, when: referral.crisis}\n")
	reg, diags := CompileRegion("testland", "testland", minimalFiles(map[string]string{RulesetIntake: warnOnly}))
	if reg == nil {
		t.Fatalf("a region with only warnings was rejected:\n%s", diagLines(diags))
	}
	if len(reg.Warnings) != 1 {
		t.Errorf("warnings: got %d, want 1", len(reg.Warnings))
	}
	withError := intakeWith("", "    - {id: a, label: A, when: referral.nope}\n")
	reg, _ = CompileRegion("testland", "testland", minimalFiles(map[string]string{RulesetIntake: withError}))
	if reg != nil {
		t.Error("a region with an error was accepted")
	}
}

func TestLint_ShippedRulesHaveNoFindings(t *testing.T) {
	_, diags, err := Load("regions")
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) > 0 {
		t.Errorf("shipped rules have findings:\n%s", diagLines(diags))
	}
}

func TestDiagnostic_StringIsFileLineColIDMessage(t *testing.T) {
	d := Diagnostic{File: "r/kempen/intake.yaml", Line: 12, Column: 7, RuleID: "crisis", Severity: SeverityError, Message: "unknown name x"}
	if got, want := d.String(), "r/kempen/intake.yaml:12:7: crisis: unknown name x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	d.Severity = SeverityWarning
	if got, want := d.String(), "r/kempen/intake.yaml:12:7: crisis: warning: unknown name x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLint_AReportParamNeedsNoExpression(t *testing.T) {
	report := intakeWith("  target: {value: 200, label: Jaardoel, report: true}\n", "    - {id: a, label: A, when: referral.crisis}\n")
	reg, diags := CompileRegion("testland", "testland", minimalFiles(map[string]string{RulesetIntake: report}))
	if reg == nil || len(diags) != 0 {
		t.Fatalf("a report param: region %v, findings:\n%s", reg != nil, diagLines(diags))
	}
	if v, ok := reg.ParamNumber(RulesetIntake, "target"); !ok || v != 200 {
		t.Fatalf("report param reads %v, %v", v, ok)
	}
	bad := intakeWith("  target: {value: 200, label: Jaardoel, report: yes please}\n", "    - {id: a, label: A, when: referral.crisis}\n")
	if reg, diags := CompileRegion("testland", "testland", minimalFiles(map[string]string{RulesetIntake: bad})); reg != nil || !HasErrors(diags) {
		t.Fatalf("report: with text was accepted:\n%s", diagLines(diags))
	}
}
