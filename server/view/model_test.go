package view

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

func TestModel_ContactUpdatesLastContactAndClearsTheNoContactSignal(t *testing.T) {
	f := newFixture(t)
	fam, traj, coach := newID(), newID(), newID()
	rows := append(familyRows("kempen", fam, "Gezin Klaproos", true),
		trajectoryRow("kempen", traj, fam, coach, 40),
		goalRow(newID(), traj, "opvoeding", "open"),
		contactRow(newID(), traj, coach, 15))
	f.write("kempen", rows...)

	c, ok := f.model.Case(fam)
	if !ok {
		t.Fatal("no case after the write")
	}
	if got := signalIDs(c.Signals); !contains(got, "no_contact_10_days") {
		t.Fatalf("signals = %v, want no_contact_10_days", got)
	}
	if got := signalIDs(deref(f.model.Signals("kempen"))); !contains(got, "no_contact_10_days") {
		t.Fatalf("region signals = %v, want no_contact_10_days", got)
	}
	if got, _ := f.model.Cases(Filter{Region: "kempen", Signal: "no_contact_10_days"}); len(got) != 1 {
		t.Fatalf("cases with the signal = %d, want 1", len(got))
	}
	before := *c.LastContactAt

	f.write("kempen", contactRow(newID(), traj, coach, 0))
	c, _ = f.model.Case(fam)
	if c.LastContactAt == nil || !c.LastContactAt.After(before) {
		t.Fatalf("last contact = %v, want after %v", c.LastContactAt, before)
	}
	if got, want := c.LastContactAt.Format(time.RFC3339), at(0); got != want {
		t.Errorf("last contact = %s, want %s", got, want)
	}
	if got := signalIDs(c.Signals); contains(got, "no_contact_10_days") {
		t.Errorf("signals = %v, want no no_contact_10_days after a contact today", got)
	}
	if got := signalIDs(deref(f.model.Signals("kempen"))); contains(got, "no_contact_10_days") {
		t.Errorf("region signals = %v, want none", got)
	}
	if got := len(c.Contacts); got != 2 || !c.Contacts[0].OccurredAt.Before(c.Contacts[1].OccurredAt) {
		t.Errorf("timeline = %+v, want 2 contacts oldest first", c.Contacts)
	}
}

func TestModel_RefreshFiresTheSignalWhenDaysPass(t *testing.T) {
	f := newFixture(t)
	fam, traj, coach := newID(), newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Wilgenhof", true),
		trajectoryRow("kempen", traj, fam, coach, 40), goalRow(newID(), traj, "wonen", "open"),
		contactRow(newID(), traj, coach, 2))...)
	if c, _ := f.model.Case(fam); len(c.Signals) != 0 {
		t.Fatalf("signals = %v, want none", signalIDs(c.Signals))
	}
	events := f.model.Subscribe(t.Context())
	f.clock.Add(10 * 24 * time.Hour)
	if err := f.model.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	c, _ := f.model.Case(fam)
	if got := signalIDs(c.Signals); !contains(got, "no_contact_10_days") {
		t.Fatalf("signals after 12 days = %v, want no_contact_10_days", got)
	}
	if got := *c.Members[1].AgeYears; got != 8 {
		t.Errorf("child's age = %d, want 8", got)
	}
	select {
	case e := <-events:
		if e.FamilyID != fam {
			t.Errorf("event = %+v, want family %s", e, fam)
		}
	case <-time.After(time.Second):
		t.Error("no event for the family whose signals changed")
	}
}

