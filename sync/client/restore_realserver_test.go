package client_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/samenplan/samenplan/sync/client"
	"github.com/samenplan/samenplan/sync/crdt"
)

// switchHost sends every request to the server named by host: devices that
// find their server at a new address after a restore.
type switchHost struct{ host atomic.Value }

func (h *switchHost) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Host = h.host.Load().(string)
	return http.DefaultTransport.RoundTrip(req)
}

// copyBackup copies a Stores.Backup directory into an empty data directory,
// as docs/operations.md restores one.
func copyBackup(t *testing.T, from, to string) {
	t.Helper()
	for _, rel := range []string{"main.db", filepath.Join("regions", "kempen.db")} {
		buf, err := os.ReadFile(filepath.Join(from, rel))
		mustDo(t, err)
		mustDo(t, os.MkdirAll(filepath.Dir(filepath.Join(to, rel)), 0o750))
		mustDo(t, os.WriteFile(filepath.Join(to, rel), buf, 0o600))
	}
}

// TestRealServer_RestoredLogPastTheCursorIsCaughtByTheChecksums: the real
// server is restored from a backup taken before the laptop's acknowledged
// write; the phone pushes first, so the restored log grows past the
// laptop's cursor and the server does not refuse it. The laptop's checksum
// still differs after the refetch, so it offers its own write of that
// scope again with its stamp, and one Sync puts it back. Then both devices
// equal the server.
func TestRealServer_RestoredLogPastTheCursorIsCaughtByTheChecksums(t *testing.T) {
	ctx := context.Background()
	s := startRealServerAt(t, t.TempDir())
	defer func() { s.close() }()
	s.addCoach(t, "ann")
	sw := &switchHost{}
	sw.host.Store(strings.TrimPrefix(s.url, "http://"))
	phone := s.device(t, "ann", client.Options{Transport: sw})
	laptop := s.device(t, "ann", client.Options{Transport: sw})

	fid := phone.NewID()
	mustDo(t, phone.Write(ctx, "families", fid, "region", "kempen"))
	mustDo(t, phone.Write(ctx, "families", fid, "label", "Gezin Peeters"))
	sync2(t, phone, laptop)
	backup := filepath.Join(t.TempDir(), "backup")
	_, err := s.stores.Backup(ctx, backup)
	mustDo(t, err)

	mustDo(t, laptop.Write(ctx, "families", fid, "language", "nl")) // acknowledged after the backup
	res, err := laptop.Sync(ctx)
	mustDo(t, err)
	if res.Push.Applied != 1 {
		t.Fatalf("laptop's push: %+v", res.Push)
	}
	_, err = phone.Sync(ctx)
	mustDo(t, err)
	lang := crdt.Key{Collection: "families", ID: fid, Field: "language"}
	before, err := laptop.State(ctx)
	mustDo(t, err)

	s.close()
	data := t.TempDir()
	copyBackup(t, backup, data)
	s = startRealServerAt(t, data)
	sw.host.Store(strings.TrimPrefix(s.url, "http://"))
	if _, ok := s.state(t)[lang]; ok {
		t.Fatal("the restored server holds the write made after the backup")
	}

	pid := phone.NewID()
	for field, v := range map[string]string{"family_id": fid, "given_name": "Lotte", "family_name": "Peeters", "role": "child"} {
		mustDo(t, phone.Write(ctx, "persons", pid, field, v))
	}
	_, err = phone.Sync(ctx)
	mustDo(t, err)

	res, err = laptop.Sync(ctx)
	mustDo(t, err)
	t.Logf("laptop after the restore: push %+v, pull %+v", res.Push, res.Pull)
	if res.Pull.Reoffered != 1 || res.Push.Applied != 1 || len(res.Pull.Refetched) == 0 || len(res.Pull.Mismatched) > 0 {
		t.Errorf("laptop's sync: offered %d, applied %d, refetched %v, mismatched %v; want its write offered and applied after a refetch, nothing left differing",
			res.Pull.Reoffered, res.Push.Applied, res.Pull.Refetched, res.Pull.Mismatched)
	}
	if got := s.state(t)[lang]; got.HLC != before[lang].HLC {
		t.Errorf("server's language = %v, want the laptop's write %s", got, before[lang].HLC)
	}
	sync2(t, phone, laptop)
	want := s.state(t)
	for i, r := range []*client.Replica{phone, laptop} {
		got, err := r.State(ctx)
		mustDo(t, err)
		if !reflect.DeepEqual(normalizeState(got), normalizeState(want)) {
			t.Errorf("device %d:\n got %v\nwant %v", i, normalizeState(got), normalizeState(want))
		}
	}
}
