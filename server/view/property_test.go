package view

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/store"
)

// dump renders everything the model answers for the test regions, so two
// models can be compared.
func dump(t *testing.T, m *Model) string {
	t.Helper()
	out := map[string]any{}
	for _, region := range []string{"kempen", "maasland"} {
		sums, _ := m.Cases(Filter{Region: region})
		var cases []*Case
		for _, s := range sums {
			c, _ := m.Case(s.FamilyID)
			cases = append(cases, c)
		}
		info, _ := m.Info(region)
		pageOf, total := m.Cases(Filter{Region: region, Limit: 3, Offset: 2})
		out[region] = map[string]any{
			"summaries": sums, "cases": cases, "referrals": m.Referrals(region, ""), "board": m.OpenReferrals(region),
			"consults": m.Consults(region, time.Time{}, time.Time{}), "signals": m.Signals(region),
			"load": m.CoachLoad(region), "y2025": m.YearCounts(region, 2025), "y2026": m.YearCounts(region, 2026),
			"rules": info.RulesVersion, "today": info.Today, "case_count": info.Cases,
			"page": pageOf, "total": total, "counted": len(sums),
		}
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// randomWriter makes valid random writes to one region of a fixture.
type randomWriter struct {
	f      *fixture
	rnd    *rand.Rand
	region string
	fams   []string
	trajs  []string // trajectory ids
	rows   map[string][]string
	coach  []string
}

func (w *randomWriter) pick(xs []string) string { return xs[w.rnd.IntN(len(xs))] }

func (w *randomWriter) any(coll string) (string, bool) {
	if len(w.rows[coll]) == 0 {
		return "", false
	}
	return w.pick(w.rows[coll]), true
}

func (w *randomWriter) add(coll, id string) { w.rows[coll] = append(w.rows[coll], id) }

// step makes one random batch of 1–4 row writes; writes the store refuses
// (a parent deleted meanwhile) change nothing and are skipped.
func (w *randomWriter) step() {
	if id, ok := w.any("referrals"); ok && len(w.fams) > 0 && w.rnd.IntN(10) == 0 {
		// Link a referral to a family: allowed once, from no family; a
		// refusal changes nothing.
		r, _ := w.f.stores.Region(w.region)
		raw, _ := json.Marshal(w.pick(w.fams))
		if _, err := r.ServerWrite(w.f.ctx, store.Actor{Role: store.RoleServer},
			[]store.FieldWrite{{Collection: "referrals", ID: id, Field: "family_id", Value: raw}}); err != nil {
			w.f.t.Logf("skipped link: %v", err)
		}
	}
	var batch []row
	for n := 1 + w.rnd.IntN(4); n > 0; n-- {
		if r, ok := w.one(); ok {
			batch = append(batch, r)
		}
	}
	if len(batch) == 0 {
		return
	}
	r, _ := w.f.stores.Region(w.region)
	var ws []store.FieldWrite
	for _, rw := range batch {
		for k, v := range rw.fields {
			raw, _ := json.Marshal(v)
			ws = append(ws, store.FieldWrite{Collection: rw.coll, ID: rw.id, Field: k, Value: raw})
		}
	}
	if _, err := r.ServerWrite(w.f.ctx, store.Actor{Role: store.RoleServer}, ws); err != nil {
		w.f.t.Logf("skipped batch: %v", err)
	}
}

func (w *randomWriter) one() (row, bool) {
	rnd := w.rnd
	dayAgo := func(max int) string { return day(rnd.IntN(max) - 3) }
	switch k := rnd.IntN(20); {
	case k < 2 || len(w.fams) == 0:
		fam := newID()
		w.fams = append(w.fams, fam)
		return row{"families", fam, map[string]any{"region": w.region, "municipality": w.pick([]string{"Turnhout", "Geel", "Beerse"}),
			"label": "Gezin " + w.pick([]string{"Klaproos", "Zegge", "Mosbeek", "Eikelaar"}), "language": "nl"}}, true
	case k < 4:
		id := newID()
		w.add("persons", id)
		return row{"persons", id, map[string]any{"family_id": w.pick(w.fams), "given_name": w.pick([]string{"Noor", "Milan", "Fien"}),
			"role": w.pick([]string{"parent", "child", "youngster", "unborn", "other"}), "birth_date": dayAgo(365 * 40), "willing": rnd.IntN(2) == 0}}, true
	case k < 5:
		id, ok := w.any("persons")
		if !ok {
			return row{}, false
		}
		return row{"persons", id, map[string]any{"willing": rnd.IntN(2) == 0, "birth_date": dayAgo(365 * 20)}}, true
	case k < 7:
		id := newID()
		w.add("referrals", id)
		fields := map[string]any{"region": w.region, "received_on": dayAgo(40), "municipality": w.pick([]string{"Turnhout", "Brussel"}),
			"crisis": rnd.IntN(5) == 0, "mandated": rnd.IntN(3) == 0, "articulated": rnd.IntN(2) == 0, "consent": true}
		if rnd.IntN(4) > 0 {
			fields["family_id"] = w.pick(w.fams)
		}
		return row{"referrals", id, fields}, true
	case k < 8:
		id, ok := w.any("referrals")
		if !ok {
			return row{}, false
		}
		return row{"referrals", id, map[string]any{"status": w.pick([]string{"open", "open", "started", "declined"}), "rtj_within_month": rnd.IntN(4) == 0}}, true
	case k < 9:
		id := newID()
		w.trajs = append(w.trajs, id)
		return row{"trajectories", id, map[string]any{"family_id": w.pick(w.fams), "region": w.region, "lead_coach_id": w.pick(w.coach),
			"co_coach_ids": []string{}, "status": w.pick([]string{"active", "active", "paused", "closed"}), "started_on": dayAgo(400), "mandated": rnd.IntN(3) == 0}}, true
	case k < 11:
		if len(w.trajs) == 0 {
			return row{}, false
		}
		fields := map[string]any{}
		switch rnd.IntN(4) {
		case 0:
			fields["lead_coach_id"] = w.pick(w.coach)
		case 1:
			fields["co_coach_ids"] = []string{w.pick(w.coach)}
		case 2:
			fields["status"] = w.pick([]string{"active", "paused", "closed"})
		default:
			fields["started_on"], fields["mandated"] = dayAgo(400), rnd.IntN(2) == 0
		}
		return row{"trajectories", w.pick(w.trajs), fields}, true
	case k < 14:
		if len(w.trajs) == 0 {
			return row{}, false
		}
		id := newID()
		w.add("contacts", id)
		return contactRow(id, w.pick(w.trajs), w.pick(w.coach), rnd.IntN(30)), true
	case k < 15:
		id, ok := w.any("contacts")
		if !ok {
			return row{}, false
		}
		return row{"contacts", id, map[string]any{"occurred_at": at(rnd.IntN(30)), "note": fmt.Sprint("Nota ", rnd.IntN(100))}}, true
	case k < 16:
		if len(w.trajs) == 0 {
			return row{}, false
		}
		id := newID()
		w.add("plan_goals", id)
		return goalRow(id, w.pick(w.trajs), w.pick([]string{"wonen", "opvoeding", "zzz"}), w.pick([]string{"open", "achieved", "dropped"})), true
	case k < 17:
		id := newID()
		w.add("network_members", id)
		return row{"network_members", id, map[string]any{"family_id": w.pick(w.fams), "name": "Oma", "kind": "informal"}}, true
	case k < 18:
		id := newID()
		w.add("consults", id)
		return row{"consults", id, map[string]any{"region": w.region, "at": at(rnd.IntN(20)), "minutes": 15}}, true
	default:
		coll := w.pick([]string{"persons", "contacts", "plan_goals", "referrals", "network_members", "consults", "families", "trajectories"})
		var id string
		switch coll {
		case "families":
			id = w.pick(w.fams)
		case "trajectories":
			if len(w.trajs) == 0 {
				return row{}, false
			}
			id = w.pick(w.trajs)
		default:
			var ok bool
			if id, ok = w.any(coll); !ok {
				return row{}, false
			}
		}
		return row{coll, id, map[string]any{"_deleted": rnd.IntN(4) > 0}}, true
	}
}

func TestModel_AppliedCommitsEqualARebuildFromScratch(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	steps := 120
	if testing.Short() {
		seeds, steps = seeds[:1], 60
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			f := newFixture(t)
			rnd := rand.New(rand.NewPCG(seed, 7))
			w := &randomWriter{f: f, rnd: rnd, region: "kempen", rows: map[string][]string{}, coach: []string{newID(), newID(), newID()}}
			for i := 1; i <= steps; i++ {
				w.step()
				switch rnd.IntN(15) {
				case 0: // a commit seen again, out of order: harmless
					f.mu.Lock()
					c := f.commits[rnd.IntN(len(f.commits))]
					f.mu.Unlock()
					f.model.Apply(c)
				case 1: // the day moves on
					f.clock.Add(time.Duration(1+rnd.IntN(5)) * 24 * time.Hour)
					if err := f.model.Refresh(f.ctx); err != nil {
						t.Fatal(err)
					}
				}
				info, _ := f.model.Info("kempen")
				if _, n := f.model.Cases(Filter{Region: "kempen"}); n != info.Cases {
					t.Fatalf("step %d: region counts %d cases, the model has %d", i, info.Cases, n)
				}
				if i%30 == 0 || i == steps {
					got, want := dump(t, f.model), dump(t, f.newModel())
					if got != want {
						t.Fatalf("step %d: applied model differs from a rebuild:\n%s", i, firstDiff(got, want))
					}
				}
			}
			if n, _ := f.model.Cases(Filter{Region: "kempen"}); len(n) == 0 {
				t.Fatal("no cases at all: the generator is broken")
			}
			t.Logf("%d commits, %d families, %d open referrals, %d signals", len(f.commits), len(w.fams),
				len(f.model.OpenReferrals("kempen")), len(f.model.Signals("kempen")))
		})
	}
}

