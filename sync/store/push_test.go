package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

func TestPush_StaleWriteIsLoggedNotApplied(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	other := Actor{UserID: c.UserID, DeviceID: "dev-coach-1b", Role: RoleCoach}

	e.push(c, "b1", ch("families", fam, "municipality", "Geel", stamp(2000, 0, c.DeviceID)))
	resp := e.push(other, "b2", ch("families", fam, "municipality", "Mol", stamp(1000, 0, other.DeviceID)))

	if resp.Applied != 0 || resp.Ignored != 1 {
		t.Fatalf("got applied %d ignored %d, want 0 and 1", resp.Applied, resp.Ignored)
	}
	if got, want := e.value("families", fam, "municipality"), `"Geel"`; got != want {
		t.Fatalf("value: got %s, want %s", got, want)
	}
	hist, err := e.r.History(e.ctx, "families", fam)
	if err != nil {
		t.Fatal(err)
	}
	var stale int
	for _, h := range hist {
		if h.Field == "municipality" && h.Outcome == OutcomeStale {
			stale++
			if string(h.Value) != `"Mol"` || h.DeviceID != other.DeviceID || h.UserID != c.UserID {
				t.Fatalf("stale entry: %+v", h)
			}
		}
	}
	if stale != 1 {
		t.Fatalf("got %d stale entries, want 1", stale)
	}
	// The same stale write again is not logged twice.
	e.push(other, "b3", ch("families", fam, "municipality", "Mol", stamp(1000, 0, other.DeviceID)))
	if n := e.count(`SELECT count(*) FROM change_log WHERE field = 'municipality'`); n != 2 {
		t.Fatalf("got %d log entries, want 2", n)
	}
}

func TestHistory_ShowsOldAndNewValues(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	e.push(c, "b1", ch("families", fam, "municipality", "Geel", stamp(1000, 0, c.DeviceID)))
	e.push(c, "b2", ch("families", fam, "municipality", "Mol", stamp(2000, 0, c.DeviceID)))
	hist, err := e.r.History(e.ctx, "families", fam)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hist {
		if h.Field == "municipality" {
			got = append(got, string(h.OldValue)+"→"+string(h.Value))
			if h.ReceivedAt.IsZero() || h.BatchID == "" || h.HLC == "" {
				t.Fatalf("incomplete entry %+v", h)
			}
		}
	}
	if want := []string{`→"Geel"`, `"Geel"→"Mol"`}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestPush_TextConflictIsRecordedWithBothTexts(t *testing.T) {
	e := newEnv(t)
	c1 := coach(1)
	c2 := coach(2)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c1.UserID)
	e.serverWrite(fw("trajectories", traj, "co_coach_ids", []string{c2.UserID}))
	contact := uid(3)
	base := stamp(1000, 0, c1.DeviceID)
	e.push(c1, "b1",
		ch("contacts", contact, "trajectory_id", traj, base),
		ch("contacts", contact, "note", "Eerste versie", base))

	// Both edit the note offline from the same base; c2 writes later but
	// c1's edit arrives last and loses.
	late := ch("contacts", contact, "note", "Versie van coach 2", stamp(3000, 0, c2.DeviceID))
	late.Base = base
	early := ch("contacts", contact, "note", "Versie van coach 1", stamp(2000, 0, c1.DeviceID))
	early.Base = base
	e.push(c2, "b2", late)
	e.push(c1, "b3", early)

	cs, err := e.r.Conflicts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("got %d conflicts, want 1: %+v", len(cs), cs)
	}
	got := cs[0]
	if string(got.Winner.Value) != `"Versie van coach 2"` || got.Winner.UserID != c2.UserID ||
		string(got.Loser.Value) != `"Versie van coach 1"` || got.Loser.UserID != c1.UserID || got.Field != "note" {
		t.Fatalf("conflict: %+v", got)
	}

	// A later edit made on top of the current value is no conflict.
	next := ch("contacts", contact, "note", "Samen herschreven", stamp(4000, 0, c1.DeviceID))
	next.Base = stamp(3000, 0, c2.DeviceID)
	e.push(c1, "b4", next)
	if cs, _ := e.r.Conflicts(e.ctx); len(cs) != 1 {
		t.Fatalf("got %d conflicts after a sequential edit, want 1", len(cs))
	}
	// A winning edit whose base is not the value it replaced is a conflict.
	blind := ch("contacts", contact, "note", "Blind overschreven", stamp(5000, 0, c2.DeviceID))
	blind.Base = base
	e.push(c2, "b5", blind)
	if cs, _ := e.r.Conflicts(e.ctx); len(cs) != 2 {
		t.Fatalf("got %d conflicts after a blind overwrite, want 2", len(cs))
	}
}