func TestModel_EligibilityFollowsTheFamilysMembers(t *testing.T) {
	f := newFixture(t)
	fam, ref := newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Mosbeek", false), referralRow("kempen", ref, fam, 3))...)

	r, ok := f.model.Referral(ref)
	if !ok || r.Eligibility == nil {
		t.Fatalf("referral = %+v, want one with an eligibility", r)
	}
	if r.Eligibility.Eligible || !slices.Equal(r.Eligibility.Reasons, []string{"child_or_pregnancy"}) {
		t.Fatalf("eligibility = %v %v, want ineligible for child_or_pregnancy", r.Eligibility.Eligible, r.Eligibility.Reasons)
	}
	if c, _ := f.model.Case(fam); c.Status != StatusIntake || c.Referrals[0] != r {
		t.Fatalf("case status = %q, want intake with the same referral", c.Status)
	}

	f.write("kempen", row{"persons", newID(), map[string]any{"family_id": fam, "given_name": "Fien", "role": "child", "birth_date": "2020-06-01"}})
	r, _ = f.model.Referral(ref)
	if !r.Eligibility.Eligible || len(r.Eligibility.Reasons) != 0 {
		t.Fatalf("eligibility after a child = %v %v, want eligible", r.Eligibility.Eligible, r.Eligibility.Reasons)
	}
	if r.Eligibility.RegionVersion == "" {
		t.Error("decision carries no rule version")
	}

	// The board: an eligible referral ranks before an ineligible one that
	// waited longer.
	fam2, ref2 := newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam2, "Gezin Zegge", false), referralRow("kempen", ref2, fam2, 20))...)
	board := f.model.OpenReferrals("kempen")
	if len(board) != 2 || board[0].ID != ref || board[1].ID != ref2 {
		t.Fatalf("board = %v, want [%s %s]", ids(board), ref, ref2)
	}

	// A decision takes it off the board.
	f.write("kempen", row{"referrals", ref, map[string]any{"status": "declined", "outcome_reason": "Andere hulp."}})
	if got := f.model.OpenReferrals("kempen"); len(got) != 1 || got[0].ID != ref2 {
		t.Fatalf("board after a decline = %v, want [%s]", ids(got), ref2)
	}
	if got := f.model.Referrals("kempen", "declined"); len(got) != 1 || got[0].Eligibility != nil {
		t.Fatalf("declined = %v, want the referral without a live eligibility", ids(got))
	}
	if c, _ := f.model.Case(fam); c.Status != StatusNone {
		t.Errorf("status = %q, want %q", c.Status, StatusNone)
	}
}

func ids(rs []*Referral) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestModel_ReferralWithoutFamilyJoinsTheFamilyLater(t *testing.T) {
	f := newFixture(t)
	ref := newID()
	r := referralRow("kempen", ref, "", 9)
	delete(r.fields, "family_id")
	f.write("kempen", r)
	got, ok := f.model.Referral(ref)
	if !ok || got.Eligibility == nil || !slices.Contains(signalIDs(got.Signals), "referral_undecided") {
		t.Fatalf("referral = %+v, want eligibility and referral_undecided", got)
	}
	fam := newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Varenkamp", true), row{"referrals", ref, map[string]any{"family_id": fam}})...)
	c, _ := f.model.Case(fam)
	if len(c.Referrals) != 1 || c.Referrals[0].ID != ref || !c.Referrals[0].Eligibility.Eligible {
		t.Fatalf("case referrals = %+v, want the eligible referral", c.Referrals)
	}
	sigs := f.model.Signals("kempen")
	if len(sigs) != 1 || sigs[0].FamilyID != fam {
		t.Fatalf("signals = %+v, want one referral_undecided for family %s", sigs, fam)
	}
}

func TestModel_ReassignmentMovesTheCaseToTheNewCoach(t *testing.T) {
	f := newFixture(t)
	fam, traj, a, b := newID(), newID(), newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Eikelaar", true), trajectoryRow("kempen", traj, fam, a, 5))...)
	if got, n := f.model.Cases(Filter{Region: "kempen", Coach: a}); n != 1 || got[0].FamilyID != fam {
		t.Fatalf("coach a's cases = %+v, want the family", got)
	}
	f.write("kempen", row{"trajectories", traj, map[string]any{"lead_coach_id": b}})
	if got, n := f.model.Cases(Filter{Region: "kempen", Coach: a}); n != 0 {
		t.Errorf("coach a's cases after the reassignment = %+v, want none", got)
	}
	if got, n := f.model.Cases(Filter{Coach: b}); n != 1 || got[0].LeadCoachID != b {
		t.Errorf("coach b's cases = %+v, want the family led by b", got)
	}
	if got := f.model.CoachLoad("kempen"); got[a] != 0 || got[b] != 1 {
		t.Errorf("load = %v, want b 1 and a 0", got)
	}
	// A co-coach holds it too; closing ends both.
	f.write("kempen", row{"trajectories", traj, map[string]any{"co_coach_ids": []string{a}}})
	if _, n := f.model.Cases(Filter{Coach: a, Status: "active"}); n != 1 {
		t.Errorf("co-coach a's active cases = %d, want 1", n)
	}
	f.write("kempen", row{"trajectories", traj, map[string]any{"status": "closed", "closed_on": day(0), "closure_reason": "doelen_bereikt"}})
	if _, n := f.model.Cases(Filter{Coach: b}); n != 0 {
		t.Errorf("coach b holds %d cases after closing, want 0", n)
	}
	if got, n := f.model.Cases(Filter{Region: "kempen", Status: "closed"}); n != 1 || got[0].FamilyID != fam {
		t.Errorf("closed cases = %+v, want the family", got)
	}
	if y := f.model.YearCounts("kempen", 2026); y.StartedNonMandated != 1 || y.StartedMandated != 0 {
		t.Errorf("year counts = %+v, want 1 non-mandated", y)
	}
}

