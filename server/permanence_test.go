package server

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// putOnDuty has the kempen coordinator replace the shipped on_duty lists
// through the rules API: Monday coach.a and an unknown name, Wednesday
// coach.b, Friday coach.m (an account of another region).
func putOnDuty(t *testing.T, we *workflowEnv) {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join(we.dir, "kempen", "region.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	content := string(buf)
	for old, repl := range map[string]string{
		"on_duty: [coach1.kempen.demo, coach2.kempen.demo]": "on_duty: [coach.a, nobody.here]",
		"on_duty: [coach3.kempen.demo]":                     "on_duty: [coach.b]",
		"on_duty: [coach4.kempen.demo, coach1.kempen.demo]": "on_duty: [coach.m]",
	} {
		if !strings.Contains(content, old) {
			t.Fatalf("region.yaml lacks %q", old)
		}
		content = strings.Replace(content, old, repl, 1)
	}
	var st RulesActivation
	if code := we.login("coordinator.k").doRaw("PUT", "/v1/regions/kempen/rules/region", "application/yaml", []byte(content), &st); code != http.StatusOK || !st.Activated {
		t.Fatalf("put region.yaml: %d %+v", code, st)
	}
}

// pushConsult has c's device log a consult at at.
func pushConsult(t *testing.T, c *testClient, coachID string, at time.Time, minutes int) string {
	t.Helper()
	id := newUUID()
	req := c.pushRequest(
		c.change("consults", id, "region", "kempen"),
		c.change("consults", id, "at", at.UTC().Format(time.RFC3339)),
		c.change("consults", id, "referrer", "CLB De Brug (fictief)"),
		c.change("consults", id, "question", "Hoe ondersteun ik dit gezin verder?"),
		c.change("consults", id, "advice", "Samen bekeken wat nog mogelijk is."),
		c.change("consults", id, "minutes", minutes),
		c.change("consults", id, "coach_id", coachID),
	)
	var resp protocol.PushResponse
	if st := c.do("POST", "/v1/sync/push", req, &resp); st != http.StatusOK || resp.Applied != 7 {
		t.Fatalf("push consult: %d %+v", st, resp)
	}
	return id
}

func dutyNames(us []DutyUser) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func TestPermanence_ScheduleOnDutyNowAndTheWeeksConsults(t *testing.T) {
	we := newWorkflowEnv(t)
	putOnDuty(t, we)
	monday := time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()) // 2026-W48, Kempen's Monday block 09–12
	we.setNow(monday)

	// A coach's device logs a consult during the block and a referral;
	// one consult and one referral fall in the week before.
	coachA := we.login("coach.a")
	consult := pushConsult(t, coachA, we.users["coach.a"].ID, time.Date(2026, 11, 23, 9, 30, 0, 0, brussels()), 20)
	earlier := pushConsult(t, coachA, we.users["coach.a"].ID, time.Date(2026, 11, 18, 14, 0, 0, 0, brussels()), 15)
	pushed := newUUID()
	var resp protocol.PushResponse
	if st := coachA.do("POST", "/v1/sync/push", coachA.pushRequest(
		coachA.change("referrals", pushed, "region", "kempen"),
		coachA.change("referrals", pushed, "received_on", "2026-11-23"),
		coachA.change("referrals", pushed, "channel", "permanentie"),
		coachA.change("referrals", pushed, "question", "Ouders zoeken hulp bij de opvoeding."),
	), &resp); st != 200 || resp.Applied != 4 {
		t.Fatalf("push referral: %d %+v", st, resp)
	}
	written, before := newUUID(), newUUID()
	we.serverWrite("kempen",
		store.FieldWrite{Collection: "referrals", ID: written, Field: "region", Value: jsonValue("kempen")},
		store.FieldWrite{Collection: "referrals", ID: written, Field: "received_on", Value: jsonValue("2026-11-29")},
		store.FieldWrite{Collection: "referrals", ID: before, Field: "region", Value: jsonValue("kempen")},
		store.FieldWrite{Collection: "referrals", ID: before, Field: "received_on", Value: jsonValue("2026-11-22")},
	)

	var page PermanencePage
	if st := we.login("coach.b").do("GET", "/v1/regions/kempen/permanence", nil, &page); st != http.StatusOK {
		t.Fatalf("permanence: %d", st)
	}
	if !page.HeldNow || len(page.Current) != 1 || page.Current[0].Day != "monday" || page.Current[0].From != "09:00" || page.Current[0].Mode != "phone" {
		t.Errorf("now: held %v, current %+v", page.HeldNow, page.Current)
	}
	if got, want := dutyNames(page.OnDutyNow), []string{"coach.a", "nobody.here"}; !slices.Equal(got, want) {
		t.Fatalf("on duty now: got %v, want %v", got, want)
	}
	if a := page.OnDutyNow[0]; !a.Known || a.UserID != we.users["coach.a"].ID || a.DisplayName != "coach.a" || a.Role != "coach" || !a.InRegion {
		t.Errorf("coach.a on duty: %+v", a)
	}
	if u := page.OnDutyNow[1]; u.Known || u.UserID != "" || u.InRegion {
		t.Errorf("unknown username: %+v", u)
	}
	if page.Week != "2026-W48" || page.WeekFrom.String() != "2026-11-23" || page.WeekTo.String() != "2026-11-29" || page.TimeZone != "Europe/Brussels" {
		t.Errorf("week: %s %s..%s %s", page.Week, page.WeekFrom, page.WeekTo, page.TimeZone)
	}
	var dates []string
	for _, sl := range page.Schedule {
		dates = append(dates, sl.Day+" "+sl.Date.String()+" "+sl.From+"-"+sl.To+" "+strings.Join(dutyNames(sl.OnDuty), ","))
	}
	if want := []string{
		"monday 2026-11-23 09:00-12:00 coach.a,nobody.here",
		"wednesday 2026-11-25 13:00-16:00 coach.b",
		"friday 2026-11-27 09:00-12:00 coach.m",
	}; !slices.Equal(dates, want) {
		t.Errorf("schedule:\n got %v\nwant %v", dates, want)
	}
	if m := page.Schedule[2].OnDuty[0]; !m.Known || m.InRegion {
		t.Errorf("coach.m (maasland) on duty in kempen: %+v", m)
	}
	if page.Next == nil || page.Next.Day != "wednesday" || !page.Next.StartsAt.Equal(time.Date(2026, 11, 25, 13, 0, 0, 0, brussels())) ||
		!slices.Equal(dutyNames(page.Next.OnDuty), []string{"coach.b"}) {
		t.Errorf("next: %+v", page.Next)
	}
	if page.Consults.Count != 1 || page.Consults.Minutes != 20 || len(page.Consults.Items) != 1 {
		t.Fatalf("consults: %+v", page.Consults)
	}
	if c := page.Consults.Items[0]; c.ID != consult || c.CoachID != we.users["coach.a"].ID || c.CoachName != "coach.a" ||
		c.Referrer != "CLB De Brug (fictief)" || c.Minutes != 20 {
		t.Errorf("consult: %+v", c)
	}
	slices.Sort(page.Referrals.IDs)
	want := []string{pushed, written}
	slices.Sort(want)
	if page.Referrals.Count != 2 || !slices.Equal(page.Referrals.IDs, want) {
		t.Errorf("referrals this week: %+v, want %v", page.Referrals, want)
	}
	if page.RulesVersion == "" || page.Name == "" {
		t.Errorf("rules version %q, name %q", page.RulesVersion, page.Name)
	}

	// Another week.
	if st := we.login("coordinator.k").do("GET", "/v1/regions/kempen/permanence?week=2026-W47", nil, &page); st != http.StatusOK {
		t.Fatalf("week 47: %d", st)
	}
	if page.Week != "2026-W47" || page.Consults.Count != 1 || page.Consults.Items[0].ID != earlier ||
		page.Referrals.Count != 1 || page.Referrals.IDs[0] != before || page.Schedule[0].Date.String() != "2026-11-16" {
		t.Errorf("week 47: %s consults %+v referrals %+v", page.Week, page.Consults, page.Referrals)
	}
	if !page.HeldNow { // now is still Monday 10:00, whatever week is shown
		t.Error("week 47: held_now is about now, not the week shown")
	}

	// Sunday: no permanence; next is Monday's block.
	we.setNow(time.Date(2026, 11, 29, 10, 0, 0, 0, brussels()))
	if st := we.login("reviewer.k").do("GET", "/v1/regions/kempen/permanence", nil, &page); st != http.StatusOK {
		t.Fatalf("sunday: %d", st)
	}
	if page.HeldNow || len(page.Current) != 0 || len(page.OnDutyNow) != 0 {
		t.Errorf("sunday: held %v current %+v on duty %+v", page.HeldNow, page.Current, page.OnDutyNow)
	}
	if page.Next == nil || !page.Next.StartsAt.Equal(time.Date(2026, 11, 30, 9, 0, 0, 0, brussels())) ||
		!slices.Equal(dutyNames(page.Next.OnDuty), []string{"coach.a", "nobody.here"}) {
		t.Errorf("sunday next: %+v", page.Next)
	}
	// Monday 12:00 is the end of the block: not held any more.
	we.setNow(time.Date(2026, 11, 23, 12, 0, 0, 0, brussels()))
	if st := we.login("coach.a").do("GET", "/v1/regions/kempen/permanence", nil, &page); st != 200 || page.HeldNow {
		t.Errorf("monday 12:00: %d held %v", st, page.HeldNow)
	}
}

