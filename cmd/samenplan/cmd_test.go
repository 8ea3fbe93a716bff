package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

func TestSimulate_TwentyDevicesConvergeWithNothingLost(t *testing.T) {
	devices, writes := 20, 2000
	if testing.Short() {
		devices, writes = 5, 200
	}
	var out bytes.Buffer
	code := Main(context.Background(), []string{"simulate", "--devices", strconv.Itoa(devices), "--writes", strconv.Itoa(writes), "--seed", "7",
		"--rules", filepath.Join(repoRoot(t), "rules", "regions")}, nil, &out, &out)
	t.Log(out.String())
	if code != 0 {
		t.Fatalf("simulate exit %d", code)
	}
	if !strings.Contains(out.String(), "lost 0") || !strings.Contains(out.String(), "devices diverged 0") {
		t.Fatalf("simulate did not report convergence:\n%s", out.String())
	}
}

func newTestID() string { return uuid.Must(uuid.NewV7()).String() }

func openTestApp(t *testing.T, data string) *App {
	t.Helper()
	app, err := OpenApp(context.Background(), ServeConfig{Addr: "127.0.0.1:0", Data: data, Rules: filepath.Join(repoRoot(t), "rules", "regions"), Demo: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(context.Background()) })
	return app
}

func TestSeedDemo_BothRegionsLookReal(t *testing.T) {
	app := openTestApp(t, t.TempDir())
	logins, err := SeedDemo(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if len(logins) != 13 {
		t.Fatalf("%d demo logins, want 13 (admin + 6 per region)", len(logins))
	}
	for _, name := range []string{"kempen", "maasland"} {
		region, _ := app.Stores.Region(name)
		count := map[string]map[string]bool{}
		err := region.Scan(context.Background(), func(c protocol.Change) error {
			if count[c.Collection] == nil {
				count[c.Collection] = map[string]bool{}
			}
			count[c.Collection][c.ID] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for coll, min := range map[string]int{"families": 25, "persons": 50, "referrals": 25, "trajectories": 15, "plan_goals": 15, "network_members": 30, "contacts": 50, "consults": 5} {
			if got := len(count[coll]); got < min {
				t.Errorf("%s: %d %s, want at least %d", name, got, coll, min)
			}
		}
	}
	again, err := SeedDemo(context.Background(), app)
	if err != nil || len(again) != len(logins) {
		t.Fatalf("second SeedDemo = %d logins, %v; want the same accounts, nothing added", len(again), err)
	}
}

func TestBackup_DuringWritesRestoresConsistent(t *testing.T) {
	data := t.TempDir()
	app := openTestApp(t, data)
	if _, err := SeedDemo(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	region, _ := app.Stores.Region("kempen")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := newTestID()
			_, err := region.ServerWrite(context.Background(), store.Actor{Role: store.RoleServer}, []store.FieldWrite{
				{Collection: "families", ID: id, Field: "region", Value: []byte(`"kempen"`)},
				{Collection: "families", ID: id, Field: "label", Value: []byte(`"Gezin Backup"`)},
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	var out bytes.Buffer
	to := filepath.Join(t.TempDir(), "backup")
	code := Main(context.Background(), []string{"backup", "--data", data, "--to", to}, nil, &out, &out)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup exit %d: %s", code, out.String())
	}
	if n := strings.Count(out.String(), " ok\n"); n != 3 {
		t.Fatalf("backup checked %d databases, want 3:\n%s", n, out.String())
	}
	restored, err := store.Open(context.Background(), to, []string{"kempen", "maasland"}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	r, _ := restored.Region("kempen")
	fields := 0
	if err := r.Scan(context.Background(), func(protocol.Change) error { fields++; return nil }); err != nil || fields == 0 {
		t.Fatalf("restored kempen: %d fields, %v", fields, err)
	}
}

func TestMain_UsageAndVersion(t *testing.T) {
	var out bytes.Buffer
	if code := Main(context.Background(), nil, nil, &out, &out); code != 2 {
		t.Fatalf("no args: exit %d, want 2", code)
	}
	out.Reset()
	if code := Main(context.Background(), []string{"version"}, nil, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "samenplan ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
	if code := Main(context.Background(), []string{"serve", "--nope"}, nil, &out, &out); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
	if code := Main(context.Background(), []string{"frobnicate"}, nil, &out, &out); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}