func TestPush_ReplayedBatchReturnsFirstAnswerAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	first := e.push(c, "b1",
		ch("families", fam, "municipality", "Geel", stamp(1000, 0, c.DeviceID)),
		ch("families", fam, "nope", "x", stamp(1000, 1, c.DeviceID)))
	logged := e.count(`SELECT count(*) FROM change_log`)

	// The replay carries other content: it must not be looked at.
	again := e.push(c, "b1", ch("families", fam, "municipality", "Mol", stamp(9000, 0, c.DeviceID)))
	if again.ServerHLC != first.ServerHLC || again.Applied != first.Applied || len(again.Rejected) != 1 {
		t.Fatalf("got %+v, want the first answer %+v", again, first)
	}
	if got := e.count(`SELECT count(*) FROM change_log`); got != logged {
		t.Fatalf("log grew from %d to %d on a replay", logged, got)
	}
	if got := e.value("families", fam, "municipality"); got != `"Geel"` {
		t.Fatalf("value changed on replay: %s", got)
	}
}

func TestPush_MixedBatchAppliesGoodAndReportsBadByIndex(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	resp := e.push(c, "b1",
		ch("families", fam, "municipality", "Geel", stamp(1000, 0, c.DeviceID)),
		ch("families", fam, "label", 42, stamp(1000, 1, c.DeviceID)),
		ch("families", fam, "language", "Nederlands", stamp(1000, 2, c.DeviceID)),
		ch("families", fam, "region", "maasland", stamp(1000, 3, c.DeviceID)),
	)
	if resp.Applied != 2 {
		t.Fatalf("applied %d, want 2", resp.Applied)
	}
	got := problemCodes(resp.Rejected)
	if got[1] != samenplan.EINVALID || got[3] != samenplan.EOUTOFSCOPE || len(got) != 2 {
		t.Fatalf("rejected %+v", resp.Rejected)
	}
	if e.value("families", fam, "language") != `"Nederlands"` {
		t.Fatal("good change not applied")
	}
}

