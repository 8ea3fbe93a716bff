package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Date is a calendar day (no time of day, UTC). In JSON and YAML it is written
// "2006-01-02"; an RFC 3339 timestamp is accepted on input and truncated.
type Date struct{ t time.Time }

// NewDate returns the Date of year, month and day.
func NewDate(year int, month time.Month, day int) Date {
	return Date{time.Date(year, month, day, 0, 0, 0, 0, time.UTC)}
}

// DateOf returns the calendar day of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return NewDate(y, m, d)
}

// ParseDate parses "2006-01-02" or an RFC 3339 timestamp.
func ParseDate(s string) (Date, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return Date{t}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return Date{}, fmt.Errorf("invalid date %q (want YYYY-MM-DD)", s)
	}
	return DateOf(t), nil
}

// Time returns the day as midnight UTC; the zero Date gives the zero time.
func (d Date) Time() time.Time { return d.t }

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d.t.IsZero() }

// String returns "2006-01-02", or "" for the zero Date.
func (d Date) String() string {
	if d.t.IsZero() {
		return ""
	}
	return d.t.Format("2006-01-02")
}

// DaysUntil returns the number of whole days from d to later (negative when
// later is before d).
func (d Date) DaysUntil(later Date) int {
	return int(later.t.Sub(d.t).Hours() / 24)
}

// MarshalJSON writes the day as "2006-01-02", or null when unset.
func (d Date) MarshalJSON() ([]byte, error) {
	if d.t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + d.String() + `"`), nil
}

