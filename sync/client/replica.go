package client

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of Options.
const (
	DefaultBatchSize     = 1000
	DefaultMaxBatchBytes = 2 << 20 // stays well under the server's 4 MiB body limit
	DefaultPageSize      = protocol.DefaultLimit
)

// Options configure a Replica. Only BaseURL is needed to sync; a replica
// without it works offline and every Push and Pull fails.
type Options struct {
	// BaseURL is the server's address, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// HTTPClient sends the requests; nil means a client with a 60 s timeout.
	HTTPClient *http.Client
	// Transport is a test hook: when set, it replaces the transport of
	// HTTPClient (a copy; the caller's client is not changed). A chaos test
	// wraps http.DefaultTransport with one that lets a request reach the
	// server and then drops or delays its response, or fails before sending,
	// to prove that a lost push answer re-sends the same batch_id and that
	// nothing is lost or applied twice. Leave nil in production.
	Transport http.RoundTripper
	// Now is the wall clock of the device's hybrid logical clock and of
	// the times in Status; nil means time.Now. Tests set it to move the wall
	// clock backwards and forwards.
	Now func() time.Time
	// BatchSize is the most changes in one push (default 1000, at most
	// protocol.MaxBatch).
	BatchSize int
	// MaxBatchBytes bounds the value bytes of one push (default 2 MiB); a
	// batch holds at least one change whatever its size.
	MaxBatchBytes int
	// PageSize is the limit asked for in each pull (default 1000, at most
	// protocol.MaxPullLimit).
	PageSize int
}

// User is the account a replica is logged in as, as the server reported it.
type User struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name,omitempty"`
	Role        string   `json:"role"`
	Regions     []string `json:"regions"`
}

// Replica is one device's copy of the case file: a local SQLite file with
// the current value of every field it holds, the scopes of its rows, an
// outbox of writes not yet acknowledged, and the device's clock and tokens.
// Its methods are safe for concurrent use; Push, Pull, Sync, Login and Wipe
// run one at a time.
type Replica struct {
	db   *store.DB
	opts Options
	http *http.Client
	now  func() time.Time

	syncMu sync.Mutex // one Push, Pull, Login or Wipe at a time

	mu       sync.Mutex // guards the fields below
	clock    *crdt.Clock
	deviceID string
	access   string
	refresh  string
	expires  time.Time // of the access token; zero when unknown
	user     User
}

// Meta keys.
const (
	metaDevice      = "device_id"
	metaUser        = "user"
	metaAccess      = "access_token"
	metaRefresh     = "refresh_token"
	metaExpires     = "access_expires" // RFC 3339; the access token is refreshed shortly before
	metaCursor      = "cursor"
	metaClock       = "clock"
	metaOffset      = "clock_offset" // ms the wall clock runs ahead of the server's, as learned (see Calibrate)
	metaProve       = "held_hash"
	metaRefetch     = "refetch"
	metaLastSync    = "last_sync"
	metaLastError   = "last_error"
	metaSignals     = "signals"          // JSON list of the last complete pull's signals
	metaReoffered   = "reoffered"        // own writes offered again at the last refused cursor
	metaReoffAt     = "reoffered_at"     // when, RFC 3339
	metaReoffScopes = "reoffered_scopes" // scopes whose own writes were offered again after they still differed
)

// Open opens (creating if needed) the replica file at path and restores the
// device id, tokens and clock of an earlier session. The clock resumes past
// the last stamp it made or saw, so it never goes backwards across restarts,
// even when the wall clock does.
func Open(ctx context.Context, path string, opts Options) (*Replica, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	opts.BatchSize = min(opts.BatchSize, protocol.MaxBatch)
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	opts.PageSize = min(opts.PageSize, protocol.MaxPullLimit)
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	if opts.Transport != nil {
		c := *hc
		c.Transport = opts.Transport
		hc = &c
	}

	db, err := store.OpenDB(path)
	if err != nil {
		return nil, fmt.Errorf("open replica: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := db.Migrate(ctx, "client", sub); err != nil {
		db.Close()
		return nil, fmt.Errorf("open replica %s: %w", path, err)
	}
	r := &Replica{db: db, opts: opts, http: hc, now: opts.Now}
	if err := r.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open replica %s: %w", path, err)
	}
	return r, nil
}