func TestModel_CasesFilterAndPage(t *testing.T) {
	f := newFixture(t)
	var rows []row
	for i := 0; i < 12; i++ {
		rows = append(rows, familyRows("kempen", newID(), fmt.Sprintf("Gezin %02d", i), i%2 == 0)...)
	}
	rows = append(rows, familyRows("maasland", newID(), "Gezin Elders", true)...)
	f.write("kempen", rows[:len(rows)-3]...)
	f.write("maasland", rows[len(rows)-3:]...)

	got, n := f.model.Cases(Filter{Region: "kempen", Limit: 5, Offset: 5})
	if n != 12 || len(got) != 5 || got[0].Label != "Gezin 05" || got[4].Label != "Gezin 09" {
		t.Fatalf("page = %v (of %d), want Gezin 05..09 of 12", got, n)
	}
	if got, n := f.model.Cases(Filter{Region: "kempen", Q: "MILAN"}); n != 6 {
		t.Errorf("q=MILAN matched %d (%v), want the 6 families with the child Milan", n, got)
	}
	if _, n := f.model.Cases(Filter{Region: "kempen", Q: "turnhout", Status: StatusNone}); n != 12 {
		t.Errorf("q=turnhout status none matched %d, want 12", n)
	}
	if _, n := f.model.Cases(Filter{Region: "maasland"}); n != 1 {
		t.Errorf("maasland has %d cases, want 1", n)
	}
}

func TestModel_ConsultsInARange(t *testing.T) {
	f := newFixture(t)
	var rows []row
	for i := 0; i < 5; i++ {
		rows = append(rows, row{"consults", newID(), map[string]any{"region": "maasland", "at": at(i * 2), "referrer": "CLB", "minutes": 20}})
	}
	f.write("maasland", rows...)
	week := f.model.Consults("maasland", today.AddDate(0, 0, -7), today.Add(time.Hour))
	if len(week) != 4 || !week[0].At.Before(week[3].At) {
		t.Fatalf("consults this week = %d, want 4 oldest first", len(week))
	}
	if got := f.model.Consults("kempen", time.Time{}, time.Time{}); len(got) != 0 {
		t.Errorf("kempen consults = %d, want 0", len(got))
	}
	if got := f.model.Consults("maasland", time.Time{}, time.Time{}); len(got) != 5 {
		t.Errorf("all maasland consults = %d, want 5", len(got))
	}
}

func TestModel_DeletedFamilyLeavesTheModel(t *testing.T) {
	f := newFixture(t)
	fam, ref := newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Brembos", true), referralRow("kempen", ref, fam, 1))...)
	f.write("kempen", row{"families", fam, map[string]any{"_deleted": true}})
	if _, ok := f.model.Case(fam); ok {
		t.Fatal("deleted family still has a case")
	}
	if got, n := f.model.Cases(Filter{Region: "kempen"}); n != 0 {
		t.Errorf("cases = %v, want none", got)
	}
	// Its referral is still a referral of the region.
	if r, ok := f.model.Referral(ref); !ok || !r.Open() {
		t.Errorf("referral of the deleted family = %+v, want it open on its own", r)
	}
}