func TestPermanence_EachRoleSeesWhatItMay(t *testing.T) {
	we := newWorkflowEnv(t)
	we.setNow(time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()))
	for _, tc := range []struct {
		user, region string
		status       int
	}{
		{"coach.a", "kempen", 200},
		{"coordinator.k", "kempen", 200},
		{"reviewer.k", "kempen", 200},
		{"coach.m", "kempen", 404},
		{"coordinator.m", "kempen", 404},
		{"coordinator.m", "maasland", 200},
		{"coach.a", "maasland", 404},
		{"admin", "kempen", 403},
		{"coordinator.k", "nowhere", 404},
	} {
		var page PermanencePage
		if st := we.login(tc.user).do("GET", "/v1/regions/"+tc.region+"/permanence", nil, &page); st != tc.status {
			t.Errorf("%s on %s: %d, want %d", tc.user, tc.region, st, tc.status)
		}
	}

	// The shipped maasland file names demo accounts this server does not
	// have: listed as unknown, not an error.
	var page PermanencePage
	if st := we.login("coordinator.m").do("GET", "/v1/regions/maasland/permanence", nil, &page); st != 200 {
		t.Fatalf("maasland: %d", st)
	}
	if !page.HeldNow || len(page.OnDutyNow) != 1 || page.OnDutyNow[0].Username != "coach1.maasland.demo" || page.OnDutyNow[0].Known {
		t.Errorf("maasland monday: held %v on duty %+v", page.HeldNow, page.OnDutyNow)
	}
	if len(page.Schedule) != 5 || page.Schedule[0].Mode != "" {
		t.Errorf("maasland schedule: %+v", page.Schedule)
	}

	coord := we.login("coordinator.k")
	for _, week := range []string{"2026-48", "2026-W54", "2025-W53", "2026-W00", "W48", "2026-w48", "abcd-W10"} {
		var e ErrorBody
		if st := coord.do("GET", "/v1/regions/kempen/permanence?week="+week, nil, &e); st != 400 || e.Code != "invalid" {
			t.Errorf("week=%s: %d %+v", week, st, e)
		}
	}
	if st := coord.do("GET", "/v1/regions/kempen/permanence?week=2026-W53", nil, &page); st != 200 || page.WeekFrom.String() != "2026-12-28" {
		t.Errorf("2026 has a week 53: %d %s", st, page.WeekFrom)
	}
	// Summer time begins on Sunday 29 March 2026: Monday's block is 09:00
	// in Brussels, 07:00 UTC (the week before, 08:00 UTC).
	for week, utc := range map[string]int{"2026-W14": 7, "2026-W13": 8} {
		if st := coord.do("GET", "/v1/regions/kempen/permanence?week="+week, nil, &page); st != 200 || len(page.Schedule) == 0 {
			t.Fatalf("%s: %d", week, st)
		}
		if got := page.Schedule[0].StartsAt.UTC().Hour(); got != utc || page.Schedule[0].From != "09:00" {
			t.Errorf("%s: Monday block starts at %v (UTC hour %d, want %d)", week, page.Schedule[0].StartsAt, got, utc)
		}
	}
}
