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
