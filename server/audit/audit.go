// Package audit is the append-only audit log of Samenplan, kept in the main
// database: who did what, when, from which device and address. A trigger in
// the database refuses every UPDATE and DELETE of a logged entry.
//
// Two ways in: Log writes one entry synchronously, and Record queues an entry
// for a single goroutine that writes queued entries in batched transactions,
// so that logging every push and pull costs a channel send.
package audit

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Actions logged by the server. Other packages may log actions of their own;
// names are lowercase words joined by dots and never renamed once used.
const (
	ActionLogin        = "auth.login"
	ActionLoginFailed  = "auth.login_failed"
	ActionLoginLocked  = "auth.login_locked"
	ActionLogout       = "auth.logout"
	ActionRefreshReuse = "auth.refresh_reuse"
	ActionKeyRotate    = "auth.key_rotate"
	ActionKeyRetire    = "auth.key_retire"
	ActionDeviceRevoke = "device.revoke"
	ActionUserCreate   = "user.create"
	ActionUserPassword = "user.password"
	ActionUserDisable  = "user.disable"
	ActionUserEnable   = "user.enable"
	ActionUserUpdate   = "user.update"
	ActionPush         = "sync.push"
	ActionPull         = "sync.pull"
	ActionCaseRead     = "case.read"
	ActionDecision     = "intake.decision"
	ActionRuleChange   = "rules.activate"
	ActionExport       = "export"
	// Trajectories (server/trajectories.go): a status change (pause,
	// resume), a closure with its reason, an RTJ request from the family
	// plan, a (re)assignment of coaches.
	ActionTrajectoryStatus = "trajectory.status"
	ActionTrajectoryClose  = "trajectory.close"
	ActionTrajectoryRTJ    = "trajectory.rtj"
	ActionTrajectoryAssign = "trajectory.assign"
	// Quarantine decisions (server/quarantine.go).
	ActionQuarantineAccept  = "quarantine.accept"
	ActionQuarantineDiscard = "quarantine.discard"

	// ActionCaseList is a list that shows case content (the families list,
	// the intake board, the permanence page, the region's signals, a week's
	// decisions): target list:<region>, detail the view and the families
	// (and referrals) it showed, never their content.
	ActionCaseList = "case.list"
)