func TestPush_BadInputGetsItsCode(t *testing.T) {
	c := coach(1)
	fam, traj := uid(1), uid(2)
	h := func(i uint16) string { return stamp(1000, i, c.DeviceID) }
	long := strings.Repeat("x", 20001)
	person := uid(10)
	tests := []struct {
		name    string
		changes []protocol.Change
		want    map[int]string
	}{
		{"unknown collection", []protocol.Change{ch("pets", uid(9), "name", "Rex", h(0))}, map[int]string{0: "invalid"}},
		{"unknown field", []protocol.Change{ch("families", fam, "shoe_size", "42", h(0))}, map[int]string{0: "invalid"}},
		{"wrong type", []protocol.Change{ch("families", fam, "label", true, h(0))}, map[int]string{0: "invalid"}},
		{"over size", []protocol.Change{ch("contacts", uid(11), "trajectory_id", traj, h(0)), ch("contacts", uid(11), "note", long, h(1))},
			map[int]string{1: "invalid"}},
		{"id not a lowercase uuid", []protocol.Change{ch("families", strings.ToUpper(fam), "label", "x", h(0))}, map[int]string{0: "invalid"}},
		{"unparsable stamp", []protocol.Change{ch("families", fam, "label", "x", "yesterday")}, map[int]string{0: "invalid"}},
		{"stamp of another node", []protocol.Change{ch("families", fam, "label", "x", stamp(1000, 0, "dev-other"))}, map[int]string{0: "invalid"}},
		{"stamp too far ahead", []protocol.Change{ch("families", fam, "label", "x", stamp(6*60*1000, 0, c.DeviceID))}, map[int]string{0: "clock_skew"}},
		{"server-only field", []protocol.Change{ch("trajectories", traj, "status", "closed", h(0))}, map[int]string{0: "forbidden"}},
		{"coach creates a trajectory", []protocol.Change{
			ch("trajectories", uid(12), "family_id", fam, h(0)), ch("trajectories", uid(12), "region", testRegion, h(1))},
			map[int]string{0: "forbidden", 1: "forbidden"}},
		{"fixed field changed", []protocol.Change{ch("trajectories", traj, "family_id", uid(99), h(0))}, map[int]string{0: "invalid"}},
		{"new row without required field", []protocol.Change{ch("persons", person, "given_name", "An", h(0))}, map[int]string{0: "invalid"}},
		{"new row with missing parent", []protocol.Change{ch("persons", person, "family_id", uid(98), h(0)), ch("persons", person, "given_name", "An", h(1))},
			map[int]string{0: "invalid", 1: "invalid"}},
		{"parent later in the batch", []protocol.Change{
			ch("persons", person, "family_id", uid(97), h(0)),
			ch("families", uid(97), "region", testRegion, h(1))},
			map[int]string{0: "invalid"}},
		{"region of another region", []protocol.Change{ch("consults", uid(13), "region", "maasland", h(0)), ch("consults", uid(13), "referrer", "CLB", h(1))},
			map[int]string{0: "out_of_scope", 1: "out_of_scope"}},
		{"null for a required field", []protocol.Change{ch("families", fam, "region", nil, h(0))}, map[int]string{0: "invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.family(fam, traj, c.UserID)
			before := e.state(e.r)
			logged := e.count(`SELECT count(*) FROM change_log`)
			resp := e.push(c, "b1", tt.changes...)
			got := problemCodes(resp.Rejected)
			for i, code := range tt.want {
				if got[i] != code {
					t.Errorf("change %d: got %q, want %q (%+v)", i, got[i], code, resp.Rejected)
				}
			}
			if len(tt.want) == len(tt.changes) {
				if n := e.count(`SELECT count(*) FROM change_log`); n != logged {
					t.Errorf("log grew from %d to %d", logged, n)
				}
				if after := e.state(e.r); len(after) != len(before) {
					t.Errorf("state changed: %d → %d fields", len(before), len(after))
				}
			}
		})
	}
}

func TestPush_FixedFieldChangeIsInvalid(t *testing.T) {
	e := newEnv(t)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, uid(1001))
	e.serverWrite(fw("families", uid(3), "region", testRegion))
	resp := e.push(coordinator, "b1", ch("trajectories", traj, "family_id", uid(3), stamp(1000, 0, coordinator.DeviceID)))
	if got := problemCodes(resp.Rejected)[0]; got != samenplan.EINVALID {
		t.Fatalf("got %q, want invalid", got)
	}
	// The same value again is harmless.
	resp = e.push(coordinator, "b2", ch("trajectories", traj, "family_id", fam, stamp(1000, 1, coordinator.DeviceID)))
	if len(resp.Rejected) != 0 {
		t.Fatalf("rejected %+v", resp.Rejected)
	}
}

