package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/store"
)

// intakeRoutes registers the weekly intake board and the team's decisions
// (docs/api.md):
//
//	GET  /regions/:region/intake?week=YYYY-Www            coach, coordinator, reviewer: the week's board
//	POST /regions/:region/intake/decisions                coordinator: record a decision
//	GET  /regions/:region/intake/decisions?week=YYYY-Www  coordinator, reviewer: the week's decisions, newest first
//
// RequireRegion runs first: another region is not_found, an admin forbidden.
func (s *Server) intakeRoutes(api *echo.Group) {
	g := api.Group("/regions/:region/intake", auth.RequireRegion("region"))
	g.GET("", s.handleIntakeBoard, auth.Require(auth.RoleCoach, auth.RoleCoordinator, auth.RoleReviewer))
	g.GET("/decisions", s.handleDecisions, auth.Require(auth.RoleCoordinator, auth.RoleReviewer))
	g.POST("/decisions", s.handleDecide, auth.Require(auth.RoleCoordinator))
}

// maxDecisionBody bounds the JSON body of a decision.
const maxDecisionBody = 32 << 10

// maxReasonRunes bounds reason, redirect_to and override_reason.
const maxReasonRunes = 2000

// ---- weeks ----

// isoWeek is an ISO 8601 week: Monday to Sunday, week 1 holds 4 January.
type isoWeek struct {
	year, week int
}

func weekOf(t time.Time) isoWeek {
	y, w := t.ISOWeek()
	return isoWeek{y, w}
}

// parseWeek reads "2026-W48"; anything else, or a week the year does not
// have, is invalid.
func parseWeek(s string) (isoWeek, error) {
	bad := samenplan.Errorf(samenplan.EINVALID, "Ongeldige week %q (verwacht JJJJ-Www, bv. 2026-W48) / invalid week %q (want YYYY-Www, e.g. 2026-W48)", s, s)
	ys, ws, ok := strings.Cut(s, "-W")
	if !ok || len(ys) != 4 || len(ws) != 2 {
		return isoWeek{}, bad
	}
	y, err1 := strconv.Atoi(ys)
	w, err2 := strconv.Atoi(ws)
	if err1 != nil || err2 != nil || y < 1970 || y > 9998 || w < 1 || w > 53 {
		return isoWeek{}, bad
	}
	wk := isoWeek{y, w}
	if weekOf(wk.monday().Time()) != wk {
		return isoWeek{}, bad // week 53 of a year with 52
	}
	return wk, nil
}

func (w isoWeek) String() string { return fmt.Sprintf("%04d-W%02d", w.year, w.week) }

// monday returns the first day of the week.
func (w isoWeek) monday() rules.Date {
	jan4 := time.Date(w.year, time.January, 4, 0, 0, 0, 0, time.UTC)
	offset := (int(jan4.Weekday()) + 6) % 7 // days since Monday
	return rules.DateOf(jan4.AddDate(0, 0, -offset+7*(w.week-1)))
}

// sunday returns the last day of the week.
func (w isoWeek) sunday() rules.Date { return rules.DateOf(w.monday().Time().AddDate(0, 0, 6)) }

// today returns the workflow's day in Europe/Brussels.
func (s *Server) today() (rules.Date, time.Time) {
	now := s.cfg.Now().In(brussels())
	return rules.DateOf(now), now
}

// weekParam returns the ?week= of c, or the week of today.
func (s *Server) weekParam(v string) (isoWeek, error) {
	if v == "" {
		today, _ := s.today()
		return weekOf(today.Time()), nil
	}
	return parseWeek(v)
}

// ---- the board ----

// A page of the board: a week's meeting rarely has more than a few dozen
// referrals; the default page holds them all in practice.
const (
	defaultBoardPage = 100
	maxBoardPage     = 1000
)

// IntakeBoard is the body of GET /regions/:region/intake.
type IntakeBoard struct {
	Region string     `json:"region"`
	Week   string     `json:"week"`
	From   rules.Date `json:"from"` // the week's Monday
	To     rules.Date `json:"to"`   // the week's Sunday
	Today  rules.Date `json:"today"`
	// RulesVersion is the region version of the intake rules the
	// eligibility was computed with ("" without active rules).
	RulesVersion string `json:"rules_version"`
	// Referrals are the undecided referrals received on or before To (or
	// without a date): eligible first by priority (highest first), then the
	// ineligible; within equal priority the oldest first.
	//
	// One page of them: ?limit= (default 100, at most 1,000) and ?offset=;
	// Total counts the whole board and Eligible its eligible referrals.
	Referrals []BoardReferral `json:"referrals"`
	Total     int             `json:"total"`
	Limit     int             `json:"limit"`
	Offset    int             `json:"offset"`
	Eligible  int             `json:"eligible"`
	// Coaches is the capacity of every enabled coach of the region.
	Coaches []CoachCapacity `json:"coaches"`
	Year    YearCounters    `json:"year"`
	// Decisions are those already recorded for the week, newest first.
	Decisions []Decision `json:"decisions"`
}

