package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
)

// Session is what a login or a refresh returns to the device.
type Session struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"` // always "Bearer"
	ExpiresIn    int    `json:"expires_in"` // seconds
	RefreshToken string `json:"refresh_token"`
	DeviceID     string `json:"device_id"`
	User         User   `json:"user"`
}

// Input bounds of a login.
const (
	MaxUsernameLen   = 64
	MaxDeviceNameLen = 100
)

var (
	errBadLogin   = samenplan.Errorf(samenplan.EUNAUTHORIZED, "Gebruikersnaam of wachtwoord onjuist / wrong username or password")
	errLocked     = samenplan.Errorf(samenplan.ERATELIMITED, "Te veel mislukte pogingen, probeer later opnieuw / too many failed attempts, try again later")
	errBadRefresh = samenplan.Errorf(samenplan.EUNAUTHORIZED, "Ongeldig vernieuwingstoken, meld opnieuw aan / invalid refresh token, log in again")
)

// Login checks username and password and, when they match, registers a new
// device named deviceName for the user and returns its first tokens. A wrong
// password, an unknown or a disabled user all give the same unauthorized
// error after the same work. After Limits.MaxFailures failures for a
// username, or Limits.IPMaxFailures from ip, within Limits.Window, logins
// for it get rate_limited for Limits.Lockout.
func (s *Service) Login(ctx context.Context, username, password, deviceName, ip string) (Session, error) {
	username = NormalizeUsername(username)
	deviceName = cleanDeviceName(deviceName)
	if username == "" || password == "" {
		return Session{}, samenplan.Errorf(samenplan.EINVALID, "Gebruikersnaam en wachtwoord zijn verplicht / username and password are required")
	}
	if len(username) > MaxUsernameLen || len(password) > MaxPasswordLen || !utf8.ValidString(username) {
		return Session{}, errBadLogin
	}
	if m := requestMetaFrom(ctx); ip == "" {
		ip = m.ip
	} else {
		ctx = WithRequest(ctx, ip, m.requestID)
	}
	if s.limiter.locked(username, ip, s.now()) {
		return Session{}, errLocked
	}

	u, hash, err := s.credentials(ctx, username)
	if err != nil {
		return Session{}, err
	}
	found := hash != ""
	if !found {
		hash = s.dummy
	}
	if err := s.acquireHash(ctx); err != nil {
		return Session{}, err
	}
	ok, rehash := verifyPassword(password, hash, s.argon)
	s.releaseHash()
	if !found || u.Disabled || !ok {
		return Session{}, s.loginFailed(ctx, username, u, ip)
	}
	// Guesses that ran in parallel may have locked the name meanwhile; a
	// right guess among them must not be confirmed.
	if s.limiter.locked(username, ip, s.now()) {
		return Session{}, errLocked
	}
	s.limiter.succeed(username)

	var newHash string
	if rehash {
		if newHash, err = s.hash(ctx, password); err != nil {
			return Session{}, err
		}
	}
	var sess Session
	err = s.inTx(ctx, "login", func(tx *sql.Tx) error {
		deviceID, err := newID()
		if err != nil {
			return err
		}
		now := formatTime(s.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, user_id, name, created_at, last_seen) VALUES (?, ?, ?, ?, ?)`,
			deviceID, u.ID, deviceName, now, now); err != nil {
			return err
		}
		if newHash != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, newHash, u.ID); err != nil {
				return err
			}
		}
		if sess, err = s.newSession(ctx, tx, u, deviceID); err != nil {
			return err
		}
		e := entry(ctx, u.Principal(deviceID), audit.ActionLogin)
		e.TargetKind, e.TargetID = "device", deviceID
		e.Detail = audit.Detail(map[string]string{"device_name": deviceName})
		return s.audit.LogTx(ctx, tx, e)
	})
	if err != nil {
		return Session{}, err
	}
	return sess, nil
}

// loginFailed counts and audits a failed login and returns the error for it.
// The name typed for an unknown user is not stored as such (people type
// their password in the username field); a short hash of it is, to tie
// attempts together.
func (s *Service) loginFailed(ctx context.Context, username string, u User, ip string) error {
	userLocked, ipLocked := s.limiter.fail(username, ip, s.now())
	p := Principal{UserID: u.ID, Username: u.Username, Role: u.Role}
	e := entry(ctx, p, audit.ActionLoginFailed)
	if u.ID == "" {
		sum := sha256.Sum256([]byte(username))
		e.Detail = audit.Detail(map[string]any{"unknown_user": true, "username_sha256": hex.EncodeToString(sum[:8])})
	}
	s.audit.Record(e)
	if userLocked || ipLocked {
		e := entry(ctx, p, audit.ActionLoginLocked)
		e.Detail = audit.Detail(map[string]bool{"username": userLocked, "ip": ipLocked})
		s.audit.Record(e)
	}
	return errBadLogin
}

// credentials returns the user and password hash for username; an unknown
// user gives a zero User and "" without error.
func (s *Service) credentials(ctx context.Context, username string) (User, string, error) {
	var hash string
	row := s.db.Reader.QueryRowContext(ctx, `SELECT password_hash, `+userColumns+` FROM users WHERE username = ?`, username)
	u, err := scanUser(prefixScan{row, []any{&hash}})
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", nil
	} else if err != nil {
		return User{}, "", fmt.Errorf("login: %w", err)
	}
	return u, hash, nil
}

// cleanDeviceName trims deviceName, drops control characters and bounds its
// length; an empty name becomes "toestel".
func cleanDeviceName(name string) string {
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > MaxDeviceNameLen {
		name = string([]rune(name)[:MaxDeviceNameLen])
	}
	if name == "" {
		name = "toestel"
	}
	return name
}

// newSession stores a new refresh token for device and signs an access token.
func (s *Service) newSession(ctx context.Context, tx *sql.Tx, u User, deviceID string) (Session, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Session{}, fmt.Errorf("refresh token: %w", err)
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256(raw)
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, device_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		sum[:], deviceID, u.ID, formatTime(now), formatTime(now.Add(s.refresh))); err != nil {
		return Session{}, err
	}
	access, ttl, err := s.issueAccess(u.Principal(deviceID))
	if err != nil {
		return Session{}, err
	}
	return Session{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int(ttl / time.Second),
		RefreshToken: refresh,
		DeviceID:     deviceID,
		User:         u,
	}, nil
}

// refreshRow is a stored refresh token with its device and user.
type refreshRow struct {
	hash          []byte
	deviceID      string
	expires       time.Time
	used, revoked bool
	deviceRevoked bool
	user          User
}

// lookupRefresh finds the refresh token token in tx; a malformed or unknown
// token gives errBadRefresh.
func lookupRefresh(ctx context.Context, tx *sql.Tx, token string) (refreshRow, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		return refreshRow{}, errBadRefresh
	}
	sum := sha256.Sum256(raw)
	var r refreshRow
	var expires string
	var used, revoked, devRevoked sql.NullString
	row := tx.QueryRowContext(ctx, `SELECT t.device_id, t.expires_at, t.used_at, t.revoked_at, d.revoked_at, `+userColumnsOf("u")+`
		FROM refresh_tokens t JOIN devices d ON d.id = t.device_id JOIN users u ON u.id = t.user_id
		WHERE t.hash = ?`, sum[:])
	r.user, err = scanUser(prefixScan{row, []any{&r.deviceID, &expires, &used, &revoked, &devRevoked}})
	if errors.Is(err, sql.ErrNoRows) {
		return refreshRow{}, errBadRefresh
	} else if err != nil {
		return refreshRow{}, err
	}
	if r.expires, err = parseTime(expires); err != nil {
		return refreshRow{}, err
	}
	r.hash = sum[:]
	r.used, r.revoked, r.deviceRevoked = used.Valid, revoked.Valid, devRevoked.Valid
	return r, nil
}

func userColumnsOf(alias string) string {
	cols := strings.Split(userColumns, ", ")
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

// prefixScan scans leading columns into pre before the user's columns.
type prefixScan struct {
	row *sql.Row
	pre []any
}

func (p prefixScan) Scan(dest ...any) error {
	return p.row.Scan(append(append([]any{}, p.pre...), dest...)...)
}

// Refresh exchanges a refresh token for a new one and a new access token;
// the presented token is used up. Presenting a used token again is taken as
// theft: every token of its device is revoked, the device too, and the
// answer is device_revoked. A revoked device gets device_revoked; an
// unknown, expired or logged-out token, or a disabled user, unauthorized.
func (s *Service) Refresh(ctx context.Context, token string) (Session, error) {
	var sess Session
	var revokedDevice string
	var outcome error
	err := s.inTx(ctx, "refresh", func(tx *sql.Tx) error {
		r, err := lookupRefresh(ctx, tx, token)
		if err != nil {
			return err
		}
		switch {
		case r.deviceRevoked:
			outcome = errRevoked
			return nil
		case r.used:
			p := r.user.Principal(r.deviceID)
			if err := s.revokeDeviceTx(ctx, tx, r.deviceID, r.user.ID, p, "refresh token reuse"); err != nil {
				return err
			}
			e := entry(ctx, p, audit.ActionRefreshReuse)
			e.TargetKind, e.TargetID = "device", r.deviceID
			if err := s.audit.LogTx(ctx, tx, e); err != nil {
				return err
			}
			revokedDevice, outcome = r.deviceID, errRevoked
			return nil
		case r.revoked, !s.now().Before(r.expires), r.user.Disabled:
			outcome = errBadRefresh
			return nil
		}
		now := formatTime(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE hash = ?`, now, r.hash); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen = ? WHERE id = ? AND last_seen < ?`, now, r.deviceID, now); err != nil {
			return err
		}
		sess, err = s.newSession(ctx, tx, r.user, r.deviceID)
		return err
	})
	if err != nil {
		return Session{}, err
	}
	if revokedDevice != "" {
		s.markRevoked(revokedDevice)
	}
	if outcome != nil {
		return Session{}, outcome
	}
	return sess, nil
}

// Logout revokes the refresh token token, and with revokeDevice the device
// it belongs to (which must then wipe its data). Access tokens already
// issued stay valid until they expire unless the device is revoked. A used
// token counts as reuse, as in Refresh.
func (s *Service) Logout(ctx context.Context, token string, revokeDevice bool) error {
	var revokedDevice string
	var outcome error
	err := s.inTx(ctx, "logout", func(tx *sql.Tx) error {
		r, err := lookupRefresh(ctx, tx, token)
		if err != nil {
			return err
		}
		p := r.user.Principal(r.deviceID)
		switch {
		case r.deviceRevoked:
			outcome = errRevoked
			return nil
		case r.used:
			if err := s.revokeDeviceTx(ctx, tx, r.deviceID, r.user.ID, p, "refresh token reuse"); err != nil {
				return err
			}
			e := entry(ctx, p, audit.ActionRefreshReuse)
			e.TargetKind, e.TargetID = "device", r.deviceID
			if err := s.audit.LogTx(ctx, tx, e); err != nil {
				return err
			}
			revokedDevice, outcome = r.deviceID, errRevoked
			return nil
		case r.revoked:
			outcome = errBadRefresh
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE hash = ?`, formatTime(s.now()), r.hash); err != nil {
			return err
		}
		if revokeDevice {
			if err := s.revokeDeviceTx(ctx, tx, r.deviceID, r.user.ID, p, "logout"); err != nil {
				return err
			}
			revokedDevice = r.deviceID
		}
		e := entry(ctx, p, audit.ActionLogout)
		e.TargetKind, e.TargetID = "device", r.deviceID
		e.Detail = audit.Detail(map[string]bool{"revoke_device": revokeDevice})
		return s.audit.LogTx(ctx, tx, e)
	})
	if err != nil {
		return err
	}
	if revokedDevice != "" {
		s.markRevoked(revokedDevice)
	}
	return outcome
}

// PurgeExpired deletes refresh tokens past their expiry and returns how
// many. Used tokens are kept until then, so reuse is detected for as long as
// a token could have been valid. The Service runs it hourly.
func (s *Service) PurgeExpired(ctx context.Context) (int64, error) {
	res, err := s.db.Writer.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at < ?`, formatTime(s.now()))
	if err != nil {
		return 0, fmt.Errorf("purge refresh tokens: %w", err)
	}
	return res.RowsAffected()
}
