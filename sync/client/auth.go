package client

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
)

// refreshMargin is how long before its expiry an access token is refreshed.
const refreshMargin = 30 * time.Second

// maxResponse bounds a response body (a pull page of 5,000 notes of 20 kB).
const maxResponse = 128 << 20

// session is the answer to login and refresh.
type session struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	DeviceID     string `json:"device_id"`
	User         User   `json:"user"`
}

// post sends one JSON request. An answer with an error body {code, message}
// comes back as a *samenplan.Error in the chain; a transport failure (the
// device is offline, the answer was lost) as the transport's error.
func (r *Replica) post(ctx context.Context, path, bearer string, in, out any) error {
	if r.opts.BaseURL == "" {
		return fmt.Errorf("POST %s: no server address (Options.BaseURL)", path)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(r.opts.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("POST %s: read answer: %w", path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			return fmt.Errorf("POST %s: %w", path, &samenplan.Error{Code: e.Code, Message: e.Message})
		}
		return fmt.Errorf("POST %s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: decode answer: %w", path, err)
	}
	return nil
}

// code returns the code of the server's error in err's chain, "" when the
// server gave none (a transport failure).
func code(err error) string {
	var e *samenplan.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsOffline reports whether err is a failure to reach the server or to get
// its answer, rather than an answer: the outbox keeps everything and the
// same call can simply be made again later.
func IsOffline(err error) bool {
	return err != nil && code(err) == "" && !errors.Is(err, context.Canceled)
}

// call sends an authenticated request. An expired access token (401
// unauthorized) is refreshed once and the request retried; a revoked
// device (401 device_revoked) wipes the replica. Callers hold syncMu.
func (r *Replica) call(ctx context.Context, path string, in, out any) error {
	r.mu.Lock()
	access, refresh, expires := r.access, r.refresh, r.expires
	r.mu.Unlock()
	if access == "" && refresh == "" {
		return errNotLoggedIn
	}
	refreshed := false
	if refresh != "" && !expires.IsZero() && !r.now().Before(expires.Add(-refreshMargin)) {
		// About to expire: refresh first and save a round trip. A failure
		// here is not final; the request below tells.
		if err := r.refreshTokens(ctx, refresh); err == nil {
			refreshed = true
		} else if r.DeviceID() == "" {
			return err // revoked and wiped
		}
		r.mu.Lock()
		access, refresh = r.access, r.refresh
		r.mu.Unlock()
	}
	err := r.post(ctx, path, access, in, out)
	if code(err) == samenplan.EUNAUTHORIZED && refresh != "" && !refreshed {
		if rerr := r.refreshTokens(ctx, refresh); rerr != nil {
			return rerr
		}
		r.mu.Lock()
		access = r.access
		r.mu.Unlock()
		err = r.post(ctx, path, access, in, out)
	}
	if code(err) == samenplan.EDEVICEREVOKED {
		if werr := r.wipe(ctx); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

func (r *Replica) refreshTokens(ctx context.Context, refresh string) error {
	var s session
	err := r.post(ctx, "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}, &s)
	if code(err) == samenplan.EDEVICEREVOKED {
		if werr := r.wipe(ctx); werr != nil {
			return errors.Join(err, werr)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("refresh tokens: %w", err)
	}
	if s.AccessToken == "" || s.RefreshToken == "" {
		return fmt.Errorf("refresh tokens: answer without tokens")
	}
	expires := r.expiry(s)
	err = r.tx(ctx, func(tx *sql.Tx) error {
		if err := setMeta(ctx, tx, metaAccess, s.AccessToken); err != nil {
			return err
		}
		if err := setMeta(ctx, tx, metaExpires, formatTime(expires)); err != nil {
			return err
		}
		return setMeta(ctx, tx, metaRefresh, s.RefreshToken)
	})
	if err != nil {
		// The old refresh token is spent: without the new one the user must
		// log in again. Keep the new ones in memory for this session.
		err = fmt.Errorf("refresh tokens: save: %w", err)
	}
	r.mu.Lock()
	r.access, r.refresh, r.expires = s.AccessToken, s.RefreshToken, expires
	r.mu.Unlock()
	return err
}

// expiry is when the session's access token expires by the device's clock;
// zero when the server did not say.
func (r *Replica) expiry(s session) time.Time {
	if s.ExpiresIn <= 0 {
		return time.Time{}
	}
	return r.now().Add(time.Duration(s.ExpiresIn) * time.Second)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Login signs in with username and password, registering this replica as a
// device named deviceName, and stores the tokens and device id. Logging in
// again as the same user (after the refresh token expired) keeps the local
// data; if the server hands out a new device id, the writes still in the
// outbox are stamped again with the new node id and the pull cursor starts
// over. Logging in as another user while the replica holds data returns
// forbidden: call Wipe first.
func (r *Replica) Login(ctx context.Context, username, password, deviceName string) (User, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	prev := r.User()
	if prev.Username != "" && prev.Username != username {
		var n int
		if err := r.db.Reader.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM fields) + (SELECT count(*) FROM outbox)`).Scan(&n); err != nil {
			return User{}, fmt.Errorf("login: %w", err)
		}
		if n > 0 {
			return User{}, samenplan.Errorf(samenplan.EFORBIDDEN, "Dit toestel bevat gegevens van een andere gebruiker / this replica holds another user's data: wipe it first")
		}
	}
	var s session
	err := r.post(ctx, "/v1/auth/login", "", map[string]string{
		"username": username, "password": password, "device_name": deviceName,
	}, &s)
	if err != nil {
		return User{}, fmt.Errorf("login: %w", err)
	}
	if s.AccessToken == "" || s.DeviceID == "" {
		return User{}, fmt.Errorf("login: answer without token or device id")
	}
	m, err := readMeta(ctx, r.db.Reader)
	if err != nil {
		return User{}, fmt.Errorf("login: %w", err)
	}
	clock, err := r.newClock(s.DeviceID, m[metaClock], m[metaOffset])
	if err != nil {
		return User{}, fmt.Errorf("login: %w", err)
	}
	oldDevice := r.DeviceID()
	expires := r.expiry(s)
	userJSON, _ := json.Marshal(s.User)
	err = r.tx(ctx, func(tx *sql.Tx) error {
		for k, v := range map[string]string{
			metaDevice: s.DeviceID, metaAccess: s.AccessToken, metaRefresh: s.RefreshToken, metaUser: string(userJSON),
			metaExpires: formatTime(expires),
		} {
			if err := setMeta(ctx, tx, k, v); err != nil {
				return err
			}
		}
		if oldDevice != "" && oldDevice != s.DeviceID {
			if _, err := restamp(ctx, tx, clock, 0); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM batches`); err != nil {
				return err
			}
			if err := setMeta(ctx, tx, metaCursor, ""); err != nil {
				return err
			}
		}
		if err := saveClock(ctx, tx, clock); err != nil {
			return err
		}
		// Swapped before the commit, which writes wait for.
		r.mu.Lock()
		r.deviceID, r.access, r.refresh, r.user, r.clock = s.DeviceID, s.AccessToken, s.RefreshToken, s.User, clock
		r.expires = expires
		r.mu.Unlock()
		return nil
	})
	if err != nil {
		if lerr := r.load(ctx); lerr != nil { // back to what the file says
			err = errors.Join(err, lerr)
		}
		return User{}, fmt.Errorf("login: %w", err)
	}
	return r.User(), nil
}

// forget drops the session from memory.
func (r *Replica) forget() {
	r.mu.Lock()
	r.deviceID, r.access, r.refresh, r.user, r.clock = "", "", "", User{}, nil
	r.expires = time.Time{}
	r.mu.Unlock()
}

// restamp gives every write in the outbox from seq on a new stamp of clock,
// in write order, keeping the local values and the base links between them:
// a local value that was the write's stays the local value under the new
// stamp, and a later write whose base was the old stamp names the new one.
// The writes leave their batches (the caller deals with the batches table:
// the server never stored them). It is used after a login as a new device
// (a new node id) and after the server refused writes with clock_skew, and
// returns what it changed.
func restamp(ctx context.Context, tx *sql.Tx, clock *crdt.Clock, from int64) ([]Restamp, error) {
	type entry struct {
		seq             int64
		key             crdt.Key
		hlc, base, next string
	}
	type version struct {
		key crdt.Key
		hlc string
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, collection, id, field, hlc, base FROM outbox WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		return nil, err
	}
	var es []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.seq, &e.key.Collection, &e.key.ID, &e.key.Field, &e.hlc, &e.base); err != nil {
			rows.Close()
			return nil, err
		}
		es = append(es, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Old to new in memory first: after a Rebase a new stamp may equal the
	// old stamp of a later write, so updates must not chain.
	next := make(map[version]string, len(es))
	for i := range es {
		es[i].next = clock.Now().String()
		next[version{es[i].key, es[i].hlc}] = es[i].next
	}
	out := make([]Restamp, 0, len(es))
	keys := make(map[crdt.Key]bool)
	for _, e := range es {
		base := e.base
		if nb, ok := next[version{e.key, base}]; ok {
			base = nb
		}
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET hlc = ?, base = ?, batch_id = NULL WHERE seq = ?`, e.next, base, e.seq); err != nil {
			return nil, err
		}
		keys[e.key] = true
		out = append(out, Restamp{Key: e.key, Old: e.hlc, New: e.next})
	}
	// The local value that was one of these writes stays, under its new stamp.
	for k := range keys {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT hlc FROM fields WHERE collection = ? AND id = ? AND field = ?`,
			k.Collection, k.ID, k.Field).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, err
		}
		if nh, ok := next[version{k, cur}]; ok {
			if _, err := tx.ExecContext(ctx, `UPDATE fields SET hlc = ? WHERE collection = ? AND id = ? AND field = ?`,
				nh, k.Collection, k.ID, k.Field); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Wipe deletes every piece of case data and every credential from the
// replica: fields, scopes, outbox, batches, problems, tokens, device id and
// cursor, then compacts the file so the deleted pages are gone. Only the
// clock's last reading and offset are kept, so stamps never repeat. A
// replica wipes itself when the server answers device_revoked.
func (r *Replica) Wipe(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	return r.wipe(ctx)
}

func (r *Replica) wipe(ctx context.Context) error {
	err := r.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM fields`, `DELETE FROM row_scopes`, `DELETE FROM held_scopes`,
			`DELETE FROM outbox`, `DELETE FROM batches`, `DELETE FROM problems`,
			`DELETE FROM meta WHERE key NOT IN ('clock', 'clock_offset')`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		r.forget()
		return nil
	})
	if err != nil {
		r.forget() // whatever the file says, this session ends
		return fmt.Errorf("wipe replica: %w", err)
	}
	// Deleted rows linger in free pages and the WAL until these run.
	if _, err := r.db.Writer.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("wipe replica: vacuum: %w", err)
	}
	if _, err := r.db.Writer.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("wipe replica: checkpoint: %w", err)
	}
	return nil
}
