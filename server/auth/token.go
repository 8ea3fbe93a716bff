package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
)

// Issuer is the iss claim of every access token.
const Issuer = "samenplan"

// Claims are the claims of an access token.
type Claims struct {
	Username string   `json:"usr"`
	Role     string   `json:"role"`
	Regions  []string `json:"regions"`
	Device   string   `json:"dev"`
	jwt.RegisteredClaims
}

// SigningKey describes a key of the signing_keys table, never its secret.
type SigningKey struct {
	Kid       string     `json:"kid"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	Signing   bool       `json:"signing"` // the key new tokens are signed with
}

const keySize = 64 // bytes of secret per HS256 key

// ensureKey creates the first signing key when there is no active one.
func (s *Service) ensureKey(ctx context.Context) error {
	return s.inTx(ctx, "ensure signing key", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM signing_keys WHERE retired_at IS NULL`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := s.insertKey(ctx, tx)
		return err
	})
}

func (s *Service) insertKey(ctx context.Context, tx *sql.Tx) (string, error) {
	kid, err := newID()
	if err != nil {
		return "", err
	}
	secret := make([]byte, keySize)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, secret, created_at) VALUES (?, ?, ?)`, kid, secret, formatTime(s.now()))
	return kid, err
}

// loadKeys reads the active keys; the newest signs.
func (s *Service) loadKeys(ctx context.Context) error {
	rows, err := s.db.Reader.QueryContext(ctx, `SELECT kid, secret FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at, kid`)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	defer rows.Close()
	keys := map[string][]byte{}
	var last string
	for rows.Next() {
		var kid string
		var secret []byte
		if err := rows.Scan(&kid, &secret); err != nil {
			return fmt.Errorf("load signing keys: %w", err)
		}
		keys[kid], last = secret, kid
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	if last == "" {
		return errors.New("load signing keys: no active key")
	}
	s.keysMu.Lock()
	s.keys, s.signKid = keys, last
	s.keysMu.Unlock()
	return nil
}

// RotateKey adds a new signing key and returns its kid. New tokens are
// signed with it from now on; tokens signed with older active keys still
// verify until those keys are retired.
func (s *Service) RotateKey(ctx context.Context, by Principal) (string, error) {
	var kid string
	err := s.inTx(ctx, "rotate key", func(tx *sql.Tx) error {
		var err error
		if kid, err = s.insertKey(ctx, tx); err != nil {
			return err
		}
		e := entry(ctx, by, audit.ActionKeyRotate)
		e.TargetKind, e.TargetID = "key", kid
		return s.audit.LogTx(ctx, tx, e)
	})
	if err != nil {
		return "", err
	}
	return kid, s.loadKeys(ctx)
}

// RetireKey stops key kid from verifying tokens; tokens signed with it get
// unauthorized. Retiring the last active key gives conflict; an unknown or
// already retired key not_found. Wait AccessTTL after a rotation before
// retiring the older key, or its users have to refresh.
func (s *Service) RetireKey(ctx context.Context, kid string, by Principal) error {
	err := s.inTx(ctx, "retire key", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM signing_keys WHERE retired_at IS NULL AND kid != ?`, kid).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return samenplan.Errorf(samenplan.ECONFLICT, "Laatste actieve sleutel kan niet vervallen / cannot retire the last active key")
		}
		if err := updateOne(ctx, tx, `UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL`, formatTime(s.now()), kid); err != nil {
			return err
		}
		e := entry(ctx, by, audit.ActionKeyRetire)
		e.TargetKind, e.TargetID = "key", kid
		return s.audit.LogTx(ctx, tx, e)
	})
	if err != nil {
		return err
	}
	return s.loadKeys(ctx)
}

// Keys lists every signing key, oldest first, without secrets.
func (s *Service) Keys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.db.Reader.QueryContext(ctx, `SELECT kid, created_at, retired_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	s.keysMu.RLock()
	signing := s.signKid
	s.keysMu.RUnlock()
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var created string
		var retired sql.NullString
		if err := rows.Scan(&k.Kid, &created, &retired); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		if k.CreatedAt, err = parseTime(created); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		if retired.Valid {
			t, err := parseTime(retired.String)
			if err != nil {
				return nil, fmt.Errorf("list keys: %w", err)
			}
			k.RetiredAt = &t
		}
		k.Signing = k.Kid == signing
		out = append(out, k)
	}
	return out, rows.Err()
}

// issueAccess signs an access token for p, returning it with its lifetime.
func (s *Service) issueAccess(p Principal) (string, time.Duration, error) {
	jti, err := newID()
	if err != nil {
		return "", 0, err
	}
	now := s.now()
	claims := Claims{
		Username: p.Username,
		Role:     p.Role,
		Regions:  p.Regions,
		Device:   p.DeviceID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   p.UserID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.access)),
			ID:        jti,
		},
	}
	s.keysMu.RLock()
	kid, secret := s.signKid, s.keys[s.signKid]
	s.keysMu.RUnlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(secret)
	if err != nil {
		return "", 0, fmt.Errorf("sign access token: %w", err)
	}
	return signed, s.access, nil
}

var (
	errTokenInvalid = samenplan.Errorf(samenplan.EUNAUTHORIZED, "Ongeldig token / invalid token")
	errTokenExpired = samenplan.Errorf(samenplan.EUNAUTHORIZED, "Token verlopen / token expired")
	errNoToken      = samenplan.Errorf(samenplan.EUNAUTHORIZED, "Aanmelden vereist / authentication required")
	errRevoked      = samenplan.Errorf(samenplan.EDEVICEREVOKED, "Toestel ingetrokken: wis de gegevens op dit toestel / device revoked: wipe the data on this device")
)

// verifyAccess checks the signature, algorithm, key, issuer and expiry of
// an access token and returns its principal. It does not check revocation.
func (s *Service) verifyAccess(token string) (Principal, error) {
	if token == "" {
		return Principal{}, errNoToken
	}
	if len(token) > 8192 {
		return Principal{}, errTokenInvalid
	}
	var claims Claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	_, err := p.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		s.keysMu.RLock()
		secret, ok := s.keys[kid]
		s.keysMu.RUnlock()
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return secret, nil
	})
	if errors.Is(err, jwt.ErrTokenExpired) {
		return Principal{}, errTokenExpired
	} else if err != nil {
		return Principal{}, errTokenInvalid
	}
	if claims.Subject == "" || claims.Device == "" || !ValidRole(claims.Role) || claims.ID == "" {
		return Principal{}, errTokenInvalid
	}
	regions := claims.Regions
	if regions == nil {
		regions = []string{}
	}
	return Principal{UserID: claims.Subject, Username: claims.Username, Role: claims.Role, Regions: regions, DeviceID: claims.Device}, nil
}

// Authenticate verifies an access token and checks that its device is not
// revoked, without a query. It returns unauthorized for a missing, malformed,
// expired or wrongly signed token, and device_revoked for a revoked device.
// It notes the device as seen.
func (s *Service) Authenticate(token string) (Principal, error) {
	p, err := s.verifyAccess(token)
	if err != nil {
		return Principal{}, err
	}
	if s.IsRevoked(p.DeviceID) {
		return Principal{}, errRevoked
	}
	s.touch(p.DeviceID)
	return p, nil
}
