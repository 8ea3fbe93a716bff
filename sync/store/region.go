package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/schema"
)

// Roles of an Actor. RoleServer is the server itself (intake decisions,
// reassignment, quarantine decisions).
const (
	RoleCoach       = "coach"
	RoleCoordinator = "coordinator"
	RoleReviewer    = "reviewer"
	RoleAdmin       = "admin"
	RoleServer      = "server"
)

// Actor is who reads or writes: a user on a device with a role.
type Actor struct {
	UserID   string
	DeviceID string
	Role     string
}

// writesAnything reports whether the actor may write every row of the region.
func (a Actor) writesAnything() bool { return a.Role == RoleCoordinator || a.Role == RoleServer }

// RegionScopePrefix starts the scope that covers every row of a region,
// held by coordinators and reviewers.
const RegionScopePrefix = "region:"

// Region is the case database of one region. Its methods are safe for
// concurrent use; writes are serialized.
type Region struct {
	name        string
	db          *DB
	opts        Options
	regionScope string
	intakeScope string

	mu    sync.Mutex // held across every write transaction and its OnCommit
	stmts map[string]*sql.Stmt

	walks      atomic.Int64 // walks that read rows for held scopes (the scope heads did not stop them)
	scopeWalks atomic.Int64 // of those, walks over the changed scopes' rows instead of the log
}

func openRegion(ctx context.Context, path, name string, opts Options) (*Region, error) {
	db, err := OpenDB(path)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "cases", Migrations()); err != nil {
		db.Close()
		return nil, fmt.Errorf("region %s: %w", name, err)
	}
	r := &Region{
		name: name, db: db, opts: opts,
		regionScope: RegionScopePrefix + name,
		intakeScope: schema.IntakeScope(name),
		stmts:       make(map[string]*sql.Stmt),
	}
	if err := r.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := r.observeRecent(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("region %s: %w", name, err)
	}
	return r, nil
}

// observeRecent lets the server's clock observe the stamps stored in the
// last MaxAhead (and a minute more) before now. A stamp is accepted at most
// MaxAhead ahead of the wall clock of its arrival, so only those can be
// ahead of the wall clock at start-up; without this, right after a restart
// the server would stamp its own writes, and answer server_hlc, below
// stamps it already holds. It reads the log backwards from its end and
// stops at the first batch older than that.
func (r *Region) observeRecent(ctx context.Context) error {
	cutoff := r.opts.Now().Add(-r.opts.MaxAhead - time.Minute).UnixMilli()
	var first int64 = -1
	rows, err := r.db.Reader.QueryContext(ctx, `SELECT id, received_at FROM log_batches ORDER BY id DESC`)
	if err != nil {
		return fmt.Errorf("read recent batches: %w", err)
	}
	for rows.Next() {
		var id, at int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return fmt.Errorf("read recent batches: %w", err)
		}
		if at < cutoff {
			break
		}
		first = id
	}
	rows.Close()
	if err := rows.Err(); err != nil || first < 0 {
		return err
	}
	rows, err = r.db.Reader.QueryContext(ctx, `SELECT hlc, batch FROM change_log ORDER BY seq DESC`)
	if err != nil {
		return fmt.Errorf("read recent stamps: %w", err)
	}
	defer rows.Close()
	var top string
	for rows.Next() {
		var h string
		var batch int64
		if err := rows.Scan(&h, &batch); err != nil {
			return fmt.Errorf("read recent stamps: %w", err)
		}
		if batch < first {
			break
		}
		top = max(top, h)
	}
	if err := rows.Err(); err != nil || top == "" {
		return err
	}
	st, err := crdt.ParseStamp(top)
	if err != nil {
		return fmt.Errorf("stored stamp %q: %w", top, err)
	}
	return r.opts.Clock.Observe(st, 0)
}

// Name returns the region's name.
func (r *Region) Name() string { return r.name }

// DB returns the region's database, for tests and tools (integrity checks).
func (r *Region) DB() *DB { return r.db }

// stmt returns the writer statement for query bound to tx. Statements
// listed in writerQueries are prepared once when the region opens (the
// writer pool has one connection, and while tx holds it nothing can be
// prepared on the pool); any other query is prepared on tx itself and lives
// as long as tx.
func (r *Region) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if s, ok := r.stmts[query]; ok {
		return tx.StmtContext(ctx, s), nil
	}
	s, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return s, nil
}

// prepare prepares the writer statements of every push, before any
// transaction holds the writer connection.
func (r *Region) prepare(ctx context.Context) error {
	for _, q := range writerQueries() {
		s, err := r.db.Writer.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("region %s: prepare %q: %w", r.name, q, err)
		}
		r.stmts[q] = s
	}
	return nil
}

// maxSeq returns the highest change_log seq ever handed out (rows are
// never deleted, so the highest present is the highest handed out).
func maxSeq(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM change_log`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read max seq: %w", err)
	}
	return n, nil
}

// familyOf returns the family id of a family scope, or "".
func familyOf(scope string) string {
	if f, ok := strings.CutPrefix(scope, schema.FamilyScopePrefix); ok {
		return f
	}
	return ""
}

// jsonKeys renders rows of identifiers as a JSON array of arrays for
// json_each. Callers pass only schema names and validated UUIDs, which need
// no escaping.
func jsonKeys(buf []byte, n int, row func(i int) []string) []byte {
	buf = append(buf[:0], '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		for j, s := range row(i) {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '"')
			buf = append(buf, s...)
			buf = append(buf, '"')
		}
		buf = append(buf, ']')
	}
	return append(buf, ']')
}

// jsonStrings renders a list of strings as a JSON array (escaping them).
func jsonStrings(ss []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quoteJSON(s))
	}
	b.WriteByte(']')
	return b.String()
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
