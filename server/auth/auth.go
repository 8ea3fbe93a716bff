// Package auth is who may do what in Samenplan: users with a role and
// regions, argon2id passwords, short-lived JWT access tokens signed with
// rotating keys, rotating refresh tokens bound to a device, device
// revocation, login rate limiting, and the Echo middleware and guards that
// enforce roles and region scope in one place.
//
// Every error meant for a caller is a *samenplan.Error; its code decides the
// HTTP status. Passwords, tokens and hashes are never logged.
package auth

import (
	"context"
	"crypto/rand"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/sync/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Roles, as in DESIGN §1.
const (
	RoleCoach       = "coach"       // her own families, on a phone or laptop
	RoleCoordinator = "coordinator" // a region's intake, assignments and rule files
	RoleReviewer    = "reviewer"    // reads a region, writes nothing
	RoleAdmin       = "admin"       // accounts and devices; no case content
)

// Roles lists every role.
var Roles = []string{RoleCoach, RoleCoordinator, RoleReviewer, RoleAdmin}

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool { return slices.Contains(Roles, role) }

// Principal is who makes a request: the user and the device of a verified
// access token.
type Principal struct {
	UserID   string   `json:"user_id"`
	Username string   `json:"username"`
	Role     string   `json:"role"`
	Regions  []string `json:"regions"`
	DeviceID string   `json:"device_id"`
}

// System returns the principal of an operator tool such as the samenplan
// command line (name "cli"): an admin without user or device, recorded in
// the audit log as "system:<name>".
func System(name string) Principal {
	return Principal{Username: "system:" + name, Role: RoleAdmin}
}

// IsAdmin reports whether p manages accounts and devices.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// ReadsCaseContent reports whether p may read case files at all; admins may not.
func (p Principal) ReadsCaseContent() bool { return p.Role != "" && p.Role != RoleAdmin }

// HasRole reports whether p has one of roles.
func (p Principal) HasRole(roles ...string) bool { return slices.Contains(roles, p.Role) }

// CanReadRegion reports whether p may read case data of region: coaches,
// coordinators and reviewers of that region. A coach's reads are further
// limited to her own families by the sync scopes.
func (p Principal) CanReadRegion(region string) bool {
	return region != "" && p.ReadsCaseContent() && slices.Contains(p.Regions, region)
}

// CanWriteRegion reports whether p may make region-wide changes in region:
// intake decisions, assignments, rule files. Only that region's coordinators.
func (p Principal) CanWriteRegion(region string) bool {
	return p.Role == RoleCoordinator && slices.Contains(p.Regions, region)
}

// Config tunes a Service. The zero value gives the production defaults.
type Config struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Argon2 are the cost parameters of new password hashes; DefaultArgon2
	// when zero. Tests use cheap ones.
	Argon2 Argon2Params
	// AccessTTL is the lifetime of an access token; 15 minutes when zero.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of a refresh token; 30 days when zero.
	RefreshTTL time.Duration
	// Limits are the login rate limits; zero fields take DefaultLimits,
	// a negative maximum switches that limit off.
	Limits Limits
	// Audit receives logins, revocations and account changes. When nil the
	// Service opens a Logger of its own on the same database and closes it
	// in Close.
	Audit *audit.Logger
	// Logger is for internal errors; slog.Default when nil.
	Logger *slog.Logger
	// ReloadEvery is how often revoked devices and signing keys are re-read
	// from the database, to notice changes made by another process (the
	// command line); 10 seconds when zero, never when negative. Expired
	// refresh tokens are purged hourly by the same goroutine.
	ReloadEvery time.Duration
	// MaxConcurrentHashes bounds argon2 runs at once (each takes
	// Argon2.Memory); the number of CPUs when zero.
	MaxConcurrentHashes int
}

