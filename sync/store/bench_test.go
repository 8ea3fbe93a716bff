package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// benchBatch returns batch n of 125 new contacts × 8 fields (1,000 field
// changes) on trajectory traj, stamped by node.
func benchBatch(n int, traj, coachID, node string) []protocol.Change {
	note := strings.Repeat("Huisbezoek: gesprek met moeder over de week, afspraken rond school. ", 3)
	out := make([]protocol.Change, 0, 1000)
	for i := 0; i < 125; i++ {
		id := uid(1_000_000 + n*125 + i)
		h := stamp(int64(n), uint16(i), node)
		out = append(out,
			ch("contacts", id, "trajectory_id", traj, h),
			ch("contacts", id, "coach_id", coachID, h),
			ch("contacts", id, "occurred_at", "2026-03-02T10:00:00+01:00", h),
			ch("contacts", id, "mode", "home_visit", h),
			ch("contacts", id, "minutes", 60, h),
			ch("contacts", id, "participants", []string{"moeder", "zoon"}, h),
			ch("contacts", id, "note", note, h),
			ch("contacts", id, "follow_up", "Volgende week bellen.", h),
		)
	}
	return out
}

// BenchmarkPush measures a coach's push of 1,000 field changes (new
// contacts) through Region.Push: validation, scope checks, log, merge,
// checksums, idempotency record.
func BenchmarkPush(b *testing.B) {
	e := newEnv(b)
	c := coach(1)
	fam, traj := uid(1), uid(2)
	e.family(fam, traj, c.UserID)
	batches := make([][]protocol.Change, b.N)
	for i := range batches {
		batches[i] = benchBatch(i, traj, c.UserID, c.DeviceID)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := e.r.Push(e.ctx, c, protocol.PushRequest{DeviceID: c.DeviceID, BatchID: fmt.Sprint("b", i),
			SchemaVersion: schema.Version, Changes: batches[i]})
		if err != nil || resp.Applied != 1000 {
			b.Fatalf("push: %v %+v", err, resp.Rejected)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "fields/s")
}

// BenchmarkBareUpsert is the yardstick of DESIGN §8: the same 1,000 fields
// upserted into a plain table, one prepared statement, one transaction per
// batch.
func BenchmarkBareUpsert(b *testing.B) {
	db, err := OpenDB(filepath.Join(b.TempDir(), "bare.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Writer.Exec(`CREATE TABLE bare (collection TEXT NOT NULL, id TEXT NOT NULL, field TEXT NOT NULL,
		value TEXT NOT NULL, hlc TEXT NOT NULL, PRIMARY KEY (collection, id, field)) WITHOUT ROWID`); err != nil {
		b.Fatal(err)
	}
	batches := make([][]protocol.Change, b.N)
	for i := range batches {
		batches[i] = benchBatch(i, uid(2), uid(1001), "dev-coach-1")
	}
	stmt, err := db.Writer.Prepare(`INSERT INTO bare (collection, id, field, value, hlc) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (collection, id, field) DO UPDATE SET value = excluded.value, hlc = excluded.hlc`)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx, err := db.Writer.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st := tx.Stmt(stmt)
		for _, c := range batches[i] {
			if _, err := st.Exec(c.Collection, c.ID, c.Field, string(c.Value), c.HLC); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "fields/s")
}

// caseload fills the region with two coaches of 10 families each, every
// family with a trajectory and 125 contacts of 8 fields (~10k fields per
// coach), and returns the first coach.
func caseload(b *testing.B) (*env, Actor) {
	e := newEnv(b)
	c, other := coach(1), coach(2)
	for f := 0; f < 20; f++ {
		owner := c
		if f%2 == 1 {
			owner = other
		}
		fam, traj := uid(10+2*f), uid(11+2*f)
		e.family(fam, traj, owner.UserID)
		if _, err := e.r.Push(e.ctx, owner, protocol.PushRequest{DeviceID: owner.DeviceID, BatchID: fmt.Sprint("f", f),
			SchemaVersion: schema.Version, Changes: benchBatch(f, traj, owner.UserID, owner.DeviceID)}); err != nil {
			b.Fatal(err)
		}
	}
	return e, c
}

// BenchmarkPullCaseload measures a coach's first pull of her whole
// caseload (10 families, ~10k fields) in pages of the largest limit.
func BenchmarkPullCaseload(b *testing.B) {
	e, c := caseload(b)
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		cur, more := "", true
		n = 0
		for more {
			resp, err := e.r.Pull(e.ctx, c, protocol.PullRequest{DeviceID: c.DeviceID, SchemaVersion: schema.Version,
				Cursor: cur, Limit: protocol.MaxPullLimit})
			if err != nil {
				b.Fatal(err)
			}
			cur, more = resp.Cursor, resp.More
			n += len(resp.Changes)
		}
	}
	b.ReportMetric(float64(n), "fields")
}

// BenchmarkPullEmpty measures an incremental pull that finds nothing new,
// by many goroutines at once (devices polling).
func BenchmarkPullEmpty(b *testing.B) {
	e, c := caseload(b)
	var cur string
	for more := true; more; {
		resp, err := e.r.Pull(e.ctx, c, protocol.PullRequest{DeviceID: c.DeviceID, SchemaVersion: schema.Version, Cursor: cur, Limit: protocol.MaxPullLimit})
		if err != nil {
			b.Fatal(err)
		}
		cur, more = resp.Cursor, resp.More
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := e.r.Pull(e.ctx, c, protocol.PullRequest{DeviceID: c.DeviceID, SchemaVersion: schema.Version, Cursor: cur, Limit: 1000})
			if err != nil || len(resp.Changes) != 0 {
				b.Fatal(err, len(resp.Changes))
			}
		}
	})
}
