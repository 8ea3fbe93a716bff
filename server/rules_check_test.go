package server

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/protocol"
)

// checkEnv is a workflowEnv with the helpers of the check and dry-run tests.
type checkEnv struct {
	*workflowEnv
	coord *testClient
}

func newCheckEnv(t *testing.T) *checkEnv {
	we := newWorkflowEnv(t)
	return &checkEnv{workflowEnv: we, coord: we.login("coordinator.k")}
}

func (ce *checkEnv) file(ruleset string) string {
	ce.t.Helper()
	b, err := os.ReadFile(filepath.Join(ce.dir, "kempen", ruleset+".yaml"))
	if err != nil {
		ce.t.Fatal(err)
	}
	return string(b)
}

// nothingChanged returns a func that fails the test when the rules on disk,
// the region's status (active version, load status, last check), its
// history, the change logs, the decisions or the audit log moved since.
func (ce *checkEnv) nothingChanged() func() {
	t := ce.t
	t.Helper()
	files := map[string]string{}
	for _, rs := range []string{"region", "intake", "capacity", "signals"} {
		files[rs] = ce.file(rs)
	}
	st, _ := ce.registry.Status("kempen")
	hist, _ := ce.registry.History(t.Context(), "kempen")
	active, _ := ce.registry.Region("kempen")
	m := &matrixEnv{workflowEnv: ce.workflowEnv, t: t}
	print := m.fingerprint()
	written := ce.audit.Written()
	return func() {
		t.Helper()
		for rs, content := range files {
			if ce.file(rs) != content {
				t.Errorf("%s.yaml changed on disk", rs)
			}
		}
		st2, _ := ce.registry.Status("kempen")
		hist2, _ := ce.registry.History(t.Context(), "kempen")
		active2, _ := ce.registry.Region("kempen")
		if st2.ActiveVersion != st.ActiveVersion || st2.LoadStatus != st.LoadStatus || !st2.CheckedAt.Equal(st.CheckedAt) ||
			len(st2.Errors) != len(st.Errors) || active2 != active {
			t.Errorf("the region's status moved: %+v\n -> %+v", st, st2)
		}
		if len(hist2) != len(hist) {
			t.Errorf("history: %d versions, was %d", len(hist2), len(hist))
		}
		if got := m.fingerprint(); got != print {
			t.Errorf("something was written:\n before %s\n after  %s", print, got)
		}
		// A marker through the audit queue: once it is written, anything the
		// requests above queued is written too.
		ce.audit.Record(audit.Entry{Action: audit.ActionLogin, Username: "test", Detail: audit.Detail(map[string]string{"marker": "check"})})
		deadline := time.Now().Add(5 * time.Second)
		for ce.audit.Written() < written+1 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := ce.audit.Written(); got != written+1 {
			t.Errorf("audit log: %d entries written meanwhile, want only the marker", got-written)
		}
	}
}

// pushReferral pushes from coach.a's device (the permanence line) a new
// kempen family with a willing parent and a child, and an undecided
// referral for it that is eligible but for crisis; it returns the family
// id and label and the referral id.
func (ce *checkEnv) pushReferral(c *testClient, n int, crisis, mandated bool) (family, label, referral string) {
	ce.t.Helper()
	family, referral, parent, child := newUUID(), newUUID(), newUUID(), newUUID()
	label = fmt.Sprintf("Gezin proef %d", n)
	today := ce.now()
	changes := []protocol.Change{
		c.change("families", family, "region", "kempen"),
		c.change("families", family, "label", label),
		c.change("families", family, "municipality", "Turnhout"),
		c.change("persons", parent, "family_id", family),
		c.change("persons", parent, "role", "parent"),
		c.change("persons", parent, "birth_date", today.AddDate(-34, 0, 0).Format("2006-01-02")),
		c.change("persons", parent, "willing", true),
		c.change("persons", child, "family_id", family),
		c.change("persons", child, "role", "child"),
		c.change("persons", child, "birth_date", today.AddDate(-7, 0, 0).Format("2006-01-02")),
		c.change("referrals", referral, "region", "kempen"),
		c.change("referrals", referral, "family_id", family),
		c.change("referrals", referral, "received_on", today.AddDate(0, 0, -n).Format("2006-01-02")),
		c.change("referrals", referral, "channel", "permanentie"),
		c.change("referrals", referral, "municipality", "Turnhout"),
		c.change("referrals", referral, "articulated", true),
		c.change("referrals", referral, "consent", true),
		c.change("referrals", referral, "crisis", crisis),
		c.change("referrals", referral, "mandated", mandated),
	}
	var resp protocol.PushResponse
	if st := c.do("POST", "/v1/sync/push", c.pushRequest(changes...), &resp); st != http.StatusOK || resp.Applied != len(changes) {
		ce.t.Fatalf("push a referral: %d, %+v", st, resp)
	}
	return family, label, referral
}

