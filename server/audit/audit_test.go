package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/sync/store"
)

func openLogger(t *testing.T, cfg audit.Config) (*audit.Logger, *store.DB) {
	t.Helper()
	db, err := store.OpenDB(filepath.Join(t.TempDir(), "main.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := audit.Open(context.Background(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, db
}

func TestLog_IsAppendOnly(t *testing.T) {
	ctx := context.Background()
	l, db := openLogger(t, audit.Config{})
	if err := l.Log(ctx, audit.Entry{Action: audit.ActionLogin, UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Writer.ExecContext(ctx, `UPDATE audit_log SET user_id = 'u2'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE: got err %v, want append-only", err)
	}
	if _, err := db.Writer.ExecContext(ctx, `DELETE FROM audit_log`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("DELETE: got err %v, want append-only", err)
	}
	got, err := l.Query(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UserID != "u1" {
		t.Fatalf("got %+v, want the one entry unchanged", got)
	}
}

func TestLog_RejectsEntryWithoutAction(t *testing.T) {
	l, _ := openLogger(t, audit.Config{})
	if err := l.Log(context.Background(), audit.Entry{UserID: "u1"}); err == nil {
		t.Fatal("got nil error for an entry without action")
	}
}

func TestRecord_CloseDrainsEveryQueuedEntry(t *testing.T) {
	ctx := context.Background()
	l, db := openLogger(t, audit.Config{QueueSize: 16, BatchSize: 7})
	const writers, each = 8, 250
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Record(audit.Entry{Action: audit.ActionPull, DeviceID: string(rune('a' + w)), Detail: audit.Detail(map[string]int{"i": i})})
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Reader.QueryRowContext(ctx, `SELECT count(*) FROM audit_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got, want := n, writers*each; got != want {
		t.Fatalf("got %d entries, want %d", got, want)
	}
	if got, want := l.Written(), int64(writers*each); got != want {
		t.Fatalf("Written: got %d, want %d", got, want)
	}
	// After Close, Record still writes (synchronously).
	l.Record(audit.Entry{Action: audit.ActionPush})
	got, err := l.Query(ctx, audit.Filter{Action: audit.ActionPush})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d push entries after Close, want 1", len(got))
	}
}

func TestRecord_BatchesIntoFewTransactions(t *testing.T) {
	ctx := context.Background()
	l, db := openLogger(t, audit.Config{QueueSize: 2048, BatchSize: 512})
	// Hold the writer so that the queue fills while the goroutine waits.
	tx, err := db.Writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		l.Record(audit.Entry{Action: audit.ActionPull, TargetID: string(rune('A' + i%26))})
	}
	tx.Rollback()
	l.Close()
	if got := l.Batches(); got > 4 {
		t.Fatalf("got %d transactions for 1000 queued entries, want at most 4", got)
	}
	got, err := l.Query(ctx, audit.Filter{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 {
		t.Fatalf("got %d, want 1000", len(got))
	}
	for i, e := range got { // newest first
		if want := string(rune('A' + (999-i)%26)); e.TargetID != want {
			t.Fatalf("entry %d: got target %q, want %q (order lost)", i, e.TargetID, want)
		}
	}
}

func TestQuery_Filters(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	l, _ := openLogger(t, audit.Config{})
	entries := []audit.Entry{
		{At: t0, UserID: "u1", Username: "an", Action: audit.ActionLogin, Region: "kempen"},
		{At: t0.Add(time.Hour), UserID: "u2", Username: "bo", Action: audit.ActionCaseRead, Region: "kempen", TargetKind: "family", TargetID: "f1"},
		{At: t0.Add(2 * time.Hour), UserID: "u1", Username: "an", Action: audit.ActionCaseRead, Region: "maasland", TargetKind: "family", TargetID: "f2"},
		{At: t0.Add(3 * time.Hour), UserID: "u1", Username: "an", Action: audit.ActionDeviceRevoke, TargetKind: "device", TargetID: "d1"},
	}
	for _, e := range entries {
		if err := l.Log(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(es []audit.Entry) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want []int64
	}{
		{"all newest first", audit.Filter{}, []int64{4, 3, 2, 1}},
		{"by user id", audit.Filter{User: "u1"}, []int64{4, 3, 1}},
		{"by username", audit.Filter{User: "bo"}, []int64{2}},
		{"by action", audit.Filter{Action: audit.ActionCaseRead}, []int64{3, 2}},
		{"by target id", audit.Filter{Target: "f1"}, []int64{2}},
		{"by kind:id", audit.Filter{Target: "device:d1"}, []int64{4}},
		{"by region", audit.Filter{Region: "kempen"}, []int64{2, 1}},
		{"from inclusive, to exclusive", audit.Filter{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, []int64{3, 2}},
		{"limit", audit.Filter{Limit: 2}, []int64{4, 3}},
		{"before pages back", audit.Filter{Limit: 2, Before: 3}, []int64{2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.Query(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := ids(got), tc.want; !equal(g, w) {
				t.Fatalf("got ids %v, want %v", g, w)
			}
		})
	}
	got, _ := l.Query(ctx, audit.Filter{Target: "f1"})
	if !got[0].At.Equal(t0.Add(time.Hour)) {
		t.Fatalf("got at %v, want %v", got[0].At, t0.Add(time.Hour))
	}
}

func TestWriteCSV_HeaderRowsAndFormulaGuard(t *testing.T) {
	at := time.Date(2026, 1, 5, 10, 30, 0, 0, time.UTC)
	var buf bytes.Buffer
	err := audit.WriteCSV(&buf, []audit.Entry{
		{ID: 7, At: at, Username: "=HYPERLINK(\"x\")", Action: audit.ActionLogin, Detail: []byte(`{"a":"b,c"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	if got, want := strings.Join(rows[0], ","), strings.Join(audit.CSVHeader, ","); got != want {
		t.Fatalf("header: got %q, want %q", got, want)
	}
	row := rows[1]
	if row[0] != "7" || row[1] != "2026-01-05T10:30:00.000Z" || row[3] != `'=HYPERLINK("x")` || row[10] != `{"a":"b,c"}` {
		t.Fatalf("row: got %q", row)
	}
}

func TestLog_InvalidDetailIsStoredAsString(t *testing.T) {
	ctx := context.Background()
	l, _ := openLogger(t, audit.Config{})
	if err := l.Log(ctx, audit.Entry{Action: audit.ActionExport, Detail: []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Query(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Detail) != `"not json"` {
		t.Fatalf("got detail %s, want a JSON string", got[0].Detail)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
