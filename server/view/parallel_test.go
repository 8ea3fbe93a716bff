package view

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/view/viewtest"
	"github.com/samenplan/samenplan/sync/store"
)

// TestBuild_ParallelCasesEqualSerial: a build large enough to build its
// cases on every core (and, under -race, free of data races) gives the very
// cases a serial buildCase gives.
func TestBuild_ParallelCasesEqualSerial(t *testing.T) {
	ctx := context.Background()
	stores, err := store.Open(ctx, t.TempDir(), []string{"kempen"}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()
	region, _ := stores.Region("kempen")
	n := 2 * parallelBuildMin
	seeded, err := viewtest.Seed(ctx, region, viewtest.Options{Families: n, Coaches: []string{newID(), newID(), newID()}, Today: today})
	if err != nil {
		t.Fatal(err)
	}
	reg := rules.NewRegistry(rulesDir, rules.RegistryOptions{})
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	m := New(stores, reg, func() time.Time { return today })
	if err := m.Build(ctx); err != nil {
		t.Fatal(err)
	}
	st := m.regions["kempen"]
	e := m.env("kempen", st)
	for _, fam := range seeded.Families {
		got, ok := m.Case(fam)
		if !ok {
			t.Fatalf("no case for %s", fam)
		}
		want := buildCase(st, fam, e)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("case %s built in parallel differs:\n got %s\nwant %s", fam, g, w)
		}
	}
}
