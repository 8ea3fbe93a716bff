package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
)

// loginState is what a refused login must leave as it was: the user's
// devices and refresh tokens, and her password hash.
func (e *env) loginState(u auth.User) string {
	e.t.Helper()
	var devices, tokens int
	var hash string
	row := e.db.Reader.QueryRow(`SELECT
		(SELECT count(*) FROM devices WHERE user_id = ?),
		(SELECT count(*) FROM refresh_tokens WHERE device_id IN (SELECT id FROM devices WHERE user_id = ?)),
		(SELECT password_hash FROM users WHERE id = ?)`, u.ID, u.ID, u.ID)
	if err := row.Scan(&devices, &tokens, &hash); err != nil {
		e.t.Fatal(err)
	}
	return strconv.Itoa(devices) + " devices, " + strconv.Itoa(tokens) + " refresh tokens, hash " + hash
}

// wantLocked checks a 429 rate_limited answer with no token in it and a
// Retry-After of secs seconds.
func wantLocked(t *testing.T, r response, secs int) {
	t.Helper()
	want(t, r, http.StatusTooManyRequests, samenplan.ERATELIMITED)
	if got := r.header.Get("Retry-After"); got != strconv.Itoa(secs) {
		t.Fatalf("Retry-After %q, want %d", got, secs)
	}
	var s auth.Session
	r.decode(t, &s)
	if s.AccessToken != "" || s.RefreshToken != "" || s.DeviceID != "" {
		t.Fatalf("a refused login handed out %+v", s)
	}
}

// TestLoginLockout_OverHTTP walks the lockout of docs/security.md over real
// HTTP with the clock moved by hand: five wrong passwords for one username
// within 15 minutes lock it for 15 minutes from the fifth; during the
// lockout the right password, the name in other capitals and a password
// change are refused with 429 rate_limited and Retry-After, and change
// nothing; another account from the same address is not affected; the
// lockout ends on time; a success forgets earlier failures.
func TestLoginLockout_OverHTTP(t *testing.T) {
	e := newEnv(t)
	an := e.createUser("an", auth.RoleCoach, "kempen")
	e.createUser("bo", auth.RoleCoach, "kempen")
	sess := e.login("an") // a device she had before the attack
	login := func(username, pw string) response {
		return e.do("POST", "/v1/auth/login", "", map[string]string{"username": username, "password": pw, "device_name": "telefoon"})
	}

	// A success forgets the failures before it: 4 + 4 failures around one
	// success do not lock.
	for range 4 {
		want(t, login("an", "fout-wachtwoord"), 401, samenplan.EUNAUTHORIZED)
	}
	e.login("an")
	for range 4 {
		want(t, login("an", "fout-wachtwoord"), 401, samenplan.EUNAUTHORIZED)
	}
	e.clock.Add(time.Minute)
	// The fifth failure within the window still answers 401, and locks.
	want(t, login("an", "nog-altijd-fout"), 401, samenplan.EUNAUTHORIZED)
	e.waitAudit(audit.Filter{Action: audit.ActionLoginLocked, User: an.ID})
	before := e.loginState(an)

	wantLocked(t, login("an", password), 15*60)
	wantLocked(t, login("AN", password), 15*60) // usernames are compared normalised
	wantLocked(t, login("an", "fout-wachtwoord"), 15*60)
	r := e.do("POST", "/v1/me/password", sess.AccessToken, map[string]string{"current_password": password, "new_password": "een-nieuw-wachtwoord"})
	wantLocked(t, r, 15*60)
	if after := e.loginState(an); after != before {
		t.Fatalf("refused logins changed her account:\n before %s\n after  %s", before, after)
	}
	// Refused attempts are not counted: the lockout does not grow.
	e.clock.Add(10 * time.Minute)
	wantLocked(t, login("an", password), 5*60)

	// Another account, from the same address, logs in.
	e.login("bo")
	// Her device from before the lockout keeps working: the lockout is
	// about logging in, not about sessions.
	want(t, e.do("GET", "/v1/me", sess.AccessToken, nil), 200, "")

	e.clock.Add(5*time.Minute - 1500*time.Millisecond)
	wantLocked(t, login("an", password), 2) // 1.5 s left, rounded up
	e.clock.Add(1500 * time.Millisecond)
	got := e.login("an")
	if got.AccessToken == "" || got.DeviceID == "" {
		t.Fatalf("login after the lockout: %+v", got)
	}
	if after := e.loginState(an); after == before {
		t.Fatal("the login after the lockout registered no device")
	}
}

