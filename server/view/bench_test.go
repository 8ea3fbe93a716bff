package view

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// benchRegion is a kempen store with n families: a tenth waiting at intake
// with an open referral, the rest with a trajectory (three quarters active)
// led by one of n/12 coaches, 3 persons, 2 goals, 2 network members and 4
// contacts each; about 100 fields per family.
type benchRegion struct {
	stores  *store.Stores
	rules   *rules.Registry
	fams    []string
	coaches []string
	fields  int
}

func newBenchRegion(b *testing.B, n int) *benchRegion {
	b.Helper()
	ctx := context.Background()
	stores, err := store.Open(ctx, b.TempDir(), []string{"kempen"}, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stores.Close() })
	reg := rules.NewRegistry(rulesDir, rules.RegistryOptions{})
	if err := reg.Load(ctx); err != nil {
		b.Fatal(err)
	}
	br := &benchRegion{stores: stores, rules: reg}
	for i := 0; i < max(n/12, 1); i++ {
		br.coaches = append(br.coaches, newID())
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	region, _ := stores.Region("kempen")
	var ws []store.FieldWrite
	set := func(coll, id string, fields map[string]any) {
		for k, v := range fields {
			raw, _ := json.Marshal(v)
			ws = append(ws, store.FieldWrite{Collection: coll, ID: id, Field: k, Value: raw})
		}
	}
	munis := []string{"Turnhout", "Geel", "Beerse", "Kasterlee", "Arendonk"}
	surnames := []string{"Klaproos", "Lindeveld", "Vlierhoven", "Heidebloem", "Wilgenhof", "Eikelaar", "Berkenrode", "Mosbeek"}
	for f := 0; f < n; f++ {
		fam := newID()
		br.fams = append(br.fams, fam)
		surname := surnames[rnd.IntN(len(surnames))]
		set("families", fam, map[string]any{"region": "kempen", "municipality": munis[rnd.IntN(len(munis))], "label": fmt.Sprintf("Gezin %s %d", surname, f), "language": "nl"})
		for p := 0; p < 3; p++ {
			role, born := "parent", day(365*(28+rnd.IntN(15)))
			if p > 0 {
				role, born = "child", day(365*rnd.IntN(18)+rnd.IntN(300))
			}
			set("persons", newID(), map[string]any{"family_id": fam, "given_name": "Noor", "family_name": surname, "role": role, "birth_date": born, "willing": true})
		}
		ref := newID()
		status := "started"
		if f%10 == 0 {
			status = "open"
		}
		set("referrals", ref, map[string]any{"region": "kempen", "family_id": fam, "received_on": day(rnd.IntN(60)), "channel": "permanentie",
			"referrer_name": "Sara Zegge", "referrer_org": "CLB", "question": "Ondersteuning gevraagd.", "articulated": rnd.IntN(3) > 0,
			"mandated": rnd.IntN(3) == 0, "crisis": rnd.IntN(20) == 0, "consent": true, "municipality": "Turnhout", "status": status})
		if status == "open" {
			continue
		}
		traj, coach := newID(), br.coaches[f%len(br.coaches)]
		tstatus := []string{"active", "active", "active", "paused", "closed"}[rnd.IntN(5)]
		started := 3 + rnd.IntN(300)
		set("trajectories", traj, map[string]any{"family_id": fam, "referral_id": ref, "region": "kempen", "lead_coach_id": coach, "co_coach_ids": []string{},
			"mandated": false, "status": tstatus, "started_on": day(started), "rtj_requested": false})
		for g := 0; g < 2; g++ {
			set("plan_goals", newID(), map[string]any{"trajectory_id": traj, "life_domain": "opvoeding", "goal": "Rustige ochtenden.", "actions": "Weekschema.", "owner": "gezin", "status": "open", "scale": 5})
		}
		for k := 0; k < 2; k++ {
			set("network_members", newID(), map[string]any{"family_id": fam, "name": "Oma", "relation": "familie", "kind": "informal", "consent_to_contact": true})
		}
		for c := 0; c < 4; c++ {
			set("contacts", newID(), map[string]any{"trajectory_id": traj, "coach_id": coach, "occurred_at": at(rnd.IntN(started)), "mode": "home_visit",
				"minutes": 60, "participants": []string{"moeder"}, "note": "Huisbezoek: weekschema overlopen.", "follow_up": "Volgende week."})
		}
		if len(ws) > 20000 {
			br.flush(b, region, &ws)
		}
	}
	br.flush(b, region, &ws)
	return br
}

