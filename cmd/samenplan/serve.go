package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	coachapp "github.com/samenplan/samenplan/clients/mobile/app"
	"github.com/samenplan/samenplan/clients/web"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/store"
)

// ServeConfig is what `samenplan serve` is started with.
type ServeConfig struct {
	Addr      string
	Data      string
	Rules     string
	Demo      bool
	BodyLimit int64
	// Argon2 overrides the password hashing cost (tests use cheap ones).
	Argon2 auth.Argon2Params
}

// ParseServe reads serve's flags, with the environment as defaults.
func ParseServe(args []string) (ServeConfig, error) {
	demo, _ := strconv.ParseBool(envOr("SAMENPLAN_DEMO", "false"))
	limit, _ := strconv.ParseInt(envOr("SAMENPLAN_BODY_LIMIT", strconv.Itoa(server.DefaultBodyLimit)), 10, 64)
	cfg := ServeConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Addr, "addr", envOr("SAMENPLAN_ADDR", ":8080"), "listen address")
	fs.StringVar(&cfg.Data, "data", envOr("SAMENPLAN_DATA", "data"), "data directory (SQLite files)")
	fs.StringVar(&cfg.Rules, "rules", envOr("SAMENPLAN_RULES", "rules/regions"), "rules directory, one folder per region")
	fs.BoolVar(&cfg.Demo, "demo", demo, "create demo accounts and cases in an empty data directory")
	fs.Int64Var(&cfg.BodyLimit, "body-limit", limit, "largest request body in bytes")
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("%w: serve: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: serve: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return cfg, nil
}

// App is the wired program: stores, auth, audit and the HTTP server.
type App struct {
	Config ServeConfig
	Logger *slog.Logger
	Clock  *crdt.Clock
	Stores *store.Stores
	Audit  *audit.Logger
	Auth   *auth.Service
	Server *server.Server
	// Rules holds the active rules of every region and follows the rules
	// directory until Close.
	Rules *rules.Registry
	// View is the read model of consolidated cases.
	View        *view.Model
	stopRules   context.CancelFunc
	rulesDone   chan error
	stopApplier context.CancelFunc
	applierDone chan struct{}
}

// OpenApp opens every database and builds the server; it does not listen.
func OpenApp(ctx context.Context, cfg ServeConfig, logger *slog.Logger) (*App, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	regions, err := regionNames(cfg.Rules)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Logger: logger, Clock: crdt.NewClock("server", nil)}
	// The read model follows every commit through its queue (the writer
	// does not wait for it; reads do, server/view/queue.go); it is built
	// below, before the server serves or the demo is seeded, so a nil model
	// here sees nothing.
	onCommit := func(c store.Commit) {
		if a.View != nil {
			a.View.Enqueue(c)
		}
	}
	a.Stores, err = store.Open(ctx, cfg.Data, regions, store.Options{Clock: a.Clock, OnCommit: onCommit})
	if err != nil {
		return nil, fmt.Errorf("open stores: %w", err)
	}
	a.Audit, err = audit.Open(ctx, a.Stores.Main, audit.Config{})
	if err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	a.Auth, err = auth.Open(ctx, a.Stores.Main, auth.Config{Audit: a.Audit, Logger: logger, Argon2: cfg.Argon2})
	if err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("open auth: %w", err)
	}
	if err := server.Migrate(ctx, a.Stores); err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("migrate workflow tables: %w", err)
	}
	versions, err := server.OpenRuleVersions(ctx, a.Stores.Main)
	if err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("open rule versions: %w", err)
	}
	a.Rules = rules.NewRegistry(cfg.Rules, rules.RegistryOptions{Versions: versions, Logger: logger})
	if err := a.Rules.Load(ctx); err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("load rules: %w", err)
	}
	watchCtx, stop := context.WithCancel(context.Background())
	a.stopRules, a.rulesDone = stop, make(chan error, 1)
	go func() {
		err := a.Rules.Watch(watchCtx)
		if err != nil {
			logger.Error("rules watcher stopped; edits on disk are not picked up until a restart", "err", err)
		}
		a.rulesDone <- err
	}()
	model := view.New(a.Stores, a.Rules, brusselsNow)
	model.SetLogger(logger)
	if err := model.Build(ctx); err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("build read model: %w", err)
	}
	a.View = model
	applierCtx, stopApplier := context.WithCancel(context.Background())
	a.stopApplier, a.applierDone = stopApplier, make(chan struct{})
	go func() {
		defer close(a.applierDone)
		model.RunApplier(applierCtx)
	}()
	go model.RunDaily(watchCtx, func(err error) { logger.Error("daily refresh of the read model", "err", err) })
	go followRuleVersions(watchCtx, a.Rules, model)
	a.Server = server.New(server.Config{
		Addr: cfg.Addr, BodyLimit: cfg.BodyLimit, Logger: logger,
		Stores: a.Stores, Auth: a.Auth, Audit: a.Audit, Clock: a.Clock, Version: version, Rules: a.Rules, View: a.View,
		Now: brusselsNow, Static: serveClients,
	})
	return a, nil
}

