package main

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// runBackupProcess runs `samenplan backup --data data --to to` as a separate
// process, as an operator would next to a running server.
func runBackupProcess(t *testing.T, data, to string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "backup", "--data", data, "--to", to)
	cmd.Env = append(os.Environ(), "SAMENPLAN_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("samenplan backup: %v\n%s", err, out)
	}
	return string(out)
}

// logDigest returns the number of kempen log rows with seq <= upTo and a
// hash of them (seq, field, stamp, value, batch), to compare a backup's log
// with the live one.
func logDigest(t *testing.T, db *store.DB, upTo int64) (int, uint64) {
	t.Helper()
	rows, err := db.Reader.Query(`SELECT l.seq, l.collection, l.id, l.field, l.hlc, l.value, b.device_id, b.batch_id
		FROM change_log l JOIN log_batches b ON b.id = l.batch WHERE l.seq <= ? ORDER BY l.seq`, upTo)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := fnv.New64a()
	n := 0
	for rows.Next() {
		var seq int64
		var col, id, field, hlc, value, dev, batch string
		if err := rows.Scan(&seq, &col, &id, &field, &hlc, &value, &dev, &batch); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\n", seq, col, id, field, hlc, value, dev, batch)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n, h.Sum64()
}

// batchesIn returns, for a kempen database, the log rows of every pushed
// (device, batch) and whether the batch's first answer is remembered.
func batchesIn(t *testing.T, db *store.DB) (logged map[string]int, answered map[string]bool) {
	t.Helper()
	logged, answered = map[string]int{}, map[string]bool{}
	for _, q := range []struct {
		query string
		add   func(key string)
	}{
		{`SELECT b.device_id, b.batch_id FROM change_log l JOIN log_batches b ON b.id = l.batch`, func(k string) { logged[k]++ }},
		{`SELECT device_id, batch_id FROM batches`, func(k string) { answered[k] = true }},
	} {
		rows, err := db.Reader.Query(q.query)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var dev, batch string
			if err := rows.Scan(&dev, &batch); err != nil {
				t.Fatal(err)
			}
			q.add(dev + "/" + batch)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return logged, answered
}

// copyDataDir restores a backup the documented way: main.db and
// regions/*.db copied into the empty data directory to.
func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(from, "regions", "*.db"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no region databases in %s: %v", from, err)
	}
	for _, f := range append(files, filepath.Join(from, "main.db")) {
		rel, err := filepath.Rel(from, f)
		if err != nil {
			t.Fatal(err)
		}
		buf, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, rel)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, rel), buf, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// pullAll pulls as c from cursor until the server has no more, and returns
// each field's stamp and the last cursor.
func pullAll(t *testing.T, c *apiClient, cursor string) (map[crdt.Key]string, string) {
	t.Helper()
	got := map[crdt.Key]string{}
	for {
		var resp protocol.PullResponse
		if status := c.call("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: cursor, Limit: 5000}, &resp); status != http.StatusOK {
			t.Fatalf("pull from %s: status %d", c.base, status)
		}
		for _, ch := range resp.Changes {
			got[crdt.Key{Collection: ch.Collection, ID: ch.ID, Field: ch.Field}] = ch.HLC
		}
		cursor = resp.Cursor
		if !resp.More {
			return got, cursor
		}
	}
}

// maxLogSeq returns the highest log seq of a region database.
func maxLogSeq(t *testing.T, db *store.DB) int64 {
	t.Helper()
	var seq int64
	if err := db.Reader.QueryRow(`SELECT coalesce(max(seq), 0) FROM change_log`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestBackup_DuringPushesIsAConsistentPrefixThatServes takes several backups
// with `samenplan backup` (a separate process) while two devices push
// batches over HTTP to a real server process. Each copy must pass
// dataDirProblems (integrity_check, foreign keys, winners, scope sums,
// whole log batches); its kempen log must be exactly the live log up to
// its highest seq (a prefix: nothing missing, nothing torn, nothing
// reordered); every batch acknowledged before the backup began must be
// wholly in it, every batch sent after it ended absent, and every other
// batch wholly in it with its answer or wholly absent without. Then the
// last copy is restored the documented way (its files copied into an empty
// data directory) and `samenplan serve` over it answers a login, a full
// pull holding every change acknowledged before that backup began, a pull
// with a cursor from before the restore (400 invalid: start over) and a
// push. make test takes 3 backups; SAMENPLAN_SOAK=1 takes 10.
func TestBackup_DuringPushesIsAConsistentPrefixThatServes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	backups := 3
	if os.Getenv("SAMENPLAN_SOAK") != "" {
		backups = 10
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 11))
	data := t.TempDir()
	srv := startServerProcess(t, data, true)
	led := &pushLedger{acked: map[int]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for who := 0; who < 2; who++ {
		c := login(t, srv.url, "coordinator.kempen.demo")
		clock := crdt.NewClock(c.device, nil)
		prnd := rand.New(rand.NewPCG(seed, uint64(who)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			pushUntil(t, c, clock, prnd, led, 0, who, stop)
		}()
	}
	poller := login(t, srv.url, "coordinator.kempen.demo") // a device that keeps pulling through the restore
	type taken struct {
		dir        string
		begin, end time.Time
	}
	var copies []taken
	root := t.TempDir()
	// waitFor waits (at most a minute, for a loaded machine) until some
	// pushed batch passes ok.
	waitFor := func(what string, ok func(b *pushedBatch) bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			led.mu.Lock()
			for _, b := range led.batches {
				if ok(b) {
					led.mu.Unlock()
					return
				}
			}
			led.mu.Unlock()
		}
		t.Fatalf("no batch %s within a minute", what)
	}
	for i := 0; i < backups; i++ {
		waitFor("acknowledged", func(b *pushedBatch) bool { return b.resp != nil })
		time.Sleep(time.Duration(100+rnd.IntN(400)) * time.Millisecond)
		dir := filepath.Join(root, fmt.Sprintf("backup-%d", i))
		begin := time.Now()
		out := runBackupProcess(t, data, dir)
		copies = append(copies, taken{dir, begin, time.Now()})
		if n := strings.Count(out, " ok\n"); n != 3 {
			t.Fatalf("backup checked %d databases, want 3:\n%s", n, out)
		}
	}
	end := copies[len(copies)-1].end
	waitFor("sent after the last backup", func(b *pushedBatch) bool { return b.sentAt.After(end) })
	close(stop)
	wg.Wait()
	_, liveCursor := pullAll(t, poller, "")
	srv.close()
	if t.Failed() {
		t.FailNow()
	}
	checkDataDir(t, data)
	live, err := store.OpenDB(filepath.Join(data, "regions", "kempen.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	for i, cp := range copies {
		checkDataDir(t, cp.dir)
		db, err := store.OpenDB(filepath.Join(cp.dir, "regions", "kempen.db"))
		if err != nil {
			t.Fatal(err)
		}
		top := maxLogSeq(t, db)
		gotN, gotSum := logDigest(t, db, top)
		wantN, wantSum := logDigest(t, live, top)
		logged, answered := batchesIn(t, db)
		db.Close()
		if gotN != wantN || gotSum != wantSum {
			t.Fatalf("backup %d: its log (%d rows up to seq %d) is not the live log up to that seq (%d rows)", i, gotN, top, wantN)
		}
		before, in, after := 0, 0, 0
		for _, b := range led.batches {
			key := b.req.DeviceID + "/" + b.req.BatchID
			n := logged[key]
			switch {
			case n != 0 && n != len(b.req.Changes), (n > 0) != answered[key]:
				t.Fatalf("backup %d: batch %s has %d of %d changes, answer remembered %v", i, b.req.BatchID, n, len(b.req.Changes), answered[key])
			case b.resp != nil && b.ackedAt.Before(cp.begin):
				before++
				if n == 0 {
					t.Fatalf("backup %d: batch %s acknowledged before the backup began is missing", i, b.req.BatchID)
				}
			case b.sentAt.After(cp.end):
				after++
				if n != 0 {
					t.Fatalf("backup %d: batch %s sent after the backup ended is in it", i, b.req.BatchID)
				}
			}
			if n > 0 {
				in++
			}
		}
		t.Logf("backup %d: took %s, log up to seq %d; %d of %d pushed batches in it, %d acknowledged before it began, %d sent after it ended",
			i, cp.end.Sub(cp.begin).Round(time.Millisecond), top, in, len(led.batches), before, after)
		if before == 0 || after == 0 {
			t.Fatalf("backup %d was not taken during the pushes (%d batches acknowledged before, %d sent after)", i, before, after)
		}
	}

	// Restore the last copy the documented way and serve it.
	last := copies[len(copies)-1]
	restored := t.TempDir()
	copyDataDir(t, last.dir, restored)
	srv = startServerProcess(t, restored, false)
	defer srv.close()
	c := login(t, srv.url, "coordinator.kempen.demo")
	got, _ := pullAll(t, c, "")
	// A device whose cursor is past the restored log is told to start over.
	poller.base = srv.url
	var refusal struct{ Code string }
	status, err := poller.try("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: poller.device, SchemaVersion: schema.Version, Cursor: liveCursor}, &refusal)
	if err != nil || status != http.StatusBadRequest || refusal.Code != "invalid" {
		t.Fatalf("pull with a cursor past the restored log: status %d, code %q, %v; want 400 invalid", status, refusal.Code, err)
	}
	if again, _ := pullAll(t, poller, ""); len(again) != len(got) {
		t.Fatalf("the device starting over pulled %d fields, another %d", len(again), len(got))
	}
	want := 0
	for _, b := range led.batches {
		if b.resp == nil || !b.ackedAt.Before(last.begin) {
			continue
		}
		for _, ch := range b.req.Changes {
			want++
			if h := got[crdt.Key{Collection: ch.Collection, ID: ch.ID, Field: ch.Field}]; h < ch.HLC {
				t.Fatalf("restored server: %s/%s/%s pulled at %q, acknowledged at %s before the backup", ch.Collection, ch.ID, ch.Field, h, ch.HLC)
			}
		}
	}
	id := newTestID()
	clock := crdt.NewClock(c.device, nil)
	req := protocol.PushRequest{DeviceID: c.device, BatchID: newTestID(), SchemaVersion: schema.Version, Changes: []protocol.Change{
		{Collection: "families", ID: id, Field: "region", Value: []byte(`"kempen"`), HLC: clock.Now().String()},
		{Collection: "families", ID: id, Field: "label", Value: []byte(`"Gezin na herstel"`), HLC: clock.Now().String()},
	}}
	var resp protocol.PushResponse
	if status := c.call("POST", "/v1/sync/push", req, &resp); status != http.StatusOK || resp.Applied != 2 {
		t.Fatalf("push to the restored server: status %d, %+v", status, resp)
	}
	t.Logf("restored from backup %d: %d fields pulled, %d changes acknowledged before it began all there; a push applied", len(copies)-1, len(got), want)
}

// TestDataDirProblems_FindBrokenInvariants proves the checker of the crash
// and backup tests can fail: on copies of a seeded data directory, each
// damage a torn write could leave is reported, and an intact copy passes.
// The demo data is written by the server; one push is added so that
// "answer forgotten" has an answer to forget.
func TestDataDirProblems_FindBrokenInvariants(t *testing.T) {
	ctx := context.Background()
	app := openTestApp(t, t.TempDir())
	if _, err := SeedDemo(ctx, app); err != nil {
		t.Fatal(err)
	}
	// One pushed batch, whose answer the store remembers.
	region, _ := app.Stores.Region("kempen")
	dev := newTestID()
	clock := crdt.NewClock(dev, nil)
	fam := newTestID()
	resp, err := region.Push(ctx, store.Actor{UserID: newTestID(), DeviceID: dev, Role: store.RoleCoordinator}, protocol.PushRequest{
		DeviceID: dev, BatchID: newTestID(), SchemaVersion: schema.Version, Changes: []protocol.Change{
			{Collection: "families", ID: fam, Field: "region", Value: []byte(`"kempen"`), HLC: clock.Now().String()},
			{Collection: "families", ID: fam, Field: "label", Value: []byte(`"Gezin gepusht"`), HLC: clock.Now().String()},
		}})
	if err != nil || resp.Applied != 2 {
		t.Fatalf("push: %+v, %v", resp, err)
	}
	root := t.TempDir()
	for _, tc := range []struct {
		name, damage, want string
	}{
		{"intact", ``, ``},
		{"checksum off", `UPDATE scope_sums SET sum = sum + 1 WHERE scope = (SELECT scope FROM scope_sums WHERE scope LIKE 'family:%' LIMIT 1)`, "scope_sums[family:"},
		{"winner lost", `DELETE FROM fields WHERE (collection, id, field) IN (SELECT collection, id, field FROM fields LIMIT 1)`, "logged fields without a fields row"},
		{"winner points elsewhere", `UPDATE fields SET seq = (SELECT min(seq) FROM change_log) WHERE (collection, id, field) IN (SELECT collection, id, field FROM fields ORDER BY seq DESC LIMIT 1)`, "fields rows without their applied log row"},
		{"later write not applied", `INSERT INTO log_batches (user_id, device_id, batch_id, received_at) VALUES ('u', 'd', 'torn', 0);
			INSERT INTO change_log (seq, collection, id, field, value, hlc, batch, outcome)
			SELECT (SELECT max(seq) + 1 FROM change_log), f.collection, f.id, f.field, '"x"', '9999999999999-0000-zzzz', last_insert_rowid(), 'applied' FROM fields f LIMIT 1`, "winner is not the latest stamp"},
		{"batch without rows", `INSERT INTO log_batches (user_id, device_id, batch_id, received_at) VALUES ('u', 'd', 'empty', 0)`, "log batches without log rows"},
		{"batch with a gap", `INSERT INTO log_batches (user_id, device_id, batch_id, received_at) VALUES ('u', 'd', 'gap', 0);
			INSERT INTO change_log (seq, collection, id, field, value, hlc, batch, outcome)
			SELECT (SELECT max(seq) + 1 FROM change_log), 'families', f.id, f.field, '"x"', '0000000000001-0000-a', last_insert_rowid(), 'stale' FROM fields f WHERE f.collection = 'families' LIMIT 1;
			INSERT INTO change_log (seq, collection, id, field, value, hlc, batch, outcome)
			SELECT (SELECT max(seq) + 3 FROM change_log), 'families', f.id, f.field, '"y"', '0000000000001-0001-a', (SELECT max(id) FROM log_batches), 'stale' FROM fields f WHERE f.collection = 'families' LIMIT 1`, "gap in their seqs"},
		{"answer forgotten", `DELETE FROM batches WHERE (device_id, batch_id) IN (SELECT device_id, batch_id FROM batches WHERE json_extract(response, '$.applied') > 0 LIMIT 1)`, "pushed log batches without their remembered answer"},
		{"answer without its batch", `INSERT INTO batches (device_id, batch_id, response, received_at) VALUES ('d', 'ghost', '{"batch_id":"ghost","applied":3}', 0)`, "remembered answers with applied changes but no log batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(tc.name, " ", "-"))
			if _, err := app.Stores.Backup(ctx, dir); err != nil {
				t.Fatal(err)
			}
			if tc.damage != "" {
				db, err := sql.Open("sqlite3", filepath.Join(dir, "regions", "kempen.db"))
				if err != nil {
					t.Fatal(err)
				}
				_, err = db.Exec(tc.damage)
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			problems, err := dataDirProblems(dir)
			if err != nil {
				t.Fatal(err)
			}
			found := strings.Join(problems, "\n")
			switch {
			case tc.want == "" && found != "":
				t.Fatalf("intact copy: %s", found)
			case tc.want != "" && !strings.Contains(found, tc.want):
				t.Fatalf("got %q, want a problem with %q", found, tc.want)
			}
		})
	}
}

// hostSwitch sends every request to the server named by host, whatever the
// URL says: a device that finds its server at a new address after a
// restore.
type hostSwitch struct{ host atomic.Value }

func (h *hostSwitch) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Host = h.host.Load().(string)
	return http.DefaultTransport.RoundTrip(req)
}

// TestRestore_DeviceAheadOfTheBackupSeesTheDifference follows a device (the
// Go sync client) through a restore: it writes one family before the backup
// and another after it, both acknowledged, then the server is restored from
// the backup. The device's next Sync finds its cursor refused (it is past
// the restored log), starts over and offers its own writes again with
// their stamps: the family written after the backup is on the server again,
// each field in the log once and the winner with the device's stamp; the
// family the backup held is ignored, not logged a second time; the replica
// equals what the server serves and no scope differs.
func TestRestore_DeviceAheadOfTheBackupSeesTheDifference(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	ctx := context.Background()
	data := t.TempDir()
	srv := startServerProcess(t, data, true)
	sw := &hostSwitch{}
	sw.host.Store(strings.TrimPrefix(srv.url, "http://"))
	rep, err := client.Open(ctx, filepath.Join(t.TempDir(), "device.db"), client.Options{BaseURL: srv.url, Transport: sw})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	if _, err := rep.Login(ctx, "coordinator.kempen.demo", DemoPassword, "restore test"); err != nil {
		t.Fatal(err)
	}
	if _, err := rep.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	writeFamily := func(label string) string {
		t.Helper()
		id := rep.NewID()
		for field, v := range map[string]string{"region": "kempen", "label": label, "municipality": "Geel"} {
			if err := rep.Write(ctx, "families", id, field, v); err != nil {
				t.Fatal(err)
			}
		}
		res, err := rep.Sync(ctx)
		if err != nil || res.Push.Applied != 3 || len(res.Pull.Mismatched)+len(res.Pull.Refetched) > 0 {
			t.Fatalf("sync of %q: %+v, %v; want 3 applied and the checksums equal", label, res, err)
		}
		return id
	}
	kept := writeFamily("Gezin voor de back-up")
	backup := filepath.Join(t.TempDir(), "backup")
	runBackupProcess(t, data, backup)
	lost := writeFamily("Gezin na de back-up")
	before, err := rep.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.close()

	restored := t.TempDir()
	copyDataDir(t, backup, restored)
	srv = startServerProcess(t, restored, false)
	defer srv.close()
	sw.host.Store(strings.TrimPrefix(srv.url, "http://"))
	res, err := rep.Sync(ctx)
	if err != nil {
		t.Fatalf("first sync with the restored server: %v", err)
	}
	t.Logf("first sync after the restore: push %+v, pull %+v", res.Push, res.Pull)
	if res.Pull.Reoffered != 6 || res.Push.Applied != 3 || res.Push.Ignored != 3 || len(res.Push.Rejected)+len(res.Push.Quarantined) > 0 {
		t.Errorf("offered %d own writes again, push %+v; want 6 offered: 3 applied (written after the backup), 3 ignored (in it)",
			res.Pull.Reoffered, res.Push)
	}
	if len(res.Pull.Mismatched) > 0 {
		t.Errorf("scopes still differ after the sync: %v", res.Pull.Mismatched)
	}
	if st, err := rep.Status(ctx); err != nil || st.Reoffered != 6 || st.Pending != 0 {
		t.Errorf("status: offered %d, pending %d (%v); want 6 and 0", st.Reoffered, st.Pending, err)
	}

	db, err := store.OpenDB(filepath.Join(restored, "regions", "kempen.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{kept, lost} {
		for _, field := range []string{"region", "label", "municipality"} {
			k := crdt.Key{Collection: "families", ID: id, Field: field}
			var logged int
			var winner, outcome string
			err := db.Reader.QueryRow(`SELECT (SELECT count(*) FROM change_log WHERE collection = ? AND id = ? AND field = ?),
				l.hlc, l.outcome FROM fields f JOIN change_log l ON l.seq = f.seq
				WHERE f.collection = ? AND f.id = ? AND f.field = ?`, k.Collection, k.ID, k.Field, k.Collection, k.ID, k.Field).Scan(&logged, &winner, &outcome)
			if err != nil {
				t.Fatalf("%v on the restored server: %v", k, err)
			}
			if logged != 1 || winner != before[k].HLC || outcome != "applied" {
				t.Errorf("%v on the restored server: logged %d times, winner %s (%s); want once, the device's %s", k, logged, winner, outcome, before[k].HLC)
			}
		}
	}

	served, _ := pullAll(t, login(t, srv.url, "coordinator.kempen.demo"), "")
	held, err := rep.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != len(served) {
		t.Errorf("the replica holds %d fields, the server serves %d", len(held), len(served))
	}
	for k, c := range held {
		if served[k] != c.HLC {
			t.Errorf("%v: replica %s, server %q", k, c.HLC, served[k])
		}
	}
}
