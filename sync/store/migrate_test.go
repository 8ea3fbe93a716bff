package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// TestMigrate_LogBatchesKeepTheHistory fills a database made by the first
// migration only, then opens it as a region: the history, the winners and
// the next seq survive the move of per-batch facts into log_batches.
func TestMigrate_LogBatchesKeepTheHistory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "regions", testRegion+".db")
	first, err := fs0001()
	if err != nil {
		t.Fatal(err)
	}
	if err := openAndMigrate(ctx, path, first); err != nil {
		t.Fatal(err)
	}
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	id := uid(1)
	for _, q := range []string{
		`INSERT INTO change_log (seq, collection, id, field, value, hlc, user_id, device_id, batch_id, received_at, outcome) VALUES
			(1, 'families', '` + id + `', 'label', '"A"', 'h1', 'u1', 'd1', 'b1', 100, 'applied'),
			(2, 'families', '` + id + `', 'label', '"B"', 'h2', 'u2', 'd2', 'b2', 200, 'applied'),
			(3, 'families', '` + id + `', 'label', '"C"', 'h0', 'u1', 'd1', 'b1', 100, 'stale')`,
		`INSERT INTO fields (collection, id, field, hlc, seq) VALUES ('families', '` + id + `', 'label', 'h2', 2)`,
	} {
		if _, err := db.Writer.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, dir, []string{testRegion}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, _ := s.Region(testRegion)
	h, err := r.History(ctx, "families", id)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		seq                 int64
		value, user, device string
		batch, outcome      string
		at                  int64
	}
	var got []entry
	for _, e := range h {
		got = append(got, entry{e.Seq, string(e.Value), e.UserID, e.DeviceID, e.BatchID, e.Outcome, e.ReceivedAt.UnixMilli()})
	}
	want := []entry{
		{1, `"A"`, "u1", "d1", "b1", "applied", 100},
		{2, `"B"`, "u2", "d2", "b2", "applied", 200},
		{3, `"C"`, "u1", "d1", "b1", "stale", 100},
	}
	if len(got) != len(want) {
		t.Fatalf("history = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("history[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	var hlc string
	if err := r.db.Reader.QueryRowContext(ctx, `SELECT l.hlc FROM fields f JOIN change_log l ON l.seq = f.seq`).Scan(&hlc); err != nil || hlc != "h2" {
		t.Errorf("winner stamp = %q, %v; want h2", hlc, err)
	}
	if n, err := maxSeq(ctx, r.db.Reader); err != nil || n != 3 {
		t.Errorf("max seq = %d, %v; want 3", n, err)
	}
}

func fs0001() (fstest.MapFS, error) {
	buf, err := migrationFS.ReadFile("migrations/0001_cases.sql")
	if err != nil {
		return nil, err
	}
	return fstest.MapFS{"0001_cases.sql": {Data: buf}}, nil
}

func openAndMigrate(ctx context.Context, path string, fsys fstest.MapFS) error {
	if err := mkdirFor(path); err != nil {
		return err
	}
	db, err := OpenDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx, "cases", fsys)
}

func mkdirFor(path string) error { return os.MkdirAll(filepath.Dir(path), 0o750) }
