package store

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/samenplan/samenplan/sync/schema"
)

// TestWalk_ByScopeEqualsByLog: the walk over the changed scopes' rows
// returns exactly what the walk over the log returns, for random cursors,
// scope sets, fill keys and limits, over families with persons, contacts
// and referrals linked later; and whole pulls agree whichever way is chosen.
func TestWalk_ByScopeEqualsByLog(t *testing.T) {
	e := newEnv(t)
	rnd := rand.New(rand.NewPCG(7, 11))
	var fams, trajs []string
	for i := range 6 {
		fam, traj := uid(10+2*i), uid(11+2*i)
		e.family(fam, traj, coach(i%3).UserID)
		fams, trajs = append(fams, fam), append(trajs, traj)
	}
	for i := range 300 {
		f := rnd.IntN(len(fams))
		switch rnd.IntN(4) {
		case 0:
			e.serverWrite(fw("persons", uid(1000+i), "family_id", fams[f]), fw("persons", uid(1000+i), "given_name", fmt.Sprint("Kind ", i)))
		case 1:
			e.serverWrite(fw("contacts", uid(1000+i), "trajectory_id", trajs[f]), fw("contacts", uid(1000+i), "note", fmt.Sprint("Gesprek ", i)))
		case 2:
			e.serverWrite(fw("referrals", uid(1000+i), "region", testRegion), fw("referrals", uid(1000+i), "question", "Vraag"))
			if rnd.IntN(2) == 0 {
				e.serverWrite(fw("referrals", uid(1000+i), "family_id", fams[f]))
			}
		default:
			e.serverWrite(fw("families", fams[f], "label", fmt.Sprint("Gezin ", i)))
		}
	}
	all := []string{schema.IntakeScope(testRegion)}
	for _, f := range fams {
		all = append(all, schema.FamilyScope(f))
	}
	tx, err := e.r.db.Reader.BeginTx(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	top, err := maxSeq(e.ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	walkWith := func(byScope bool, scopes []string, after int64, upTo []string, n int) []pulled {
		t.Helper()
		saved := walkByScope
		walkByScope = func(int64, int64) bool { return byScope }
		defer func() { walkByScope = saved }()
		out, err := e.r.walk(e.ctx, tx, scopes, after, top, upTo, n)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	key := func(p pulled) string {
		return fmt.Sprintf("%d %s %s %s %s %s", p.seq, p.Scope, p.Collection, p.ID, p.Field, p.HLC)
	}
	// Rows of one seq may come in another order, and a limit may cut a
	// group of one seq at another place: compare the whole seqs only.
	whole := func(ps []pulled, n int) []string {
		var out []string
		cut := int64(-1)
		if len(ps) == n && n > 0 {
			cut = ps[len(ps)-1].seq
		}
		for _, p := range ps {
			if p.seq != cut {
				out = append(out, key(p)+" "+string(p.Value))
			}
		}
		slices.SortFunc(out, cmp.Compare)
		return out
	}
	for i := range 400 {
		scopes := slices.Clone(all)
		rnd.Shuffle(len(scopes), func(a, b int) { scopes[a], scopes[b] = scopes[b], scopes[a] })
		scopes = scopes[:1+rnd.IntN(len(scopes))]
		after := rnd.Int64N(top + 1)
		n := []int{1, 5, 50, 100000}[rnd.IntN(4)]
		var upTo []string
		if rnd.IntN(3) == 0 {
			upTo = []string{scopes[rnd.IntN(len(scopes))], "persons", uid(1000 + rnd.IntN(300)), "given_name"}
		}
		byLog, byScope := walkWith(false, scopes, after, upTo, n), walkWith(true, scopes, after, upTo, n)
		if a, b := whole(byLog, n), whole(byScope, n); !slices.Equal(a, b) {
			t.Fatalf("case %d (after %d of %d, n %d, upTo %v): by log %d rows, by scope %d rows\nlog:   %v\nscope: %v",
				i, after, top, n, upTo, len(byLog), len(byScope), a, b)
		}
		for j := 1; j < len(byScope); j++ {
			if byScope[j].seq < byScope[j-1].seq {
				t.Fatalf("case %d: the scope walk is not in seq order", i)
			}
		}
	}
}

// TestWalk_ABusyLogIsWalkedByScope: after a large push in another family, a
// poll that brings one change of her own family reads her scopes' rows, not
// the log written since her cursor; with little logged it reads the log.
func TestWalk_ABusyLogIsWalkedByScope(t *testing.T) {
	e := newEnv(t)
	c1 := coach(1)
	fam1, fam2 := uid(1), uid(3)
	e.family(fam1, uid(2), c1.UserID)
	e.family(fam2, uid(4), coach(2).UserID)
	rep := newReplica()
	e.pullAll(c1, rep, 100, "")

	var big []FieldWrite
	for i := range 500 {
		big = append(big, fw("persons", uid(100+i), "family_id", fam2), fw("persons", uid(100+i), "given_name", "Kind"))
	}
	e.serverWrite(big...)
	e.serverWrite(fw("families", fam1, "label", "Gezin Linde"))
	before := e.r.scopeWalks.Load()
	e.pullAll(c1, rep, 100, "")
	if e.r.scopeWalks.Load() == before {
		t.Fatal("1,001 fields logged in another family since her cursor, yet her poll walked the log")
	}
	checkReplica(t, e, rep, schema.FamilyScope(fam1))

	e.serverWrite(fw("families", fam1, "label", "Gezin Eik"))
	before = e.r.scopeWalks.Load()
	e.pullAll(c1, rep, 100, "")
	if e.r.scopeWalks.Load() != before {
		t.Fatal("one field logged since her cursor, yet her poll walked her scopes' rows")
	}
	checkReplica(t, e, rep, schema.FamilyScope(fam1))
}
