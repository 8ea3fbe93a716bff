package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view/viewtest"
)

// StartupReport holds the startup figures of `samenplan bench`: a fresh
// `samenplan serve` process over a data directory of about a million fields,
// started Runs times. Times run from exec; memory is the VmRSS of that
// process alone (/proc/<pid>/status), nothing else having run in it.
type StartupReport struct {
	Fields    int // fields in the data directory
	Runs      int
	Listen    []time.Duration // exec → "listens on" printed (OpenApp and the read model done)
	Healthy   []time.Duration // exec → first 200 from /healthz
	FirstPull []time.Duration // exec → a new device of a coach has pulled all her scopes
	Pull      []time.Duration // that pull alone (all pages)
	PullField int             // fields pulled: her 10 families and the region's intake scope
	RSSListen []int64         // VmRSS once /healthz answered, bytes
	RSSPull   []int64         // VmRSS after the caseload pull
	HWM       []int64         // VmHWM (peak resident) after the pull
}

// startupRuns is how many fresh processes are timed (the median is shown).
const startupRuns = 3

// benchStartup seeds dir/startup with cfg.StartupFamilies families over 50
// coaches (viewtest.Seed, ~100 fields each) plus the caseload of one more
// coach (10 families of 124 contacts, as phase 4), then times fresh
// `samenplan serve` processes over it.
func benchStartup(ctx context.Context, cfg BenchConfig, dir string, argon auth.Argon2Params, progress io.Writer) (StartupReport, error) {
	rep := StartupReport{Runs: startupRuns}
	step := time.Now()
	sdir := filepath.Join(dir, "startup")
	scfg := ServeConfig{Addr: "127.0.0.1:0", Data: sdir, Rules: cfg.Rules, Argon2: argon}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sapp, err := OpenApp(ctx, scfg, logger)
	if err != nil {
		return rep, err
	}
	sregion, ok := sapp.Stores.Region(cfg.Region)
	if !ok {
		sapp.Close(context.Background())
		return rep, fmt.Errorf("bench: no region %q", cfg.Region)
	}
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	seeded, err := viewtest.Seed(ctx, sregion, viewtest.Options{Families: cfg.StartupFamilies, Coaches: ids, Today: brusselsNow()})
	if err != nil {
		sapp.Close(context.Background())
		return rep, fmt.Errorf("seed: %w", err)
	}
	u, err := sapp.Auth.CreateUser(ctx, auth.NewUser{Username: "coach.bench.startup", DisplayName: "coach.bench.startup", Role: auth.RoleCoach,
		Regions: []string{cfg.Region}, Password: benchPassword, FTE: 1}, auth.System("bench"))
	if err != nil {
		sapp.Close(context.Background())
		return rep, err
	}
	for f := 0; f < 10; f++ {
		if _, err := benchFamily(ctx, sregion, cfg.Region, u.ID, 124); err != nil {
			sapp.Close(context.Background())
			return rep, err
		}
	}
	if err := sapp.Close(context.Background()); err != nil {
		return rep, err
	}
	rep.Fields = seeded.Fields + 10*(4+6+124*8)
	fmt.Fprintf(progress, "startup: seeded %d fields in %s\n", rep.Fields, time.Since(step).Round(time.Millisecond))

	exe, err := os.Executable()
	if err != nil {
		return rep, err
	}
	for i := 0; i < startupRuns; i++ {
		if err := startOnce(ctx, exe, scfg, u.Username, u.ID, &rep); err != nil {
			return rep, fmt.Errorf("startup run %d: %w", i+1, err)
		}
		fmt.Fprintf(progress, "startup: run %d: listens after %s, caseload pulled after %s, %d MB resident\n", i+1,
			rep.Listen[i].Round(time.Millisecond), rep.FirstPull[i].Round(time.Millisecond), rep.RSSPull[i]>>20)
	}
	return rep, nil
}

var listensOn = regexp.MustCompile(`listens on (http://\S+)`)

