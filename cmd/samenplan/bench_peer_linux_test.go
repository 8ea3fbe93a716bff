package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakePouch writes a stand-in for pouchdb-server's bin into a new peer
// folder: a node script with the given body.
func fakePouch(t *testing.T, body string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on PATH")
	}
	dir := t.TempDir()
	bin := pouchBin(dir)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStartPouch_StopEndsTheProcessGroup: what the server started dies
// with it, so a bench run leaves nothing listening.
func TestStartPouch_StopEndsTheProcessGroup(t *testing.T) {
	peer := fakePouch(t, `
const http = require('http'), fs = require('fs'), { spawn } = require('child_process');
const port = process.argv[process.argv.indexOf('--port') + 1];
const kid = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
fs.writeFileSync('pids', process.pid + ' ' + kid.pid);
http.createServer((req, res) => res.end(JSON.stringify({ version: 'fake' }))).listen(port, '127.0.0.1');
`)
	run := t.TempDir()
	p, err := startPouch(context.Background(), peer, run)
	if err != nil {
		t.Fatal(err)
	}
	if p.version != "fake" {
		t.Errorf("version = %q, want fake", p.version)
	}
	buf, err := os.ReadFile(filepath.Join(run, "1", "pids"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(buf)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	if len(pids) != 2 || !alive(pids[1]) {
		t.Fatalf("pids %v: the server's child is not running", pids)
	}
	p.stop()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("process %d still runs after stop", pid)
		}
	}
}

// TestStartPouch_ExitReportsItsLog: a server that dies at once is tried
// three times and its output is in the error.
func TestStartPouch_ExitReportsItsLog(t *testing.T) {
	peer := fakePouch(t, `console.error('kapot: broken install'); process.exit(3);`)
	run := t.TempDir()
	_, err := startPouch(context.Background(), peer, run)
	if !errors.Is(err, errPouchExited) || !strings.Contains(err.Error(), "kapot: broken install") {
		t.Fatalf("err = %v, want errPouchExited with the log", err)
	}
	if _, err := os.Stat(filepath.Join(run, "3", "out.log")); err != nil {
		t.Errorf("no third attempt: %v", err)
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	buf, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state …
	s := string(buf)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