func (r *Replica) load(ctx context.Context) error {
	m, err := readMeta(ctx, r.db.Reader)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deviceID, r.access, r.refresh = m[metaDevice], m[metaAccess], m[metaRefresh]
	r.expires, _ = time.Parse(time.RFC3339Nano, m[metaExpires])
	r.user = User{}
	if u := m[metaUser]; u != "" {
		if err := json.Unmarshal([]byte(u), &r.user); err != nil {
			return fmt.Errorf("read user: %w", err)
		}
	}
	r.clock = nil
	if r.deviceID != "" {
		c, err := r.newClock(r.deviceID, m[metaClock], m[metaOffset])
		if err != nil {
			return err
		}
		r.clock = c
	}
	return nil
}

// newClock returns a clock for node that resumes past the stamp last (the
// persisted reading of an earlier clock, "" for none) with the offset
// learned earlier (milliseconds in decimal, "" for none).
func (r *Replica) newClock(node, last, offset string) (*crdt.Clock, error) {
	if _, err := crdt.ParseStamp("0000000000000-0000-" + node); err != nil {
		return nil, fmt.Errorf("device id %q is not a valid clock node", node)
	}
	c := crdt.NewClock(node, r.now)
	if offset != "" {
		ms, err := strconv.ParseInt(offset, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read clock offset: %w", err)
		}
		c.SetOffset(time.Duration(ms) * time.Millisecond)
	}
	if last != "" {
		s, err := crdt.ParseStamp(last)
		if err != nil {
			return nil, fmt.Errorf("read clock: %w", err)
		}
		if err := c.Observe(s, 0); err != nil {
			return nil, fmt.Errorf("restore clock: %w", err)
		}
	}
	return c, nil
}

// Close closes the replica file. Pending writes stay in the outbox for the
// next Open.
func (r *Replica) Close() error { return r.db.Close() }

// DeviceID returns the device id the server gave at login, "" when the
// replica is not logged in (never, or wiped).
func (r *Replica) DeviceID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deviceID
}

// User returns the account the replica is logged in as (zero when not).
func (r *Replica) User() User {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.user
	u.Regions = append([]string(nil), u.Regions...)
	return u
}

// Clock returns the latest stamp the device's clock made or observed (zero
// when not logged in).
func (r *Replica) Clock() crdt.Stamp {
	r.mu.Lock()
	c := r.clock
	r.mu.Unlock()
	if c == nil {
		return crdt.Stamp{}
	}
	return c.Last()
}

func (r *Replica) currentClock() *crdt.Clock {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clock
}

var errNotLoggedIn = samenplan.Errorf(samenplan.EUNAUTHORIZED, "Niet aangemeld op dit toestel / this replica is not logged in")

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func readMeta(ctx context.Context, q querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return nil, fmt.Errorf("read meta: %w", err)
	}
	defer rows.Close()
	m := make(map[string]string)
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read meta: %w", err)
		}
		m[k] = v
	}
	return m, rows.Err()
}

func getMeta(ctx context.Context, q querier, key string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	return v, nil
}

// setMeta stores value under key; "" deletes the key.
func setMeta(ctx context.Context, q querier, key, value string) error {
	var err error
	if value == "" {
		_, err = q.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, key)
	} else {
		_, err = q.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

func getMetaList(ctx context.Context, q querier, key string) ([]string, error) {
	v, err := getMeta(ctx, q, key)
	if err != nil || v == "" {
		return nil, err
	}
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return list, nil
}

// setMetaList stores a sorted, duplicate-free list; an empty list deletes the key.
func setMetaList(ctx context.Context, q querier, key string, list []string) error {
	set := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !set[s] {
			set[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return setMeta(ctx, q, key, "")
	}
	sort.Strings(out)
	b, _ := json.Marshal(out)
	return setMeta(ctx, q, key, string(b))
}

// saveClock persists the clock's last reading and offset within tx, so that
// a restart resumes past every stamp that tx made or observed, with the
// offset learned so far.
func saveClock(ctx context.Context, q querier, c *crdt.Clock) error {
	if c == nil {
		return nil
	}
	off := ""
	if ms := c.Offset().Milliseconds(); ms != 0 {
		off = strconv.FormatInt(ms, 10)
	}
	if err := setMeta(ctx, q, metaOffset, off); err != nil {
		return err
	}
	if c.Last().IsZero() {
		return nil
	}
	return setMeta(ctx, q, metaClock, c.Last().String())
}

// tx runs fn in one immediate write transaction.
func (r *Replica) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := r.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// noteError records the error of a failed Push or Pull for Status.
func (r *Replica) noteError(err error) {
	if err == nil {
		return
	}
	// A background context: the caller's may be the one that was cancelled.
	_ = setMeta(context.Background(), r.db.Writer, metaLastError, err.Error())
}
