package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/view"
)

// The what-if endpoints of the rules editor (docs/api.md): check and
// dry-run a candidate file without writing, recording or auditing
// anything. Their routes are registered by rulesRoutes.

// RulesCheck is the body of POST /regions/:region/rules/:ruleset/check.
// A file that does not pass is still a successful check: OK is false and
// Diagnostics and Tests say why.
type RulesCheck struct {
	OK      bool   `json:"ok"`
	Region  string `json:"region"`
	Ruleset string `json:"ruleset"`
	// Version is the region version the files would get if saved;
	// ActiveVersion the one active now (equal: the candidate changes nothing).
	Version       string           `json:"version"`
	ActiveVersion string           `json:"active_version"`
	Diagnostics   []RuleDiagnostic `json:"diagnostics"`
	TestsPassed   int              `json:"tests_passed"`
	TestsFailed   int              `json:"tests_failed"`
	// Tests are every test of the region's four files, in file order; empty
	// when the files do not compile.
	Tests []RuleTest `json:"tests"`
}

// RuleTest is the outcome of one test in a rule file.
type RuleTest struct {
	Name    string `json:"name"`
	Ruleset string `json:"ruleset"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Passed  bool   `json:"passed"`
	// Message says what did not hold; "" for a passed test.
	Message string `json:"message"`
}

// RulesDryRun is the body of POST /regions/:region/rules/:ruleset/dryrun:
// the decisions that would change if the candidate were saved, under the
// active version and under the candidate, both for today.
type RulesDryRun struct {
	Region           string     `json:"region"`
	Ruleset          string     `json:"ruleset"`
	Today            rules.Date `json:"today"`
	ActiveVersion    string     `json:"active_version"`
	CandidateVersion string     `json:"candidate_version"`
	// Referrals counts the region's undecided referrals decided twice,
	// Changed those whose eligibility, reasons or priority differ.
	Referrals int              `json:"referrals"`
	Changed   int              `json:"changed"`
	Changes   []ReferralChange `json:"changes"`
	// Coaches counts the region's enabled coaches whose limit was computed
	// twice, CoachesChanged those whose limit, free places or limit error
	// differ.
	Coaches        int           `json:"coaches"`
	CoachesChanged int           `json:"coaches_changed"`
	CoachChanges   []CoachChange `json:"coach_changes"`
}

// ReferralChange is an undecided referral whose intake decision would change.
type ReferralChange struct {
	ReferralID  string        `json:"referral_id"`
	FamilyID    string        `json:"family_id"`
	FamilyLabel string        `json:"family_label"`
	Before      IntakeOutcome `json:"before"`
	After       IntakeOutcome `json:"after"`
	ReceivedOn  rules.Date    `json:"received_on"`
	Mandated    bool          `json:"mandated"`
}

// IntakeOutcome is the part of an intake decision a dry run compares.
type IntakeOutcome struct {
	Eligible bool     `json:"eligible"`
	Priority float64  `json:"priority"`
	Reasons  []string `json:"reasons"`
}

// CoachChange is a coach whose limit under the capacity rules would change.
type CoachChange struct {
	CoachID        string      `json:"coach_id"`
	Username       string      `json:"username"`
	DisplayName    string      `json:"display_name"`
	ActiveFamilies int         `json:"active_families"`
	Before         CoachLimits `json:"before"`
	After          CoachLimits `json:"after"`
}

// CoachLimits is a coach's limit and free places under one version.
type CoachLimits struct {
	Limit      float64 `json:"limit"`
	LimitError string  `json:"limit_error,omitempty"`
	Free       int     `json:"free"`
}

// handleCheckRules compiles, lints and tests the body as the new file of
// ruleset with the region's other files on disk, like PUT, and writes
// nothing: not the disk, not the active version, not the status, not the
// history, not the audit log.
func (s *Server) handleCheckRules(c echo.Context) error {
	region, ruleset := c.Param("region"), c.Param("ruleset")
	st, err := s.rulesStatus(region)
	if err != nil {
		return err
	}
	content, err := readRuleFileBody(c)
	if err != nil {
		return err
	}
	chk, err := s.cfg.Rules.Check(region, ruleset, content)
	if err != nil {
		return err
	}
	out := RulesCheck{OK: chk.OK(), Region: region, Ruleset: ruleset, Version: chk.Version, ActiveVersion: st.ActiveVersion,
		Diagnostics: s.ruleDiagnostics(chk.Diagnostics), TestsPassed: chk.Passed, TestsFailed: chk.Failed,
		Tests: make([]RuleTest, 0, len(chk.Tests))}
	for _, t := range chk.Tests {
		out.Tests = append(out.Tests, RuleTest{Name: t.Name, Ruleset: t.Ruleset, File: s.rulesRelPath(t.File), Line: t.Line,
			Passed: t.Passed, Message: strings.Join(t.Failures, "; ")})
	}
	return c.JSON(http.StatusOK, out)
}

// handleDryRunRules decides the region's live undecided referrals and the
// limits of its coaches with the active rules and with the candidate (which
// must pass its check, else 400 like PUT), and answers what would change.
// Signals are not compared: their inputs are the read model's running
// trajectories, which it does not hand out.
func (s *Server) handleDryRunRules(c echo.Context) error {
	region, ruleset := c.Param("region"), c.Param("ruleset")
	if _, err := s.rulesStatus(region); err != nil {
		return err
	}
	if ruleset == rules.RulesetSignals {
		return samenplan.Errorf(samenplan.EINVALID,
			"Een proefdraai vergelijkt intake- en capaciteitsbeslissingen, geen signalen / dry-run is for intake and capacity (and region), not signals")
	}
	content, err := readRuleFileBody(c)
	if err != nil {
		return err
	}
	chk, err := s.cfg.Rules.Check(region, ruleset, content)
	if err != nil {
		return err
	}
	if !chk.OK() {
		return s.rulesWriteError(c, &rules.ValidationError{Region: region, Diagnostics: chk.Diagnostics})
	}
	active, ok := s.cfg.Rules.Region(region)
	if !ok {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Regio %s heeft geen actieve regels / region %s has no active rules", region, region)
	}
	ctx := c.Request().Context()
	today, _ := s.today()
	out := RulesDryRun{Region: region, Ruleset: ruleset, Today: today, ActiveVersion: active.Version, CandidateVersion: chk.Version,
		Changes: []ReferralChange{}, CoachChanges: []CoachChange{}}

	rep, err := rules.DryRun(ctx, active, chk.Region, modelReferrals{model: s.cfg.View, today: today}, today)
	if err != nil {
		return err
	}
	out.Referrals, out.Changed = rep.Total, len(rep.Changed)
	for _, ch := range rep.Changed {
		rc := ReferralChange{ReferralID: ch.ID, Before: intakeOutcome(ch.Before), After: intakeOutcome(ch.After)}
		if ref, ok := s.cfg.View.Referral(ch.ID); ok {
			rc.FamilyID, rc.ReceivedOn, rc.Mandated = ref.FamilyID, ref.ReceivedOn, ref.Mandated
			if fam, ok := s.cfg.View.Case(ref.FamilyID); ok {
				rc.FamilyLabel = fam.Family.Label
			}
		}
		out.Changes = append(out.Changes, rc)
	}

	load := s.cfg.View.CoachLoad(region)
	before, err := s.coachCapacity(ctx, region, active, load, today)
	if err != nil {
		return err
	}
	after, err := s.coachCapacity(ctx, region, chk.Region, load, today)
	if err != nil {
		return err
	}
	out.Coaches = len(before)
	for i, b := range before {
		if i >= len(after) || after[i].CoachID != b.CoachID {
			break // an account changed between the two reads: compare what lines up
		}
		a := after[i]
		if a.Limit == b.Limit && a.Free == b.Free && a.LimitError == b.LimitError {
			continue
		}
		out.CoachChanges = append(out.CoachChanges, CoachChange{CoachID: b.CoachID, Username: b.Username, DisplayName: b.DisplayName,
			ActiveFamilies: b.ActiveFamilies,
			Before:         CoachLimits{Limit: b.Limit, LimitError: b.LimitError, Free: b.Free},
			After:          CoachLimits{Limit: a.Limit, LimitError: a.LimitError, Free: a.Free}})
	}
	out.CoachesChanged = len(out.CoachChanges)
	return c.JSON(http.StatusOK, out)
}

func intakeOutcome(d rules.DecisionSummary) IntakeOutcome {
	o := IntakeOutcome{Eligible: d.Eligible, Priority: d.Priority, Reasons: d.Reasons}
	if o.Reasons == nil {
		o.Reasons = []string{}
	}
	return o
}

// modelReferrals is a rules.ReferralSource over the read model: the
// region's undecided referrals with their families' members and the
// year's counts — the facts view.LiveReferrals derives for `samenplan rules
// dryrun` by scanning the region's store, which takes seconds once the
// region holds its running work (2.7 s with 10,000 families); the model
// has them at hand. TestRulesDryRun_ReadModelInputsAreTheStoresInputs
// holds the two to the same facts.
type modelReferrals struct {
	model *view.Model
	today rules.Date
}

var _ rules.ReferralSource = modelReferrals{}

func (m modelReferrals) Referrals(_ context.Context, region string) ([]rules.IntakeInput, error) {
	return m.model.IntakeInputs(region, m.today), nil
}