// BoardReferral is a referral as the board shows it: the referral with its
// live, explained eligibility (ids, labels, results, reasons, priority),
// its family at a glance, and for an eligible one a suggested coach.
type BoardReferral struct {
	*view.Referral
	WaitingDays int            `json:"waiting_days"`
	Family      *BoardFamily   `json:"family"`
	Suggestion  *CoachProposal `json:"suggestion,omitempty"`
}

// BoardFamily is the family of a referral at a glance; nil when the
// referral has no family yet (it cannot start before one is linked).
type BoardFamily struct {
	ID           string `json:"id"`
	Label        string `json:"label"`
	Municipality string `json:"municipality"`
	Language     string `json:"language"`
	Members      int    `json:"members"`
}

// CoachProposal is the suggested coach of an eligible referral. CoachID is
// "" when no coach has a free place left; Reason says why, in Dutch and
// English; Basis is municipality, language, free_places or none.
type CoachProposal struct {
	CoachID     string `json:"coach_id"`
	DisplayName string `json:"display_name,omitempty"`
	Basis       string `json:"basis"`
	Reason      string `json:"reason"`
}

// CoachCapacity is one coach's room for new families under the region's
// capacity rules.
type CoachCapacity struct {
	CoachID     string  `json:"coach_id"`
	Username    string  `json:"username"`
	DisplayName string  `json:"display_name"`
	FTE         float64 `json:"fte"`
	Volunteer   bool    `json:"volunteer"`
	// Limit is the capacity rules' limit for her; LimitError is set when it
	// could not be evaluated (then Limit is 0).
	Limit      float64 `json:"limit"`
	LimitError string  `json:"limit_error,omitempty"`
	// ActiveFamilies are the families of her running trajectories (lead or
	// co-coach); Free the places left: ceil(limit) - active, at least 0.
	ActiveFamilies int `json:"active_families"`
	Free           int `json:"free"`
}

// YearCounters are the trajectories started in Year against the capacity
// rules' params yearly_trajectories (Target) and mandated_reserve (Reserve);
// both are null when the region's rules set none (Maasland's target is a
// floor in the reports, not a rule).
type YearCounters struct {
	Year        int      `json:"year"`
	Started     int      `json:"started"`
	Mandated    int      `json:"mandated"`
	NonMandated int      `json:"non_mandated"`
	Target      *float64 `json:"target"`
	Reserve     *float64 `json:"mandated_reserve"`
	// Remaining is Target - Started; ReserveOpen is Reserve - Mandated (at
	// least 0): places still kept for mandated starts; NonMandatedRoom is
	// Target - Reserve - NonMandated: non-mandated starts still possible.
	Remaining       *float64 `json:"remaining"`
	ReserveOpen     *float64 `json:"reserve_open"`
	NonMandatedRoom *float64 `json:"non_mandated_room"`
}

func (s *Server) handleIntakeBoard(c echo.Context) error {
	region := c.Param("region")
	week, err := s.weekParam(c.QueryParam("week"))
	if err != nil {
		return err
	}
	limit, err := intParam(c.QueryParam("limit"), defaultBoardPage, 1, maxBoardPage)
	if err != nil {
		return err
	}
	offset, err := intParam(c.QueryParam("offset"), 0, 0, 1<<30)
	if err != nil {
		return err
	}
	board, err := s.intakeBoard(c.Request().Context(), region, week)
	if err != nil {
		return err
	}
	// Suggestions use up places in board order, so the whole board is
	// decided before a page of it is cut.
	board.Total, board.Limit, board.Offset = len(board.Referrals), limit, offset
	board.Referrals = board.Referrals[min(offset, len(board.Referrals)):min(offset+limit, len(board.Referrals))]
	var fams, refs []string
	for _, r := range board.Referrals {
		refs = append(refs, r.ID)
		if r.Family != nil {
			fams = append(fams, r.Family.ID)
		}
	}
	s.auditList(c, region, "intake", len(board.Referrals), fams, refs)
	return c.JSON(http.StatusOK, board)
}

