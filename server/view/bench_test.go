package view

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/view/viewtest"
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
	region, _ := stores.Region("kempen")
	seeded, err := viewtest.Seed(ctx, region, viewtest.Options{Families: n, Coaches: br.coaches, Today: today})
	if err != nil {
		b.Fatal(err)
	}
	br.fams, br.fields = seeded.Families, seeded.Fields
	return br
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
