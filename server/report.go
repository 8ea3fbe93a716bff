package server

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
)

// reportRoutes registers the yearly report of a region (DESIGN §6.7):
//
//	GET /regions/:region/report?year=YYYY[&format=csv]
//
// Coordinators and reviewers get the whole region; a coach gets her own
// caseload only (scope "coach"); admins are forbidden, another region is
// not_found. Every CSV export is audited.
func (s *Server) reportRoutes(api *echo.Group) {
	api.GET("/regions/:region/report", s.handleReport, auth.RequireRegion("region"),
		auth.Require(auth.RoleCoach, auth.RoleCoordinator, auth.RoleReviewer))
}

// Report is the body of GET /regions/:region/report: a region's (or a
// coach's) year in figures, from one read-model snapshot of the cases plus
// the year's intake decisions.
type Report struct {
	Region string `json:"region"`
	Name   string `json:"name"`
	Year   int    `json:"year"`
	// Scope is "region", or "coach" for a coach: only the trajectories she
	// leads or co-leads, their families' referrals, her consults and the
	// decisions about those families or naming her.
	Scope   string `json:"scope"`
	CoachID string `json:"coach_id,omitempty"`
	// From and To are the year's first and last day; AsOf is the last day
	// counted: To for a past year, today for this one.
	From         rules.Date `json:"from"`
	To           rules.Date `json:"to"`
	AsOf         rules.Date `json:"as_of"`
	GeneratedAt  time.Time  `json:"generated_at"`
	RulesVersion string     `json:"rules_version"`

	Referrals      ReportReferrals    `json:"referrals"`
	Consults       ReportConsults     `json:"consults"`
	Decisions      ReportDecisions    `json:"decisions"`
	Trajectories   ReportTrajectories `json:"trajectories"`
	Contacts       ReportContacts     `json:"contacts"`
	ClosureReasons []ReportClosure    `json:"closure_reasons"`
	Notes          []ReportNote       `json:"notes"`
}

// ReportReferrals counts the referrals received (received_on) in the year.
type ReportReferrals struct {
	Received       int `json:"received"`
	Mandated       int `json:"mandated"`
	NonArticulated int `json:"non_articulated"`
	// NonArticulatedShare is NonArticulated / Received (0..1); null
	// without referrals.
	NonArticulatedShare *float64 `json:"non_articulated_share"`
}

// ReportConsults counts the consults (at) of the year.
type ReportConsults struct {
	Count   int `json:"count"`
	Minutes int `json:"minutes"`
}

// ReportDecisions counts the intake decisions decided in the year.
type ReportDecisions struct {
	Total int `json:"total"`
	// ByKind has every kind: start, decline, redirect, consult.
	ByKind map[string]int `json:"by_kind"`
	// Overrides are starts made over a capacity refusal.
	Overrides int `json:"overrides"`
	// MedianDaysToDecision is the median of received_on → decided_on over
	// the decisions whose referral has a received_on; null without any.
	MedianDaysToDecision *float64 `json:"median_days_to_decision"`
}

// ReportTrajectories are the year's trajectories. Target, MandatedReserve
// and NonMandatedCeiling come from the capacity rules' params
// yearly_trajectories and mandated_reserve (null when the region has no
// such param, and for a coach's report).
type ReportTrajectories struct {
	Started            int      `json:"started"`
	StartedMandated    int      `json:"started_mandated"`
	StartedNonMandated int      `json:"started_non_mandated"`
	Target             *float64 `json:"target"`
	MandatedReserve    *float64 `json:"mandated_reserve"`
	NonMandatedCeiling *float64 `json:"non_mandated_ceiling"`
	// TargetRemaining is Target − Started (never below 0).
	TargetRemaining *float64 `json:"target_remaining"`
	// RunningAtEnd are the trajectories started on or before AsOf and not
	// closed by then; Closed those closed (closed_on) in the year.
	RunningAtEnd int `json:"running_at_end"`
	Closed       int `json:"closed"`
	// AvgDurationDays and MedianDurationDays are over the closed ones
	// (started_on → closed_on); null without any.
	AvgDurationDays    *float64 `json:"avg_duration_days"`
	MedianDurationDays *float64 `json:"median_duration_days"`
	// RTJRequests are the trajectories running at some time in the year
	// with an RTJ request from the plan.
	RTJRequests int `json:"rtj_requests"`
}