// boardYear is the year whose counters a week's board shows: today's year
// for the current and later weeks (a start now counts in it), the year of
// the week's Sunday for a past week.
func boardYear(week isoWeek, today rules.Date) int {
	if end := week.sunday(); end.Time().Before(today.Time()) {
		return end.Time().Year()
	}
	return today.Time().Year()
}

func (s *Server) intakeBoard(ctx context.Context, region string, week isoWeek) (IntakeBoard, error) {
	today, _ := s.today()
	from, to := week.monday(), week.sunday()
	vb := s.cfg.View.Board(region, boardYear(week, today))
	rr, _ := s.cfg.Rules.Region(region)
	coaches, err := s.coachCapacity(ctx, region, rr, vb.Load, today)
	if err != nil {
		return IntakeBoard{}, err
	}
	decisions, err := s.decisionsOfWeek(ctx, region, week.String())
	if err != nil {
		return IntakeBoard{}, err
	}
	b := IntakeBoard{
		Region: region, Week: week.String(), From: from, To: to, Today: today,
		RulesVersion: vb.RulesVersion, Referrals: []BoardReferral{}, Coaches: coaches,
		Year: yearCounters(rr, boardYear(week, today), vb.Year), Decisions: decisions,
	}
	suggest := newSuggester(coaches, s.cfg.View.All(region))
	for _, ref := range vb.Referrals {
		if !ref.ReceivedOn.IsZero() && ref.ReceivedOn.Time().After(to.Time()) {
			continue
		}
		br := BoardReferral{Referral: ref}
		if !ref.ReceivedOn.IsZero() {
			br.WaitingDays = max(0, ref.ReceivedOn.DaysUntil(today))
		}
		var fam *view.Case
		if ref.FamilyID != "" {
			if cs, ok := s.cfg.View.Case(ref.FamilyID); ok {
				fam = cs
				br.Family = &BoardFamily{ID: cs.Family.ID, Label: cs.Family.Label, Municipality: cs.Family.Municipality,
					Language: cs.Family.Language, Members: len(cs.Members)}
			}
		}
		if ref.Eligibility != nil && ref.Eligibility.Eligible {
			b.Eligible++
			br.Suggestion = suggest.propose(ref, fam)
		}
		b.Referrals = append(b.Referrals, br)
	}
	return b, nil
}

// regionCoaches returns the enabled coaches of region, by username.
func (s *Server) regionCoaches(ctx context.Context, region string) ([]auth.User, error) {
	users, err := s.cfg.Auth.ListUsers(ctx, auth.UserFilter{Region: region, Role: auth.RoleCoach, OnlyEnabled: true})
	if err != nil {
		return nil, fmt.Errorf("coaches of %s: %w", region, err)
	}
	return users, nil
}

// coachCapacity evaluates the capacity rules' limit for every coach of the
// region (with a non-mandated referral: the limit is about the coach).
func (s *Server) coachCapacity(ctx context.Context, region string, rr *rules.Region, load map[string]int, today rules.Date) ([]CoachCapacity, error) {
	users, err := s.regionCoaches(ctx, region)
	if err != nil {
		return nil, err
	}
	out := make([]CoachCapacity, 0, len(users))
	for _, u := range users {
		cc := CoachCapacity{CoachID: u.ID, Username: u.Username, DisplayName: u.DisplayName, FTE: u.FTE,
			Volunteer: u.Volunteer, ActiveFamilies: load[u.ID]}
		if rr == nil || rr.Capacity == nil {
			cc.LimitError = "Geen actieve capaciteitsregels / no active capacity rules"
		} else {
			d := rr.EvalCapacity(rules.CapacityInput{Today: today,
				Coach: rules.CoachFacts{FTE: u.FTE, ActiveFamilies: cc.ActiveFamilies, Volunteer: u.Volunteer}})
			cc.Limit, cc.LimitError = d.Limit, d.LimitError
			if d.LimitError != "" || math.IsNaN(d.Limit) || math.IsInf(d.Limit, 0) {
				cc.Limit = 0
			}
		}
		cc.Free = max(0, int(math.Ceil(cc.Limit))-cc.ActiveFamilies)
		out = append(out, cc)
	}
	return out, nil
}

