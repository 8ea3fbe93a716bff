package view

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/samenplan/samenplan/rules"
)

// ---- row decoders, shared by the dry run (facts.go) and the model ----

func decodeFamily(id, region string, r fields) Family {
	return Family{ID: id, Region: region, Municipality: str(r, "municipality"), Label: str(r, "label"), Language: str(r, "language")}
}

// decodeMember reads a persons row; AgeYears is computed on today.
func decodeMember(id string, r fields, today rules.Date) Member {
	m := Member{
		ID: id, Role: str(r, "role"), GivenName: str(r, "given_name"), FamilyName: str(r, "family_name"),
		BirthDate: date(r, "birth_date"), DueDate: date(r, "due_date"), Willing: b(r, "willing"),
	}
	if !m.BirthDate.IsZero() && !today.IsZero() {
		age := ageYears(m.BirthDate.Time(), today.Time())
		m.AgeYears = &age
	}
	return m
}

// decodeReferral reads a referrals row of region, without its eligibility.
func decodeReferral(id, region string, r fields) *Referral {
	status := str(r, "status")
	if status == "" {
		status = "open"
	}
	return &Referral{
		ID: id, Region: region, FamilyID: str(r, "family_id"), ReceivedOn: date(r, "received_on"),
		Channel: str(r, "channel"), ReferrerName: str(r, "referrer_name"), ReferrerOrg: str(r, "referrer_org"),
		Question: str(r, "question"), Articulated: b(r, "articulated"), Mandated: b(r, "mandated"),
		Crisis: b(r, "crisis"), NRTJRequested: b(r, "nrtj_requested"), RTJWithinMonth: b(r, "rtj_within_month"),
		InnovativeHelpAvailable: b(r, "innovative_help_available"), OtherHelpWithinMonth: b(r, "other_help_within_month"),
		Consent: b(r, "consent"), Municipality: str(r, "municipality"), Status: status,
		OutcomeReason: str(r, "outcome_reason"),
	}
}

func decodeTrajectory(id string, r fields) *Trajectory {
	return &Trajectory{
		ID: id, FamilyID: str(r, "family_id"), ReferralID: str(r, "referral_id"), Region: str(r, "region"),
		LeadCoachID: str(r, "lead_coach_id"), CoCoachIDs: list(r, "co_coach_ids"), Mandated: b(r, "mandated"),
		Status: str(r, "status"), StartedOn: date(r, "started_on"), ClosedOn: date(r, "closed_on"),
		ClosureReason: str(r, "closure_reason"), RTJRequested: b(r, "rtj_requested"),
	}
}

func decodeGoal(id string, r fields) Goal {
	g := Goal{
		ID: id, TrajectoryID: str(r, "trajectory_id"), LifeDomain: str(r, "life_domain"), Strength: str(r, "strength"),
		Concern: str(r, "concern"), Goal: str(r, "goal"), Actions: str(r, "actions"), Owner: str(r, "owner"),
		DueOn: date(r, "due_on"), Status: str(r, "status"),
	}
	if v := r.get("scale"); v != "" && v != "null" {
		n := iv(v)
		g.Scale = &n
	}
	return g
}

func decodeNetworkMember(id string, r fields) NetworkMember {
	return NetworkMember{
		ID: id, Name: str(r, "name"), Relation: str(r, "relation"), Kind: str(r, "kind"),
		Organisation: str(r, "organisation"), Phone: str(r, "phone"), RoleInPlan: str(r, "role_in_plan"),
		ConsentToContact: b(r, "consent_to_contact"),
	}
}

func decodeContact(id string, r fields) Contact {
	return Contact{
		ID: id, TrajectoryID: str(r, "trajectory_id"), CoachID: str(r, "coach_id"), OccurredAt: stamp(r, "occurred_at"),
		Mode: str(r, "mode"), Minutes: integer(r, "minutes"), Participants: list(r, "participants"),
		Note: str(r, "note"), FollowUp: str(r, "follow_up"),
	}
}

func decodeConsult(id, region string, r fields) *Consult {
	return &Consult{
		ID: id, Region: region, At: stamp(r, "at"), Referrer: str(r, "referrer"), Question: str(r, "question"),
		Advice: str(r, "advice"), Minutes: integer(r, "minutes"), CoachID: str(r, "coach_id"),
		ReferralID: str(r, "referral_id"),
	}
}