// serveClients serves the embedded clients: the web client for coordinators,
// reviewers and admins at / (assets under /app/) and the coach app at /coach/.
func serveClients(e *echo.Echo) {
	web.Register(e)
	coachapp.Register(e)
}

// Close shuts the server down gracefully, then closes the databases.
func (a *App) Close(ctx context.Context) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if a.Server != nil {
		keep(a.Server.Close(ctx))
	}
	if a.stopApplier != nil { // after the server: every commit it made is applied
		a.stopApplier()
		<-a.applierDone
		a.stopApplier = nil
	}
	if a.stopRules != nil {
		a.stopRules()
		<-a.rulesDone // a watcher that failed to start was logged then
		a.stopRules = nil
	}
	if a.Auth != nil {
		keep(a.Auth.Close())
	}
	if a.Audit != nil {
		keep(a.Audit.Close())
	}
	if a.Stores != nil {
		keep(a.Stores.Close())
	}
	return first
}

// regionNames lists the region folders (those holding a region.yaml).
func regionNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read rules directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "region.yaml")); err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("rules directory %s holds no region folder with a region.yaml", dir)
	}
	sort.Strings(names)
	return names, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := ParseServe(args)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	app, err := OpenApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	var logins []DemoLogin
	if cfg.Demo {
		if logins, err = SeedDemo(ctx, app); err != nil {
			app.Close(context.Background())
			return fmt.Errorf("demo data: %w", err)
		}
	}
	if err := app.Server.Open(); err != nil {
		app.Close(context.Background())
		return err
	}
	fmt.Fprintf(stdout, "Samenplan %s luistert op / listens on %s (data: %s, regio's / regions: %v)\n",
		version, app.Server.URL(), cfg.Data, app.Stores.Regions())
	printLogins(stdout, app.Server.URL(), logins)
	<-ctx.Done()
	fmt.Fprintln(stdout, "Samenplan stopt / shutting down…")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return app.Close(shutdown)
}

// brussels is the zone of the programmes' "today" (ages, days since contact).
var brussels = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		return time.Local
	}
	return loc
}()

func brusselsNow() time.Time { return time.Now().In(brussels) }

// followRuleVersions re-evaluates a region in the read model whenever its
// active rule version changes (an edit on disk, a PUT, a rollback).
func followRuleVersions(ctx context.Context, reg *rules.Registry, model *view.Model) {
	active := map[string]string{}
	for _, name := range reg.Regions() {
		if st, ok := reg.Status(name); ok {
			active[name] = st.ActiveVersion
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, name := range reg.Regions() {
			st, ok := reg.Status(name)
			if ok && st.ActiveVersion != active[name] {
				active[name] = st.ActiveVersion
				model.RulesChanged(name)
			}
		}
	}
}