func yearCounters(rr *rules.Region, year int, y rules.YearCountFacts) YearCounters {
	yc := YearCounters{Year: year, Mandated: y.StartedMandated, NonMandated: y.StartedNonMandated,
		Started: y.StartedMandated + y.StartedNonMandated}
	if rr == nil {
		return yc
	}
	if t, ok := rr.ParamNumber(rules.RulesetCapacity, "yearly_trajectories"); ok {
		yc.Target = &t
		rem := t - float64(yc.Started)
		yc.Remaining = &rem
	}
	if r, ok := rr.ParamNumber(rules.RulesetCapacity, "mandated_reserve"); ok {
		yc.Reserve = &r
		open := math.Max(0, r-float64(yc.Mandated))
		yc.ReserveOpen = &open
		if yc.Target != nil {
			room := *yc.Target - r - float64(yc.NonMandated)
			yc.NonMandatedRoom = &room
		}
	}
	return yc
}

// suggester proposes a coach for each eligible referral in board order.
// Each proposal takes one of that coach's free places, so a coach with one
// place left is not proposed twice in the same board.
//
// The preference is lexicographic: a coach who holds a family in the
// referral's municipality, then one who holds a family with the family's
// language, then the most free places, then the username. With hundreds of
// coaches and a thousand referrals a scan per referral is too slow for the
// meeting's page, so coaches are bit sets: per municipality, per language,
// and per number of free places; a proposal intersects them from the most
// free places down and takes the lowest bit (coaches are in username order).
type suggester struct {
	coaches        []CoachCapacity
	free           []int
	municipalities map[string]coachSet // lower-case municipality → coaches holding a family there
	languages      map[string]coachSet // lower-case language → coaches holding a family speaking it
	byFree         map[int]coachSet    // free places (> 0) → coaches with exactly that many
	levels         []int               // the keys of byFree, highest first
	all            coachSet
}

// coachSet is a bit set of coach indexes.
type coachSet []uint64

func newCoachSet(n int) coachSet { return make(coachSet, (n+63)/64) }

func (s coachSet) add(i int)    { s[i/64] |= 1 << (i % 64) }
func (s coachSet) remove(i int) { s[i/64] &^= 1 << (i % 64) }

// firstOf returns the lowest index in a ∩ b, or -1.
func firstOf(a, b coachSet) int {
	for w := range a {
		if x := a[w] & b[w]; x != 0 {
			return w*64 + bits.TrailingZeros64(x)
		}
	}
	return -1
}

// and returns a ∩ b; a nil operand is the empty set.
func and(a, b coachSet) coachSet {
	if a == nil || b == nil {
		return nil
	}
	out := make(coachSet, len(a))
	for w := range a {
		out[w] = a[w] & b[w]
	}
	return out
}

// newSuggester indexes the coaches (in username order, as regionCoaches
// returns them) by the municipalities and languages of the families they
// hold, from one walk over the region's cases.
func newSuggester(coaches []CoachCapacity, cases []*view.Case) *suggester {
	n := len(coaches)
	sg := &suggester{coaches: coaches, free: make([]int, n), municipalities: map[string]coachSet{},
		languages: map[string]coachSet{}, byFree: map[int]coachSet{}, all: newCoachSet(n)}
	index := make(map[string]int, n)
	for i, cc := range coaches {
		index[cc.CoachID] = i
		sg.all.add(i)
		sg.free[i] = cc.Free
		if cc.Free > 0 {
			sg.setFree(i, 0, cc.Free)
		}
	}
	mark := func(m map[string]coachSet, key string, i int) {
		key = strings.ToLower(strings.TrimSpace(key))
		if key == "" {
			return
		}
		set := m[key]
		if set == nil {
			set = newCoachSet(n)
			m[key] = set
		}
		set.add(i)
	}
	for _, cs := range cases {
		for _, coach := range cs.Coaches {
			if i, ok := index[coach]; ok {
				mark(sg.municipalities, cs.Family.Municipality, i)
				mark(sg.languages, cs.Family.Language, i)
			}
		}
	}
	return sg
}

// setFree moves coach i from the set of from free places to that of to
// (0 is in no set).
func (sg *suggester) setFree(i, from, to int) {
	if from > 0 {
		sg.byFree[from].remove(i)
	}
	if to <= 0 {
		return
	}
	set := sg.byFree[to]
	if set == nil {
		set = newCoachSet(len(sg.coaches))
		sg.byFree[to] = set
		sg.levels = append(sg.levels, to)
		slices.SortFunc(sg.levels, func(a, b int) int { return b - a })
	}
	set.add(i)
}

// best returns the coach of among with the most free places (the first by
// username among equals), or -1.
func (sg *suggester) best(among coachSet) int {
	if among == nil {
		return -1
	}
	for _, v := range sg.levels {
		if i := firstOf(among, sg.byFree[v]); i >= 0 {
			return i
		}
	}
	return -1
}