// memberFacts is a member as the intake rules see it.
func memberFacts(m Member) rules.MemberFacts {
	f := rules.MemberFacts{Role: m.Role, BirthDate: m.BirthDate, Willing: m.Willing}
	if m.AgeYears != nil {
		f.AgeYears = *m.AgeYears
	}
	return f
}

// intakeInput is the one place that turns a referral and its family into
// the intake rules' input, for the dry run and for live eligibility.
func intakeInput(ref *Referral, members []Member, year rules.YearCountFacts, today rules.Date) rules.IntakeInput {
	in := rules.IntakeInput{
		ID: ref.ID, Region: ref.Region, Today: today,
		Referral: rules.ReferralFacts{
			ReceivedOn: ref.ReceivedOn, Channel: ref.Channel, Municipality: ref.Municipality,
			Mandated: ref.Mandated, Articulated: ref.Articulated, Crisis: ref.Crisis,
			NRTJRequested: ref.NRTJRequested, RTJWithinMonth: ref.RTJWithinMonth,
			InnovativeHelpAvailable: ref.InnovativeHelpAvailable, OtherHelpWithinMonth: ref.OtherHelpWithinMonth,
			Consent: ref.Consent,
		},
		Year: year,
	}
	for _, m := range members {
		in.Family.Members = append(in.Family.Members, memberFacts(m))
		if m.Role == "unborn" {
			in.Family.Pregnancy = true
		}
	}
	return in
}

// ---- computing a case ----

// env is what a computation needs besides the rows: the day, the region's
// active rules (nil without) and the year counts of today's year.
type env struct {
	now   time.Time
	today rules.Date
	rules *rules.Region
	year  rules.YearCountFacts
}

var roleRank = map[string]int{"parent": 0, "youngster": 1, "child": 2, "unborn": 3, "other": 4}

// evalReferral sets the referral's eligibility (open referrals) and
// signals; family is the case that holds it ("" for none).
func evalReferral(ref *Referral, family string, members []Member, e *env) {
	ref.Eligibility, ref.Signals = nil, nil
	if e.rules == nil || !ref.Open() {
		return
	}
	d := e.rules.EvalIntake(intakeInput(ref, members, e.year, e.today))
	ref.Eligibility = &d
	sd := e.rules.EvalSignals(rules.SignalsInput{Today: e.today, Referral: &rules.PendingFacts{
		Status: ref.Status, ReceivedOn: ref.ReceivedOn, Mandated: ref.Mandated, Articulated: ref.Articulated,
	}})
	ref.Signals = fired(sd, "referral", ref.ID, family, ref.Region)
}

func fired(d rules.SignalsDecision, about, subject, family, region string) []Signal {
	var out []Signal
	for _, s := range d.Signals {
		if !s.Result || s.About != about {
			continue
		}
		out = append(out, Signal{ID: s.ID, Label: s.Label, LabelEN: s.LabelEN, Severity: s.Severity, About: about,
			SubjectID: subject, FamilyID: family, Region: region, Version: d.Version})
	}
	return out
}

// buildReferral computes a referral that has no family.
func buildReferral(s *regionState, id string, e *env) *Referral {
	r := s.live("referrals", id)
	if r == nil {
		return nil
	}
	ref := decodeReferral(id, s.name, r)
	evalReferral(ref, "", nil, e)
	return ref
}

// runningTrajectory is what the signal rules need of a running trajectory
// besides the case's contacts.
type runningTrajectory struct {
	t                     *Trajectory
	goalsTotal, goalsOpen int
}