// crisisForMandatedOnly is the kempen intake file edited so that crisis
// excludes only mandated referrals (and its tests say so): non-mandated
// crisis referrals become eligible.
func crisisForMandatedOnly(t *testing.T, intake string) string {
	t.Helper()
	out := intake
	for _, r := range [][2]string{
		{"when: referral.crisis\n", "when: referral.crisis && referral.mandated\n"},
		{"given: {referral: {crisis: true}}", "given: {referral: {crisis: true, mandated: true}}"},
		{"referral: {crisis: true, municipality: Mol}", "referral: {crisis: true, mandated: true, municipality: Mol}"},
	} {
		if !strings.Contains(out, r[0]) {
			t.Fatalf("kempen/intake.yaml has no %q any more: update the test's edit", r[0])
		}
		out = strings.Replace(out, r[0], r[1], 1)
	}
	return out
}

func lineCol(t *testing.T, content, substr string) (int, int) {
	t.Helper()
	i := strings.Index(content, substr)
	if i < 0 {
		t.Fatalf("no %q in the file", substr)
	}
	line := strings.Count(content[:i], "\n") + 1
	return line, i - strings.LastIndex(content[:i], "\n")
}

// TestRulesCheck_BrokenFileIsOKFalseAtItsLineAndChangesNothing: a check of
// a file with an unknown name answers 200 ok:false with the diagnostic at
// its line and column, runs no test, and changes nothing: not the disk,
// not the active version or status, not the history, not the audit log.
func TestRulesCheck_BrokenFileIsOKFalseAtItsLineAndChangesNothing(t *testing.T) {
	ce := newCheckEnv(t)
	broken := strings.Replace(ce.file("intake"), "when: referral.crisis\n", "when: referral.crisiss\n", 1)
	line, col := lineCol(t, broken, "crisiss")
	reviewer := ce.login("reviewer.k")
	unchanged := ce.nothingChanged()
	for _, who := range []*testClient{ce.coord, reviewer} {
		var got RulesCheck
		if st := who.doRaw("POST", "/v1/regions/kempen/rules/intake/check", "application/yaml", []byte(broken), &got); st != http.StatusOK {
			t.Fatalf("check: %d", st)
		}
		if got.OK || got.TestsPassed != 0 || got.TestsFailed != 0 || len(got.Tests) != 0 || got.Version == got.ActiveVersion {
			t.Errorf("check of a broken file: %+v", got)
		}
		i := slices.IndexFunc(got.Diagnostics, func(d RuleDiagnostic) bool { return d.Code == "unknown_name" })
		if i < 0 {
			t.Fatalf("no unknown_name diagnostic: %+v", got.Diagnostics)
		}
		if d := got.Diagnostics[i]; d.File != "kempen/intake.yaml" || d.Line != line || d.Col != col || d.ID != "crisis" || d.Severity != "error" {
			t.Errorf("diagnostic %+v, want kempen/intake.yaml:%d:%d, rule crisis, error", d, line, col)
		}
	}
	unchanged()
}