// propose picks, among the coaches with a free place, one who already
// coaches a family in the referral's municipality (preferring one who also
// coaches a family with its language), else one who coaches a family with
// the family's language, else the one with the most free places; each
// group by most free places, then username.
func (sg *suggester) propose(ref *view.Referral, fam *view.Case) *CoachProposal {
	muni := strings.TrimSpace(ref.Municipality)
	lang := ""
	if fam != nil {
		if muni == "" {
			muni = strings.TrimSpace(fam.Family.Municipality)
		}
		lang = strings.TrimSpace(fam.Family.Language)
	}
	inMuni, inLang := sg.municipalities[strings.ToLower(muni)], sg.languages[strings.ToLower(lang)]
	basis, i := "municipality", sg.best(and(inMuni, inLang))
	if i < 0 {
		i = sg.best(inMuni)
	}
	if i < 0 {
		basis, i = "language", sg.best(inLang)
	}
	if i < 0 {
		basis, i = "free_places", sg.best(sg.all)
	}
	if i < 0 {
		return &CoachProposal{Basis: "none", Reason: "Geen coach heeft nog een vrije plaats / no coach has a free place left"}
	}
	free := sg.free[i]
	p := &CoachProposal{CoachID: sg.coaches[i].CoachID, DisplayName: sg.coaches[i].DisplayName, Basis: basis}
	places := fmt.Sprintf("%d vrije %s / %d free %s", free, pluralNL(free, "plaats", "plaatsen"), free, pluralEN(free, "place", "places"))
	switch basis {
	case "municipality":
		p.Reason = fmt.Sprintf("Coacht al een gezin in %s; %s / already coaches a family in %s", muni, places, muni)
	case "language":
		p.Reason = fmt.Sprintf("Coacht al een gezin met taal %s; %s / already coaches a family speaking %s", lang, places, lang)
	default:
		p.Reason = fmt.Sprintf("Meeste vrije plaatsen (%d) / most free places (%d)", free, free)
	}
	sg.free[i]--
	sg.setFree(i, free, free-1)
	return p
}

