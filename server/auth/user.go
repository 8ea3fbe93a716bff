package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
)

// User is an account. It never carries the password hash.
type User struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	DisplayName  string    `json:"display_name"`
	Role         string    `json:"role"`
	Regions      []string  `json:"regions"`
	Organisation string    `json:"organisation,omitempty"`
	FTE          float64   `json:"fte"`
	Volunteer    bool      `json:"volunteer"`
	CreatedAt    time.Time `json:"created_at"`
	Disabled     bool      `json:"disabled"`
}

// Principal returns the principal of u on device.
func (u User) Principal(deviceID string) Principal {
	return Principal{UserID: u.ID, Username: u.Username, Role: u.Role, Regions: u.Regions, DeviceID: deviceID}
}

// NewUser is what CreateUser needs. Username is stored in lower case.
type NewUser struct {
	Username     string   `json:"username"`
	DisplayName  string   `json:"display_name"`
	Role         string   `json:"role"`
	Regions      []string `json:"regions"`
	Organisation string   `json:"organisation"`
	FTE          float64  `json:"fte"`
	Volunteer    bool     `json:"volunteer"`
	Password     string   `json:"password"`
}

// UserFilter selects users for ListUsers; empty fields match everything.
type UserFilter struct {
	Region      string
	Role        string
	OnlyEnabled bool
}

var (
	usernameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)
	regionRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// NormalizeUsername returns username as it is stored: trimmed, lower case.
func NormalizeUsername(username string) string {
	return strings.ToLower(strings.TrimSpace(username))
}

func validatePassword(pw string) error {
	if len(pw) < MinPasswordLen {
		return samenplan.Errorf(samenplan.EINVALID, "Wachtwoord te kort (minstens %d tekens) / password too short (at least %d characters)", MinPasswordLen, MinPasswordLen)
	}
	if len(pw) > MaxPasswordLen {
		return samenplan.Errorf(samenplan.EINVALID, "Wachtwoord te lang / password too long")
	}
	if !utf8.ValidString(pw) {
		return samenplan.Errorf(samenplan.EINVALID, "Wachtwoord is geen geldige UTF-8 / password is not valid UTF-8")
	}
	return nil
}

// validateProfile checks the fields of an account other than the password,
// normalizing regions (sorted, without duplicates).
func validateProfile(role string, regions []string, fte float64, displayName, organisation string) ([]string, error) {
	if !ValidRole(role) {
		return nil, samenplan.Errorf(samenplan.EINVALID, "Onbekende rol %q / unknown role %q (coach, coordinator, reviewer, admin)", role, role)
	}
	regions = slices.Clone(regions)
	for _, r := range regions {
		if !regionRe.MatchString(r) {
			return nil, samenplan.Errorf(samenplan.EINVALID, "Ongeldige regio %q / invalid region %q", r, r)
		}
	}
	slices.Sort(regions)
	regions = slices.Compact(regions)
	if regions == nil {
		regions = []string{}
	}
	if len(regions) == 0 && role != RoleAdmin {
		return nil, samenplan.Errorf(samenplan.EINVALID, "Minstens één regio nodig / at least one region is required for role %s", role)
	}
	if math.IsNaN(fte) || fte < 0 || fte > 1 {
		return nil, samenplan.Errorf(samenplan.EINVALID, "FTE moet tussen 0 en 1 liggen / fte must be between 0 and 1")
	}
	if l := utf8.RuneCountInString(displayName); l > 100 || !utf8.ValidString(displayName) {
		return nil, samenplan.Errorf(samenplan.EINVALID, "Naam te lang / display name too long")
	}
	if l := utf8.RuneCountInString(organisation); l > 100 || !utf8.ValidString(organisation) {
		return nil, samenplan.Errorf(samenplan.EINVALID, "Organisatie te lang / organisation too long")
	}
	return regions, nil
}