func TestModel_SubscribeGetsAnEventPerChangedFamily(t *testing.T) {
	f := newFixture(t)
	fams := []string{newID(), newID(), newID()}
	traj, coach := newID(), newID()
	var rows []row
	for _, fam := range fams {
		rows = append(rows, familyRows("kempen", fam, "Gezin", true)...)
	}
	rows = append(rows, trajectoryRow("kempen", traj, fams[1], coach, 3))
	f.write("kempen", rows...)

	ctx, cancel := context.WithCancel(context.Background())
	events := f.model.Subscribe(ctx)
	f.write("kempen",
		row{"persons", newID(), map[string]any{"family_id": fams[0], "role": "child", "birth_date": "2019-02-02"}},
		contactRow(newID(), traj, coach, 0),
		row{"families", fams[2], map[string]any{"label": "Gezin Hazelaer"}},
		row{"consults", newID(), map[string]any{"region": "kempen", "at": at(0)}},
	)
	var got []string
	kinds := map[string]int{}
	for len(got) < 4 {
		select {
		case e := <-events:
			kinds[e.Kind]++
			if e.Kind == EventCase {
				got = append(got, e.FamilyID)
			} else {
				got = append(got, e.Kind)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("events = %v, want 3 families and a consult", got)
		}
	}
	slices.Sort(got)
	want := append(slices.Clone(fams), EventConsult)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	select {
	case e := <-events:
		t.Errorf("extra event %+v", e)
	default:
	}
	cancel()
	for range events { // closed once ctx is done
	}
}

func TestModel_SlowSubscriberNeverBlocksApply(t *testing.T) {
	f := newFixture(t)
	fam := newID()
	f.write("kempen", familyRows("kempen", fam, "Gezin", true)...)
	stuck := f.model.Subscribe(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < subBuffer+20; i++ {
			f.write("kempen", row{"families", fam, map[string]any{"label": fmt.Sprint("Gezin ", i)}})
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("writes blocked on a subscriber that does not read")
	}
	if got := f.model.Dropped(); got != 20 {
		t.Errorf("dropped = %d, want 20", got)
	}
	for i := 0; i < subBuffer; i++ {
		<-stuck
	}
	f.write("kempen", row{"families", fam, map[string]any{"label": "Gezin Madelief"}})
	if e := <-stuck; e.Kind != EventResync {
		t.Errorf("first event after catching up = %+v, want a resync", e)
	}
	if e := <-stuck; e.FamilyID != fam {
		t.Errorf("then %+v, want the family", e)
	}
}

func TestModel_ReadersNeverSeeHalfABatch(t *testing.T) {
	f := newFixture(t)
	const families = 20
	var fams []string
	var rows []row
	for i := 0; i < families; i++ {
		fam := newID()
		fams = append(fams, fam)
		rows = append(rows, row{"families", fam, map[string]any{"region": "kempen", "label": "gen 0"}})
	}
	f.write("kempen", rows...)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad int64
	var mu sync.Mutex
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, n := f.model.Cases(Filter{Region: "kempen"})
				mu.Lock()
				reads++
				if n != families {
					bad++
				}
				for _, c := range got {
					if c.Label != got[0].Label {
						bad++
						break
					}
				}
				mu.Unlock()
			}
		}()
	}
	for gen := 1; gen <= 40; gen++ {
		var batch []row
		for _, fam := range fams {
			batch = append(batch, row{"families", fam, map[string]any{"label": fmt.Sprint("gen ", gen)}})
		}
		f.write("kempen", batch...)
	}
	close(stop)
	wg.Wait()
	if bad != 0 {
		t.Fatalf("%d of %d reads saw half a batch", bad, reads)
	}
	if got, _ := f.model.Cases(Filter{Region: "kempen", Limit: 1}); got[0].Label != "gen 40" {
		t.Errorf("label = %q, want gen 40", got[0].Label)
	}
	t.Logf("%d reads during 40 batches", reads)
}

