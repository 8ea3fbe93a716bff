package view

import (
	"time"

	"github.com/samenplan/samenplan/rules"
)

// Case statuses besides the trajectory statuses (active, paused, closed).
const (
	// StatusIntake is a family without a running trajectory whose referral
	// waits for a decision.
	StatusIntake = "intake"
	// StatusNone is a family with neither a trajectory nor an open referral
	// (declined, redirected, consult only).
	StatusNone = "none"
)

// Case is the consolidated, typed case file of one family. A *Case handed
// out by the Model is shared and must not be modified.
type Case struct {
	Family    Family      `json:"family"`
	Members   []Member    `json:"members"`
	Referrals []*Referral `json:"referrals"`
	// Trajectory is the current trajectory: the one that is not closed (the
	// latest started if there are several), else the latest; nil if none.
	Trajectory *Trajectory `json:"trajectory"`
	// PastTrajectories are the family's other trajectories, latest first.
	PastTrajectories []*Trajectory `json:"past_trajectories"`
	// Goals are the current trajectory's plan goals by life domain, in the
	// order of the region's life domains, unknown domains after.
	Goals   []GoalGroup     `json:"goals"`
	Network []NetworkMember `json:"network"`
	// Contacts are the family's contacts over all its trajectories, oldest
	// first.
	Contacts      []Contact  `json:"contacts"`
	LastContactAt *time.Time `json:"last_contact_at"`
	// Status is the current trajectory's status when it is not closed, else
	// StatusIntake with an open referral, else "closed" after a trajectory,
	// else StatusNone.
	Status string `json:"status"`
	// Coaches are the lead and co-coaches of every trajectory that is not
	// closed: who holds the family (as the store's access rules say).
	Coaches []string `json:"coaches"`
	// Signals are the fired signals of the running trajectories and the
	// undecided referrals.
	Signals []Signal `json:"signals"`
	// Conflicts counts recorded concurrent edits on the family's rows;
	// Quarantined the open quarantined writes for the family.
	Conflicts   int `json:"conflicts"`
	Quarantined int `json:"quarantined"`

	region  string
	running []runningTrajectory
	sortKey string // lower(label) \x00 id: the listing order
	search  string // lower(label, municipality, member names)
}

// ID returns the case id, which is the family id.
func (c *Case) ID() string { return c.Family.ID }

// Region returns the region the case belongs to.
func (c *Case) Region() string { return c.region }

// Family is the families row.
type Family struct {
	ID           string `json:"id"`
	Region       string `json:"region"`
	Municipality string `json:"municipality"`
	Label        string `json:"label"`
	Language     string `json:"language"`
}

// Member is a person of the family. AgeYears is computed from BirthDate on
// the model's today; nil without a birth date.
type Member struct {
	ID         string     `json:"id"`
	Role       string     `json:"role"`
	GivenName  string     `json:"given_name"`
	FamilyName string     `json:"family_name"`
	BirthDate  rules.Date `json:"birth_date"`
	AgeYears   *int       `json:"age_years"`
	DueDate    rules.Date `json:"due_date"`
	Willing    bool       `json:"willing"`
}

// Referral is a referral with, while it is open, its explained eligibility
// under the region's active intake rules (nil when the region has no active
// rules).
type Referral struct {
	ID                      string     `json:"id"`
	Region                  string     `json:"region"`
	FamilyID                string     `json:"family_id"`
	ReceivedOn              rules.Date `json:"received_on"`
	Channel                 string     `json:"channel"`
	ReferrerName            string     `json:"referrer_name"`
	ReferrerOrg             string     `json:"referrer_org"`
	Question                string     `json:"question"`
	Articulated             bool       `json:"articulated"`
	Mandated                bool       `json:"mandated"`
	Crisis                  bool       `json:"crisis"`
	NRTJRequested           bool       `json:"nrtj_requested"`
	RTJWithinMonth          bool       `json:"rtj_within_month"`
	InnovativeHelpAvailable bool       `json:"innovative_help_available"`
	OtherHelpWithinMonth    bool       `json:"other_help_within_month"`
	Consent                 bool       `json:"consent"`
	Municipality            string     `json:"municipality"`
	// Status is one of schema.ReferralStatuses; an unset status reads "open".
	Status        string `json:"status"`
	OutcomeReason string `json:"outcome_reason"`

	Eligibility *rules.IntakeDecision `json:"eligibility"`
	Signals     []Signal              `json:"signals"`
}

// Open reports whether the referral waits for a decision.
func (r *Referral) Open() bool { return r.Status == "open" }

// Trajectory is a trajectories row.
type Trajectory struct {
	ID            string     `json:"id"`
	FamilyID      string     `json:"family_id"`
	ReferralID    string     `json:"referral_id"`
	Region        string     `json:"region"`
	LeadCoachID   string     `json:"lead_coach_id"`
	CoCoachIDs    []string   `json:"co_coach_ids"`
	Mandated      bool       `json:"mandated"`
	Status        string     `json:"status"`
	StartedOn     rules.Date `json:"started_on"`
	ClosedOn      rules.Date `json:"closed_on"`
	ClosureReason string     `json:"closure_reason"`
	RTJRequested  bool       `json:"rtj_requested"`
}