// Service holds the accounts, devices and keys of one main database.
type Service struct {
	db       *store.DB
	audit    *audit.Logger
	ownAudit bool
	log      *slog.Logger
	now      func() time.Time
	argon    Argon2Params
	access   time.Duration
	refresh  time.Duration
	limiter  *limiter
	hashSem  chan struct{}
	dummy    string // hash of a random password, verified for unknown users

	keysMu  sync.RWMutex
	keys    map[string][]byte // kid → secret, active keys only
	signKid string

	revokedMu sync.RWMutex
	revoked   map[string]struct{}

	seenMu sync.Mutex
	seen   map[string]time.Time // device → when last_seen was last queued
	seenCh chan seenUpdate

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open migrates the auth tables of db, creates a signing key on first start,
// loads the keys and the revoked devices, and starts the goroutines that
// write last_seen and reload state. Close stops them.
func Open(ctx context.Context, db *store.DB, cfg Config) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("auth migrations: %w", err)
	}
	if err := db.Migrate(ctx, "auth", sub); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2
	}
	if cfg.Argon2.SaltLen == 0 {
		cfg.Argon2.SaltLen = DefaultArgon2.SaltLen
	}
	if cfg.Argon2.KeyLen == 0 {
		cfg.Argon2.KeyLen = DefaultArgon2.KeyLen
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReloadEvery == 0 {
		cfg.ReloadEvery = 10 * time.Second
	}
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = runtime.NumCPU()
	}
	s := &Service{
		db:      db,
		audit:   cfg.Audit,
		log:     cfg.Logger,
		now:     cfg.Now,
		argon:   cfg.Argon2,
		access:  cfg.AccessTTL,
		refresh: cfg.RefreshTTL,
		limiter: newLimiter(cfg.Limits),
		hashSem: make(chan struct{}, cfg.MaxConcurrentHashes),
		revoked: map[string]struct{}{},
		seen:    map[string]time.Time{},
		seenCh:  make(chan seenUpdate, 1024),
		stop:    make(chan struct{}),
	}
	if s.audit == nil {
		if s.audit, err = audit.Open(ctx, db, audit.Config{Now: cfg.Now, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
		s.ownAudit = true
	}
	fail := func(err error) (*Service, error) {
		if s.ownAudit {
			s.audit.Close()
		}
		return nil, err
	}
	random := make([]byte, 32)
	rand.Read(random)
	if s.dummy, err = hashPassword(string(random), s.argon); err != nil {
		return fail(err)
	}
	if err := s.ensureKey(ctx); err != nil {
		return fail(err)
	}
	if err := s.Reload(ctx); err != nil {
		return fail(err)
	}
	s.wg.Add(1)
	go s.writeLastSeen()
	if cfg.ReloadEvery > 0 {
		s.wg.Add(1)
		go s.reloadLoop(cfg.ReloadEvery)
	}
	return s, nil
}

// Close stops the background goroutines, writes pending last_seen updates
// and closes the audit Logger if the Service opened it. The database stays
// open.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		if s.ownAudit {
			s.audit.Close()
		}
	})
	return nil
}

// Audit returns the audit Logger the Service writes to.
func (s *Service) Audit() *audit.Logger { return s.audit }

// Reload re-reads the signing keys and the revoked devices. Revocations are
// only ever added: a device revoked in memory stays revoked.
func (s *Service) Reload(ctx context.Context) error {
	if err := s.loadKeys(ctx); err != nil {
		return err
	}
	return s.loadRevoked(ctx)
}

func (s *Service) reloadLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Reload(context.Background()); err != nil {
				s.log.Error("auth reload", "err", err)
			}
		case <-purge.C:
			if _, err := s.PurgeExpired(context.Background()); err != nil {
				s.log.Error("auth purge", "err", err)
			}
		}
	}
}

// newID returns a new UUIDv7 as text.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return id.String(), nil
}

// timeFormat is how auth stores times: UTC, fixed width.
const timeFormat = audit.TimeFormat

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) { return time.Parse(timeFormat, s) }

// entry starts an audit entry for something p did.
func entry(ctx context.Context, p Principal, action string) audit.Entry {
	m := requestMetaFrom(ctx)
	return audit.Entry{
		UserID: p.UserID, Username: p.Username, Role: p.Role, DeviceID: p.DeviceID,
		Action: action, IP: m.ip, RequestID: m.requestID,
	}
}

type metaKey struct{}

type requestMeta struct{ ip, requestID string }

// WithRequest returns ctx carrying the client address and request id that
// the Service writes into the audit entries it makes. The HTTP handlers of
// Routes set it; other callers may.
func WithRequest(ctx context.Context, ip, requestID string) context.Context {
	return context.WithValue(ctx, metaKey{}, requestMeta{ip: ip, requestID: requestID})
}

func requestMetaFrom(ctx context.Context) requestMeta {
	m, _ := ctx.Value(metaKey{}).(requestMeta)
	return m
}