// UnmarshalJSON reads "2006-01-02", an RFC 3339 timestamp, "" or null.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Date{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid date %s (want \"YYYY-MM-DD\")", b)
	}
	if strings.TrimSpace(s) == "" {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ---- inputs: what a caller (server, CLI, a test in a rule file) supplies ----

// IntakeInput is the input of the intake ruleset: one referral and its family.
// Derived names (referral.waiting_days, family.children, family.pregnancy,
// year.started, members' age_years from birth_date) are computed from it.
type IntakeInput struct {
	// ID identifies the referral in a dry run; it plays no part in the rules.
	ID string `json:"id,omitempty"`
	// Region names the region whose rules apply, for a dry run over many.
	Region   string         `json:"region,omitempty"`
	Today    Date           `json:"today"`
	Referral ReferralFacts  `json:"referral"`
	Family   FamilyFacts    `json:"family"`
	Year     YearCountFacts `json:"year"`
}

// ReferralFacts are the facts of a referral, as the referrals collection
// holds them.
type ReferralFacts struct {
	ReceivedOn Date `json:"received_on"`
	// WaitingDays is used only when ReceivedOn or today is unset; otherwise it
	// is computed as the days from received_on to today.
	WaitingDays             int    `json:"waiting_days,omitempty"`
	Channel                 string `json:"channel"`
	Municipality            string `json:"municipality"`
	Mandated                bool   `json:"mandated"`
	Articulated             bool   `json:"articulated"`
	Crisis                  bool   `json:"crisis"`
	NRTJRequested           bool   `json:"nrtj_requested"`
	RTJWithinMonth          bool   `json:"rtj_within_month"`
	InnovativeHelpAvailable bool   `json:"innovative_help_available"`
	OtherHelpWithinMonth    bool   `json:"other_help_within_month"`
	Consent                 bool   `json:"consent"`
}

// FamilyFacts lists the family's members; Pregnancy may be stated directly or
// follow from a member with role "unborn".
type FamilyFacts struct {
	Members   []MemberFacts `json:"members"`
	Pregnancy bool          `json:"pregnancy,omitempty"`
}

// MemberFacts is one person of the family. When BirthDate and today are both
// set, age_years is computed from them; otherwise AgeYears is used.
type MemberFacts struct {
	Role      string `json:"role"`
	AgeYears  int    `json:"age_years"`
	BirthDate Date   `json:"birth_date,omitzero"`
	Willing   bool   `json:"willing"`
}

// YearCountFacts counts the trajectories started this calendar year.
type YearCountFacts struct {
	StartedMandated    int `json:"started_mandated"`
	StartedNonMandated int `json:"started_non_mandated"`
}

// CapacityInput is the input of the capacity ruleset: may this coach start
// this referral?
type CapacityInput struct {
	Today    Date           `json:"today"`
	Coach    CoachFacts     `json:"coach"`
	Referral CapacityFacts  `json:"referral"`
	Year     YearCountFacts `json:"year"`
}

// CoachFacts describes a coach's current load.
type CoachFacts struct {
	FTE            float64 `json:"fte"`
	ActiveFamilies int     `json:"active_families"`
	Volunteer      bool    `json:"volunteer"`
}

// CapacityFacts are the facts of the referral that capacity rules see.
type CapacityFacts struct {
	Mandated bool `json:"mandated"`
}

// SignalsInput is the input of the signals ruleset: a running trajectory, an
// undecided referral, or both. Signals about a subject that is absent (nil)
// are skipped.
type SignalsInput struct {
	Today      Date             `json:"today"`
	Trajectory *TrajectoryFacts `json:"trajectory,omitempty"`
	Referral   *PendingFacts    `json:"referral,omitempty"`
}

// TrajectoryFacts summarise a trajectory for the signal rules.
type TrajectoryFacts struct {
	Status               string `json:"status"`
	Mandated             bool   `json:"mandated"`
	StartedOn            Date   `json:"started_on,omitzero"`
	DaysActive           int    `json:"days_active,omitempty"`
	DaysSinceLastContact int    `json:"days_since_last_contact"`
	ContactsLast28Days   int    `json:"contacts_last_28_days"`
	GoalsTotal           int    `json:"goals_total"`
	GoalsOpen            int    `json:"goals_open"`
	RTJRequested         bool   `json:"rtj_requested"`
}

// PendingFacts summarise a referral for the signal rules (undecided referrals).
type PendingFacts struct {
	Status      string `json:"status"`
	ReceivedOn  Date   `json:"received_on,omitzero"`
	WaitingDays int    `json:"waiting_days,omitempty"`
	Mandated    bool   `json:"mandated"`
	Articulated bool   `json:"articulated"`
}

// ---- environments: the vocabulary expressions are compiled against ----

// RegionEnv is `region` in every ruleset.
type RegionEnv struct {
	Name           string   `expr:"name" doc:"regio-id / region id"`
	Municipalities []string `expr:"municipalities" doc:"gemeenten van de regio / the region's municipalities"`
}

// YearEnv is `year`: trajectories started this calendar year.
type YearEnv struct {
	Started            int `expr:"started" doc:"gestart dit jaar / started this year"`
	StartedMandated    int `expr:"started_mandated" doc:"waarvan via mandaat / of which mandated"`
	StartedNonMandated int `expr:"started_non_mandated" doc:"waarvan zonder mandaat / of which not mandated"`
}

// IntakeEnv is the environment of intake.yaml.
type IntakeEnv struct {
	Today    time.Time   `expr:"today" doc:"vandaag / today"`
	Region   RegionEnv   `expr:"region"`
	Referral ReferralEnv `expr:"referral"`
	Family   FamilyEnv   `expr:"family"`
	Year     YearEnv     `expr:"year"`

	// people backs Family.Members and Family.Children; the slices hold
	// pointers so that iterating them in expr does not box each member.
	people []MemberEnv
}

// ReferralEnv is `referral` in intake.yaml.
type ReferralEnv struct {
	ReceivedOn              time.Time `expr:"received_on" doc:"datum aanmelding / date received"`
	WaitingDays             int       `expr:"waiting_days" doc:"dagen sinds aanmelding / days since received"`
	Channel                 string    `expr:"channel" doc:"kanaal van aanmelding / referral channel"`
	Municipality            string    `expr:"municipality" doc:"gemeente / municipality"`
	Mandated                bool      `expr:"mandated" doc:"via mandaat (toegangspoort) / mandated service"`
	Articulated             bool      `expr:"articulated" doc:"gearticuleerde hulpvraag / articulated help request"`
	Crisis                  bool      `expr:"crisis" doc:"nood aan crisishulp / crisis help needed"`
	NRTJRequested           bool      `expr:"nrtj_requested" doc:"NRTJ-aanvraag / NRTJ requested"`
	RTJWithinMonth          bool      `expr:"rtj_within_month" doc:"RTJ-module kan binnen de maand starten / RTJ module can start within the month"`
	InnovativeHelpAvailable bool      `expr:"innovative_help_available" doc:"innovatieve hulp kan starten / innovative help can start"`
	OtherHelpWithinMonth    bool      `expr:"other_help_within_month" doc:"andere hulp start binnen de maand / other help starts within the month"`
	Consent                 bool      `expr:"consent" doc:"gezin stemt in met aanmelding / family consents"`
}

// FamilyEnv is `family` in intake.yaml.
type FamilyEnv struct {
	Members   []*MemberEnv `expr:"members" doc:"alle gezinsleden (zonder ongeborenen) / all members (unborn excluded)"`
	Children  []*MemberEnv `expr:"children" doc:"gezinsleden jonger dan 18 / members younger than 18"`
	Pregnancy bool         `expr:"pregnancy" doc:"zwangerschap / pregnancy"`
}

// MemberEnv is one element of family.members and family.children.
type MemberEnv struct {
	Role     string `expr:"role" doc:"rol: parent, child, youngster, other / role"`
	AgeYears int    `expr:"age_years" doc:"leeftijd in jaren / age in years"`
	Willing  bool   `expr:"willing" doc:"wil samenwerken met de coach / wants to work with the coach"`
}

// CapacityEnv is the environment of capacity.yaml. Limit is the value of the
// ruleset's limit expression and is only visible to checks.
type CapacityEnv struct {
	Today    time.Time      `expr:"today" doc:"vandaag / today"`
	Region   RegionEnv      `expr:"region"`
	Coach    CoachEnv       `expr:"coach"`
	Referral CapacityRefEnv `expr:"referral"`
	Year     YearEnv        `expr:"year"`
	Limit    float64        `expr:"limit" doc:"uitkomst van limit (alleen in checks) / result of limit (checks only)"`
}

// CoachEnv is `coach` in capacity.yaml.
type CoachEnv struct {
	FTE            float64 `expr:"fte" doc:"tewerkstelling in VTE / full-time equivalent"`
	ActiveFamilies int     `expr:"active_families" doc:"lopende gezinnen / active families"`
	Volunteer      bool    `expr:"volunteer" doc:"vrijwillige coach / volunteer coach"`
}

// CapacityRefEnv is `referral` in capacity.yaml.
type CapacityRefEnv struct {
	Mandated bool `expr:"mandated" doc:"via mandaat / mandated"`
}

// SignalsEnv is the environment of signals.yaml.
type SignalsEnv struct {
	Today      time.Time     `expr:"today" doc:"vandaag / today"`
	Region     RegionEnv     `expr:"region"`
	Trajectory TrajectoryEnv `expr:"trajectory"`
	Referral   PendingEnv    `expr:"referral"`
}

// TrajectoryEnv is `trajectory` in signals.yaml (signals with about: trajectory).
type TrajectoryEnv struct {
	Status               string    `expr:"status" doc:"active, paused, closed"`
	Mandated             bool      `expr:"mandated" doc:"via mandaat / mandated"`
	StartedOn            time.Time `expr:"started_on" doc:"startdatum / start date"`
	DaysActive           int       `expr:"days_active" doc:"dagen sinds start / days since start"`
	DaysSinceLastContact int       `expr:"days_since_last_contact" doc:"dagen sinds laatste contact / days since last contact"`
	ContactsLast28Days   int       `expr:"contacts_last_28_days" doc:"contacten in de laatste 28 dagen / contacts in the last 28 days"`
	GoalsTotal           int       `expr:"goals_total" doc:"doelen in het gezinsplan / goals in the family plan"`
	GoalsOpen            int       `expr:"goals_open" doc:"open doelen / open goals"`
	RTJRequested         bool      `expr:"rtj_requested" doc:"RTJ aangevraagd vanuit het plan / RTJ requested from the plan"`
}

// PendingEnv is `referral` in signals.yaml (signals with about: referral).
type PendingEnv struct {
	Status      string    `expr:"status" doc:"open, started, declined, redirected, consult"`
	ReceivedOn  time.Time `expr:"received_on" doc:"datum aanmelding / date received"`
	WaitingDays int       `expr:"waiting_days" doc:"dagen sinds aanmelding / days since received"`
	Mandated    bool      `expr:"mandated" doc:"via mandaat / mandated"`
	Articulated bool      `expr:"articulated" doc:"gearticuleerde hulpvraag / articulated request"`
}

// fill sets e from in, reusing e's slices.
func (e *IntakeEnv) fill(in *IntakeInput, region *RegionEnv) {
	today := in.Today
	e.Today = today.Time()
	e.Region = *region
	r := &in.Referral
	e.Referral = ReferralEnv{
		ReceivedOn:              r.ReceivedOn.Time(),
		WaitingDays:             r.WaitingDays,
		Channel:                 r.Channel,
		Municipality:            r.Municipality,
		Mandated:                r.Mandated,
		Articulated:             r.Articulated,
		Crisis:                  r.Crisis,
		NRTJRequested:           r.NRTJRequested,
		RTJWithinMonth:          r.RTJWithinMonth,
		InnovativeHelpAvailable: r.InnovativeHelpAvailable,
		OtherHelpWithinMonth:    r.OtherHelpWithinMonth,
		Consent:                 r.Consent,
	}
	if !r.ReceivedOn.IsZero() && !today.IsZero() {
		e.Referral.WaitingDays = r.ReceivedOn.DaysUntil(today)
	}
	members := e.Family.Members[:0]
	children := e.Family.Children[:0]
	pregnancy := in.Family.Pregnancy
	if cap(e.people) < len(in.Family.Members) {
		e.people = make([]MemberEnv, len(in.Family.Members))
	}
	people := e.people[:0]
	for i := range in.Family.Members {
		m := &in.Family.Members[i]
		if m.Role == "unborn" {
			pregnancy = true
			continue
		}
		age := m.AgeYears
		if !m.BirthDate.IsZero() && !today.IsZero() {
			age = ageOn(m.BirthDate, today)
		}
		people = append(people, MemberEnv{Role: m.Role, AgeYears: age, Willing: m.Willing})
		me := &people[len(people)-1]
		members = append(members, me)
		if age < 18 {
			children = append(children, me)
		}
	}
	e.Family = FamilyEnv{Members: members, Children: children, Pregnancy: pregnancy}
	e.Year = yearEnv(in.Year)
}

func yearEnv(y YearCountFacts) YearEnv {
	return YearEnv{
		Started:            y.StartedMandated + y.StartedNonMandated,
		StartedMandated:    y.StartedMandated,
		StartedNonMandated: y.StartedNonMandated,
	}
}

// ageOn returns the age in whole years on day today of someone born on birth.
func ageOn(birth, today Date) int {
	by, bm, bd := birth.t.Date()
	ty, tm, td := today.t.Date()
	age := ty - by
	if tm < bm || (tm == bm && td < bd) {
		age--
	}
	return age
}

func (e *CapacityEnv) fill(in *CapacityInput, region *RegionEnv) {
	*e = CapacityEnv{
		Today:    in.Today.Time(),
		Region:   *region,
		Coach:    CoachEnv(in.Coach),
		Referral: CapacityRefEnv(in.Referral),
		Year:     yearEnv(in.Year),
	}
}

func (e *SignalsEnv) fill(in *SignalsInput, region *RegionEnv) {
	*e = SignalsEnv{Today: in.Today.Time(), Region: *region}
	if t := in.Trajectory; t != nil {
		e.Trajectory = TrajectoryEnv{
			Status:               t.Status,
			Mandated:             t.Mandated,
			StartedOn:            t.StartedOn.Time(),
			DaysActive:           t.DaysActive,
			DaysSinceLastContact: t.DaysSinceLastContact,
			ContactsLast28Days:   t.ContactsLast28Days,
			GoalsTotal:           t.GoalsTotal,
			GoalsOpen:            t.GoalsOpen,
			RTJRequested:         t.RTJRequested,
		}
		if !t.StartedOn.IsZero() && !in.Today.IsZero() {
			e.Trajectory.DaysActive = t.StartedOn.DaysUntil(in.Today)
		}
	}
	if r := in.Referral; r != nil {
		e.Referral = PendingEnv{
			Status:      r.Status,
			ReceivedOn:  r.ReceivedOn.Time(),
			WaitingDays: r.WaitingDays,
			Mandated:    r.Mandated,
			Articulated: r.Articulated,
		}
		if !r.ReceivedOn.IsZero() && !in.Today.IsZero() {
			e.Referral.WaitingDays = r.ReceivedOn.DaysUntil(in.Today)
		}
	}
}