func TestPush_WholeRequestErrors(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	_, err := e.r.Push(e.ctx, c, protocol.PushRequest{DeviceID: c.DeviceID, BatchID: "b", SchemaVersion: schema.Version + 1})
	if codeOf(err) != samenplan.EUPGRADEREQUIRED {
		t.Fatalf("schema version: got %v", err)
	}
	for _, role := range []string{RoleReviewer, RoleAdmin} {
		a := Actor{UserID: uid(5), DeviceID: "d", Role: role}
		_, err := e.r.Push(e.ctx, a, protocol.PushRequest{DeviceID: "d", BatchID: "b", SchemaVersion: schema.Version})
		if codeOf(err) != samenplan.EFORBIDDEN {
			t.Fatalf("%s: got %v, want forbidden", role, err)
		}
	}
	_, err = e.r.Push(e.ctx, c, protocol.PushRequest{DeviceID: "someone-else", BatchID: "b", SchemaVersion: schema.Version})
	if codeOf(err) != samenplan.EFORBIDDEN {
		t.Fatalf("device mismatch: got %v", err)
	}
	if n := e.count(`SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches remembered after refused requests", n)
	}
}

func TestPush_ClockSkewIsNeverStored(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	future := stamp(10*60*1000, 0, c.DeviceID)
	resp := e.push(c, "b1", ch("families", fam, "label", "Toekomst", future))
	if got := problemCodes(resp.Rejected)[0]; got != samenplan.ECLOCKSKEW {
		t.Fatalf("got %q, want clock_skew", got)
	}
	if n := e.count(`SELECT count(*) FROM change_log WHERE hlc = ?`, future); n != 0 {
		t.Fatal("a skewed stamp was logged")
	}
	if n := e.count(`SELECT count(*) FROM quarantine`); n != 0 {
		t.Fatal("a skewed stamp was quarantined")
	}
	if last := e.r.opts.Clock.Last().String(); last >= future {
		t.Fatalf("the server clock observed the skewed stamp: %s", last)
	}
}

func TestPush_CoachOutsideHerFamiliesIsOutOfScope(t *testing.T) {
	e := newEnv(t)
	c1, c2 := coach(1), coach(2)
	e.family(uid(1), uid(2), c1.UserID)
	e.family(uid(3), uid(4), c2.UserID)
	resp := e.push(c1, "b1",
		ch("families", uid(3), "label", "Niet van mij", stamp(1000, 0, c1.DeviceID)),
		ch("persons", uid(5), "family_id", uid(3), stamp(1000, 1, c1.DeviceID)),
		ch("families", uid(1), "label", "Wel van mij", stamp(1000, 2, c1.DeviceID)),
		ch("consults", uid(6), "region", testRegion, stamp(1000, 3, c1.DeviceID)),
	)
	got := problemCodes(resp.Rejected)
	if got[0] != samenplan.EOUTOFSCOPE || got[1] != samenplan.EOUTOFSCOPE || len(got) != 2 || resp.Applied != 2 {
		t.Fatalf("got %+v applied %d", resp.Rejected, resp.Applied)
	}
	if len(resp.Quarantined) != 0 {
		t.Fatalf("quarantined %+v", resp.Quarantined)
	}
}

func TestPush_CoachCreatesFamilyAndHoldsItUntilItHasATrajectory(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, person, ref := uid(1), uid(2), uid(3)
	h := func(i uint16) string { return stamp(1000, i, c.DeviceID) }
	resp := e.push(c, "b1",
		ch("families", fam, "region", testRegion, h(0)),
		ch("families", fam, "label", "Nieuw gezin", h(1)),
		ch("persons", person, "family_id", fam, h(2)),
		ch("persons", person, "given_name", "Lotte", h(3)),
		ch("referrals", ref, "region", testRegion, h(4)),
		ch("referrals", ref, "family_id", fam, h(5)),
	)
	if resp.Applied != 6 {
		t.Fatalf("applied %d: %+v", resp.Applied, resp.Rejected)
	}
	acc, _ := e.r.FamilyAccess(e.ctx, fam)
	if len(acc) != 1 || acc[0].Kind != AccessCreator || acc[0].UserID != c.UserID {
		t.Fatalf("access %+v", acc)
	}
	if n := e.count(`SELECT count(*) FROM row_scopes WHERE collection = 'referrals' AND id = ?`, ref); n != 2 {
		t.Fatalf("the linked referral is in %d scopes, want 2", n)
	}
	// The intake decision starts a trajectory with another coach.
	e.serverWrite(
		fw("trajectories", uid(4), "family_id", fam), fw("trajectories", uid(4), "region", testRegion),
		fw("trajectories", uid(4), "lead_coach_id", uid(1002)), fw("trajectories", uid(4), "status", "active"))
	acc, _ = e.r.FamilyAccess(e.ctx, fam)
	if len(acc) != 1 || acc[0].Kind != AccessLead || acc[0].UserID != uid(1002) {
		t.Fatalf("access after start %+v", acc)
	}
}

func TestPush_ReferralFamilyIsSetOnceAndAddsTheFamilyScope(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj, ref := uid(1), uid(2), uid(3)
	e.family(fam, traj, c.UserID)
	e.serverWrite(fw("families", uid(9), "region", testRegion))
	h := func(i uint16) string { return stamp(1000, i, c.DeviceID) }
	e.push(c, "b1", ch("referrals", ref, "region", testRegion, h(0)), ch("referrals", ref, "question", "Hulp bij opvoeding", h(1)))
	resp := e.push(c, "b2", ch("referrals", ref, "family_id", fam, h(2)))
	if resp.Applied != 1 {
		t.Fatalf("link: %+v", resp)
	}
	resp = e.push(c, "b3", ch("referrals", ref, "family_id", uid(9), h(3)))
	if got := problemCodes(resp.Rejected)[0]; got != samenplan.EINVALID {
		t.Fatalf("relink: got %q, want invalid", got)
	}
	checkSums(t, e)
}

// TestServerWriteWith_CommitsTogetherOrNotAtAll: the extra statement runs in
// the write's transaction; its failure leaves neither the fields nor the log.
func TestServerWriteWith_CommitsTogetherOrNotAtAll(t *testing.T) {
	e := newEnv(t)
	if _, err := e.r.DB().Writer.ExecContext(e.ctx, `CREATE TABLE side (id TEXT PRIMARY KEY, seq INTEGER)`); err != nil {
		t.Fatal(err)
	}
	fam := uid(1)
	logBefore := e.count(`SELECT count(*) FROM change_log`)
	boom := errors.New("boom")
	_, err := e.r.ServerWriteWith(e.ctx, Actor{UserID: "intake"}, []FieldWrite{fw("families", fam, "region", "kempen")},
		func(ctx context.Context, tx *sql.Tx, seq int64) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO side VALUES ('a', ?)`, seq); err != nil {
				return err
			}
			return boom
		})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if n := e.count(`SELECT count(*) FROM side`); n != 0 {
		t.Fatalf("side rows after a failed write = %d", n)
	}
	if n := e.count(`SELECT count(*) FROM change_log`); n != logBefore {
		t.Fatalf("change_log grew from %d to %d on a failed write", logBefore, n)
	}
	if v := e.value("families", fam, "region"); v != "" {
		t.Fatalf("field written by a failed write: %s", v)
	}
	seq, err := e.r.ServerWriteWith(e.ctx, Actor{UserID: "intake"}, []FieldWrite{fw("families", fam, "region", "kempen")},
		func(ctx context.Context, tx *sql.Tx, seq int64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO side VALUES ('a', ?)`, seq)
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM side WHERE seq = ?`, seq); n != 1 {
		t.Fatalf("side row with seq %d: %d", seq, n)
	}
	if v := e.value("families", fam, "region"); v != `"kempen"` {
		t.Fatalf("region = %s", v)
	}
}