// TestRulesCheck_FixedFileIsOKWithEveryTestCounted: a valid edit is ok with
// every test of the region run and counted, and the version it announces
// is the one a PUT of it then activates.
func TestRulesCheck_FixedFileIsOKWithEveryTestCounted(t *testing.T) {
	ce := newCheckEnv(t)
	edited := crisisForMandatedOnly(t, ce.file("intake"))
	before := status(t, ce.coord, "kempen")
	unchanged := ce.nothingChanged()
	var got RulesCheck
	// As JSON {content}, the other body the editor may send.
	if st := ce.coord.do("POST", "/v1/regions/kempen/rules/intake/check", map[string]string{"content": edited}, &got); st != http.StatusOK {
		t.Fatalf("check: %d", st)
	}
	unchanged()
	if !got.OK || got.TestsFailed != 0 || got.TestsPassed != before.TestsPassed || len(got.Tests) != got.TestsPassed ||
		got.ActiveVersion != before.ActiveVersion || got.Version == before.ActiveVersion || got.Region != "kempen" || got.Ruleset != "intake" {
		t.Fatalf("check of a valid edit: ok %v, passed %d (region has %d), failed %d, tests %d, version %s (active %s)",
			got.OK, got.TestsPassed, before.TestsPassed, got.TestsFailed, len(got.Tests), got.Version, got.ActiveVersion)
	}
	rulesets := map[string]bool{}
	for _, tr := range got.Tests {
		rulesets[tr.Ruleset] = true
		if !tr.Passed || tr.Name == "" || tr.Message != "" || tr.Line == 0 || tr.File != "kempen/"+tr.Ruleset+".yaml" {
			t.Errorf("test %+v", tr)
		}
	}
	if len(rulesets) != 3 {
		t.Errorf("tests of %v, want those of intake, capacity and signals", rulesets)
	}
	var act RulesActivation
	if st := ce.coord.doRaw("PUT", "/v1/regions/kempen/rules/intake", "application/yaml", []byte(edited), &act); st != http.StatusOK {
		t.Fatalf("put: %d", st)
	}
	if act.ActiveVersion != got.Version {
		t.Errorf("PUT activated %s, the check announced %s", act.ActiveVersion, got.Version)
	}
	// The active content again: ok, and its version is the active one.
	if st := ce.coord.doRaw("POST", "/v1/regions/kempen/rules/intake/check", "text/yaml", []byte(edited), &got); st != 200 || !got.OK || got.Version != got.ActiveVersion {
		t.Errorf("check of the active file: %d ok %v version %s active %s", st, got.OK, got.Version, got.ActiveVersion)
	}
}

// TestRulesCheck_FailingTestIsNamed: an edit that compiles but breaks a
// test of the file is ok:false, counts the failure and says what failed.
func TestRulesCheck_FailingTestIsNamed(t *testing.T) {
	ce := newCheckEnv(t)
	edited := strings.Replace(ce.file("intake"), "when: referral.crisis\n", "when: referral.crisis && referral.mandated\n", 1)
	var got RulesCheck
	if st := ce.coord.doRaw("POST", "/v1/regions/kempen/rules/intake/check", "application/yaml", []byte(edited), &got); st != http.StatusOK {
		t.Fatalf("check: %d", st)
	}
	if got.OK || got.TestsFailed != 2 || got.TestsPassed == 0 {
		t.Fatalf("ok %v, passed %d, failed %d; want 2 failed (the crisis tests)", got.OK, got.TestsPassed, got.TestsFailed)
	}
	var failed []string
	for _, tr := range got.Tests {
		if !tr.Passed {
			failed = append(failed, tr.Name)
			if !strings.Contains(tr.Message, "eligible: got true, want false") && !strings.Contains(tr.Message, "reasons") {
				t.Errorf("failed test %q says %q", tr.Name, tr.Message)
			}
		}
	}
	if !slices.Contains(failed, "Crisis sluit altijd uit") {
		t.Errorf("failed tests %v, want the crisis test among them", failed)
	}
	if !slices.ContainsFunc(got.Diagnostics, func(d RuleDiagnostic) bool { return d.Code == "test_failed" && d.Severity == "error" }) {
		t.Errorf("no test_failed diagnostic: %+v", got.Diagnostics)
	}
}

