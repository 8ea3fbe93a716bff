package view

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/samenplan/samenplan/sync/crdt"
)

func TestCell_WinsAgreesWithCRDT(t *testing.T) {
	s := newRegionState("kempen")
	rnd := rand.New(rand.NewPCG(3, 4))
	stamp := func() crdt.Stamp {
		return crdt.Stamp{Wall: 1_700_000_000_000 + rnd.Int64N(3), Counter: uint16(rnd.IntN(3) * 0x7fff), Node: []string{"server", "dev-a", "dev-b"}[rnd.IntN(3)]}
	}
	val := func() json.RawMessage { return json.RawMessage(fmt.Sprint(rnd.IntN(3))) }
	for i := 0; i < 2000; i++ {
		a, b := crdt.Change{Value: val(), HLC: stamp()}, crdt.Change{Value: val(), HLC: stamp()}
		ca, cb := cell{v: string(a.Value)}, cell{v: string(b.Value)}
		ca.wall, ca.counter, ca.node = s.parseStamp(a.HLC.String())
		cb.wall, cb.counter, cb.node = s.parseStamp(b.HLC.String())
		if got, want := s.wins(&ca, &cb), crdt.Wins(a, b); got != want {
			t.Fatalf("%s %s beats %s %s: got %t, want %t", a.HLC, a.Value, b.HLC, b.Value, got, want)
		}
	}
}