// startOnce starts `exe serve` over scfg.Data, measures it and stops it.
func startOnce(ctx context.Context, exe string, scfg ServeConfig, username, userID string, rep *StartupReport) error {
	cmd := exec.CommandContext(ctx, exe, "serve", "--addr", "127.0.0.1:0", "--data", scfg.Data, "--rules", scfg.Rules)
	// SAMENPLAN_RUN_MAIN makes a test binary (TestBenchQuick) act as the
	// command; the real binary ignores it.
	cmd.Env = append(os.Environ(), "SAMENPLAN_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listensOn.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(2 * time.Minute):
		return errors.New("the server did not say it listens within 2 minutes")
	}
	rep.Listen = append(rep.Listen, time.Since(t0))
	hc := &http.Client{Timeout: 30 * time.Second}
	for {
		resp, err := hc.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(t0) > 2*time.Minute {
			return fmt.Errorf("/healthz: no 200 within 2 minutes (%v)", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	rep.Healthy = append(rep.Healthy, time.Since(t0))
	pid := cmd.Process.Pid
	rss, _, err := processMemory(pid)
	if err != nil {
		return err
	}
	rep.RSSListen = append(rep.RSSListen, rss)

	b := &benchHTTP{url: url, http: hc}
	d, err := b.login(username, userID)
	if err != nil {
		return err
	}
	t1 := time.Now()
	n, _, err := d.pullAll(nil)
	if err != nil {
		return err
	}
	rep.Pull = append(rep.Pull, time.Since(t1))
	rep.FirstPull = append(rep.FirstPull, time.Since(t0))
	rep.PullField = n
	rss, hwm, err := processMemory(pid)
	if err != nil {
		return err
	}
	rep.RSSPull, rep.HWM = append(rep.RSSPull, rss), append(rep.HWM, hwm)
	return nil
}

// processMemory reads VmRSS and VmHWM of process pid, in bytes.
func processMemory(pid int) (rss, hwm int64, err error) {
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(buf), "\n") {
		for key, dst := range map[string]*int64{"VmRSS:": &rss, "VmHWM:": &hwm} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("read %s of %d: %w", key, pid, err)
				}
				*dst = kb << 10
			}
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

func medianOf[T int64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// rows prints the startup rows of the bench table.
func (r StartupReport) rows(tw *tabwriter.Writer, mark func(bool) string) {
	if r.Runs == 0 {
		return
	}
	all := func(v []time.Duration) string {
		var s []string
		for _, d := range v {
			s = append(s, d.Round(time.Millisecond).String())
		}
		return strings.Join(s, ", ")
	}
	mb := func(v []int64) string {
		var s []string
		for _, b := range v {
			s = append(s, strconv.FormatInt(b>>20, 10))
		}
		return strings.Join(s, ", ") + " MB"
	}
	listen, rssListen, rssPull := medianOf(r.Listen), medianOf(r.RSSListen), medianOf(r.RSSPull)
	fmt.Fprintf(tw, "startup, fresh serve over %d fields: exec → listens (median of %d)\t%s (%s)\t< 2 s\t%s\n",
		r.Fields, len(r.Listen), listen.Round(time.Millisecond), all(r.Listen), mark(listen < 2*time.Second))
	fmt.Fprintf(tw, "exec → /healthz 200\t%s (%s)\t\t\n", medianOf(r.Healthy).Round(time.Millisecond), all(r.Healthy))
	fmt.Fprintf(tw, "exec → a coach's scopes (%d fields: 10 families, the intake) pulled by a new device\t%s (%s); the pull alone %s\t\t\n",
		r.PullField, medianOf(r.FirstPull).Round(time.Millisecond), all(r.FirstPull), all(r.Pull))
	fmt.Fprintf(tw, "resident memory of that process, started\t%d MB (%s)\t< 300 MB\t%s\n", rssListen>>20, mb(r.RSSListen), mark(rssListen < 300<<20))
	fmt.Fprintf(tw, "resident memory after the caseload pull (peak)\t%d MB (%s; peak %s)\t< 300 MB\t%s\n",
		rssPull>>20, mb(r.RSSPull), mb(r.HWM), mark(rssPull < 300<<20))
}