// CreateUser adds an account and returns it. A taken username gives
// conflict; bad fields give invalid.
func (s *Service) CreateUser(ctx context.Context, nu NewUser, by Principal) (User, error) {
	u := User{
		Username:     NormalizeUsername(nu.Username),
		DisplayName:  strings.TrimSpace(nu.DisplayName),
		Role:         nu.Role,
		Organisation: strings.TrimSpace(nu.Organisation),
		FTE:          nu.FTE,
		Volunteer:    nu.Volunteer,
		CreatedAt:    s.now().UTC().Truncate(time.Millisecond),
	}
	if !usernameRe.MatchString(u.Username) {
		return User{}, samenplan.Errorf(samenplan.EINVALID, "Ongeldige gebruikersnaam: 2 tot 64 tekens a-z, 0-9, punt, streep / invalid username: 2 to 64 of a-z, 0-9, '.', '_', '-'")
	}
	if u.DisplayName == "" {
		u.DisplayName = u.Username
	}
	var err error
	if u.Regions, err = validateProfile(u.Role, nu.Regions, u.FTE, u.DisplayName, u.Organisation); err != nil {
		return User{}, err
	}
	if err := validatePassword(nu.Password); err != nil {
		return User{}, err
	}
	hash, err := s.hash(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	if u.ID, err = newID(); err != nil {
		return User{}, err
	}
	regions, _ := json.Marshal(u.Regions)

	tx, err := s.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO users (id, username, display_name, role, regions, organisation, fte, volunteer, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.DisplayName, u.Role, string(regions), u.Organisation, u.FTE, u.Volunteer, hash, formatTime(u.CreatedAt))
	if isUniqueViolation(err) {
		return User{}, samenplan.Errorf(samenplan.ECONFLICT, "Gebruikersnaam %q bestaat al / username %q is taken", u.Username, u.Username)
	} else if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	e := entry(ctx, by, audit.ActionUserCreate)
	e.TargetKind, e.TargetID = "user", u.ID
	e.Detail = audit.Detail(map[string]any{"username": u.Username, "role": u.Role, "regions": u.Regions})
	if err := s.audit.LogTx(ctx, tx, e); err != nil {
		return User{}, err
	}
	if err := tx.Commit(); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// hash runs argon2id on password, waiting for a free slot.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquireHash(ctx); err != nil {
		return "", err
	}
	defer s.releaseHash()
	return hashPassword(password, s.argon)
}

func (s *Service) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) releaseHash() { <-s.hashSem }

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

const userColumns = `id, username, display_name, role, regions, organisation, fte, volunteer, created_at, disabled`

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (User, error) {
	var u User
	var regions, created string
	if err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &regions, &u.Organisation, &u.FTE, &u.Volunteer, &created, &u.Disabled); err != nil {
		return User{}, err
	}
	if err := json.Unmarshal([]byte(regions), &u.Regions); err != nil {
		return User{}, fmt.Errorf("user %s regions: %w", u.ID, err)
	}
	if u.Regions == nil {
		u.Regions = []string{}
	}
	var err error
	if u.CreatedAt, err = parseTime(created); err != nil {
		return User{}, fmt.Errorf("user %s created_at: %w", u.ID, err)
	}
	return u, nil
}

// GetUser returns the user with id, or not_found.
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.db.Reader.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, samenplan.Errorf(samenplan.ENOTFOUND, "Gebruiker niet gevonden / user not found")
	} else if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// GetUserByUsername returns the user with username (any case), or not_found.
func (s *Service) GetUserByUsername(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.db.Reader.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, NormalizeUsername(username)))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, samenplan.Errorf(samenplan.ENOTFOUND, "Gebruiker %q niet gevonden / user %q not found", username, username)
	} else if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// ListUsers returns the users that match f, ordered by username.
func (s *Service) ListUsers(ctx context.Context, f UserFilter) ([]User, error) {
	q := `SELECT ` + userColumns + ` FROM users WHERE 1=1`
	var args []any
	if f.Region != "" {
		q += ` AND EXISTS (SELECT 1 FROM json_each(users.regions) WHERE value = ?)`
		args = append(args, f.Region)
	}
	if f.Role != "" {
		q += ` AND role = ?`
		args = append(args, f.Role)
	}
	if f.OnlyEnabled {
		q += ` AND disabled = 0`
	}
	q += ` ORDER BY username`
	rows, err := s.db.Reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	users := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetPassword replaces the password of user id. Sessions stay valid: revoke
// devices to end them.
func (s *Service) SetPassword(ctx context.Context, id, password string, by Principal) error {
	if err := validatePassword(password); err != nil {
		return err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "set password", func(tx *sql.Tx) error {
		if err := updateOne(ctx, tx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, id); err != nil {
			return err
		}
		e := entry(ctx, by, audit.ActionUserPassword)
		e.TargetKind, e.TargetID = "user", id
		return s.audit.LogTx(ctx, tx, e)
	})
}

// ChangePassword lets the user of p replace her own password after proving
// the current one. A wrong current password counts as a failed login and
// gives unauthorized; a locked name gives rate_limited.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string) error {
	if err := validatePassword(next); err != nil {
		return err
	}
	ip := requestMetaFrom(ctx).ip
	if s.limiter.locked(p.Username, ip, s.now()) {
		return errLocked
	}
	u, hash, err := s.credentials(ctx, p.Username)
	if err != nil {
		return err
	}
	if hash == "" || u.ID != p.UserID {
		return errBadLogin
	}
	if err := s.acquireHash(ctx); err != nil {
		return err
	}
	ok, _ := verifyPassword(current, hash, s.argon)
	s.releaseHash()
	if !ok {
		return s.loginFailed(ctx, p.Username, u, ip)
	}
	return s.SetPassword(ctx, p.UserID, next, p)
}

