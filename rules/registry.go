package rules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/samenplan/samenplan"
)

// Load statuses of a region.
const (
	// LoadOK: the files on disk are the active version.
	LoadOK = "ok"
	// LoadError: the files on disk were rejected; the last good version (if
	// any) stays active and Errors says why.
	LoadError = "error"
)

// RegionStatus is what the coordinator sees about a region's rules.
type RegionStatus struct {
	Region string `json:"region"`
	// ActiveVersion is the hash of the active version, "" when none is.
	ActiveVersion string    `json:"active_version"`
	ActivatedAt   time.Time `json:"activated_at,omitzero"`
	ActivatedBy   string    `json:"activated_by"`
	// Source is how the active version came in (startup, watch, put, rollback).
	Source string `json:"source"`
	// Dir is the region's folder.
	Dir        string `json:"dir"`
	LoadStatus string `json:"load_status"`
	// AttemptedVersion is the hash of the files last tried, when rejected.
	AttemptedVersion string       `json:"attempted_version,omitempty"`
	CheckedAt        time.Time    `json:"checked_at,omitzero"`
	Errors           []Diagnostic `json:"errors"`
	Warnings         []Diagnostic `json:"warnings"`
	TestsPassed      int          `json:"tests_passed"`
	TestsFailed      int          `json:"tests_failed"`
}

// RegistryOptions configure a Registry; zero values pick the defaults.
type RegistryOptions struct {
	Versions VersionStore     // default: a new MemoryVersions
	Now      func() time.Time // default: time.Now
	Logger   *slog.Logger     // default: discard
	Debounce time.Duration    // default: 200ms
}

// Registry holds the active rules of every region of a directory and swaps a
// region atomically when its files change and pass compile, lint and tests.
// Readers (Region) never block; writers (reloads, Put, Rollback) are
// serialised.
type Registry struct {
	dir      string
	versions VersionStore
	now      func() time.Time
	log      *slog.Logger
	debounce time.Duration

	active   atomic.Pointer[map[string]*Region]
	mu       sync.Mutex // serialises reloads and writes; guards status
	status   map[string]*RegionStatus
	watching chan struct{}
	once     sync.Once
}