// TestRulesDryRun_CrisisEditListsExactlyTheCrisisReferrals: with live
// referrals pushed by a coach, a dry-run of an intake edit that makes
// non-mandated crisis referrals eligible lists exactly those, before
// ineligible for crisis and after eligible, with their families; nothing
// is written.
func TestRulesDryRun_CrisisEditListsExactlyTheCrisisReferrals(t *testing.T) {
	ce := newCheckEnv(t)
	coach := ce.login("coach.a")
	want := map[string][2]string{} // referral → family, label
	total := 0
	for i := 1; i <= 9; i++ {
		crisis, mandated := i%3 == 0, i == 9 // 3, 6: crisis; 9: crisis and mandated
		fam, label, ref := ce.pushReferral(coach, i, crisis, mandated)
		total++
		if crisis && !mandated {
			want[ref] = [2]string{fam, label}
		}
	}
	candidate := crisisForMandatedOnly(t, ce.file("intake"))
	active := status(t, ce.coord, "kempen").ActiveVersion
	reviewer := ce.login("reviewer.k")
	unchanged := ce.nothingChanged()
	for _, who := range []*testClient{ce.coord, reviewer} {
		var got RulesDryRun
		if st := who.doRaw("POST", "/v1/regions/kempen/rules/intake/dryrun", "application/yaml", []byte(candidate), &got); st != http.StatusOK {
			t.Fatalf("dryrun: %d", st)
		}
		if got.ActiveVersion != active || got.CandidateVersion == active || got.Referrals != total || got.Changed != len(want) ||
			len(got.Changes) != len(want) || got.Coaches != 3 || got.CoachesChanged != 0 {
			t.Fatalf("dryrun: %+v; want %d referrals, %d changed, 3 coaches unchanged", got, total, len(want))
		}
		for _, ch := range got.Changes {
			w, ok := want[ch.ReferralID]
			if !ok {
				t.Errorf("referral %s (%s) listed, but it does not change", ch.ReferralID, ch.FamilyLabel)
				continue
			}
			if ch.FamilyID != w[0] || ch.FamilyLabel != w[1] || ch.Before.Eligible || !slices.Equal(ch.Before.Reasons, []string{"crisis"}) ||
				!ch.After.Eligible || len(ch.After.Reasons) != 0 || ch.After.Reasons == nil {
				t.Errorf("change %+v; want family %s %q, crisis → eligible", ch, w[0], w[1])
			}
		}
	}
	unchanged()
	// The active file itself: nothing would change.
	var same RulesDryRun
	if st := ce.coord.doRaw("POST", "/v1/regions/kempen/rules/intake/dryrun", "application/yaml", []byte(ce.file("intake")), &same); st != 200 ||
		same.Changed != 0 || same.Referrals != total || same.CandidateVersion != same.ActiveVersion {
		t.Errorf("dryrun of the active file: %d %+v", st, same)
	}
}

// TestRulesDryRun_CapacityEditListsTheCoachesWhoseLimitChanges: a capacity
// edit that gives volunteers a limit of 4 lists the volunteer only.
func TestRulesDryRun_CapacityEditListsTheCoachesWhoseLimitChanges(t *testing.T) {
	ce := newCheckEnv(t)
	vol, err := ce.auth.CreateUser(t.Context(), auth.NewUser{Username: "coach.v", DisplayName: "Vrijwilliger", Role: auth.RoleCoach,
		Regions: []string{"kempen"}, FTE: 1, Volunteer: true, Password: testPassword}, auth.System("test"))
	if err != nil {
		t.Fatal(err)
	}
	old := "limit: round(params.families_per_fte * coach.fte)\n"
	capacity := ce.file("capacity")
	if !strings.Contains(capacity, old) {
		t.Fatalf("kempen/capacity.yaml has no %q any more: update the test", old)
	}
	candidate := strings.Replace(capacity, old, `limit: "coach.volunteer ? 4.0 : round(params.families_per_fte * coach.fte)"`+"\n", 1)
	var got RulesDryRun
	if st := ce.coord.doRaw("POST", "/v1/regions/kempen/rules/capacity/dryrun", "application/yaml", []byte(candidate), &got); st != http.StatusOK {
		var inv InvalidRules
		ce.coord.doRaw("POST", "/v1/regions/kempen/rules/capacity/check", "application/yaml", []byte(candidate), &inv)
		t.Fatalf("dryrun: %d; check: %+v", st, inv)
	}
	if got.Coaches != 4 || got.CoachesChanged != 1 || len(got.CoachChanges) != 1 || got.Changed != 0 {
		t.Fatalf("dryrun: %+v; want 4 coaches, the volunteer changed, no referral", got)
	}
	if ch := got.CoachChanges[0]; ch.CoachID != vol.ID || ch.Before.Limit != 12 || ch.After.Limit != 4 || ch.Before.Free != 12 || ch.After.Free != 4 {
		t.Errorf("coach change %+v; want coach.v 12 → 4", ch)
	}
}