// buildCase computes a family's case from the state; nil when the family
// row is missing or deleted.
func buildCase(s *regionState, famID string, e *env) *Case {
	fr := s.live("families", famID)
	if fr == nil {
		return nil
	}
	c := &Case{Family: decodeFamily(famID, s.name, fr), region: s.name}
	rowIDs := []rowKey{{"families", famID}}
	for _, id := range s.children(famID, "persons") {
		if r := s.live("persons", id); r != nil {
			c.Members = append(c.Members, decodeMember(id, r, e.today))
			rowIDs = append(rowIDs, rowKey{"persons", id})
		}
	}
	sort.SliceStable(c.Members, func(i, j int) bool {
		a, b := c.Members[i], c.Members[j]
		if roleRank[a.Role] != roleRank[b.Role] {
			return roleRank[a.Role] < roleRank[b.Role]
		}
		return a.BirthDate.Time().Before(b.BirthDate.Time())
	})
	for _, id := range s.children(famID, "referrals") {
		if r := s.live("referrals", id); r != nil {
			c.Referrals = append(c.Referrals, decodeReferral(id, s.name, r))
			rowIDs = append(rowIDs, rowKey{"referrals", id})
		}
	}
	sort.SliceStable(c.Referrals, func(i, j int) bool {
		return c.Referrals[i].ReceivedOn.Time().Before(c.Referrals[j].ReceivedOn.Time())
	})
	for _, id := range s.children(famID, "network_members") {
		if r := s.live("network_members", id); r != nil {
			c.Network = append(c.Network, decodeNetworkMember(id, r))
			rowIDs = append(rowIDs, rowKey{"network_members", id})
		}
	}

	// Trajectories, their goals and contacts.
	var trajs []*Trajectory
	for _, id := range s.children(famID, "trajectories") {
		if r := s.live("trajectories", id); r != nil {
			trajs = append(trajs, decodeTrajectory(id, r))
			rowIDs = append(rowIDs, rowKey{"trajectories", id})
		}
	}
	// Latest first: not closed before closed, then by start date.
	sort.SliceStable(trajs, func(i, j int) bool {
		a, b := trajs[i], trajs[j]
		if (a.Status == "closed") != (b.Status == "closed") {
			return b.Status == "closed"
		}
		if !a.StartedOn.Time().Equal(b.StartedOn.Time()) {
			return a.StartedOn.Time().After(b.StartedOn.Time())
		}
		return a.ID > b.ID
	})
	if len(trajs) > 0 {
		c.Trajectory, c.PastTrajectories = trajs[0], trajs[1:]
	}
	coaches := map[string]bool{}
	var goals []Goal
	for _, t := range trajs {
		for _, id := range s.children(t.ID, "contacts") {
			if r := s.live("contacts", id); r != nil {
				ct := decodeContact(id, r)
				c.Contacts = append(c.Contacts, ct)
				rowIDs = append(rowIDs, rowKey{"contacts", id})
				if !ct.OccurredAt.IsZero() && (c.LastContactAt == nil || ct.OccurredAt.After(*c.LastContactAt)) {
					at := ct.OccurredAt
					c.LastContactAt = &at
				}
			}
		}
		var tgoals []Goal
		for _, id := range s.children(t.ID, "plan_goals") {
			if r := s.live("plan_goals", id); r != nil {
				tgoals = append(tgoals, decodeGoal(id, r))
				rowIDs = append(rowIDs, rowKey{"plan_goals", id})
			}
		}
		if t == c.Trajectory {
			goals = tgoals
		}
		if t.Status != "closed" {
			if t.LeadCoachID != "" {
				coaches[t.LeadCoachID] = true
			}
			for _, co := range t.CoCoachIDs {
				if co != "" {
					coaches[co] = true
				}
			}
		}
		if t.Running() {
			rt := runningTrajectory{t: t, goalsTotal: len(tgoals)}
			for i := range tgoals {
				if tgoals[i].Open() {
					rt.goalsOpen++
				}
			}
			c.running = append(c.running, rt)
		}
	}
	sort.SliceStable(c.Contacts, func(i, j int) bool {
		a, b := c.Contacts[i], c.Contacts[j]
		if !a.OccurredAt.Equal(b.OccurredAt) {
			return a.OccurredAt.Before(b.OccurredAt)
		}
		return a.ID < b.ID
	})
	c.Goals = groupGoals(goals, e.rules)
	for co := range coaches {
		c.Coaches = append(c.Coaches, co)
	}
	sort.Strings(c.Coaches)

	open := false
	for _, ref := range c.Referrals {
		open = open || ref.Open()
	}
	switch {
	case c.Trajectory != nil && c.Trajectory.Status != "closed":
		c.Status = c.Trajectory.Status
		if c.Status == "" {
			c.Status = "active"
		}
	case open:
		c.Status = StatusIntake
	case c.Trajectory != nil:
		c.Status = "closed"
	default:
		c.Status = StatusNone
	}

	for _, k := range rowIDs {
		c.Conflicts += s.conflicts[k]
	}
	nonNil(&c.Members)
	nonNil(&c.Referrals)
	nonNil(&c.PastTrajectories)
	nonNil(&c.Goals)
	nonNil(&c.Network)
	nonNil(&c.Contacts)
	nonNil(&c.Coaches)
	c.Quarantined = s.quarantined[famID]

	c.sortKey = strings.ToLower(c.Family.Label) + "\x00" + famID
	var sb strings.Builder
	sb.WriteString(strings.ToLower(c.Family.Label))
	sb.WriteByte('\n')
	sb.WriteString(strings.ToLower(c.Family.Municipality))
	for _, m := range c.Members {
		sb.WriteByte('\n')
		sb.WriteString(strings.ToLower(m.GivenName + " " + m.FamilyName))
	}
	c.search = sb.String()
	evaluate(c, e)
	return c
}