func TestModel_SyncCountsShowsConflictsAndQuarantinedNotes(t *testing.T) {
	f := newFixture(t)
	fam, traj, a, b, contact := newID(), newID(), newID(), newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Hondsdraf", true), trajectoryRow("kempen", traj, fam, a, 20))...)
	region, _ := f.stores.Region("kempen")
	wall := time.Now().UnixMilli()
	hlc := func(dev string, n int64) string { return fmt.Sprintf("%013d-0000-%s", wall+n, dev) }
	push := func(dev, batch string, cs ...protocol.Change) protocol.PushResponse {
		t.Helper()
		resp, err := region.Push(f.ctx, store.Actor{UserID: a, DeviceID: dev, Role: store.RoleCoach},
			protocol.PushRequest{DeviceID: dev, BatchID: batch, SchemaVersion: schema.Version, Changes: cs})
		if err != nil || len(resp.Rejected) > 0 {
			t.Fatalf("push %s: %v %+v", batch, err, resp.Rejected)
		}
		return resp
	}
	ch := func(field, value, stamp, base string) protocol.Change {
		return protocol.Change{Collection: "contacts", ID: contact, Field: field, Value: json.RawMessage(value), HLC: stamp, Base: base}
	}
	push("dev-a1", "b1", ch("trajectory_id", `"`+traj+`"`, hlc("dev-a1", 0), ""), ch("note", `"eerste"`, hlc("dev-a1", 0), ""))
	push("dev-a1", "b2", ch("note", `"tweede"`, hlc("dev-a1", 1), hlc("dev-a1", 0)))
	push("dev-a2", "b3", ch("note", `"offline"`, hlc("dev-a2", 2), hlc("dev-a1", 0)))

	f.write("kempen", row{"trajectories", traj, map[string]any{"lead_coach_id": b}})
	late := newID()
	resp := push("dev-a1", "b4", protocol.Change{Collection: "contacts", ID: late, Field: "trajectory_id", Value: json.RawMessage(`"` + traj + `"`), HLC: hlc("dev-a1", 3)})
	if len(resp.Quarantined) != 1 {
		t.Fatalf("late note: %+v, want it quarantined", resp)
	}

	if err := f.model.SyncCounts(f.ctx, "kempen"); err != nil {
		t.Fatal(err)
	}
	c, _ := f.model.Case(fam)
	if c.Conflicts != 1 || c.Quarantined != 1 {
		t.Errorf("conflicts %d, quarantined %d; want 1 and 1", c.Conflicts, c.Quarantined)
	}
	if got := c.Contacts[0].Note; got != "offline" {
		t.Errorf("note = %q, want the later write", got)
	}
	if got, _ := f.model.Cases(Filter{Region: "kempen"}); got[0].Conflicts != 1 || got[0].Quarantined != 1 {
		t.Errorf("summary = %+v, want the counts", got[0])
	}
}

func TestModel_ReferralBeforeItsFamilyRowKeepsOneSetOfSignals(t *testing.T) {
	f := newFixture(t)
	fam, ref := newID(), newID()
	// The family row comes later (as from a device that pushed the
	// referral first); the referral already names it.
	r := referralRow("kempen", ref, fam, 9)
	f.write("kempen", row{"families", fam, map[string]any{"region": "kempen", "_deleted": true}}, r)
	if got := f.model.Signals("kempen"); len(got) != 1 || got[0].FamilyID != "" {
		t.Fatalf("signals = %v, want referral_undecided on the referral alone", deref(got))
	}
	f.write("kempen", row{"families", fam, map[string]any{"_deleted": false, "label": "Gezin Ratelpot"}})
	got := f.model.Signals("kempen")
	if len(got) != 1 || got[0].FamilyID != fam {
		t.Fatalf("signals = %+v, want one referral_undecided for the family", deref(got))
	}
}

func TestModel_BoardAndAllReadOneSnapshot(t *testing.T) {
	f := newFixture(t)
	fam, ref, other, traj, coach := newID(), newID(), newID(), newID(), newID()
	f.write("kempen", append(familyRows("kempen", fam, "Gezin Korenaar", true), referralRow("kempen", ref, fam, 4))...)
	f.write("kempen", append(familyRows("kempen", other, "Gezin Ereprijs", true), trajectoryRow("kempen", traj, other, coach, 30))...)
	board := f.model.Board("kempen", 2026)
	if len(board.Referrals) != 1 || board.Referrals[0].ID != ref || !board.Referrals[0].Eligibility.Eligible {
		t.Errorf("board referrals = %v, want the eligible referral", ids(board.Referrals))
	}
	if board.Load[coach] != 1 || board.Year.StartedNonMandated != 1 || board.RulesVersion == "" {
		t.Errorf("board = %+v, want the coach's load, this year's start and the rules version", board)
	}
	all := f.model.All("kempen")
	if len(all) != 2 || all[0].Family.ID != other || all[1].Family.ID != fam {
		t.Errorf("all = %d cases, want Ereprijs then Korenaar", len(all))
	}
}