// ReportContacts relates the year's contacts to the weeks trajectories ran
// in the year.
type ReportContacts struct {
	Count           int      `json:"count"`
	TrajectoryWeeks float64  `json:"trajectory_weeks"`
	PerTrajectoryWk *float64 `json:"per_trajectory_week"`
}

// ReportClosure counts closures for one reason, with the labels of
// region.yaml (the id when the reason is not configured).
type ReportClosure struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	LabelEN string `json:"label_en,omitempty"`
	Count   int    `json:"count"`
}

// ReportNote explains a figure, in Dutch and English.
type ReportNote struct {
	Metric string `json:"metric"`
	Text   string `json:"text"`
	TextEN string `json:"text_en"`
}

func (s *Server) handleReport(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	region := c.Param("region")
	now := s.cfg.Now().In(brussels())
	year, err := intParam(c.QueryParam("year"), now.Year(), 2000, now.Year())
	if err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format != "" && format != "json" && format != "csv" {
		return samenplan.Errorf(samenplan.EINVALID, "Onbekend formaat / unknown format %q (want json or csv).", format)
	}
	coach := ""
	if p.Role == auth.RoleCoach {
		coach = p.UserID
	}
	rep, err := s.report(c.Request().Context(), region, year, coach, now)
	if err != nil {
		return err
	}
	if format != "csv" {
		return c.JSON(http.StatusOK, rep)
	}
	body, err := rep.CSV()
	if err != nil {
		return fmt.Errorf("report %s %d: csv: %w", region, year, err)
	}
	entry := auth.AuditEntry(c, audit.ActionExport)
	entry.Region, entry.TargetKind, entry.TargetID = region, "report", fmt.Sprintf("%s/%d", region, year)
	entry.Detail = audit.Detail(map[string]any{"what": "report", "format": "csv", "year": year, "scope": rep.Scope})
	s.cfg.Audit.Record(entry)
	h := c.Response().Header()
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="samenplan-rapport-%s-%d.csv"`, region, year))
	h.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", body)
}

// report computes the year's figures of region; coach, when set, limits it
// to her caseload. now is the server's time in Europe/Brussels.
func (s *Server) report(ctx context.Context, region string, year int, coach string, now time.Time) (Report, error) {
	from, to := rules.NewDate(year, time.January, 1), rules.NewDate(year, time.December, 31)
	asOf := to
	if today := rules.DateOf(now); today.Time().Before(to.Time()) {
		asOf = today
	}
	rep := Report{Region: region, Name: region, Year: year, Scope: "region", CoachID: coach, From: from, To: to, AsOf: asOf,
		GeneratedAt: now, ClosureReasons: []ReportClosure{}, Notes: reportNotes}
	rep.Decisions.ByKind = map[string]int{"start": 0, "decline": 0, "redirect": 0, "consult": 0}
	if coach != "" {
		rep.Scope = "coach"
	}
	rr, hasRules := s.cfg.Rules.Region(region)
	if hasRules {
		rep.Name, rep.RulesVersion = rr.Config.Name, rr.Version
	}
	tally := &yearTally{from: from, asOf: asOf, span: spanOf(from, asOf), closures: map[string]int{}}
	inYear, span := tally.inPeriod, tally.span

	// Trajectories, their contacts and closures: one snapshot of the cases.
	families := map[string]bool{} // a coach's caseload
	for _, cs := range s.cfg.View.All(region) {
		for i, t := 0, cs.Trajectory; t != nil; i, t = i+1, nextTrajectory(cs, i) {
			if coach != "" && t.LeadCoachID != coach && !slices.Contains(t.CoCoachIDs, coach) {
				continue
			}
			if coach != "" {
				families[cs.ID()] = true
			}
			tally.add(&rep, cs, t)
		}
	}
	closures := tally.closures
	if n := len(tally.durations); n > 0 {
		sum := 0
		ds := make([]float64, n)
		for i, d := range tally.durations {
			sum += d
			ds[i] = float64(d)
		}
		rep.Trajectories.AvgDurationDays = roundedPtr(float64(sum) / float64(n))
		rep.Trajectories.MedianDurationDays = roundedPtr(median(ds))
	}
	if rep.Contacts.TrajectoryWeeks > 0 {
		rep.Contacts.PerTrajectoryWk = roundedPtr(float64(rep.Contacts.Count) / rep.Contacts.TrajectoryWeeks)
	}
	rep.Contacts.TrajectoryWeeks = rounded(rep.Contacts.TrajectoryWeeks)

	// Target and reserve (the region's report only).
	if hasRules && coach == "" {
		if v, ok := rr.ParamNumber(rules.RulesetCapacity, "yearly_trajectories"); ok {
			rep.Trajectories.Target = &v
			rem := math.Max(v-float64(rep.Trajectories.Started), 0)
			rep.Trajectories.TargetRemaining = &rem
			if r, ok := rr.ParamNumber(rules.RulesetCapacity, "mandated_reserve"); ok {
				ceil := v - r
				rep.Trajectories.MandatedReserve, rep.Trajectories.NonMandatedCeiling = &r, &ceil
			}
		}
	}

	// Closure reasons in region.yaml's order, unknown ones after.
	if hasRules {
		for _, t := range rr.Config.ClosureReasons {
			rep.ClosureReasons = append(rep.ClosureReasons, ReportClosure{ID: t.ID, Label: t.Label, LabelEN: t.LabelEN, Count: closures[t.ID]})
			delete(closures, t.ID)
		}
	}
	var unknown []string
	for id := range closures {
		unknown = append(unknown, id)
	}
	sort.Strings(unknown)
	for _, id := range unknown {
		label := id
		if id == "" {
			label = "(geen reden) / (no reason)"
		}
		rep.ClosureReasons = append(rep.ClosureReasons, ReportClosure{ID: id, Label: label, Count: closures[id]})
	}

	// Referrals received in the year.
	countReferral := func(r *view.Referral) {
		if !inYear(r.ReceivedOn) {
			return
		}
		rep.Referrals.Received++
		if r.Mandated {
			rep.Referrals.Mandated++
		}
		if !r.Articulated {
			rep.Referrals.NonArticulated++
		}
	}
	if coach == "" {
		for _, r := range s.cfg.View.Referrals(region, "") {
			countReferral(r)
		}
	} else {
		for fam := range families {
			if cs, ok := s.cfg.View.Case(fam); ok {
				for _, r := range cs.Referrals {
					countReferral(r)
				}
			}
		}
	}
	if rep.Referrals.Received > 0 {
		rep.Referrals.NonArticulatedShare = roundedPtr(float64(rep.Referrals.NonArticulated) / float64(rep.Referrals.Received))
	}

	// Consults of the year.
	for _, cn := range s.cfg.View.Consults(region, span.from, span.to) {
		if coach != "" && cn.CoachID != coach {
			continue
		}
		rep.Consults.Count++
		rep.Consults.Minutes += cn.Minutes
	}

	// Decisions of the year.
	decisions, err := s.decisionsBetween(ctx, region, from, asOf)
	if err != nil {
		return rep, err
	}
	var waits []float64
	for _, d := range decisions {
		if coach != "" && d.CoachID != coach && !slices.Contains(d.CoCoachIDs, coach) && !families[d.FamilyID] {
			continue
		}
		rep.Decisions.Total++
		rep.Decisions.ByKind[d.Kind]++
		if d.OverrideReason != "" {
			rep.Decisions.Overrides++
		}
		received, err1 := rules.ParseDate(d.ReceivedOn)
		decided, err2 := rules.ParseDate(d.DecidedOn)
		if err1 == nil && err2 == nil && !received.IsZero() {
			waits = append(waits, float64(max(received.DaysUntil(decided), 0)))
		}
	}
	if len(waits) > 0 {
		rep.Decisions.MedianDaysToDecision = roundedPtr(median(waits))
	}
	return rep, nil
}

// nextTrajectory returns the case's i-th past trajectory (after the
// current one), or nil.
func nextTrajectory(cs *view.Case, i int) *view.Trajectory {
	if i < len(cs.PastTrajectories) {
		return cs.PastTrajectories[i]
	}
	return nil
}

// yearTally adds up the trajectories of a report's period.
type yearTally struct {
	from, asOf rules.Date
	span       instantSpan
	closures   map[string]int // closure reason → closures in the period
	durations  []int          // days, of the trajectories closed in the period
}

func (y *yearTally) inPeriod(d rules.Date) bool {
	return !d.IsZero() && !d.Time().Before(y.from.Time()) && !d.Time().After(y.asOf.Time())
}

// add counts one trajectory of the report's scope into rep.
func (y *yearTally) add(rep *Report, cs *view.Case, t *view.Trajectory) {
	from, asOf, span, inYear := y.from, y.asOf, y.span, y.inPeriod
	tr := &rep.Trajectories
	if inYear(t.StartedOn) {
		tr.Started++
		if t.Mandated {
			tr.StartedMandated++
		} else {
			tr.StartedNonMandated++
		}
	}
	closedBy := !t.ClosedOn.IsZero() && !t.ClosedOn.Time().After(asOf.Time())
	if t.Status == "closed" && t.ClosedOn.IsZero() {
		closedBy = true // closed without a date: not running, not counted as closed in the year
	}
	if inYear(t.ClosedOn) {
		tr.Closed++
		y.closures[t.ClosureReason]++
		if !t.StartedOn.IsZero() {
			y.durations = append(y.durations, max(t.StartedOn.DaysUntil(t.ClosedOn), 0))
		}
	}
	if t.StartedOn.IsZero() || t.StartedOn.Time().After(asOf.Time()) {
		return // not started by the end of the period: no weeks, no contacts
	}
	if !closedBy {
		tr.RunningAtEnd++
	}
	// The days it ran within the year.
	lo := t.StartedOn
	if lo.Time().Before(from.Time()) {
		lo = from
	}
	hi := asOf
	if !t.ClosedOn.IsZero() && t.ClosedOn.Time().Before(hi.Time()) {
		hi = t.ClosedOn
	}
	if t.Status == "closed" && t.ClosedOn.IsZero() {
		return
	}
	days := lo.DaysUntil(hi) + 1
	if days <= 0 {
		return
	}
	rep.Contacts.TrajectoryWeeks += float64(days) / 7
	if t.RTJRequested {
		tr.RTJRequests++
	}
	// Instants compare without a time zone conversion per contact; a case
	// with one trajectory needs no id comparison.
	only := len(cs.PastTrajectories) == 0
	for i := range cs.Contacts {
		ct := &cs.Contacts[i]
		if !ct.OccurredAt.Before(span.from) && ct.OccurredAt.Before(span.to) && (only || ct.TrajectoryID == t.ID) {
			rep.Contacts.Count++
		}
	}
}

// instantSpan is [from, to) in time: the report's days in Europe/Brussels.
type instantSpan struct{ from, to time.Time }

func spanOf(from, through rules.Date) instantSpan {
	f, t := from.Time(), through.Time()
	return instantSpan{time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, brussels()),
		time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, brussels())}
}

// median returns the median of xs (the mean of the middle two for an even
// count); xs is sorted in place.
func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func rounded(x float64) float64 { return math.Round(x*100) / 100 }

func roundedPtr(x float64) *float64 {
	r := rounded(x)
	return &r
}

var reportNotes = []ReportNote{
	{"referrals", "Aanmeldingen met een ontvangstdatum in het jaar (tot en met as_of); een aanmelding zonder 'gearticuleerd' telt als niet-gearticuleerd.",
		"Referrals with received_on in the year (up to as_of); a referral without 'articulated' counts as non-articulated."},
	{"trajectories.running_at_end", "Gestart op of voor as_of en toen niet afgesloten (een traject dat gepauzeerd is telt als lopend).",
		"Started on or before as_of and not closed by then (a paused trajectory counts as running)."},
	{"contacts.per_trajectory_week", "Contacten in het jaar gedeeld door de weken dat trajecten in het jaar liepen.",
		"Contacts in the year divided by the weeks trajectories ran in the year."},
	{"decisions.median_days_to_decision", "Mediaan van de dagen van aanmelding tot beslissing, over de beslissingen van het jaar.",
		"Median days from referral to decision, over the year's decisions."},
	{"trajectories.rtj_requests", "Trajecten die in het jaar liepen met een RTJ-aanvraag vanuit het plan (de datum van de aanvraag wordt niet bijgehouden).",
		"Trajectories running in the year with an RTJ request from the plan (the request's date is not kept)."},
}

// CSV returns the report as one metric,value table (UTF-8, a header row):
// the scope first, then every figure; breakdowns (decisions by kind,
// closure reasons) as metric.<id> rows. An empty value is a figure that
// does not apply (null in JSON).
func (r *Report) CSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	rows := [][]string{{"metric", "value"}}
	add := func(metric string, v any) {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int:
			s = strconv.Itoa(x)
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case *float64:
			if x != nil {
				s = strconv.FormatFloat(*x, 'f', -1, 64)
			}
		}
		rows = append(rows, []string{metric, s})
	}
	add("region", r.Region)
	add("year", r.Year)
	add("scope", r.Scope)
	add("as_of", r.AsOf.String())
	add("rules_version", r.RulesVersion)
	add("referrals.received", r.Referrals.Received)
	add("referrals.mandated", r.Referrals.Mandated)
	add("referrals.non_articulated", r.Referrals.NonArticulated)
	add("referrals.non_articulated_share", r.Referrals.NonArticulatedShare)
	add("consults.count", r.Consults.Count)
	add("consults.minutes", r.Consults.Minutes)
	add("decisions.total", r.Decisions.Total)
	for _, k := range []string{"start", "decline", "redirect", "consult"} {
		add("decisions."+k, r.Decisions.ByKind[k])
	}
	add("decisions.overrides", r.Decisions.Overrides)
	add("decisions.median_days_to_decision", r.Decisions.MedianDaysToDecision)
	t := &r.Trajectories
	add("trajectories.started", t.Started)
	add("trajectories.started_mandated", t.StartedMandated)
	add("trajectories.started_non_mandated", t.StartedNonMandated)
	add("trajectories.target", t.Target)
	add("trajectories.mandated_reserve", t.MandatedReserve)
	add("trajectories.non_mandated_ceiling", t.NonMandatedCeiling)
	add("trajectories.target_remaining", t.TargetRemaining)
	add("trajectories.running_at_end", t.RunningAtEnd)
	add("trajectories.closed", t.Closed)
	add("trajectories.avg_duration_days", t.AvgDurationDays)
	add("trajectories.median_duration_days", t.MedianDurationDays)
	add("trajectories.rtj_requests", t.RTJRequests)
	add("contacts.count", r.Contacts.Count)
	add("contacts.trajectory_weeks", r.Contacts.TrajectoryWeeks)
	add("contacts.per_trajectory_week", r.Contacts.PerTrajectoryWk)
	for _, c := range r.ClosureReasons {
		id := c.ID
		if id == "" {
			id = "_unspecified" // ids start with a letter, so this one is free
		}
		add("closure_reasons."+id, c.Count)
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