// evaluate computes what depends on the day and the rules: members' ages,
// the open referrals' eligibility, and the signals. It is all a daily
// refresh or a rule change recomputes (see reevaluate).
func evaluate(c *Case, e *env) {
	for i := range c.Members {
		m := &c.Members[i]
		if m.BirthDate.IsZero() || e.today.IsZero() {
			continue
		}
		if age := ageYears(m.BirthDate.Time(), e.today.Time()); m.AgeYears == nil || *m.AgeYears != age {
			m.AgeYears = &age
		}
	}
	c.Signals = nil
	if e.rules != nil {
		for _, rt := range c.running {
			var last time.Time
			recent := 0
			for i := range c.Contacts {
				ct := &c.Contacts[i]
				if ct.TrajectoryID != rt.t.ID || ct.OccurredAt.IsZero() {
					continue
				}
				if ct.OccurredAt.After(last) {
					last = ct.OccurredAt
				}
				if d := rules.DateOf(ct.OccurredAt.In(e.now.Location())).DaysUntil(e.today); d >= 0 && d < 28 {
					recent++
				}
			}
			c.Signals = append(c.Signals, trajectorySignals(rt, last, recent, c.region, e)...)
		}
	}
	for _, ref := range c.Referrals {
		evalReferral(ref, c.Family.ID, c.Members, e)
		c.Signals = append(c.Signals, ref.Signals...)
	}
	nonNil(&c.Signals)
}

// reevaluate returns old evaluated anew for e (sharing what cannot change),
// or nil when nothing of it changes.
func reevaluate(old *Case, e *env) *Case {
	n := *old
	n.Members = slices.Clone(old.Members)
	n.Referrals = make([]*Referral, len(old.Referrals))
	for i, r := range old.Referrals {
		cp := *r
		n.Referrals[i] = &cp
	}
	evaluate(&n, e)
	if fingerprint(&n) == fingerprint(old) {
		return nil
	}
	return &n
}

// trajectorySignals evaluates the signal rules over a running trajectory.
func trajectorySignals(rt runningTrajectory, last time.Time, recent int, region string, e *env) []Signal {
	t := rt.t
	f := rules.TrajectoryFacts{
		Status: t.Status, Mandated: t.Mandated, StartedOn: t.StartedOn, ContactsLast28Days: recent,
		GoalsTotal: rt.goalsTotal, GoalsOpen: rt.goalsOpen, RTJRequested: t.RTJRequested,
	}
	// Without a contact, the days since the start count.
	since := t.StartedOn
	if !last.IsZero() {
		since = rules.DateOf(last.In(e.now.Location()))
	}
	if !since.IsZero() {
		f.DaysSinceLastContact = max(since.DaysUntil(e.today), 0)
	}
	d := e.rules.EvalSignals(rules.SignalsInput{Today: e.today, Trajectory: &f})
	return fired(d, "trajectory", t.ID, t.FamilyID, region)
}

// groupGoals groups goals by life domain, in the region's order of life
// domains, unknown domains after in name order.
func groupGoals(goals []Goal, rs *rules.Region) []GoalGroup {
	if len(goals) == 0 {
		return nil
	}
	rank := map[string]int{}
	if rs != nil {
		for i, d := range rs.Config.LifeDomains {
			rank[d.ID] = i + 1
		}
	}
	by := map[string][]Goal{}
	var domains []string
	for _, g := range goals {
		if _, ok := by[g.LifeDomain]; !ok {
			domains = append(domains, g.LifeDomain)
		}
		by[g.LifeDomain] = append(by[g.LifeDomain], g)
	}
	sort.Slice(domains, func(i, j int) bool {
		ri, rj := rank[domains[i]], rank[domains[j]]
		if (ri == 0) != (rj == 0) {
			return ri != 0
		}
		if ri != rj {
			return ri < rj
		}
		return domains[i] < domains[j]
	})
	out := make([]GoalGroup, len(domains))
	for i, d := range domains {
		out[i] = GoalGroup{LifeDomain: d, Goals: by[d]}
	}
	return out
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](xs *[]T) {
	if *xs == nil {
		*xs = []T{}
	}
}
