package schema

// Field limits, in bytes.
const (
	shortText = 200
	noteText  = 20000
	longText  = 5000
)

func num(v float64) *float64 { return &v }

func str(name string, max int) Field { return Field{Name: name, Type: String, MaxLen: max} }
func text(name string, max int) Field {
	return Field{Name: name, Type: Text, MaxLen: max}
}
func boolean(name string) Field  { return Field{Name: name, Type: Bool} }
func date(name string) Field     { return Field{Name: name, Type: Date} }
func datetime(name string) Field { return Field{Name: name, Type: DateTime} }
func enum(name string, values ...string) Field {
	return Field{Name: name, Type: Enum, Values: values}
}
func ref(name, collection string) Field { return Field{Name: name, Type: Ref, Ref: collection} }
func minutes(name string) Field {
	return Field{Name: name, Type: Int, Min: num(0), Max: num(24 * 60)}
}
func required(f Field) Field { f.Required = true; f.Fixed = true; return f }
func serverOnly(f Field) Field {
	f.ServerOnly = true
	return f
}

// Statuses, shared with the workflow and the rules.
var (
	ReferralStatuses   = []string{"open", "started", "declined", "redirected", "consult_only"}
	TrajectoryStatuses = []string{"active", "paused", "closed"}
	PersonRoles        = []string{"parent", "child", "youngster", "unborn", "other"}
	ContactModes       = []string{"home_visit", "office", "outdoor", "phone", "video"}
	NetworkKinds       = []string{"informal", "professional", "volunteer"}
	GoalStatuses       = []string{"open", "in_progress", "achieved", "dropped"}
)

// CaseFile is the schema of the synced case file (DESIGN §3).
var CaseFile = build(
	&Collection{Name: "families", Scope: ScopeFamilySelf, Fields: []Field{
		required(str("region", 64)),
		str("municipality", 100),
		str("label", shortText),
		str("language", 50),
	}},
	&Collection{Name: "persons", Scope: ScopeViaFamily, Parent: "family_id", Fields: []Field{
		required(ref("family_id", "families")),
		str("given_name", 100),
		str("family_name", 100),
		enum("role", PersonRoles...),
		date("birth_date"),
		date("due_date"),
		boolean("willing"),
	}},
	&Collection{Name: "referrals", Scope: ScopeIntake, Parent: "family_id", Fields: []Field{
		required(str("region", 64)),
		ref("family_id", "families"),
		date("received_on"),
		str("channel", 100),
		str("referrer_name", shortText),
		str("referrer_org", shortText),
		text("question", longText),
		boolean("articulated"),
		boolean("mandated"),
		boolean("crisis"),
		boolean("nrtj_requested"),
		boolean("rtj_within_month"),
		boolean("innovative_help_available"),
		boolean("other_help_within_month"),
		boolean("consent"),
		str("municipality", 100),
		serverOnly(enum("status", ReferralStatuses...)),
		serverOnly(text("outcome_reason", longText)),
	}},
	&Collection{Name: "consults", Scope: ScopeIntake, Fields: []Field{
		required(str("region", 64)),
		datetime("at"),
		str("referrer", shortText),
		text("question", longText),
		text("advice", longText),
		minutes("minutes"),
		{Name: "coach_id", Type: UUID},
		ref("referral_id", "referrals"),
	}},
	&Collection{Name: "trajectories", Scope: ScopeViaFamily, Parent: "family_id", ServerCreated: true, Fields: []Field{
		required(ref("family_id", "families")),
		serverOnly(ref("referral_id", "referrals")),
		required(str("region", 64)),
		serverOnly(Field{Name: "lead_coach_id", Type: UUID}),
		serverOnly(Field{Name: "co_coach_ids", Type: UUIDList, MaxLen: 10}),
		serverOnly(boolean("mandated")),
		serverOnly(enum("status", TrajectoryStatuses...)),
		serverOnly(date("started_on")),
		serverOnly(date("closed_on")),
		serverOnly(str("closure_reason", 100)),
		boolean("rtj_requested"),
	}},
	&Collection{Name: "plan_goals", Scope: ScopeViaParent, Parent: "trajectory_id", Fields: []Field{
		required(ref("trajectory_id", "trajectories")),
		str("life_domain", 100),
		text("strength", longText),
		text("concern", longText),
		text("goal", longText),
		text("actions", longText),
		str("owner", shortText),
		date("due_on"),
		enum("status", GoalStatuses...),
		{Name: "scale", Type: Int, Min: num(0), Max: num(10)},
	}},
	&Collection{Name: "network_members", Scope: ScopeViaFamily, Parent: "family_id", Fields: []Field{
		required(ref("family_id", "families")),
		str("name", shortText),
		str("relation", 100),
		enum("kind", NetworkKinds...),
		str("organisation", shortText),
		str("phone", 50),
		text("role_in_plan", longText),
		boolean("consent_to_contact"),
	}},
	&Collection{Name: "contacts", Scope: ScopeViaParent, Parent: "trajectory_id", Fields: []Field{
		required(ref("trajectory_id", "trajectories")),
		{Name: "coach_id", Type: UUID},
		datetime("occurred_at"),
		enum("mode", ContactModes...),
		minutes("minutes"),
		{Name: "participants", Type: List, MaxLen: 30},
		text("note", noteText),
		text("follow_up", longText),
	}},
)

func build(cs ...*Collection) *Schema {
	s := &Schema{Version: Version, Collections: cs, byName: make(map[string]*Collection)}
	for _, c := range cs {
		c.Fields = append(c.Fields, Field{Name: "_deleted", Type: Bool})
		c.byName = make(map[string]*Field, len(c.Fields))
		for i := range c.Fields {
			c.byName[c.Fields[i].Name] = &c.Fields[i]
		}
		s.byName[c.Name] = c
	}
	return s
}