// TestRulesDryRun_BrokenFileIs400WithDiagnostics: a candidate that does not
// pass its check is refused like a PUT, with the diagnostics; signals are
// not dry-run.
func TestRulesDryRun_BrokenFileIs400WithDiagnostics(t *testing.T) {
	ce := newCheckEnv(t)
	broken := strings.Replace(ce.file("intake"), "when: referral.crisis\n", "when: referral.crisiss\n", 1)
	line, col := lineCol(t, broken, "crisiss")
	unchanged := ce.nothingChanged()
	var got InvalidRules
	if st := ce.coord.doRaw("POST", "/v1/regions/kempen/rules/intake/dryrun", "application/yaml", []byte(broken), &got); st != http.StatusBadRequest {
		t.Fatalf("dryrun of a broken file: %d, want 400", st)
	}
	if got.Code != "invalid" || !slices.ContainsFunc(got.Diagnostics, func(d RuleDiagnostic) bool {
		return d.Code == "unknown_name" && d.File == "kempen/intake.yaml" && d.Line == line && d.Col == col
	}) {
		t.Errorf("answer %+v; want invalid with the unknown name at %d:%d", got, line, col)
	}
	var eb ErrorBody
	if st := ce.coord.doRaw("POST", "/v1/regions/kempen/rules/signals/dryrun", "application/yaml", []byte(ce.file("signals")), &eb); st != 400 ||
		!strings.Contains(eb.Message, "dry-run is for intake and capacity") {
		t.Errorf("dryrun of signals: %d %+v, want 400 saying dry-run is for intake and capacity", st, eb)
	}
	unchanged()
}

// TestRulesCheckAndDryRun_BadBodiesAre400 and other refusals: malformed or
// incomplete bodies, a wrong content type, an unknown ruleset.
func TestRulesCheckAndDryRun_BadBodiesAre400(t *testing.T) {
	ce := newCheckEnv(t)
	others := map[string]*testClient{"coach.a": ce.login("coach.a"), "admin": ce.login("admin"), "coordinator.m": ce.login("coordinator.m")}
	unchanged := ce.nothingChanged()
	for _, op := range []string{"check", "dryrun"} {
		for _, tc := range []struct {
			name, ruleset, ct string
			body              []byte
			want              int
		}{
			{"malformed JSON", "intake", "application/json", []byte(`{"content": `), 400},
			{"unknown key", "intake", "application/json", []byte(`{"contents": "x"}`), 400},
			{"no content", "intake", "application/json", []byte(`{}`), 400},
			{"content not a string", "intake", "application/json", []byte(`{"content": 3}`), 400},
			{"trailing data", "intake", "application/json", []byte(`{"content": "x"} {}`), 400},
			{"wrong content type", "intake", "text/html", []byte("ruleset: intake"), 400},
			{"unknown ruleset", "eligibility", "application/yaml", []byte("ruleset: intake"), 400},
			{"too large", "intake", "application/yaml", bytes.Repeat([]byte("#"), 1<<20+1), 413},
		} {
			var eb ErrorBody
			if st := ce.coord.doRaw("POST", "/v1/regions/kempen/rules/"+tc.ruleset+"/"+op, tc.ct, tc.body, &eb); st != tc.want || eb.Code == "" || eb.Message == "" {
				t.Errorf("%s, %s: %d %+v, want %d with a code and message", op, tc.name, st, eb, tc.want)
			}
		}
		for who, want := range map[string]int{"coach.a": 403, "admin": 403, "coordinator.m": 404} {
			if st := others[who].doRaw("POST", "/v1/regions/kempen/rules/intake/"+op, "application/yaml", []byte(ce.file("intake")), nil); st != want {
				t.Errorf("%s as %s: %d, want %d", op, who, st, want)
			}
		}
	}
	unchanged()
}

