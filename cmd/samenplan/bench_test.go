package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBenchQuick runs `samenplan bench --quick` (a few seconds) so that the
// load command of `make bench` cannot rot: every phase runs against the real
// server, no request fails, and the one table is printed with every row.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("bench --quick takes a few seconds")
	}
	var out bytes.Buffer
	code := Main(context.Background(), []string{"bench", "--quick", "--rules", filepath.Join(repoRoot(t), "rules", "regions")}, nil, &out, &out)
	t.Log(out.String())
	if code != 0 {
		t.Fatalf("bench --quick exited %d", code)
	}
	if !regexp.MustCompile(`(?m)^request errors +0 `).MatchString(out.String()) {
		t.Error("requests failed (see the table)")
	}
	// 20 devices writing a contact every second on average for the 1.5 s
	// of the mixed phase: some must have been written and timed.
	if !regexp.MustCompile(`(?m)^contact push by a polling device \(8 fields\), p50/p95/p99 +\S+ ms / \S+ ms / \S+ ms \(n=[1-9]`).MatchString(out.String()) {
		t.Error("no contact was pushed by a polling device (see the table)")
	}
	for _, row := range []string{"ratio push ÷ ceiling", "push latency p50/p95/p99", "pull latency p50/p95/p99",
		"empty pull, 20 devices polling, server p99", "caseload pull (10020 fields)", "resident memory after the load",
		"startup, fresh serve over", "resident memory after the caseload pull", "request errors  "} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table has no row %q", row)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"bench", "--devices", "0"}, nil, &out, &out); code != 2 {
		t.Fatalf("bench --devices 0 exited %d, want 2: %s", code, out.String())
	}
}
