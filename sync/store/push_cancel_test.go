package store

import (
	"context"
	"reflect"
	"testing"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// A push whose caller has gone away (its request context cancelled) still
// runs to its commit: the answer is kept, and the device's retry of the
// batch gets it without writing anything again.
func TestPush_RunsToCommitWhenTheCallerGoesAway(t *testing.T) {
	e := newEnv(t)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	req := protocol.PushRequest{DeviceID: c.DeviceID, BatchID: "b1", SchemaVersion: schema.Version,
		Changes: []protocol.Change{ch("families", fam, "municipality", "Geel", stamp(1000, 0, c.DeviceID))}}

	gone, cancel := context.WithCancel(e.ctx)
	cancel()
	first, err := e.r.Push(gone, c, req)
	if err != nil {
		t.Fatalf("push with a cancelled context: %v", err)
	}
	if first.Applied != 1 {
		t.Fatalf("applied %d, want 1", first.Applied)
	}
	if got, want := e.value("families", fam, "municipality"), `"Geel"`; got != want {
		t.Fatalf("value: got %s, want %s", got, want)
	}
	logged := e.count(`SELECT count(*) FROM change_log`)
	again, err := e.r.Push(e.ctx, c, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, first) {
		t.Fatalf("replay answer %+v, want the first %+v", again, first)
	}
	if n := e.count(`SELECT count(*) FROM change_log`); n != logged {
		t.Fatalf("replay logged %d rows, want none", n-logged)
	}
}
