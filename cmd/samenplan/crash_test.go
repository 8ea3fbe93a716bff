package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// serverProcess is `samenplan serve` running as a separate process.
type serverProcess struct {
	cmd *exec.Cmd
	url string
}

var listenRE = regexp.MustCompile(`listens on (http://\S+)`)

func startServerProcess(t testing.TB, data string, demo bool) *serverProcess {
	t.Helper()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--rules", filepath.Join(repoRoot(t), "rules", "regions")}
	if demo {
		args = append(args, "--demo")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SAMENPLAN_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = nil // request logs are not needed here
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case u := <-urls:
		return &serverProcess{cmd: cmd, url: u}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not start within 60 s")
	}
	return nil
}

func (p *serverProcess) kill()  { p.cmd.Process.Signal(syscall.SIGKILL); p.cmd.Wait() }
func (p *serverProcess) close() { p.cmd.Process.Signal(syscall.SIGTERM); p.cmd.Wait() }

// TestCrash_AcknowledgedPushesSurviveSIGKILL pushes a stream of batches to a
// real server process, kills it with SIGKILL at a random moment, restarts it
// on the same data and checks that every acknowledged change is there and
// that every database passes PRAGMA integrity_check. The soak version
// (SAMENPLAN_SOAK=1) kills it 20 times.
func TestCrash_AcknowledgedPushesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	kills := 3
	if os.Getenv("SAMENPLAN_SOAK") != "" {
		kills = 20
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 7))
	data := t.TempDir()
	var acked []protocol.Change
	demo := true
	for round := 0; round < kills; round++ {
		srv := startServerProcess(t, data, demo)
		demo = false
		c := login(t, srv.url, "coordinator.kempen.demo")
		clock := crdt.NewClock(c.device, nil)
		var mu sync.Mutex
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := protocol.PushRequest{DeviceID: c.device, BatchID: uuid.NewString(), SchemaVersion: schema.Version}
				for f := 0; f < 50; f++ {
					id := uuid.Must(uuid.NewV7()).String()
					for _, kv := range [][2]string{{"region", `"kempen"`}, {"label", fmt.Sprintf(`"Gezin %d-%d-%d"`, round, i, f)}, {"municipality", `"Beerse"`}} {
						req.Changes = append(req.Changes, protocol.Change{Collection: "families", ID: id, Field: kv[0], Value: json.RawMessage(kv[1]), HLC: clock.Now().String()})
					}
				}
				var resp protocol.PushResponse
				status, err := c.try("POST", "/v1/sync/push", req, &resp)
				if err != nil || status != http.StatusOK {
					continue // the server is gone: this batch is not acknowledged
				}
				if len(resp.Rejected) > 0 {
					t.Errorf("batch rejected: %+v", resp.Rejected[0])
					return
				}
				mu.Lock()
				acked = append(acked, req.Changes...)
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(200+rnd.IntN(800)) * time.Millisecond)
		srv.kill()
		close(stop)
		<-done
	}

	srv := startServerProcess(t, data, false)
	c := login(t, srv.url, "coordinator.kempen.demo")
	got := map[crdt.Key]string{}
	cursor := ""
	for {
		var resp protocol.PullResponse
		if status := c.call("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: cursor, Limit: 5000}, &resp); status != http.StatusOK {
			t.Fatalf("pull: status %d", status)
		}
		for _, ch := range resp.Changes {
			got[crdt.Key{Collection: ch.Collection, ID: ch.ID, Field: ch.Field}] = ch.HLC
		}
		cursor = resp.Cursor
		if !resp.More {
			break
		}
	}
	srv.close()
	missing := 0
	for _, ch := range acked {
		if got[crdt.Key{Collection: ch.Collection, ID: ch.ID, Field: ch.Field}] != ch.HLC {
			missing++
		}
	}
	t.Logf("%d kills, %d acknowledged changes, %d missing", kills, len(acked), missing)
	if len(acked) == 0 {
		t.Fatal("no push was acknowledged: the test proved nothing")
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged changes missing after SIGKILL", missing)
	}
	files, _ := filepath.Glob(filepath.Join(data, "regions", "*.db"))
	files = append(files, filepath.Join(data, "main.db"))
	for _, f := range files {
		db, err := store.OpenDB(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.IntegrityCheck(context.Background())
		db.Close()
		if err != nil || !strings.EqualFold(res, "ok") {
			t.Fatalf("integrity_check %s: %q %v", f, res, err)
		}
	}
}
