package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the embedded migrations of a region database
// (component "cases").
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	return sub
}

// Options configure the stores of one server.
type Options struct {
	// Clock is the server's hybrid logical clock; it stamps server writes
	// and observes every accepted stamp. Default: a clock for node "server".
	Clock *crdt.Clock
	// Now is the wall clock for received_at and skew checks. Default time.Now.
	Now func() time.Time
	// MaxAhead is how far ahead of Now a pushed stamp may be. Default 5 min.
	MaxAhead time.Duration
	// OnCommit, when set, is called after every committed push or server
	// write that applied something, outside the transaction, in commit order
	// per region. It must not call back into a write method of the region.
	OnCommit func(Commit)
}

// Commit describes one committed write transaction of a region.
type Commit struct {
	Region string
	// Changes are the writes that became a field's value, in log order.
	Changes []protocol.Change
	// MaxSeq is the highest change_log seq after the commit.
	MaxSeq int64
	// Device is the device whose push this was ("" for a server write).
	Device string
}

// Stores holds the main database and one database per region.
type Stores struct {
	// Main holds accounts, devices and the audit log (owned by other packages).
	Main    *DB
	regions map[string]*Region
	names   []string
}

var regionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Open opens <dataDir>/main.db and <dataDir>/regions/<region>.db for every
// region, creating and migrating them as needed. Region names must be
// lowercase identifiers ([a-z][a-z0-9_-]*).
func Open(ctx context.Context, dataDir string, regions []string, opts Options) (*Stores, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Clock == nil {
		opts.Clock = crdt.NewClock("server", opts.Now)
	}
	if opts.MaxAhead == 0 {
		opts.MaxAhead = 5 * time.Minute
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "regions"), 0o750); err != nil {
		return nil, fmt.Errorf("open stores: %w", err)
	}
	s := &Stores{regions: make(map[string]*Region)}
	var err error
	if s.Main, err = OpenDB(filepath.Join(dataDir, "main.db")); err != nil {
		return nil, err
	}
	for _, name := range regions {
		if !regionNameRE.MatchString(name) {
			s.Close()
			return nil, fmt.Errorf("open stores: invalid region name %q", name)
		}
		if _, dup := s.regions[name]; dup {
			continue
		}
		r, err := openRegion(ctx, filepath.Join(dataDir, "regions", name+".db"), name, opts)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.regions[name] = r
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	return s, nil
}

// Region returns the named region's store.
func (s *Stores) Region(name string) (*Region, bool) {
	r, ok := s.regions[name]
	return r, ok
}

// Regions returns the region names, sorted.
func (s *Stores) Regions() []string { return append([]string(nil), s.names...) }

// Ping checks that every database answers a query.
func (s *Stores) Ping(ctx context.Context) error {
	if err := s.Main.Reader.PingContext(ctx); err != nil {
		return fmt.Errorf("ping main: %w", err)
	}
	for _, name := range s.names {
		var one int
		if err := s.regions[name].db.Reader.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
			return fmt.Errorf("ping region %s: %w", name, err)
		}
	}
	return nil
}

// Close closes every database.
func (s *Stores) Close() error {
	var errs []error
	for _, name := range s.names {
		errs = append(errs, s.regions[name].db.Close())
	}
	errs = append(errs, s.Main.Close())
	return errors.Join(errs...)
}

// Backup writes a consistent copy of every database into dir (created if
// needed) while writes continue: main.db and regions/<region>.db. It fails,
// leaving what it wrote, if a target file already exists. It returns the
// paths written.
func (s *Stores) Backup(ctx context.Context, dir string) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "regions"), 0o750); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	type job struct {
		db   *DB
		path string
	}
	jobs := []job{{s.Main, filepath.Join(dir, "main.db")}}
	for _, name := range s.names {
		jobs = append(jobs, job{s.regions[name].db, filepath.Join(dir, "regions", name+".db")})
	}
	var done []string
	for _, j := range jobs {
		if _, err := os.Stat(j.path); err == nil {
			return done, fmt.Errorf("backup %s: target exists", j.path)
		}
		if err := j.db.vacuumInto(ctx, j.path); err != nil {
			return done, err
		}
		done = append(done, j.path)
	}
	return done, nil
}

// vacuumInto copies the database into path in one read transaction, so
// writers go on meanwhile (WAL). It uses a connection of its own: the reader
// pool is query-only.
func (db *DB) vacuumInto(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite3", "file:"+db.Path+"?_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("backup %s: %w", db.Path, err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("backup %s: %w", db.Path, err)
	}
	return nil
}
