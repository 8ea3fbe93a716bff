package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// DB is one SQLite database file opened the way every Samenplan database is:
// WAL, foreign keys, a busy timeout, one writer connection that begins
// immediate transactions, and a pool of readers.
type DB struct {
	Path   string
	Writer *sql.DB
	Reader *sql.DB
}

// OpenDB opens (creating if needed) the database file at path. The settings
// are in the DSN so that every pooled connection gets them.
func OpenDB(path string) (*DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	q.Set("_cache_size", "-16000")
	w, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open writer %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open writer %s: %w", path, err)
	}
	q.Set("_txlock", "deferred")
	q.Set("_query_only", "true")
	r, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open readers %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return &DB{Path: path, Writer: w, Reader: r}, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	err1 := db.Reader.Close()
	err2 := db.Writer.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// Migrate applies, in name order, every *.sql file of fsys that is not yet
// recorded for component. Each file runs in its own transaction together with
// its record, so a failed migration leaves no trace.
func (db *DB) Migrate(ctx context.Context, component string, fsys fs.FS) error {
	if _, err := db.Writer.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (
		component TEXT NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
		PRIMARY KEY (component, name))`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.migrateFile(ctx, component, fsys, name); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) migrateFile(ctx context.Context, component string, fsys fs.FS, name string) error {
	tx, err := db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s/%s: %w", component, name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM migrations WHERE component = ? AND name = ?`, component, name).Scan(&n); err != nil {
		return fmt.Errorf("migration %s/%s: %w", component, name, err)
	} else if n > 0 {
		return nil
	}
	buf, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("migration %s/%s: %w", component, name, err)
	}
	if _, err := tx.ExecContext(ctx, string(buf)); err != nil {
		return fmt.Errorf("migration %s/%s: %w", component, name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (component, name) VALUES (?, ?)`, component, strings.TrimSpace(name)); err != nil {
		return fmt.Errorf("migration %s/%s: %w", component, name, err)
	}
	return tx.Commit()
}

// IntegrityCheck runs PRAGMA integrity_check and returns its verdict ("ok" when sound).
func (db *DB) IntegrityCheck(ctx context.Context) (string, error) {
	var res string
	if err := db.Reader.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return "", fmt.Errorf("integrity check %s: %w", db.Path, err)
	}
	return res, nil
}