// firstDiff shows the lines around the first difference of two dumps.
func firstDiff(got, want string) string {
	g, w := splitLines(got), splitLines(want)
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			lo := max(i-8, 0)
			return fmt.Sprintf("got:\n%s\nwant:\n%s", join(g[lo:min(i+4, len(g))]), join(w[lo:min(i+4, len(w))]))
		}
	}
	return fmt.Sprintf("lengths differ: %d and %d lines", len(g), len(w))
}

func splitLines(s string) []string { return slices.Collect(lines(s)) }

func lines(s string) func(func(string) bool) {
	return func(yield func(string) bool) {
		start := 0
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' {
				if !yield(s[start:i]) {
					return
				}
				start = i + 1
			}
		}
		yield(s[start:])
	}
}

func join(ls []string) string {
	out := ""
	for _, l := range ls {
		out += l + "\n"
	}
	return out
}

func TestModel_BuildDuringWritesMissesNothing(t *testing.T) {
	f := newFixture(t)
	rnd := rand.New(rand.NewPCG(9, 9))
	w := &randomWriter{f: f, rnd: rnd, region: "kempen", rows: map[string][]string{}, coach: []string{newID(), newID()}}
	for i := 0; i < 40; i++ {
		w.step()
	}
	// A new model takes the commits from now on, before it has loaded
	// anything, while the writes go on: as at a server's start.
	m := New(f.stores, f.rules, f.clock.Now)
	f.hook.Store(m)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 60; i++ {
			w.step()
		}
	}()
	if err := m.Build(f.ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if got, want := dump(t, m), dump(t, f.newModel()); got != want {
		t.Fatalf("model built during writes differs from a rebuild:\n%s", firstDiff(got, want))
	}
}