func pluralNL(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func pluralEN(n int, one, many string) string { return pluralNL(n, one, many) }

// ---- decisions ----

// DecisionRequest is the body of POST /regions/:region/intake/decisions.
type DecisionRequest struct {
	ReferralID string `json:"referral_id"`
	// Kind is start, decline, redirect or consult.
	Kind string `json:"kind"`
	// CoachID (start: required) is the lead coach; CoCoachIDs optional
	// co-coaches; both coaches of the region.
	CoachID    string   `json:"coach_id"`
	CoCoachIDs []string `json:"co_coach_ids"`
	// Reason is required for a decline and becomes the referral's
	// outcome_reason (for consult too, when given).
	Reason string `json:"reason"`
	// RedirectTo is required for a redirect: to whom the family is sent.
	RedirectTo string `json:"redirect_to"`
	// OverrideReason starts over a capacity refusal; it is ignored when the
	// capacity rules allow the start.
	OverrideReason string `json:"override_reason"`
	// Week is the meeting's ISO week, "2026-W48"; the current week when empty.
	Week string `json:"week"`
}

// CapacityRefused is the body of a 409 capacity_refused answer: the error
// and the explained capacity decision (checks with ids, labels, results;
// failed; limit).
type CapacityRefused struct {
	Code     string                 `json:"code"`
	Message  string                 `json:"message"`
	Capacity rules.CapacityDecision `json:"capacity"`
}

func invalidf(format string, args ...any) error {
	return samenplan.Errorf(samenplan.EINVALID, format, args...)
}

// validate checks the body on its own (kinds, required fields, sizes) and
// trims it.
func (req *DecisionRequest) validate() error {
	req.ReferralID = strings.TrimSpace(req.ReferralID)
	req.Kind = strings.TrimSpace(req.Kind)
	req.CoachID = strings.TrimSpace(req.CoachID)
	req.Reason = strings.TrimSpace(req.Reason)
	req.RedirectTo = strings.TrimSpace(req.RedirectTo)
	req.OverrideReason = strings.TrimSpace(req.OverrideReason)
	req.Week = strings.TrimSpace(req.Week)
	if req.ReferralID == "" {
		return invalidf("referral_id ontbreekt / referral_id is required")
	}
	for name, v := range map[string]string{"reason": req.Reason, "redirect_to": req.RedirectTo, "override_reason": req.OverrideReason} {
		if utf8.RuneCountInString(v) > maxReasonRunes {
			return invalidf("%s is te lang (max %d tekens) / %s is too long (max %d characters)", name, maxReasonRunes, name, maxReasonRunes)
		}
	}
	if utf8.RuneCountInString(req.RedirectTo) > 200 {
		return invalidf("redirect_to is te lang (max 200 tekens) / redirect_to is too long (max 200 characters)")
	}
	switch req.Kind {
	case DecisionStart:
		if req.CoachID == "" {
			return invalidf("Een start heeft een coach nodig (coach_id) / a start needs a coach (coach_id)")
		}
		if len(req.CoCoachIDs) > 10 {
			return invalidf("Hoogstens 10 co-coaches / at most 10 co-coaches")
		}
		seen := map[string]bool{req.CoachID: true}
		for i, id := range req.CoCoachIDs {
			id = strings.TrimSpace(id)
			if id == "" || seen[id] {
				return invalidf("co_coach_ids[%d]: leeg of dubbel (of de hoofdcoach) / empty or repeated (or the lead coach)", i)
			}
			seen[id] = true
			req.CoCoachIDs[i] = id
		}
	case DecisionDecline, DecisionRedirect, DecisionConsult:
		if req.CoachID != "" || len(req.CoCoachIDs) > 0 || req.OverrideReason != "" {
			return invalidf("coach_id, co_coach_ids en override_reason horen enkel bij een start / coach_id, co_coach_ids and override_reason belong to a start only")
		}
		if req.Kind == DecisionDecline && req.Reason == "" {
			return invalidf("Een weigering heeft een reden nodig (reason) / a decline needs a reason")
		}
		if req.Kind == DecisionRedirect && req.RedirectTo == "" {
			return invalidf("Bij doorsturen hoort naar wie (redirect_to) / a redirect needs redirect_to")
		}
		if req.Kind != DecisionRedirect && req.RedirectTo != "" {
			return invalidf("redirect_to hoort enkel bij doorsturen / redirect_to belongs to a redirect only")
		}
	default:
		return invalidf("Onbekende beslissing %q (start, decline, redirect, consult) / unknown kind %q (want start, decline, redirect or consult)", req.Kind, req.Kind)
	}
	if req.CoCoachIDs == nil {
		req.CoCoachIDs = []string{}
	}
	return nil
}

func (s *Server) handleDecide(c echo.Context) error {
	ctx := c.Request().Context()
	p, _ := auth.PrincipalFrom(c)
	region := c.Param("region")
	body, err := readBody(c, maxDecisionBody)
	if err != nil {
		return err
	}
	var req DecisionRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	week, err := s.weekParam(req.Week)
	if err != nil {
		return err
	}
	ref, ok := s.cfg.View.Referral(req.ReferralID)
	if !ok || ref.Region != region {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Doorverwijzing niet gevonden / referral not found")
	}
	if !ref.Open() {
		return samenplan.Errorf(samenplan.ECONFLICT, "Over deze doorverwijzing is al beslist (status %s) / this referral is already decided (status %s)", ref.Status, ref.Status)
	}
	today, now := s.today()
	d := Decision{
		Region: region, ReferralID: ref.ID, FamilyID: ref.FamilyID, Week: week.String(), Kind: req.Kind,
		CoachID: req.CoachID, CoCoachIDs: req.CoCoachIDs, Mandated: ref.Mandated, Reason: req.Reason,
		RedirectTo: req.RedirectTo, Capacity: json.RawMessage("null"), Eligibility: json.RawMessage("null"),
		ReceivedOn: ref.ReceivedOn.String(), DecidedOn: today.String(), DecidedAt: now.UTC().Format(time.RFC3339),
		DecidedBy: p.UserID,
	}
	if ref.Eligibility != nil {
		d.Eligibility, _ = json.Marshal(ref.Eligibility)
		d.RulesVersion = ref.Eligibility.RegionVersion
	} else {
		d.RulesVersion, _ = s.activeRulesVersion(region)
	}
	var writes []store.FieldWrite
	refWrite := func(field string, v any) {
		writes = append(writes, store.FieldWrite{Collection: "referrals", ID: ref.ID, Field: field, Value: mustJSON(v)})
	}
	overridden := false
	var capacity rules.CapacityDecision
	var evalCapacity func() rules.CapacityDecision // start only
	switch req.Kind {
	case DecisionStart:
		if ref.FamilyID == "" {
			return invalidf("Deze doorverwijzing heeft nog geen gezin: koppel eerst een gezin (family_id) / this referral has no family yet: link a family first (family_id)")
		}
		coaches, err := s.regionCoaches(ctx, region)
		if err != nil {
			return err
		}
		lead, ok := coachByID(coaches, req.CoachID)
		if !ok {
			return invalidf("coach_id is geen coach van %s / coach_id is not a coach of %s", region, region)
		}
		for _, id := range req.CoCoachIDs {
			if _, ok := coachByID(coaches, id); !ok {
				return invalidf("co_coach_ids: %s is geen coach van %s / %s is not a coach of %s", id, region, id, region)
			}
		}
		rr, ok := s.cfg.Rules.Region(region)
		if !ok || rr.Capacity == nil {
			return samenplan.Errorf(samenplan.ECONFLICT, "Regio %s heeft geen actieve capaciteitsregels; er kan niets starten / region %s has no active capacity rules; nothing can start", region, region)
		}
		// A first look outside the write lock spares a doomed write; the
		// check that counts runs again under the lock (below), where no other
		// start can slip in between.
		evalCapacity = func() rules.CapacityDecision {
			return rr.EvalCapacity(rules.CapacityInput{Today: today,
				Coach:    rules.CoachFacts{FTE: lead.FTE, ActiveFamilies: s.cfg.View.CoachLoad(region)[lead.ID], Volunteer: lead.Volunteer},
				Referral: rules.CapacityFacts{Mandated: ref.Mandated},
				Year:     s.cfg.View.YearCounts(region, today.Time().Year())})
		}
		// Starting a referral the intake rules find ineligible is the team's
		// call, but never a silent one: it needs a reason, as a capacity
		// override does, and the decision keeps it.
		if ineligible(ref) && req.OverrideReason == "" {
			return errIneligibleStart(ref)
		}
		if cd := evalCapacity(); !cd.OK && req.OverrideReason == "" {
			return answerCapacityRefused(c, cd)
		}
		traj, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("trajectory id: %w", err)
		}
		d.TrajectoryID = traj.String()
		tw := func(field string, v any) {
			writes = append(writes, store.FieldWrite{Collection: "trajectories", ID: d.TrajectoryID, Field: field, Value: mustJSON(v)})
		}
		tw("family_id", ref.FamilyID)
		tw("referral_id", ref.ID)
		tw("region", region)
		tw("lead_coach_id", lead.ID)
		tw("co_coach_ids", req.CoCoachIDs)
		tw("mandated", ref.Mandated)
		tw("status", "active")
		tw("started_on", today.String())
		refWrite("status", "started")
	case DecisionDecline:
		refWrite("status", "declined")
		refWrite("outcome_reason", req.Reason)
	case DecisionRedirect:
		refWrite("status", "redirected")
		refWrite("outcome_reason", "redirect_to: "+req.RedirectTo)
	case DecisionConsult:
		refWrite("status", "consult_only")
		if req.Reason != "" {
			refWrite("outcome_reason", req.Reason)
		}
	}
	r, ok := s.cfg.Stores.Region(region)
	if !ok {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Regio niet gevonden / region not found")
	}
	// Under the region's write lock the read model holds every earlier
	// commit (the store applies it before it lets go), but not this
	// transaction's writes: what it says now is the state this decision
	// is made on.
	_, err = r.ServerWriteWith(ctx, actor(p), writes, func(ctx context.Context, tx *sql.Tx, seq int64) error {
		if decided, err := decisionExists(ctx, tx, ref.ID); err != nil {
			return err
		} else if now, ok := s.cfg.View.Referral(ref.ID); decided || !ok || !now.Open() {
			return errAlreadyDecided
		} else if req.Kind == DecisionStart && ineligible(now) {
			if req.OverrideReason == "" {
				return errIneligibleStart(now)
			}
			overridden, d.OverrideReason = true, req.OverrideReason
		}
		if evalCapacity != nil {
			capacity = evalCapacity()
			d.Capacity, _ = json.Marshal(capacity)
			if !capacity.OK {
				if req.OverrideReason == "" {
					return &capacityRefusal{capacity}
				}
				overridden, d.OverrideReason = true, req.OverrideReason
			}
		}
		d.Seq = seq
		id, err := insertDecision(ctx, tx, d)
		if err != nil {
			return err
		}
		d.ID = id
		return nil
	})
	var refused *capacityRefusal
	if errors.As(err, &refused) {
		return answerCapacityRefused(c, refused.decision)
	} else if err != nil {
		return err
	}
	entry := auth.AuditEntry(c, audit.ActionDecision)
	entry.Region, entry.TargetKind, entry.TargetID = region, "referral", ref.ID
	detail := map[string]any{"decision_id": d.ID, "kind": d.Kind, "week": d.Week, "family_id": d.FamilyID,
		"rules_version": d.RulesVersion, "override": overridden}
	if d.Kind == DecisionStart {
		detail["coach_id"], detail["co_coach_ids"], detail["trajectory_id"] = d.CoachID, d.CoCoachIDs, d.TrajectoryID
		detail["capacity_ok"], detail["capacity_failed"] = capacity.OK, capacity.Failed
	}
	if overridden {
		detail["override_reason"] = d.OverrideReason
	}
	entry.Detail = audit.Detail(detail)
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusCreated, d)
}

