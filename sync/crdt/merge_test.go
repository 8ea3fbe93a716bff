package crdt

import (
	"encoding/json"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

func TestWins(t *testing.T) {
	s := func(wall int64, ctr uint16, node string) Stamp { return Stamp{Wall: wall, Counter: ctr, Node: node} }
	tests := []struct {
		name string
		a, b Change
		want bool
	}{
		{"later wall wins", Change{HLC: s(2, 0, "a")}, Change{HLC: s(1, 9, "z")}, true},
		{"earlier wall loses", Change{HLC: s(1, 9, "z")}, Change{HLC: s(2, 0, "a")}, false},
		{"same wall, higher counter wins", Change{HLC: s(1, 2, "a")}, Change{HLC: s(1, 1, "z")}, true},
		{"same wall and counter, node decides", Change{HLC: s(1, 1, "b")}, Change{HLC: s(1, 1, "a")}, true},
		{"same stamp, value bytes decide", Change{HLC: s(1, 1, "a"), Value: json.RawMessage(`"b"`)}, Change{HLC: s(1, 1, "a"), Value: json.RawMessage(`"a"`)}, true},
		{"identical write does not win", Change{HLC: s(1, 1, "a"), Value: json.RawMessage(`1`)}, Change{HLC: s(1, 1, "a"), Value: json.RawMessage(`1`)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Wins(tt.a, tt.b); got != tt.want {
				t.Fatalf("Wins = %v, want %v", got, tt.want)
			}
		})
	}
}

// genWrites draws writes from several nodes to a few fields, each node
// stamping with its own clock, so stamps are unique per node as in real use.
func genWrites(t *rapid.T) []Change {
	nodes := rapid.IntRange(1, 5).Draw(t, "nodes")
	var out []Change
	for n := 0; n < nodes; n++ {
		node := fmt.Sprintf("node-%d", n)
		wall := rapid.Int64Range(1, 50).Draw(t, "start")
		var ctr uint16
		for i, k := 0, rapid.IntRange(0, 20).Draw(t, "writes"); i < k; i++ {
			if rapid.Bool().Draw(t, "tick") {
				wall += rapid.Int64Range(1, 5).Draw(t, "dt")
				ctr = 0
			} else {
				ctr++
			}
			out = append(out, Change{
				Collection: "contacts",
				ID:         fmt.Sprintf("row-%d", rapid.IntRange(0, 2).Draw(t, "row")),
				Field:      []string{"note", "minutes", Deleted}[rapid.IntRange(0, 2).Draw(t, "field")],
				Value:      json.RawMessage(fmt.Sprintf("%d", rapid.IntRange(0, 3).Draw(t, "value"))),
				HLC:        Stamp{Wall: wall, Counter: ctr, Node: node},
			})
		}
	}
	return out
}

// TestMerge_AnyOrderAndDuplicationConverges is the CRDT property: every
// order of delivery, with any writes duplicated, gives the same state.
func TestMerge_AnyOrderAndDuplicationConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		writes := genWrites(t)
		ref := NewState()
		for _, w := range writes {
			ref.Apply(w)
		}
		for r := 0; r < 3; r++ {
			delivery := rapid.Permutation(writes).Draw(t, "order")
			for _, w := range writes {
				if rapid.IntRange(0, 3).Draw(t, "dup") == 0 {
					delivery = append(delivery, w)
				}
			}
			delivery = rapid.Permutation(delivery).Draw(t, "order2")
			got := NewState()
			for _, w := range delivery {
				got.Apply(w)
			}
			if !got.Equal(ref) {
				t.Fatalf("delivery %d diverged", r)
			}
		}
	})
}

// TestMerge_MergingStatesIsAssociative merges partial states pairwise in
// different groupings and gets the same result.
func TestMerge_MergingStatesIsAssociative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		writes := genWrites(t)
		parts := [3]*State{NewState(), NewState(), NewState()}
		for _, w := range writes {
			parts[rapid.IntRange(0, 2).Draw(t, "part")].Apply(w)
		}
		merge := func(dst, src *State) *State {
			out := NewState()
			dst.Each(func(c Change) { out.Apply(c) })
			src.Each(func(c Change) { out.Apply(c) })
			return out
		}
		left := merge(merge(parts[0], parts[1]), parts[2])
		right := merge(parts[0], merge(parts[1], parts[2]))
		if !left.Equal(right) {
			t.Fatal("(a·b)·c != a·(b·c)")
		}
	})
}

func TestChecksum_IsOrderIndependentXOR(t *testing.T) {
	a := FieldSum("contacts", "1", "note", "1795450929838-0001-a")
	b := FieldSum("contacts", "1", "minutes", "1795450929838-0002-a")
	if a^b != b^a || a == b {
		t.Fatal("field sums must differ and combine by XOR")
	}
	if got := FormatSum(0x1f); got != "000000000000001f" {
		t.Fatalf("FormatSum = %q", got)
	}
	if ScopesHash([]string{"b", "a"}) != ScopesHash([]string{"a", "b"}) {
		t.Fatal("ScopesHash must not depend on order")
	}
	if ScopesHash([]string{"ab"}) == ScopesHash([]string{"a", "b"}) {
		t.Fatal("ScopesHash must separate names")
	}
}