// Running reports whether the trajectory is active or paused.
func (t *Trajectory) Running() bool { return t.Status == "active" || t.Status == "paused" }

// GoalGroup holds the plan goals of one life domain.
type GoalGroup struct {
	LifeDomain string `json:"life_domain"`
	Goals      []Goal `json:"goals"`
}

// Goal is a plan_goals row.
type Goal struct {
	ID           string     `json:"id"`
	TrajectoryID string     `json:"trajectory_id"`
	LifeDomain   string     `json:"life_domain"`
	Strength     string     `json:"strength"`
	Concern      string     `json:"concern"`
	Goal         string     `json:"goal"`
	Actions      string     `json:"actions"`
	Owner        string     `json:"owner"`
	DueOn        rules.Date `json:"due_on"`
	Status       string     `json:"status"`
	Scale        *int       `json:"scale"`
}

// Open reports whether the goal is still worked on (not achieved or dropped).
func (g *Goal) Open() bool { return g.Status != "achieved" && g.Status != "dropped" }

// NetworkMember is a network_members row.
type NetworkMember struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Relation         string `json:"relation"`
	Kind             string `json:"kind"`
	Organisation     string `json:"organisation"`
	Phone            string `json:"phone"`
	RoleInPlan       string `json:"role_in_plan"`
	ConsentToContact bool   `json:"consent_to_contact"`
}

// Contact is a contacts row.
type Contact struct {
	ID           string    `json:"id"`
	TrajectoryID string    `json:"trajectory_id"`
	CoachID      string    `json:"coach_id"`
	OccurredAt   time.Time `json:"occurred_at"`
	Mode         string    `json:"mode"`
	Minutes      int       `json:"minutes"`
	Participants []string  `json:"participants"`
	Note         string    `json:"note"`
	FollowUp     string    `json:"follow_up"`
}

// Consult is a consults row: a permanence call where the referrer was coached.
type Consult struct {
	ID         string    `json:"id"`
	Region     string    `json:"region"`
	At         time.Time `json:"at"`
	Referrer   string    `json:"referrer"`
	Question   string    `json:"question"`
	Advice     string    `json:"advice"`
	Minutes    int       `json:"minutes"`
	CoachID    string    `json:"coach_id"`
	ReferralID string    `json:"referral_id"`
}

// Signal is one fired signal of the region's signal rules, about a running
// trajectory or an undecided referral.
type Signal struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	LabelEN  string `json:"label_en,omitempty"`
	Severity string `json:"severity"`
	// About is "trajectory" or "referral"; SubjectID the trajectory's or the
	// referral's id.
	About     string `json:"about"`
	SubjectID string `json:"subject_id"`
	// FamilyID is the case the subject belongs to; "" for a referral that
	// has no family (yet).
	FamilyID string `json:"family_id,omitempty"`
	Region   string `json:"region"`
	// Version is the version of the signals file that fired it.
	Version string `json:"version"`
}

// CaseSummary is a case as a list shows it.
type CaseSummary struct {
	FamilyID      string     `json:"family_id"`
	Region        string     `json:"region"`
	Label         string     `json:"label"`
	Municipality  string     `json:"municipality"`
	Language      string     `json:"language"`
	Status        string     `json:"status"`
	TrajectoryID  string     `json:"trajectory_id,omitempty"`
	LeadCoachID   string     `json:"lead_coach_id,omitempty"`
	CoCoachIDs    []string   `json:"co_coach_ids,omitempty"`
	StartedOn     rules.Date `json:"started_on"`
	Members       int        `json:"members"`
	OpenReferrals int        `json:"open_referrals"`
	LastContactAt *time.Time `json:"last_contact_at"`
	Signals       []string   `json:"signals"`
	Conflicts     int        `json:"conflicts"`
	Quarantined   int        `json:"quarantined"`
}

// Summary returns the case as a list shows it.
func (c *Case) Summary() CaseSummary {
	s := CaseSummary{
		FamilyID: c.Family.ID, Region: c.region, Label: c.Family.Label, Municipality: c.Family.Municipality,
		Language: c.Family.Language, Status: c.Status, Members: len(c.Members), LastContactAt: c.LastContactAt,
		Conflicts: c.Conflicts, Quarantined: c.Quarantined, Signals: make([]string, 0, len(c.Signals)),
	}
	if t := c.Trajectory; t != nil {
		s.TrajectoryID, s.LeadCoachID, s.CoCoachIDs, s.StartedOn = t.ID, t.LeadCoachID, t.CoCoachIDs, t.StartedOn
	}
	for _, r := range c.Referrals {
		if r.Open() {
			s.OpenReferrals++
		}
	}
	for _, sg := range c.Signals {
		s.Signals = append(s.Signals, sg.ID)
	}
	return s
}