// TimeFormat is how times are stored: UTC, fixed width, so that text order is
// time order.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Entry is one line of the audit log. ID and, when zero, At are set when the
// entry is written. Detail, when set, must be JSON; anything else is stored
// as a JSON string.
type Entry struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	UserID     string          `json:"user_id,omitempty"`
	Username   string          `json:"username,omitempty"`
	Role       string          `json:"role,omitempty"`
	DeviceID   string          `json:"device_id,omitempty"`
	Action     string          `json:"action"`
	Region     string          `json:"region,omitempty"`
	TargetKind string          `json:"target_kind,omitempty"`
	TargetID   string          `json:"target_id,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	IP         string          `json:"ip,omitempty"`
	RequestID  string          `json:"request_id,omitempty"`
}

// Detail returns v as JSON for Entry.Detail; a value that cannot be encoded
// gives nil.
func Detail(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// Filter selects entries for Query. Empty fields match everything. From is
// inclusive, To exclusive. Before pages backwards: only entries with an id
// below it. Limit defaults to DefaultLimit and is capped at MaxLimit.
type Filter struct {
	User   string // user id or username
	Action string
	Target string // target id, or "kind:id"
	Region string
	From   time.Time
	To     time.Time
	Limit  int
	Before int64
}

// Query limits.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Config tunes a Logger. The zero value is usable.
type Config struct {
	Now       func() time.Time // clock for entries without At; time.Now when nil
	QueueSize int              // entries Record can queue before it blocks; 4096 when 0
	BatchSize int              // entries written per transaction at most; 512 when 0
	Logger    *slog.Logger     // for write failures of queued entries; slog.Default when nil
}

// Logger writes the audit log of one main database.
type Logger struct {
	db    *store.DB
	now   func() time.Time
	log   *slog.Logger
	batch int

	mu     sync.RWMutex // guards closed against Record racing Close
	closed bool
	queue  chan Entry
	done   chan struct{}

	written atomic.Int64
	failed  atomic.Int64
	batches atomic.Int64
}

// Open migrates the audit tables of db and starts the goroutine that writes
// recorded entries. Close stops it.
func Open(ctx context.Context, db *store.DB, cfg Config) (*Logger, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("audit migrations: %w", err)
	}
	if err := db.Migrate(ctx, "audit", sub); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 512
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Logger{
		db:    db,
		now:   cfg.Now,
		log:   cfg.Logger,
		batch: cfg.BatchSize,
		queue: make(chan Entry, cfg.QueueSize),
		done:  make(chan struct{}),
	}
	go l.run()
	return l, nil
}

// Log writes e at once in its own transaction.
func (l *Logger) Log(ctx context.Context, e Entry) error {
	tx, err := l.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit log %s: %w", e.Action, err)
	}
	defer tx.Rollback()
	if err := l.LogTx(ctx, tx, e); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit log %s: %w", e.Action, err)
	}
	l.written.Add(1)
	return nil
}

// LogTx writes e inside tx, a transaction on the main database's writer, so
// that the entry commits or rolls back with the change it describes.
func (l *Logger) LogTx(ctx context.Context, tx *sql.Tx, e Entry) error {
	e = l.normalize(e)
	if e.Action == "" {
		return samenplan.Errorf(samenplan.EINVALID, "audit entry without action")
	}
	if _, err := tx.ExecContext(ctx, insertSQL, args(e)...); err != nil {
		return fmt.Errorf("audit log %s: %w", e.Action, err)
	}
	return nil
}

// Record queues e to be written with others in one transaction soon. It
// blocks only while the queue is full. It must not be called while the
// caller holds a transaction on the main database's writer: the writing
// goroutine needs that connection to make room in the queue. After Close it
// writes e synchronously.
func (l *Logger) Record(e Entry) {
	e = l.normalize(e)
	l.mu.RLock()
	if !l.closed {
		l.queue <- e
		l.mu.RUnlock()
		return
	}
	l.mu.RUnlock()
	if err := l.Log(context.Background(), e); err != nil {
		l.failed.Add(1)
		l.log.Error("audit entry lost", "action", e.Action, "err", err)
	}
}

// Close writes every queued entry and stops the writing goroutine. It is
// safe to call more than once.
func (l *Logger) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
	return nil
}

// Written returns how many entries were written; Failed how many queued
// entries could not be written (each failure is logged).
func (l *Logger) Written() int64 { return l.written.Load() }

// Failed returns how many queued entries could not be written.
func (l *Logger) Failed() int64 { return l.failed.Load() }

// Batches returns how many transactions the writing goroutine committed.
func (l *Logger) Batches() int64 { return l.batches.Load() }

func (l *Logger) run() {
	defer close(l.done)
	buf := make([]Entry, 0, l.batch)
	for e := range l.queue {
		buf = append(buf[:0], e)
	fill:
		for len(buf) < l.batch {
			select {
			case e, ok := <-l.queue:
				if !ok {
					break fill
				}
				buf = append(buf, e)
			default:
				break fill
			}
		}
		l.writeBatch(buf)
	}
}

// writeBatch writes entries in one transaction, retrying a few times when
// the database is busy or failing; entries that still fail are counted and
// logged, never silently dropped.
func (l *Logger) writeBatch(entries []Entry) {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
		}
		if err = l.insertBatch(entries); err == nil {
			l.written.Add(int64(len(entries)))
			l.batches.Add(1)
			return
		}
	}
	l.failed.Add(int64(len(entries)))
	l.log.Error("audit entries lost", "count", len(entries), "err", err)
}

func (l *Logger) insertBatch(entries []Entry) error {
	ctx := context.Background()
	tx, err := l.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit batch: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, insertSQL)
	if err != nil {
		return fmt.Errorf("audit batch: %w", err)
	}
	defer stmt.Close()
	for _, e := range entries {
		if _, err := stmt.ExecContext(ctx, args(e)...); err != nil {
			return fmt.Errorf("audit batch: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit batch: %w", err)
	}
	return nil
}

func (l *Logger) normalize(e Entry) Entry {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = e.At.UTC()
	if len(e.Detail) > 0 && !json.Valid(e.Detail) {
		e.Detail, _ = json.Marshal(string(e.Detail))
	}
	return e
}

const insertSQL = `INSERT INTO audit_log
	(at, user_id, username, role, device_id, action, region, target_kind, target_id, detail, ip, request_id)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func args(e Entry) []any {
	var detail any
	if len(e.Detail) > 0 {
		detail = string(e.Detail)
	}
	return []any{e.At.Format(TimeFormat), e.UserID, e.Username, e.Role, e.DeviceID, e.Action,
		e.Region, e.TargetKind, e.TargetID, detail, e.IP, e.RequestID}
}

// Query returns the entries that match f, newest first.
func (l *Logger) Query(ctx context.Context, f Filter) ([]Entry, error) {
	var where []string
	var params []any
	if f.User != "" {
		where = append(where, "(user_id = ? OR username = ?)")
		params = append(params, f.User, f.User)
	}
	if f.Action != "" {
		where = append(where, "action = ?")
		params = append(params, f.Action)
	}
	if f.Target != "" {
		if kind, id, ok := strings.Cut(f.Target, ":"); ok {
			where = append(where, "target_kind = ? AND target_id = ?")
			params = append(params, kind, id)
		} else {
			where = append(where, "target_id = ?")
			params = append(params, f.Target)
		}
	}
	if f.Region != "" {
		where = append(where, "region = ?")
		params = append(params, f.Region)
	}
	if !f.From.IsZero() {
		where = append(where, "at >= ?")
		params = append(params, f.From.UTC().Format(TimeFormat))
	}
	if !f.To.IsZero() {
		where = append(where, "at < ?")
		params = append(params, f.To.UTC().Format(TimeFormat))
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		params = append(params, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	} else if limit > MaxLimit {
		limit = MaxLimit
	}
	q := `SELECT id, at, user_id, username, role, device_id, action, region, target_kind, target_id, detail, ip, request_id FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	params = append(params, limit)

	rows, err := l.db.Reader.QueryContext(ctx, q, params...)
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var at string
		var detail sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.UserID, &e.Username, &e.Role, &e.DeviceID, &e.Action,
			&e.Region, &e.TargetKind, &e.TargetID, &detail, &e.IP, &e.RequestID); err != nil {
			return nil, fmt.Errorf("audit query: %w", err)
		}
		if e.At, err = time.Parse(TimeFormat, at); err != nil {
			return nil, fmt.Errorf("audit query: entry %d: %w", e.ID, err)
		}
		if detail.Valid {
			e.Detail = json.RawMessage(detail.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	return out, nil
}