// TestLoginLockout_PerAddressOverHTTP: failures across usernames from one
// address lock that address for every username, right password included;
// X-Forwarded-For does not move a client to another address; the lock
// ends after Lockout.
func TestLoginLockout_PerAddressOverHTTP(t *testing.T) {
	e := newEnvWith(t, auth.Config{Limits: auth.Limits{IPMaxFailures: 6}})
	an := e.createUser("an", auth.RoleCoach, "kempen")
	before := e.loginState(an)
	spoof := 0
	login := func(username, pw string) response {
		e.t.Helper()
		spoof++ // a new forwarded address each time: it must not count
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/auth/login", jsonBody(map[string]string{"username": username, "password": pw}))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(spoof))
		req.Header.Set("X-Real-Ip", "198.51.100."+strconv.Itoa(spoof))
		return send(t, req)
	}
	for i := range 6 { // six names, one try each: no name reaches five
		want(t, login("sproei"+strconv.Itoa(i), "fout-wachtwoord"), 401, samenplan.EUNAUTHORIZED)
	}
	wantLocked(t, login("an", password), 15*60)
	if after := e.loginState(an); after != before {
		t.Fatalf("a refused login changed her account:\n before %s\n after  %s", before, after)
	}
	// The same service, asked from another address (as the HTTP layer
	// would for another socket), lets her in.
	if _, err := e.svc.Login(context.Background(), "an", password, "", "203.0.113.7"); err != nil {
		t.Fatalf("from another address: %v", err)
	}
	e.clock.Add(15 * time.Minute)
	want(t, login("an", password), 200, "")
}

// TestLoginLockout_AuditEntries: the failures and the lock are in the
// audit log, with the address, and nothing in them is the typed password.
func TestLoginLockout_AuditEntries(t *testing.T) {
	e := newEnv(t)
	an := e.createUser("an", auth.RoleCoach, "kempen")
	for range 5 {
		want(t, e.do("POST", "/v1/auth/login", "", map[string]string{"username": "an", "password": "zeer-geheim-fout"}), 401, samenplan.EUNAUTHORIZED)
	}
	var n int
	deadline := time.Now().Add(5 * time.Second)
	for n < 5 && time.Now().Before(deadline) {
		got, err := e.audit.Query(context.Background(), audit.Filter{Action: audit.ActionLoginFailed, User: an.ID})
		if err != nil {
			t.Fatal(err)
		}
		n = len(got)
		time.Sleep(10 * time.Millisecond)
	}
	if n != 5 {
		t.Fatalf("%d login_failed entries, want 5", n)
	}
	locked := e.waitAudit(audit.Filter{Action: audit.ActionLoginLocked, User: an.ID})
	if locked[0].IP == "" {
		t.Fatalf("lock entry without an address: %+v", locked[0])
	}
	var hits int
	if err := e.db.Reader.QueryRow(`SELECT count(*) FROM audit_log
		WHERE instr(coalesce(detail, '') || username || target_id || action, ?) > 0`, "zeer-geheim-fout").Scan(&hits); err != nil {
		t.Fatal(err)
	}
	if hits != 0 {
		t.Fatalf("the typed password is in %d audit entries", hits)
	}
}

func jsonBody(v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(b)
}

// send runs req and returns its answer.
func send(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, body: buf, header: res.Header}
}

// TestAuthBodies_UnknownFieldsAreRefused: docs/security.md says every body
// is decoded strictly; for the auth and account bodies that means a field
// the endpoint does not know is 400 invalid and changes nothing (a
// misspelt field must not pass as a change that did not happen).
func TestAuthBodies_UnknownFieldsAreRefused(t *testing.T) {
	e := newEnv(t)
	e.createUser("beheer", auth.RoleAdmin)
	an := e.createUser("an", auth.RoleCoach, "kempen")
	admin, coach := e.login("beheer"), e.login("an")
	before := e.loginState(an)
	for _, tc := range []struct {
		method, path, token string
		body                map[string]any
	}{
		{"POST", "/v1/auth/login", "", map[string]any{"username": "an", "password": password, "role": "admin"}},
		{"POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": coach.RefreshToken, "device": "x"}},
		{"POST", "/v1/auth/logout", "", map[string]any{"refresh_token": coach.RefreshToken, "revoke": true}},
		{"POST", "/v1/me/password", coach.AccessToken, map[string]any{"current_password": password, "new_password": "een-nieuw-wachtwoord", "confirm": "x"}},
		{"POST", "/v1/users", admin.AccessToken, map[string]any{"username": "nieuw", "display_name": "N", "role": "coach", "regions": []string{"kempen"}, "password": "lang-genoeg-wachtwoord", "admin": true}},
		{"PATCH", "/v1/users/" + an.ID, admin.AccessToken, map[string]any{"dispaly_name": "Anneke"}},
		{"POST", "/v1/users/" + an.ID + "/password", admin.AccessToken, map[string]any{"password": "een-ander-wachtwoord", "notify": true}},
	} {
		r := e.do(tc.method, tc.path, tc.token, tc.body)
		if r.status != http.StatusBadRequest || r.code() != samenplan.EINVALID {
			t.Errorf("%s %s with an unknown field: %d %s, want 400 invalid", tc.method, tc.path, r.status, r.body)
		}
	}
	if after := e.loginState(an); after != before {
		t.Fatalf("refused bodies changed her account:\n before %s\n after  %s", before, after)
	}
	if u, err := e.svc.GetUserByUsername(context.Background(), "nieuw"); err == nil {
		t.Fatalf("a refused body created %+v", u)
	}
	// The coach's refresh token was not used up by the refused refresh.
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": coach.RefreshToken}), 200, "")
}
