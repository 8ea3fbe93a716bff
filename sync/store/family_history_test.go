package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/samenplan/samenplan/sync/schema"
)

func TestFamilyHistory_EveryFieldOfEveryRowOfTheFamilyWithLosers(t *testing.T) {
	e := newEnv(t)
	c1, c2 := coach(1), coach(2)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c1.UserID)
	e.serverWrite(fw("trajectories", traj, "co_coach_ids", []string{c2.UserID}))
	other, otherTraj := uid(50), uid(51)
	e.family(other, otherTraj, c2.UserID)

	person, goal, member, contact, ref := uid(10), uid(11), uid(12), uid(13), uid(14)
	e.push(c1, "b1",
		ch("persons", person, "family_id", fam, stamp(1000, 0, c1.DeviceID)),
		ch("persons", person, "given_name", "Noor", stamp(1000, 1, c1.DeviceID)),
		ch("plan_goals", goal, "trajectory_id", traj, stamp(1000, 2, c1.DeviceID)),
		ch("plan_goals", goal, "goal", "Rustige ochtenden", stamp(1000, 3, c1.DeviceID)),
		ch("network_members", member, "family_id", fam, stamp(1000, 4, c1.DeviceID)),
		ch("network_members", member, "name", "Oma Mia", stamp(1000, 5, c1.DeviceID)),
		ch("contacts", contact, "trajectory_id", traj, stamp(1000, 6, c1.DeviceID)),
		ch("contacts", contact, "note", "Eerste versie", stamp(1000, 7, c1.DeviceID)))
	e.serverWrite(
		fw("referrals", ref, "region", testRegion),
		fw("referrals", ref, "question", "Hulp bij opvoeding"),
		fw("referrals", ref, "family_id", fam))
	// Two devices edit the note offline; c2's later stamp wins even though
	// c1's write arrives last.
	e.push(c2, "b2", ch("contacts", contact, "note", "Versie van coach 2", stamp(3000, 0, c2.DeviceID)))
	e.push(c1, "b3", ch("contacts", contact, "note", "Versie van coach 1", stamp(2000, 0, c1.DeviceID)))
	// Rows of another family stay out.
	e.push(c2, "b4", ch("contacts", uid(52), "trajectory_id", otherTraj, stamp(4000, 0, c2.DeviceID)),
		ch("contacts", uid(52), "note", "Ander gezin", stamp(4000, 1, c2.DeviceID)))

	hist, err := e.r.FamilyHistory(e.ctx, fam)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	byKey := map[string]FieldHistory{}
	for _, h := range hist {
		k := h.Collection + "/" + h.ID + "/" + h.Field
		keys = append(keys, k)
		byKey[k] = h
		if h.ID == other || h.ID == otherTraj || h.ID == uid(52) {
			t.Errorf("history of family %s has a row of another family: %s", fam, k)
		}
	}
	for _, want := range []string{
		"contacts/" + contact + "/note", "contacts/" + contact + "/trajectory_id",
		"families/" + fam + "/label", "families/" + fam + "/region",
		"network_members/" + member + "/name", "persons/" + person + "/given_name",
		"plan_goals/" + goal + "/goal", "referrals/" + ref + "/question",
		"trajectories/" + traj + "/co_coach_ids", "trajectories/" + traj + "/lead_coach_id",
	} {
		if _, ok := byKey[want]; !ok {
			t.Errorf("no history of %s in %v", want, keys)
		}
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Errorf("history not ordered by collection, id, field: %s before %s", keys[i-1], keys[i])
		}
	}

	var got []string
	for _, h := range byKey["contacts/"+contact+"/note"].Entries {
		got = append(got, fmt.Sprintf("%s %s→%s by %s", h.Outcome, h.OldValue, h.Value, h.DeviceID))
	}
	want := []string{
		`applied →"Eerste versie" by ` + c1.DeviceID,
		`applied "Eerste versie"→"Versie van coach 2" by ` + c2.DeviceID,
		`stale →"Versie van coach 1" by ` + c1.DeviceID,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("note history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same entries as History of that row gives.
	row, err := e.r.History(e.ctx, "contacts", contact)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, h := range hist {
		if h.ID == contact {
			n += len(h.Entries)
		}
	}
	if n != len(row) {
		t.Errorf("family history has %d entries of the contact, History %d", n, len(row))
	}

	if h, err := e.r.FamilyHistory(e.ctx, uid(99)); err != nil || len(h) != 0 {
		t.Errorf("unknown family: %v %v, want an empty history", h, err)
	}
}

// TestFamilyHistory_QueryReadsIndexesWithoutSorting guards the plan: the
// scope index, then the log by row, no temporary sort.
func TestFamilyHistory_QueryReadsIndexesWithoutSorting(t *testing.T) {
	e := newEnv(t)
	rows, err := e.r.db.Reader.QueryContext(e.ctx, `EXPLAIN QUERY PLAN `+familyHistorySQL, schema.FamilyScope(uid(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	p := strings.Join(plan, "\n")
	t.Log(p)
	if strings.Contains(p, "TEMP B-TREE") || !strings.Contains(p, "row_scopes_scope") || !strings.Contains(p, "change_log_row") {
		t.Errorf("plan:\n%s\nwant the scope index and the log's row index, no temporary sort", p)
	}
}

func TestFamilyConflicts_OnlyTheFamilysRows(t *testing.T) {
	e := newEnv(t)
	c1, c2 := coach(1), coach(2)
	fam, traj := uid(1), uid(2)
	other, otherTraj := uid(50), uid(51)
	e.family(fam, traj, c1.UserID)
	e.family(other, otherTraj, c1.UserID)
	e.serverWrite(fw("trajectories", traj, "co_coach_ids", []string{c2.UserID}),
		fw("trajectories", otherTraj, "co_coach_ids", []string{c2.UserID}))
	for _, tc := range []struct{ contact, traj string }{{uid(10), traj}, {uid(60), otherTraj}} {
		base := stamp(1000, 0, c1.DeviceID)
		e.push(c1, "b1"+tc.contact, ch("contacts", tc.contact, "trajectory_id", tc.traj, base), ch("contacts", tc.contact, "note", "Eerste", base))
		e.push(c2, "b2"+tc.contact, ch("contacts", tc.contact, "note", "Van coach 2", stamp(3000, 0, c2.DeviceID)))
		e.push(c1, "b3"+tc.contact, ch("contacts", tc.contact, "note", "Van coach 1", stamp(2000, 0, c1.DeviceID)))
	}
	all, err := e.r.Conflicts(e.ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("region conflicts: %+v %v, want 2", all, err)
	}
	got, err := e.r.FamilyConflicts(e.ctx, fam)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RowID != uid(10) || string(got[0].Winner.Value) != `"Van coach 2"` ||
		string(got[0].Loser.Value) != `"Van coach 1"` || got[0].Loser.DeviceID != c1.DeviceID {
		t.Fatalf("family conflicts: %+v, want the one on %s", got, uid(10))
	}
	if got[0].Winner.ReceivedAt.IsZero() || got[0].DetectedAt.IsZero() {
		t.Errorf("conflict without times: %+v", got[0])
	}
}
