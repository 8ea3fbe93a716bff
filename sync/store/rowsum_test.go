package store

import (
	"math/rand/v2"
	"testing"

	"github.com/samenplan/samenplan/sync/crdt"
)

// The checksums a push stores must be the ones clients compute with
// crdt.FieldSum: rowSummer only hashes a row's collection and id once.
func TestRowSummer_IsFieldSum(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	str := func() string {
		b := make([]byte, rnd.IntN(60))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		return string(b)
	}
	cases := [][4]string{
		{"contacts", "0b7e3c1e-2f7a-4c55-9a77-1c2d3e4f5a6b", "note", "1795450929838-0001-0b7e3c1e-2f7a-4c55-9a77-1c2d3e4f5a6b"},
		{"", "", "", ""},
		{"a\x00b", "", "c", "\x00"},
	}
	for i := 0; i < 2000; i++ {
		cases = append(cases, [4]string{str(), str(), str(), str()})
	}
	for _, c := range cases {
		got := newRowSummer(c[0], c[1]).field(c[2], c[3])
		if want := crdt.FieldSum(c[0], c[1], c[2], c[3]); got != want {
			t.Fatalf("rowSummer%q = %x, want crdt.FieldSum %x", c, got, want)
		}
	}
}

// BenchmarkRowSummer hashes the 1,000 fields of a push of 125 contacts × 8
// fields with crdt.FieldSum per field and with one rowSummer per row.
func BenchmarkRowSummer(b *testing.B) {
	fields := []string{"trajectory_id", "coach_id", "occurred_at", "mode", "minutes", "participants", "note", "follow_up"}
	const stamp = "1795450929838-0001-0b7e3c1e-2f7a-4c55-9a77-1c2d3e4f5a6b"
	ids := make([]string, 125)
	for i := range ids {
		ids[i] = uid(i)
	}
	var sink uint64
	b.Run("FieldSum", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			for _, id := range ids {
				for _, f := range fields {
					sink ^= crdt.FieldSum("contacts", id, f, stamp)
				}
			}
		}
	})
	b.Run("rowSummer", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			for _, id := range ids {
				r := newRowSummer("contacts", id)
				for _, f := range fields {
					sink ^= r.field(f, stamp)
				}
			}
		}
	})
	_ = sink
}