func (br *benchRegion) flush(b *testing.B, r *store.Region, ws *[]store.FieldWrite) {
	if len(*ws) == 0 {
		return
	}
	if _, err := r.ServerWrite(context.Background(), store.Actor{Role: store.RoleServer}, *ws); err != nil {
		b.Fatal(err)
	}
	br.fields += len(*ws)
	*ws = (*ws)[:0]
}

func (br *benchRegion) model(b *testing.B) *Model {
	m := New(br.stores, br.rules, func() time.Time { return today })
	if err := m.Build(context.Background()); err != nil {
		b.Fatal(err)
	}
	return m
}

// measure runs op b.N times and reports its p50 and p99 in µs.
func measure(b *testing.B, op func(i int)) {
	b.Helper()
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		op(i)
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
}

var benchFamilies = flag.Int("view.families", 10000, "families in BenchmarkCases10k (for profiling a smaller one)")

func BenchmarkCases10k(b *testing.B) {
	n := *benchFamilies
	br := newBenchRegion(b, n)
	b.Logf("%d families, %d fields, %d coaches", n, br.fields, len(br.coaches))

	b.Run("Build", func(b *testing.B) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var keep *Model
		for i := 0; i < b.N; i++ {
			keep = br.model(b)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
		b.ReportMetric(float64(br.fields)/b.Elapsed().Seconds()*float64(b.N), "fields/s")
		runtime.KeepAlive(keep)
	})
	m := br.model(b)
	if _, total := m.Cases(Filter{Region: "kempen"}); total != n {
		b.Fatalf("model has %d cases, want %d", total, n)
	}
	b.Logf("%d signals, %d open referrals", len(m.Signals("kempen")), len(m.OpenReferrals("kempen")))
	b.Run("Case", func(b *testing.B) {
		measure(b, func(i int) {
			if _, ok := m.Case(br.fams[i%n]); !ok {
				b.Fatal("no case")
			}
		})
	})
	b.Run("CasesCoach", func(b *testing.B) {
		measure(b, func(i int) {
			if _, total := m.Cases(Filter{Region: "kempen", Coach: br.coaches[i%len(br.coaches)]}); total == 0 {
				b.Fatal("coach without cases")
			}
		})
	})
	b.Run("CasesRegionPage", func(b *testing.B) {
		measure(b, func(i int) { m.Cases(Filter{Region: "kempen", Limit: 50, Offset: (i % 100) * 50}) })
	})
	b.Run("CasesStatus", func(b *testing.B) {
		measure(b, func(i int) { m.Cases(Filter{Region: "kempen", Status: "active", Limit: 50}) })
	})
	b.Run("CasesQuery", func(b *testing.B) {
		measure(b, func(i int) { m.Cases(Filter{Region: "kempen", Q: "wilgenhof 12", Limit: 50}) })
	})
	b.Run("OpenReferrals", func(b *testing.B) {
		measure(b, func(i int) {
			if len(m.OpenReferrals("kempen")) != n/10 {
				b.Fatal("board is not the open referrals")
			}
		})
	})
	b.Run("CoachLoad", func(b *testing.B) {
		measure(b, func(i int) { m.CoachLoad("kempen") })
	})
	b.Run("Signals", func(b *testing.B) {
		measure(b, func(i int) { m.Signals("kempen") })
	})
	b.Run("ApplyContact", func(b *testing.B) {
		// One contact on a family with a trajectory, as a device's push
		// would commit it (the store's own time not included).
		var trajs []string
		for _, id := range br.fams {
			if c, _ := m.Case(id); c.Trajectory != nil {
				trajs = append(trajs, c.Trajectory.ID)
			}
		}
		wall := time.Now().UnixMilli()
		measure(b, func(i int) {
			id, hlc := newID(), fmt.Sprintf("%013d-0000-bench", wall+int64(i))
			var cs []protocol.Change
			for k, v := range map[string]string{"trajectory_id": `"` + trajs[i%len(trajs)] + `"`, "occurred_at": `"` + at(0) + `"`, "mode": `"phone"`, "minutes": "20", "note": `"Telefoon."`} {
				cs = append(cs, protocol.Change{Collection: "contacts", ID: id, Field: k, Value: json.RawMessage(v), HLC: hlc})
			}
			m.Apply(store.Commit{Region: "kempen", Changes: cs})
		})
	})
	b.Run("RulesChanged", func(b *testing.B) {
		measure(b, func(i int) { m.RulesChanged("kempen") })
	})
}
