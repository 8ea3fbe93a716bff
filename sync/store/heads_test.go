package store

import (
	"fmt"
	"testing"

	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// TestPull_ScopeHeadsStopEmptyPollsOnly: a coach's poll reads the log only
// when one of her scopes was written after her cursor. Writes in another
// coach's family leave her polls empty without a walk; a write in her family,
// a referral linked to it later and a field of a row added to her scope all
// reach her, as does a referral on the intake board (coaches hold the
// region's intake scope), and her replica equals the server after each poll.
func TestPull_ScopeHeadsStopEmptyPollsOnly(t *testing.T) {
	e := newEnv(t)
	c1, c2 := coach(1), coach(2)
	fam1, fam2 := uid(1), uid(3)
	e.family(fam1, uid(2), c1.UserID)
	e.family(fam2, uid(4), c2.UserID)
	rep := newReplica()
	e.pullAll(c1, rep, 100, "")

	poll := func(what string, wantWalk bool) {
		t.Helper()
		before := e.r.walks.Load()
		e.pullAll(c1, rep, 100, "")
		checkReplica(t, e, rep, schema.FamilyScope(fam1))
		checkReplica(t, e, rep, schema.IntakeScope(testRegion))
		if walked := e.r.walks.Load() > before; walked != wantWalk {
			t.Fatalf("%s: walked the log = %v, want %v", what, walked, wantWalk)
		}
	}

	for i := range 50 {
		e.serverWrite(fw("persons", uid(100+i), "family_id", fam2), fw("persons", uid(100+i), "given_name", fmt.Sprint("Kind ", i)))
	}
	poll("writes in another family", false)
	poll("nothing written", false)

	e.serverWrite(fw("families", fam1, "label", "Gezin Linde"))
	poll("a write in her family", true)

	ref := uid(500)
	e.serverWrite(fw("referrals", ref, "region", testRegion), fw("referrals", ref, "question", "Hulp bij opvoeding"))
	poll("a referral on the intake board (her scope too)", true)
	e.serverWrite(fw("referrals", ref, "family_id", fam1))
	poll("the referral linked to her family", true)

	e.serverWrite(fw("persons", uid(600), "family_id", fam1), fw("persons", uid(600), "given_name", "Mila"))
	poll("a new person in her family", true)
	poll("nothing written again", false)
}

// checkReplica compares the replica's fields of a scope's rows with the
// server's winners of those rows.
func checkReplica(t *testing.T, e *env, rep *replica, scope string) {
	t.Helper()
	want := map[crdt.Key]string{}
	rows, err := e.r.db.Reader.QueryContext(e.ctx, `SELECT f.collection, f.id, f.field, l.hlc FROM row_scopes r
		JOIN fields f ON f.collection = r.collection AND f.id = r.id JOIN change_log l ON l.seq = f.seq WHERE r.scope = ?`, scope)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k crdt.Key
		var h string
		if err := rows.Scan(&k.Collection, &k.ID, &k.Field, &h); err != nil {
			t.Fatal(err)
		}
		want[k] = h
	}
	// A device keeps rows, not copies per scope: a referral linked to her
	// family after it reached her through the intake scope brings only its
	// new field through the family scope.
	got := map[crdt.Key]protocol.Change{}
	for _, m := range rep.scopes {
		for k, c := range m {
			if _, ok := want[k]; ok && got[k].HLC < c.HLC {
				got[k] = c
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("replica holds %d fields of %s, the server %d", len(got), scope, len(want))
	}
	for k, h := range want {
		if got[k].HLC != h {
			t.Fatalf("%v: replica %q, server %q", k, got[k].HLC, h)
		}
	}
}

// TestMigrate_ScopeHeadsOfAnOlderDatabase: a database written before scope
// heads (migrations up to 0003) gets every scope's head at the top of its
// log, so a device's cursor from before the upgrade still receives what is
// written after it, and nothing it already has is skipped or repeated.
func TestMigrate_ScopeHeadsOfAnOlderDatabase(t *testing.T) {
	e := newEnv(t)
	c1 := coach(1)
	fam1 := uid(1)
	e.family(fam1, uid(2), c1.UserID)
	e.serverWrite(fw("persons", uid(7), "family_id", fam1), fw("persons", uid(7), "given_name", "Ilias"))
	rep := newReplica()
	e.pullAll(c1, rep, 100, "")

	// Back to the schema of 0003: no head column, the migration not applied.
	for _, q := range []string{
		`ALTER TABLE scope_sums DROP COLUMN head`,
		`DELETE FROM migrations WHERE component = 'cases' AND name = '0004_scope_heads.sql'`,
	} {
		if _, err := e.r.db.Writer.ExecContext(e.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	e.stores.Close()
	s, err := Open(e.ctx, e.dir, []string{testRegion, "maasland"}, Options{Now: e.clock.Now, Clock: crdt.NewClock("server", e.clock.Now)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.stores = s
	e.r, _ = s.Region(testRegion)

	var top, heads, low int
	if err := e.r.db.Reader.QueryRowContext(e.ctx, `SELECT max(seq) FROM change_log`).Scan(&top); err != nil {
		t.Fatal(err)
	}
	if err := e.r.db.Reader.QueryRowContext(e.ctx, `SELECT count(*), count(*) FILTER (WHERE head < ?) FROM scope_sums`, top).Scan(&heads, &low); err != nil {
		t.Fatal(err)
	}
	if heads == 0 || low != 0 {
		t.Fatalf("after the migration: %d scopes, %d with a head below the top %d", heads, low, top)
	}
	before := rep.got
	e.pullAll(c1, rep, 100, "")
	if rep.got != before {
		t.Fatalf("a poll after the upgrade delivered %d changes she had", rep.got-before)
	}
	e.serverWrite(fw("persons", uid(7), "given_name", "Ilyas"))
	e.pullAll(c1, rep, 100, "")
	if rep.got != before+1 {
		t.Fatalf("the write after the upgrade: %d changes delivered, want 1", rep.got-before)
	}
	checkReplica(t, e, rep, schema.FamilyScope(fam1))
}

// TestOpen_TheServerClockIsAheadOfStampsStoredBeforeARestart: a device's
// stamp 4 minutes ahead of the server's wall clock is accepted; after a
// restart with a fresh clock at the same wall time, the server's first own
// write and its clock are still above it (the HLC's promise survives).
func TestOpen_TheServerClockIsAheadOfStampsStoredBeforeARestart(t *testing.T) {
	e := newEnv(t)
	c1 := coach(1)
	fam1, traj := uid(1), uid(2)
	e.family(fam1, traj, c1.UserID)
	ahead := stamp(e.clock.Now().Sub(epoch).Milliseconds()+4*60*1000, 0, c1.DeviceID)
	if resp := e.push(c1, "b-ahead", ch("families", fam1, "label", "Gezin Vooruit", ahead)); resp.Applied != 1 {
		t.Fatalf("the stamp 4 min ahead was not applied: %+v", resp)
	}
	e.stores.Close()

	fresh := crdt.NewClock("server", e.clock.Now)
	s, err := Open(e.ctx, e.dir, []string{testRegion, "maasland"}, Options{Now: e.clock.Now, Clock: fresh})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.stores = s
	e.r, _ = s.Region(testRegion)
	if last := fresh.Last().String(); last <= ahead {
		t.Fatalf("after the restart the server clock is at %s, below the stored %s", last, ahead)
	}
	e.serverWrite(fw("families", fam1, "label", "Gezin Later"))
	if got := e.value("families", fam1, "label"); got != `"Gezin Later"` {
		t.Fatalf("the server's write after the restart lost to the older device write: label %s", got)
	}
}