// TestRulesDryRun_ReadModelInputsAreTheStoresInputs: the dry-run's inputs
// from the read model are the facts `samenplan rules dryrun` derives from
// the store (view.LiveReferrals): the same undecided referrals, members
// (ages, pregnancy), year counts and today — for a family with an unborn
// child, a member without a birth date, a referral without a family, and
// without the decided ones.
func TestRulesDryRun_ReadModelInputsAreTheStoresInputs(t *testing.T) {
	ce := newCheckEnv(t)
	coach := ce.login("coach.a")
	for i := 1; i <= 4; i++ {
		ce.pushReferral(coach, i, i == 2, i == 3)
	}
	fam, _, _ := ce.pushReferral(coach, 5, false, false)
	unborn, nodate, lone := newUUID(), newUUID(), newUUID()
	today := ce.now()
	changes := []protocol.Change{
		coach.change("persons", unborn, "family_id", fam),
		coach.change("persons", unborn, "role", "unborn"),
		coach.change("persons", unborn, "due_date", today.AddDate(0, 3, 0).Format("2006-01-02")),
		coach.change("persons", nodate, "family_id", fam),
		coach.change("persons", nodate, "role", "other"),
		coach.change("persons", nodate, "willing", true),
		coach.change("referrals", lone, "region", "kempen"),
		coach.change("referrals", lone, "received_on", today.AddDate(0, 0, -1).Format("2006-01-02")),
		coach.change("referrals", lone, "crisis", true),
	}
	var resp protocol.PushResponse
	if st := coach.do("POST", "/v1/sync/push", coach.pushRequest(changes...), &resp); st != http.StatusOK || resp.Applied != len(changes) {
		t.Fatalf("push: %d %+v", st, resp)
	}
	_, _, decided := ce.pushReferral(coach, 6, false, false)
	if st := ce.coord.do("POST", "/v1/regions/kempen/intake/decisions", map[string]string{"referral_id": decided, "kind": "decline", "reason": "test"}, nil); st != http.StatusCreated {
		t.Fatalf("decline: %d", st)
	}
	day := rules.DateOf(today)
	fromModel, err := modelReferrals{model: ce.model, today: day}.Referrals(t.Context(), "kempen")
	if err != nil {
		t.Fatal(err)
	}
	fromStore, err := view.LiveReferrals{Stores: ce.stores, Today: day}.Referrals(t.Context(), "kempen")
	if err != nil {
		t.Fatal(err)
	}
	normalize := func(ins []rules.IntakeInput) []rules.IntakeInput {
		out := slices.Clone(ins)
		slices.SortFunc(out, func(a, b rules.IntakeInput) int { return strings.Compare(a.ID, b.ID) })
		for i := range out {
			ms := slices.Clone(out[i].Family.Members)
			slices.SortFunc(ms, func(a, b rules.MemberFacts) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			out[i].Family.Members = ms
		}
		return out
	}
	got, want := normalize(fromModel), normalize(fromStore)
	if len(want) != 6 {
		t.Fatalf("the store has %d undecided referrals, want 6", len(want))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("inputs differ:\n model %+v\n store %+v", got, want)
	}
	if i := slices.IndexFunc(got, func(in rules.IntakeInput) bool { return in.Family.Pregnancy }); i < 0 || len(got[i].Family.Members) != 4 {
		t.Errorf("no input with the pregnancy and its four members: %+v", got)
	}
}