// UserUpdate changes the fields that are not nil.
type UserUpdate struct {
	DisplayName  *string   `json:"display_name"`
	Role         *string   `json:"role"`
	Regions      *[]string `json:"regions"`
	Organisation *string   `json:"organisation"`
	FTE          *float64  `json:"fte"`
	Volunteer    *bool     `json:"volunteer"`
}

// UpdateUser changes the profile of user id and returns it. Role and region
// changes reach the user's tokens at their next refresh (at most AccessTTL).
func (s *Service) UpdateUser(ctx context.Context, id string, up UserUpdate, by Principal) (User, error) {
	var out User
	err := s.inTx(ctx, "update user", func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return samenplan.Errorf(samenplan.ENOTFOUND, "Gebruiker niet gevonden / user not found")
		} else if err != nil {
			return err
		}
		if up.DisplayName != nil {
			u.DisplayName = strings.TrimSpace(*up.DisplayName)
		}
		if up.Role != nil {
			u.Role = *up.Role
		}
		if up.Regions != nil {
			u.Regions = *up.Regions
		}
		if up.Organisation != nil {
			u.Organisation = strings.TrimSpace(*up.Organisation)
		}
		if up.FTE != nil {
			u.FTE = *up.FTE
		}
		if up.Volunteer != nil {
			u.Volunteer = *up.Volunteer
		}
		if u.Regions, err = validateProfile(u.Role, u.Regions, u.FTE, u.DisplayName, u.Organisation); err != nil {
			return err
		}
		regions, _ := json.Marshal(u.Regions)
		if _, err := tx.ExecContext(ctx, `UPDATE users SET display_name = ?, role = ?, regions = ?, organisation = ?, fte = ?, volunteer = ? WHERE id = ?`,
			u.DisplayName, u.Role, string(regions), u.Organisation, u.FTE, u.Volunteer, id); err != nil {
			return err
		}
		e := entry(ctx, by, audit.ActionUserUpdate)
		e.TargetKind, e.TargetID = "user", id
		e.Detail = audit.Detail(map[string]any{"role": u.Role, "regions": u.Regions})
		out = u
		return s.audit.LogTx(ctx, tx, e)
	})
	return out, err
}

// SetDisabled disables or enables user id. Disabling revokes every device of
// the user, so her tokens stop working at once.
func (s *Service) SetDisabled(ctx context.Context, id string, disabled bool, by Principal) error {
	var revoked []string
	err := s.inTx(ctx, "disable user", func(tx *sql.Tx) error {
		if err := updateOne(ctx, tx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id); err != nil {
			return err
		}
		action := audit.ActionUserEnable
		if disabled {
			action = audit.ActionUserDisable
			var err error
			if revoked, err = s.revokeUserDevicesTx(ctx, tx, id, by); err != nil {
				return err
			}
		}
		e := entry(ctx, by, action)
		e.TargetKind, e.TargetID = "user", id
		return s.audit.LogTx(ctx, tx, e)
	})
	if err == nil {
		s.markRevoked(revoked...)
	}
	return err
}

// updateOne runs an UPDATE that must touch exactly one row; none is not_found.
func updateOne(ctx context.Context, tx *sql.Tx, q string, args ...any) error {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Niet gevonden / not found")
	}
	return nil
}

// inTx runs fn in one writer transaction; what names the work in errors.
// A *samenplan.Error from fn is returned as is.
func (s *Service) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		var se *samenplan.Error
		if errors.As(err, &se) {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