// NewRegistry returns a Registry for dir with nothing active; call Load.
func NewRegistry(dir string, opts RegistryOptions) *Registry {
	r := &Registry{dir: dir, versions: opts.Versions, now: opts.Now, log: opts.Logger, debounce: opts.Debounce,
		status: map[string]*RegionStatus{}, watching: make(chan struct{})}
	if r.versions == nil {
		r.versions = &MemoryVersions{}
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.debounce <= 0 {
		r.debounce = 200 * time.Millisecond
	}
	empty := map[string]*Region{}
	r.active.Store(&empty)
	return r
}

// Dir returns the rules directory.
func (r *Registry) Dir() string { return r.dir }

// Versions returns the version store.
func (r *Registry) Versions() VersionStore { return r.versions }

// Load loads every region folder of the directory, activating those that
// pass. It fails only when the directory cannot be read; a region that does
// not pass is reported by Status.
func (r *Registry) Load(ctx context.Context) error {
	names, err := RegionNames(r.dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		r.reload(ctx, name, SourceStartup)
	}
	return nil
}

// Region returns the active rules of region name, or false when it has none.
func (r *Registry) Region(name string) (*Region, bool) {
	reg, ok := (*r.active.Load())[name]
	return reg, ok
}

// Regions returns the names of the regions known to the registry (active or
// not), sorted.
func (r *Registry) Regions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.status))
	for n := range r.status {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Status returns the status of region name, or false when the registry has
// never seen it.
func (r *Registry) Status(name string) (RegionStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.status[name]
	if !ok {
		return RegionStatus{}, false
	}
	out := *st
	out.Errors = append([]Diagnostic{}, st.Errors...)
	out.Warnings = append([]Diagnostic{}, st.Warnings...)
	return out, true
}

// History returns the activated versions of region, newest first.
func (r *Registry) History(ctx context.Context, region string) ([]Version, error) {
	return r.versions.List(ctx, region)
}

// Reload re-reads region name from disk now and activates it if it passes.
func (r *Registry) Reload(ctx context.Context, name string) RegionStatus {
	r.reload(ctx, name, SourceWatch)
	st, _ := r.Status(name)
	return st
}

func (r *Registry) statusOf(name string) *RegionStatus {
	st, ok := r.status[name]
	if !ok {
		st = &RegionStatus{Region: name, Dir: filepath.Join(r.dir, name), LoadStatus: LoadError,
			Errors: []Diagnostic{}, Warnings: []Diagnostic{}}
		r.status[name] = st
	}
	return st
}

// validate compiles, lints and tests files of region name; it returns the
// region only when there are no errors and every test passes (CheckFiles).
func validate(name, folder string, files map[string][]byte) (*Region, []Diagnostic, int, int) {
	c := CheckFiles(name, folder, files)
	return c.Region, c.Diagnostics, c.Passed, c.Failed
}

func (r *Registry) reload(ctx context.Context, name, source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.statusOf(name)
	now := r.now()
	folder := filepath.Join(r.dir, name)
	if _, err := os.Stat(folder); errors.Is(err, fs.ErrNotExist) {
		st.LoadStatus, st.CheckedAt = LoadError, now
		st.Errors = []Diagnostic{{File: folder, Line: 1, Column: 1, RuleID: name, Severity: SeverityError, Code: CodeMissingFile,
			Message: "region folder is gone; the last good version stays active"}}
		r.log.Warn("rules folder removed", "region", name)
		return
	}
	files, diags := ReadRegionFiles(r.dir, name)
	hash := RegionVersion(files)
	if !HasErrors(diags) && hash == st.ActiveVersion && st.LoadStatus == LoadOK {
		return
	}
	var reg *Region
	passed, failed := 0, 0
	if !HasErrors(diags) {
		var more []Diagnostic
		reg, more, passed, failed = validate(name, folder, files)
		diags = append(diags, more...)
	}
	r.settle(ctx, st, reg, diags, hash, passed, failed, source, "", now)
	if reg == nil && source == SourceStartup {
		r.fallBackToRecorded(ctx, st, name, folder)
	}
}

// fallBackToRecorded activates the region's latest recorded version when the
// files on disk do not pass at startup, so that a server restarted over a
// broken edit keeps the rules it last ran with. The status keeps the disk's
// errors (load status error) so the coordinator still sees what to fix.
// The caller holds r.mu.
func (r *Registry) fallBackToRecorded(ctx context.Context, st *RegionStatus, name, folder string) {
	if _, ok := r.Region(name); ok {
		return
	}
	versions, err := r.versions.List(ctx, name)
	if err != nil || len(versions) == 0 {
		return
	}
	v := versions[0]
	files := make(map[string][]byte, len(v.Files))
	for _, f := range v.Files {
		files[strings.TrimSuffix(f.Name, ".yaml")] = []byte(f.Content)
	}
	reg, _, _, _ := validate(name, folder, files)
	if reg == nil {
		r.log.Error("recorded rules version no longer passes; region has no active rules", "region", name, "version", v.Hash)
		return
	}
	r.swap(name, reg)
	st.ActiveVersion, st.ActivatedAt, st.ActivatedBy, st.Source = v.Hash, v.ActivatedAt, v.ActivatedBy, v.Source
	r.log.Warn("rules on disk rejected at startup; the last recorded version is active", "region", name, "version", v.Hash)
}

// settle records the outcome of an attempt in st; with reg non-nil it
// records the version and activates it. It returns a *ValidationError when
// reg is nil, and an error when the version could not be recorded (then
// nothing is activated).
func (r *Registry) settle(ctx context.Context, st *RegionStatus, reg *Region, diags []Diagnostic, hash string,
	passed, failed int, source, user string, now time.Time) error {
	errs, warns := Split(diags)
	st.CheckedAt, st.Errors, st.Warnings, st.TestsPassed, st.TestsFailed = now, errs, warns, passed, failed
	if reg == nil {
		st.LoadStatus, st.AttemptedVersion = LoadError, hash
		r.log.Warn("rules rejected; last good version stays active", "region", st.Region, "version", hash, "errors", len(errs))
		return &ValidationError{Region: st.Region, Diagnostics: diags}
	}
	if hash == st.ActiveVersion && source != SourceRollback {
		st.LoadStatus, st.AttemptedVersion = LoadOK, ""
		return nil
	}
	v := Version{Region: st.Region, Hash: hash, Files: reg.Files, ActivatedAt: now, ActivatedBy: user, Source: source}
	if err := r.record(ctx, v); err != nil {
		st.LoadStatus, st.AttemptedVersion = LoadError, hash
		st.Errors = append(st.Errors, Diagnostic{File: st.Dir, Line: 1, Column: 1, RuleID: st.Region, Severity: SeverityError,
			Code: CodeIO, Message: "the version could not be recorded, so it is not activated"})
		r.log.Error("record rules version", "region", st.Region, "version", hash, "err", err)
		return fmt.Errorf("record rules version of %s: %w", st.Region, err)
	}
	r.swap(st.Region, reg)
	st.ActiveVersion, st.ActivatedAt, st.ActivatedBy, st.Source = hash, now, user, source
	st.LoadStatus, st.AttemptedVersion = LoadOK, ""
	r.log.Info("rules activated", "region", st.Region, "version", hash, "source", source)
	return nil
}

// record stores v unless the store's latest activation of the region already
// has v's hash and v comes from disk (a restart is no new activation).
func (r *Registry) record(ctx context.Context, v Version) error {
	if v.Source == SourceStartup {
		if list, err := r.versions.List(ctx, v.Region); err == nil && len(list) > 0 && list[0].Hash == v.Hash {
			return nil
		}
	}
	return r.versions.Record(ctx, v)
}

func (r *Registry) swap(name string, reg *Region) {
	old := *r.active.Load()
	next := make(map[string]*Region, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = reg
	r.active.Store(&next)
}

// Put validates content as the new ruleset file (region, intake, capacity
// or signals) of region together with the region's other files on disk; if
// they compile, lint without errors and pass their tests, it records the
// version, writes the file atomically (temp file and rename) and activates
// it. Otherwise nothing is written and the error is a *ValidationError
// (code invalid). An unknown region gives code not_found.
func (r *Registry) Put(ctx context.Context, region, ruleset string, content []byte, user string) (RegionStatus, error) {
	if !contains(Rulesets, ruleset) {
		return RegionStatus{}, samenplan.Errorf(samenplan.EINVALID, "unknown ruleset %q (want region, intake, capacity or signals)", ruleset)
	}
	if len(content) > MaxFileSize {
		return RegionStatus{}, samenplan.Errorf(samenplan.ETOOLARGE, "a rule file may be at most %d bytes", MaxFileSize)
	}
	err := r.write(ctx, region, SourcePut, user, func(files map[string][]byte) { files[ruleset] = content })
	st, _ := r.Status(region)
	return st, err
}

// Rollback activates the recorded version hash of region again, after
// validating it like Put, and writes its files to the directory.
func (r *Registry) Rollback(ctx context.Context, region, hash, user string) (RegionStatus, error) {
	v, err := r.versions.Get(ctx, region, hash)
	if err != nil {
		return RegionStatus{}, err
	}
	err = r.write(ctx, region, SourceRollback, user, func(files map[string][]byte) {
		for _, f := range v.Files {
			files[strings.TrimSuffix(f.Name, ".yaml")] = []byte(f.Content)
		}
	})
	st, _ := r.Status(region)
	return st, err
}

func (r *Registry) write(ctx context.Context, region, source, user string, edit func(map[string][]byte)) error {
	if !ValidRegionName(region) {
		return samenplan.Errorf(samenplan.EINVALID, "invalid region name %q", region)
	}
	folder := filepath.Join(r.dir, region)
	if fi, err := os.Stat(folder); err != nil || !fi.IsDir() {
		return samenplan.Errorf(samenplan.ENOTFOUND, "region %s has no rules folder", region)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.statusOf(region)
	files, _ := ReadRegionFiles(r.dir, region)
	old := make(map[string][]byte, len(files))
	for k, v := range files {
		old[k] = v
	}
	edit(files)
	hash := RegionVersion(files)
	reg, diags, passed, failed := validate(region, folder, files)
	if reg == nil {
		// A rejected Put changes nothing: not the files, not the status.
		return &ValidationError{Region: region, Diagnostics: diags}
	}
	now := r.now()
	// Write first, then record and swap: if writing fails the active
	// version and the disk still agree.
	for _, rs := range Rulesets {
		if prev, ok := old[rs]; ok && string(prev) == string(files[rs]) {
			continue
		}
		if err := writeAtomic(filepath.Join(folder, rs+".yaml"), files[rs]); err != nil {
			return fmt.Errorf("write %s/%s.yaml: %w", region, rs, err)
		}
	}
	return r.settle(ctx, st, reg, diags, hash, passed, failed, source, user, now)
}

// writeAtomic writes b to path via a temp file in the same folder and a
// rename, so a reader sees the old file or the new one, never half of it.
func writeAtomic(path string, b []byte) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Watching is closed once Watch has its watches in place.
func (r *Registry) Watching() <-chan struct{} { return r.watching }

// Watch follows the directory with fsnotify until ctx is done, reloading a
// region ~200 ms (the debounce) after the last change to its folder. It
// returns nil when ctx is done, or an error if the watcher cannot start.
func (r *Registry) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch rules: %w", err)
	}
	defer w.Close()
	if err := w.Add(r.dir); err != nil {
		return fmt.Errorf("watch rules directory %s: %w", r.dir, err)
	}
	names, err := RegionNames(r.dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := w.Add(filepath.Join(r.dir, n)); err != nil {
			r.log.Warn("watch region folder", "region", n, "err", err)
		}
	}
	r.once.Do(func() { close(r.watching) })

	pending := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := r.regionOf(ev.Name)
			if name == "" {
				continue
			}
			if ev.Name == filepath.Join(r.dir, name) && ev.Has(fsnotify.Create) {
				if err := w.Add(ev.Name); err != nil {
					r.log.Warn("watch region folder", "region", name, "err", err)
				}
			}
			pending[name] = true
			timer.Reset(r.debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("rules watcher", "err", err)
		case <-timer.C:
			for name := range pending {
				r.reload(ctx, name, SourceWatch)
				delete(pending, name)
			}
		}
	}
}

// regionOf returns the region folder name an event path belongs to, or "".
func (r *Registry) regionOf(path string) string {
	rel, err := filepath.Rel(r.dir, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return ""
	}
	name, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || !ValidRegionName(name) {
		return ""
	}
	return name
}