// ineligible reports whether the active intake rules find ref ineligible
// (a referral without a decision of the rules is not refused for it).
func ineligible(ref *view.Referral) bool {
	return ref.Eligibility != nil && !ref.Eligibility.Eligible
}

func errIneligibleStart(ref *view.Referral) error {
	reasons := strings.Join(ref.Eligibility.Reasons, ", ")
	return samenplan.Errorf(samenplan.ECONFLICT, "Volgens de intakeregels kan deze doorverwijzing niet starten (%s); de coördinator kan met een reden (override_reason) toch starten / the intake rules find this referral ineligible (%s); a coordinator may start it anyway with a reason (override_reason)", reasons, reasons)
}

// capacityRefusal rolls back a start the capacity rules refuse under the
// write lock.
type capacityRefusal struct{ decision rules.CapacityDecision }

func (e *capacityRefusal) Error() string {
	return "capacity refused: " + strings.Join(e.decision.Failed, ", ")
}

// answerCapacityRefused answers 409 capacity_refused with the explained
// capacity decision.
func answerCapacityRefused(c echo.Context, cd rules.CapacityDecision) error {
	failed := strings.Join(cd.Failed, ", ")
	return c.JSON(StatusOf(samenplan.ECAPACITYREFUSED), CapacityRefused{
		Code: samenplan.ECAPACITYREFUSED,
		Message: fmt.Sprintf("De capaciteitsregels laten deze start niet toe (%s); de coördinator kan met een reden (override_reason) toch starten / the capacity rules refuse this start (%s); a coordinator may override with a reason (override_reason)",
			failed, failed),
		Capacity: cd})
}

var errAlreadyDecided = samenplan.Errorf(samenplan.ECONFLICT, "Over deze doorverwijzing is al beslist / this referral is already decided")

func coachByID(coaches []auth.User, id string) (auth.User, bool) {
	for _, u := range coaches {
		if u.ID == id {
			return u, true
		}
	}
	return auth.User{}, false
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err)) // only strings, bools and string slices come here
	}
	return b
}

// activeRulesVersion returns the region version of region's active rules.
func (s *Server) activeRulesVersion(region string) (string, bool) {
	rr, ok := s.cfg.Rules.Region(region)
	if !ok {
		return "", false
	}
	return rr.Version, true
}

// insertDecision appends d to intake_decisions inside tx and returns its id.
// The caller has checked that the referral has no decision yet (under the
// region's write lock, so the UNIQUE constraint is a last line only).
func insertDecision(ctx context.Context, tx *sql.Tx, d Decision) (int64, error) {
	co, err := json.Marshal(d.CoCoachIDs)
	if err != nil {
		return 0, fmt.Errorf("insert decision: %w", err)
	}
	mandated := 0
	if d.Mandated {
		mandated = 1
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO intake_decisions (referral_id, family_id, week, kind, coach_id,
		co_coach_ids, trajectory_id, mandated, reason, redirect_to, override_reason, capacity, eligibility,
		rules_version, received_on, decided_on, decided_at, decided_by, seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ReferralID, d.FamilyID, d.Week, d.Kind, d.CoachID, string(co), d.TrajectoryID, mandated, d.Reason,
		d.RedirectTo, d.OverrideReason, string(d.Capacity), string(d.Eligibility), d.RulesVersion, d.ReceivedOn,
		d.DecidedOn, d.DecidedAt, d.DecidedBy, d.Seq)
	if err != nil {
		return 0, fmt.Errorf("insert decision: %w", err)
	}
	return res.LastInsertId()
}

func (s *Server) handleDecisions(c echo.Context) error {
	week, err := s.weekParam(c.QueryParam("week"))
	if err != nil {
		return err
	}
	ds, err := s.decisionsOfWeek(c.Request().Context(), c.Param("region"), week.String())
	if err != nil {
		return err
	}
	var fams, refs []string
	for _, d := range ds {
		fams, refs = append(fams, d.FamilyID), append(refs, d.ReferralID)
	}
	s.auditList(c, c.Param("region"), "decisions", len(ds), fams, refs)
	return c.JSON(http.StatusOK, map[string]any{"region": c.Param("region"), "week": week.String(), "decisions": ds})
}
