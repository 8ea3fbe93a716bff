package auth_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
)

func TestLogin_ReturnsTokensDeviceAndUserWithoutHash(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("an.peeters", auth.RoleCoach, "kempen")
	r := e.do("POST", "/v1/auth/login", "", map[string]string{"username": "An.Peeters ", "password": password, "device_name": "Telefoon An"})
	want(t, r, http.StatusOK, "")
	if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "password") {
		t.Fatalf("login response leaks the password hash: %s", r.body)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Fatalf("Cache-Control: got %q, want no-store", got)
	}
	var s auth.Session
	r.decode(t, &s)
	if s.TokenType != "Bearer" || s.ExpiresIn != 900 || s.AccessToken == "" || s.RefreshToken == "" || s.DeviceID == "" {
		t.Fatalf("got session %+v", s)
	}
	if s.User.ID != u.ID || s.User.Role != auth.RoleCoach {
		t.Fatalf("got user %+v, want %+v", s.User, u)
	}

	me := e.do("GET", "/v1/me", s.AccessToken, nil)
	want(t, me, http.StatusOK, "")
	var m auth.Me
	me.decode(t, &m)
	if m.ID != u.ID || m.DeviceID != s.DeviceID || m.Username != "an.peeters" {
		t.Fatalf("got me %+v", m)
	}

	// The access token carries the claims of DESIGN §7.
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(s.AccessToken, claims)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "HS256" || tok.Header["kid"] == "" {
		t.Fatalf("got header %v", tok.Header)
	}
	for _, k := range []string{"iss", "sub", "role", "regions", "dev", "iat", "exp", "jti"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %q missing from %v", k, claims)
		}
	}
	if claims["iss"] != "samenplan" || claims["sub"] != u.ID || claims["dev"] != s.DeviceID {
		t.Fatalf("got claims %v", claims)
	}

	devices, err := e.svc.ListDevices(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(devices) != 1 || devices[0].ID != s.DeviceID || devices[0].Name != "Telefoon An" {
		t.Fatalf("got devices %+v", devices)
	}
	got := e.waitAudit(audit.Filter{Action: audit.ActionLogin})
	if got[0].UserID != u.ID || got[0].DeviceID != s.DeviceID || got[0].IP == "" {
		t.Fatalf("got audit entry %+v", got[0])
	}
}

func TestLogin_WrongPasswordUnknownUserAndDisabledUserLookAlike(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("an", auth.RoleCoach, "kempen")
	e.createUser("bo", auth.RoleCoach, "kempen")
	if err := e.svc.SetDisabled(context.Background(), u.ID, true, auth.System("test")); err != nil {
		t.Fatal(err)
	}
	wrong := e.do("POST", "/v1/auth/login", "", map[string]string{"username": "bo", "password": "niet-het-wachtwoord"})
	unknown := e.do("POST", "/v1/auth/login", "", map[string]string{"username": "nobody", "password": password})
	disabled := e.do("POST", "/v1/auth/login", "", map[string]string{"username": "an", "password": password})
	for _, r := range []response{wrong, unknown, disabled} {
		want(t, r, http.StatusUnauthorized, samenplan.EUNAUTHORIZED)
		if string(r.body) != string(wrong.body) {
			t.Fatalf("got body %s, want the same as for a wrong password %s", r.body, wrong.body)
		}
	}
	e.audit.Close() // drain the queue
	got, err := e.audit.Query(context.Background(), audit.Filter{Action: audit.ActionLoginFailed})
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d failed-login entries (err %v), want 3", len(got), err)
	}
	for _, entry := range got {
		if strings.Contains(entry.Username+string(entry.Detail), "nobody") {
			t.Fatalf("audit stores the name typed for an unknown user: %+v", entry)
		}
	}
}

func TestLogin_BadInput(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"malformed", `{"username": "an",`, 400, samenplan.EINVALID},
		{"not an object", `["an"]`, 400, samenplan.EINVALID},
		{"wrong type", `{"username": 7, "password": "x"}`, 400, samenplan.EINVALID},
		{"trailing data", `{"username": "an", "password": "x"} {}`, 400, samenplan.EINVALID},
		{"missing password", `{"username": "an"}`, 400, samenplan.EINVALID},
		{"empty", ``, 400, samenplan.EINVALID},
		{"too large", `{"username": "` + strings.Repeat("a", auth.MaxBodyBytes) + `", "password": "x"}`, 413, samenplan.ETOOLARGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, e.do("POST", "/v1/auth/login", "", tc.body), tc.status, tc.code)
		})
	}
	want(t, e.do("POST", "/v1/auth/refresh", "", `{"refresh_token": `), 400, samenplan.EINVALID)
	want(t, e.do("POST", "/v1/auth/refresh", "", `{}`), 400, samenplan.EINVALID)
	want(t, e.do("POST", "/v1/auth/logout", "", `nope`), 400, samenplan.EINVALID)
	var n int
	if err := e.db.Reader.QueryRow(`SELECT count(*) FROM devices`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("got %d devices (err %v), want none after bad input", n, err)
	}
}

// signingSecret returns the secret of the key that signed token.
func (e *env) signingSecret(token string) (string, []byte) {
	e.t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		e.t.Fatal(err)
	}
	kid := tok.Header["kid"].(string)
	var secret []byte
	if err := e.db.Reader.QueryRow(`SELECT secret FROM signing_keys WHERE kid = ?`, kid).Scan(&secret); err != nil {
		e.t.Fatal(err)
	}
	return kid, secret
}

func TestAccessToken_RejectedUnlessValid(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	s := e.login("an")
	kid, secret := e.signingSecret(s.AccessToken)
	good, _, _ := jwt.NewParser().ParseUnverified(s.AccessToken, jwt.MapClaims{})
	claims := good.Claims.(jwt.MapClaims)

	sign := func(method jwt.SigningMethod, kid string, key any, mutate func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		if mutate != nil {
			mutate(c)
		}
		tok := jwt.NewWithClaims(method, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		str, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return str
	}
	// alg none by hand: golang-jwt refuses to make one without a special key.
	b64 := base64.RawURLEncoding
	payload := strings.Split(s.AccessToken, ".")[1]
	algNone := b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + "." + payload + "."
	algNoneLib := sign(jwt.SigningMethodNone, kid, jwt.UnsafeAllowNoneSignatureType, nil)

	// The good token works, to show the others fail for their own reason.
	want(t, e.do("GET", "/v1/me", s.AccessToken, nil), 200, "")
	want(t, e.do("GET", "/v1/me", sign(jwt.SigningMethodHS256, kid, secret, nil), nil), 200, "")

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"none", ""},
		{"garbage", "not.a.token"},
		{"garbage bytes", "%%%"},
		{"signed with another key", sign(jwt.SigningMethodHS256, kid, []byte("another key of enough length 0123456789"), nil)},
		{"alg none", algNone},
		{"alg none via library", algNoneLib},
		{"unknown kid", sign(jwt.SigningMethodHS256, "no-such-kid", secret, nil)},
		{"no kid", sign(jwt.SigningMethodHS256, "", secret, nil)},
		{"HS512 with the right key", sign(jwt.SigningMethodHS512, kid, secret, nil)},
		{"wrong issuer", sign(jwt.SigningMethodHS256, kid, secret, func(c jwt.MapClaims) { c["iss"] = "elders" })},
		{"no expiry", sign(jwt.SigningMethodHS256, kid, secret, func(c jwt.MapClaims) { delete(c, "exp") })},
		{"no device", sign(jwt.SigningMethodHS256, kid, secret, func(c jwt.MapClaims) { delete(c, "dev") })},
		{"unknown role", sign(jwt.SigningMethodHS256, kid, secret, func(c jwt.MapClaims) { c["role"] = "root" })},
		{"tampered payload", strings.Replace(s.AccessToken, payload, b64.EncodeToString([]byte(`{"sub":"x"}`)), 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, e.do("GET", "/v1/me", tc.token, nil), http.StatusUnauthorized, samenplan.EUNAUTHORIZED)
		})
	}

	t.Run("expired", func(t *testing.T) {
		e.clock.Add(15*time.Minute + time.Second)
		r := e.do("GET", "/v1/me", s.AccessToken, nil)
		want(t, r, http.StatusUnauthorized, samenplan.EUNAUTHORIZED)
		if !strings.Contains(r.code()+string(r.body), "expired") {
			t.Fatalf("got %s, want a message saying the token expired", r.body)
		}
	})
}

func TestRotateKey_OldTokensVerifyUntilRetired(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	old := e.login("an")
	oldKid, _ := e.signingSecret(old.AccessToken)

	newKid, err := e.svc.RotateKey(ctx, auth.System("test"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := e.login("an")
	if got, _ := e.signingSecret(fresh.AccessToken); got != newKid || got == oldKid {
		t.Fatalf("new token signed with %s, want new key %s", got, newKid)
	}
	want(t, e.do("GET", "/v1/me", old.AccessToken, nil), 200, "")
	want(t, e.do("GET", "/v1/me", fresh.AccessToken, nil), 200, "")

	keys, err := e.svc.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[1].Kid != newKid || !keys[1].Signing || keys[0].Signing {
		t.Fatalf("got keys %+v", keys)
	}

	if err := e.svc.RetireKey(ctx, oldKid, auth.System("test")); err != nil {
		t.Fatal(err)
	}
	want(t, e.do("GET", "/v1/me", old.AccessToken, nil), http.StatusUnauthorized, samenplan.EUNAUTHORIZED)
	want(t, e.do("GET", "/v1/me", fresh.AccessToken, nil), 200, "")
	if err := e.svc.RetireKey(ctx, newKid, auth.System("test")); samenplan.ErrorCode(err) != samenplan.ECONFLICT {
		t.Fatalf("retiring the last key: got %v, want conflict", err)
	}
	e.waitAudit(audit.Filter{Action: audit.ActionKeyRotate})
}

func TestRefresh_RotatesAndReuseRevokesTheDevice(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	first := e.login("an")
	other := e.login("an") // a second device of the same user

	e.clock.Add(time.Minute) // a new iat, so a new token
	r := e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken})
	want(t, r, 200, "")
	var second auth.Session
	r.decode(t, &second)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken || second.DeviceID != first.DeviceID {
		t.Fatalf("refresh did not rotate: %+v", second)
	}
	want(t, e.do("GET", "/v1/me", second.AccessToken, nil), 200, "")

	// The old refresh token again: theft. The device is revoked.
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken}), 401, samenplan.EDEVICEREVOKED)
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": second.RefreshToken}), 401, samenplan.EDEVICEREVOKED)
	want(t, e.do("GET", "/v1/me", second.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)
	want(t, e.do("GET", "/v1/me", first.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)
	// The user's other device is untouched.
	want(t, e.do("GET", "/v1/me", other.AccessToken, nil), 200, "")
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": other.RefreshToken}), 200, "")

	got := e.waitAudit(audit.Filter{Action: audit.ActionRefreshReuse})
	if got[0].DeviceID != first.DeviceID {
		t.Fatalf("got audit %+v, want reuse on device %s", got[0], first.DeviceID)
	}
	d, err := e.svc.GetDevice(context.Background(), first.DeviceID)
	if err != nil || !d.Revoked() {
		t.Fatalf("got device %+v (err %v), want revoked", d, err)
	}
}

func TestRefresh_UnknownExpiredOrGarbageToken(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	s := e.login("an")
	for _, tok := range []string{"garbage", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), s.AccessToken} {
		want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok}), 401, samenplan.EUNAUTHORIZED)
	}
	e.clock.Add(30*24*time.Hour + time.Second)
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": s.RefreshToken}), 401, samenplan.EUNAUTHORIZED)
	n, err := e.svc.PurgeExpired(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("purge: got %d, %v, want 1 token", n, err)
	}
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": s.RefreshToken}), 401, samenplan.EUNAUTHORIZED)
}

func TestLogout_RevokesTheRefreshTokenAndOptionallyTheDevice(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	a := e.login("an")
	want(t, e.do("POST", "/v1/auth/logout", "", map[string]any{"refresh_token": a.RefreshToken}), 204, "")
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": a.RefreshToken}), 401, samenplan.EUNAUTHORIZED)
	want(t, e.do("GET", "/v1/me", a.AccessToken, nil), 200, "") // lives out its 15 minutes

	b := e.login("an")
	want(t, e.do("POST", "/v1/auth/logout", "", map[string]any{"refresh_token": b.RefreshToken, "revoke_device": true}), 204, "")
	want(t, e.do("GET", "/v1/me", b.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)
	e.waitAudit(audit.Filter{Action: audit.ActionLogout})
}

func TestRevokeDevice_Gives401DeviceRevokedOnEveryCall(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	e.createUser("bo", auth.RoleCoach, "kempen")
	e.createUser("beheer", auth.RoleAdmin)
	phone, laptop := e.login("an"), e.login("an")
	bo, admin := e.login("bo"), e.login("beheer")

	// Someone else's device is invisible to a coach.
	want(t, e.do("POST", "/v1/devices/"+phone.DeviceID+"/revoke", bo.AccessToken, nil), 404, samenplan.ENOTFOUND)
	want(t, e.do("POST", "/v1/devices/no-such-device/revoke", laptop.AccessToken, nil), 404, samenplan.ENOTFOUND)
	// The owner revokes her lost phone from her laptop.
	want(t, e.do("POST", "/v1/devices/"+phone.DeviceID+"/revoke", laptop.AccessToken, nil), 204, "")
	want(t, e.do("GET", "/v1/me", phone.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)
	want(t, e.do("GET", "/v1/devices", phone.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)
	want(t, e.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": phone.RefreshToken}), 401, samenplan.EDEVICEREVOKED)
	want(t, e.do("GET", "/v1/me", laptop.AccessToken, nil), 200, "")
	// Revoking again is harmless.
	want(t, e.do("POST", "/v1/devices/"+phone.DeviceID+"/revoke", laptop.AccessToken, nil), 204, "")
	// An admin revokes anyone's device.
	want(t, e.do("POST", "/v1/devices/"+bo.DeviceID+"/revoke", admin.AccessToken, nil), 204, "")
	want(t, e.do("GET", "/v1/me", bo.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)

	got := e.waitAudit(audit.Filter{Action: audit.ActionDeviceRevoke, Target: "device:" + bo.DeviceID})
	if got[0].Username != "beheer" {
		t.Fatalf("got audit %+v, want revocation by beheer", got[0])
	}
}

func TestRevokeDevice_ByAnotherProcessIsSeenAfterReload(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	s := e.login("an")
	// The command line opens its own Service on the same database.
	cli, err := auth.Open(ctx, e.db, auth.Config{Argon2: cheap, ReloadEvery: -1, Audit: e.audit})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.RevokeDevice(ctx, s.DeviceID, auth.System("cli")); err != nil {
		t.Fatal(err)
	}
	want(t, e.do("GET", "/v1/me", s.AccessToken, nil), 200, "") // not yet seen
	if err := e.svc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	want(t, e.do("GET", "/v1/me", s.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)

	// A restart loads the revoked devices too.
	again, err := auth.Open(ctx, e.db, auth.Config{Argon2: cheap, ReloadEvery: -1, Audit: e.audit})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.IsRevoked(s.DeviceID) {
		t.Fatal("revoked device not revoked after restart")
	}
}

func TestSetDisabled_RevokesEveryDeviceOfTheUser(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := e.createUser("an", auth.RoleCoach, "kempen")
	a, b := e.login("an"), e.login("an")
	if err := e.svc.SetDisabled(ctx, u.ID, true, auth.System("test")); err != nil {
		t.Fatal(err)
	}
	want(t, e.do("GET", "/v1/me", a.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)
	want(t, e.do("GET", "/v1/me", b.AccessToken, nil), 401, samenplan.EDEVICEREVOKED)
	if err := e.svc.SetDisabled(ctx, u.ID, false, auth.System("test")); err != nil {
		t.Fatal(err)
	}
	e.login("an")
}

func TestLogin_LockoutAfterFiveFailuresUnlocksAfterTheWindow(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	bad := map[string]string{"username": "an", "password": "fout-wachtwoord"}
	for i := range 5 {
		if i > 0 {
			e.clock.Add(time.Minute)
		}
		want(t, e.do("POST", "/v1/auth/login", "", bad), 401, samenplan.EUNAUTHORIZED)
	}
	// Locked for 15 minutes from the fifth failure: even the right password
	// is refused.
	good := map[string]string{"username": "an", "password": password}
	want(t, e.do("POST", "/v1/auth/login", "", good), 429, samenplan.ERATELIMITED)
	e.clock.Add(15*time.Minute - time.Second)
	want(t, e.do("POST", "/v1/auth/login", "", good), 429, samenplan.ERATELIMITED)
	e.clock.Add(time.Second)
	want(t, e.do("POST", "/v1/auth/login", "", good), 200, "")
	e.waitAudit(audit.Filter{Action: audit.ActionLoginLocked})
}

func TestLogin_FailuresSpreadOverMoreThanTheWindowDoNotLock(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	bad := map[string]string{"username": "an", "password": "fout-wachtwoord"}
	for range 8 {
		want(t, e.do("POST", "/v1/auth/login", "", bad), 401, samenplan.EUNAUTHORIZED)
		e.clock.Add(4 * time.Minute) // 4 failures per 15 minutes at most
	}
	e.login("an")
}

func TestLogin_PerAddressLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, auth.Config{Limits: auth.Limits{IPMaxFailures: 10}})
	e.createUser("an", auth.RoleCoach, "kempen")
	for i := range 10 { // ten usernames, two tries each would not lock any of them
		_, err := e.svc.Login(ctx, "user"+string(rune('a'+i)), "fout-wachtwoord", "", "203.0.113.9")
		if got := samenplan.ErrorCode(err); got != samenplan.EUNAUTHORIZED {
			t.Fatalf("try %d: got %q, want unauthorized", i, got)
		}
	}
	if _, err := e.svc.Login(ctx, "an", password, "", "203.0.113.9"); samenplan.ErrorCode(err) != samenplan.ERATELIMITED {
		t.Fatalf("from the locked address: got %v, want rate_limited", err)
	}
	if _, err := e.svc.Login(ctx, "an", password, "", "198.51.100.1"); err != nil {
		t.Fatalf("from another address: got %v, want ok", err)
	}
	e.clock.Add(15*time.Minute + time.Second)
	if _, err := e.svc.Login(ctx, "an", password, "", "203.0.113.9"); err != nil {
		t.Fatalf("after the lockout: got %v, want ok", err)
	}
}

func TestRoleGuards(t *testing.T) {
	e := newEnv(t)
	e.createUser("coach", auth.RoleCoach, "kempen")
	e.createUser("coord", auth.RoleCoordinator, "kempen")
	e.createUser("rev", auth.RoleReviewer, "kempen", "maasland")
	e.createUser("beheer", auth.RoleAdmin)
	ok := func(c echoContext) error { return c.NoContent(http.StatusNoContent) }
	g := e.echo.Group("/v1/test", e.svc.Middleware())
	g.GET("/intake", ok, auth.Require(auth.RoleCoordinator))
	g.GET("/regions/:region/cases", ok, auth.RequireRegion("region"))
	g.POST("/regions/:region/decisions", ok, auth.Require(auth.RoleCoordinator), auth.RequireRegion("region"))
	g.GET("/cases", ok, auth.RequireCaseReader())

	tokens := map[string]string{"": ""}
	for _, u := range []string{"coach", "coord", "rev", "beheer"} {
		tokens[u] = e.login(u).AccessToken
	}
	for _, tc := range []struct {
		user, method, path string
		status             int
	}{
		{"", "GET", "/v1/test/intake", 401},
		{"coach", "GET", "/v1/test/intake", 403},
		{"rev", "GET", "/v1/test/intake", 403},
		{"beheer", "GET", "/v1/test/intake", 403},
		{"coord", "GET", "/v1/test/intake", 204},

		{"", "GET", "/v1/test/regions/kempen/cases", 401},
		{"coach", "GET", "/v1/test/regions/kempen/cases", 204},
		{"coach", "GET", "/v1/test/regions/maasland/cases", 404},
		{"coord", "GET", "/v1/test/regions/maasland/cases", 404},
		{"rev", "GET", "/v1/test/regions/maasland/cases", 204},
		{"beheer", "GET", "/v1/test/regions/kempen/cases", 403},

		{"coord", "POST", "/v1/test/regions/kempen/decisions", 204},
		{"coord", "POST", "/v1/test/regions/maasland/decisions", 404},
		{"rev", "POST", "/v1/test/regions/kempen/decisions", 403},

		{"coach", "GET", "/v1/test/cases", 204},
		{"beheer", "GET", "/v1/test/cases", 403},

		{"coach", "GET", "/v1/users", 403},
		{"coord", "GET", "/v1/users", 403},
		{"rev", "POST", "/v1/users", 403},
		{"beheer", "GET", "/v1/users", 200},
		{"", "GET", "/v1/me", 401},
		{"", "GET", "/v1/devices", 401},
	} {
		t.Run(tc.user+" "+tc.method+" "+tc.path, func(t *testing.T) {
			if got := e.do(tc.method, tc.path, tokens[tc.user], nil).status; got != tc.status {
				t.Fatalf("got %d, want %d", got, tc.status)
			}
		})
	}
}

func TestPrincipal_Helpers(t *testing.T) {
	coach := auth.Principal{Role: auth.RoleCoach, Regions: []string{"kempen"}}
	coord := auth.Principal{Role: auth.RoleCoordinator, Regions: []string{"kempen"}}
	admin := auth.Principal{Role: auth.RoleAdmin, Regions: []string{"kempen"}}
	for _, tc := range []struct {
		name      string
		got, want bool
	}{
		{"coach reads own region", coach.CanReadRegion("kempen"), true},
		{"coach reads no other region", coach.CanReadRegion("maasland"), false},
		{"coach makes no region-wide writes", coach.CanWriteRegion("kempen"), false},
		{"coordinator writes own region", coord.CanWriteRegion("kempen"), true},
		{"coordinator writes no other region", coord.CanWriteRegion("maasland"), false},
		{"admin reads no region, even one listed", admin.CanReadRegion("kempen"), false},
		{"admin reads no case content", admin.ReadsCaseContent(), false},
		{"admin is admin", admin.IsAdmin(), true},
		{"empty region is never readable", coach.CanReadRegion(""), false},
		{"zero principal reads nothing", auth.Principal{}.ReadsCaseContent(), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestAdmin_ManagesUsersAndSeesAllDevices(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	e.createUser("bo", auth.RoleCoordinator, "maasland")
	e.createUser("beheer", auth.RoleAdmin)
	an, bo, admin := e.login("an"), e.login("bo"), e.login("beheer")

	r := e.do("GET", "/v1/users", admin.AccessToken, nil)
	want(t, r, 200, "")
	if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "password") {
		t.Fatalf("users leak password hashes: %s", r.body)
	}
	var users []auth.User
	r.decode(t, &users)
	if len(users) != 3 {
		t.Fatalf("got %d users, want 3", len(users))
	}
	e.do("GET", "/v1/users?region=kempen", admin.AccessToken, nil).decode(t, &users)
	if len(users) != 1 || users[0].Username != "an" {
		t.Fatalf("region filter: got %+v", users)
	}
	e.do("GET", "/v1/users?role=coordinator", admin.AccessToken, nil).decode(t, &users)
	if len(users) != 1 || users[0].Username != "bo" {
		t.Fatalf("role filter: got %+v", users)
	}
	want(t, e.do("GET", "/v1/users?role=root", admin.AccessToken, nil), 400, samenplan.EINVALID)

	nu := map[string]any{"username": "Cas", "display_name": "Cas Claes", "role": "coach", "regions": []string{"kempen"},
		"organisation": "Cirkant", "fte": 0.8, "password": "een-goed-wachtwoord"}
	r = e.do("POST", "/v1/users", admin.AccessToken, nu)
	want(t, r, 201, "")
	var created auth.User
	r.decode(t, &created)
	if created.Username != "cas" || created.FTE != 0.8 || created.Organisation != "Cirkant" || created.ID == "" {
		t.Fatalf("got created %+v", created)
	}
	want(t, e.do("POST", "/v1/users", admin.AccessToken, nu), 409, samenplan.ECONFLICT)
	want(t, e.do("POST", "/v1/users", admin.AccessToken, map[string]any{"username": "dirk", "role": "coach", "password": "een-goed-wachtwoord"}), 400, samenplan.EINVALID)
	want(t, e.do("POST", "/v1/users", admin.AccessToken, map[string]any{"username": "dirk", "role": "coach", "regions": []string{"kempen"}, "password": "kort"}), 400, samenplan.EINVALID)
	want(t, e.do("POST", "/v1/users", admin.AccessToken, `{"username":`), 400, samenplan.EINVALID)
	want(t, e.do("POST", "/v1/users", an.AccessToken, nu), 403, samenplan.EFORBIDDEN)
	e.waitAudit(audit.Filter{Action: audit.ActionUserCreate, Target: "user:" + created.ID})

	// Devices: a coach sees her own, an admin everyone's or one user's.
	var devices []auth.Device
	e.do("GET", "/v1/devices", an.AccessToken, nil).decode(t, &devices)
	if len(devices) != 1 || devices[0].ID != an.DeviceID {
		t.Fatalf("coach devices: got %+v", devices)
	}
	want(t, e.do("GET", "/v1/devices?user=bo", an.AccessToken, nil), 403, samenplan.EFORBIDDEN)
	e.do("GET", "/v1/devices", admin.AccessToken, nil).decode(t, &devices)
	if len(devices) != 3 {
		t.Fatalf("admin devices: got %d, want 3", len(devices))
	}
	e.do("GET", "/v1/devices?user=bo", admin.AccessToken, nil).decode(t, &devices)
	if len(devices) != 1 || devices[0].ID != bo.DeviceID || devices[0].Username != "bo" {
		t.Fatalf("admin devices of bo: got %+v", devices)
	}
	want(t, e.do("GET", "/v1/devices?user=nobody", admin.AccessToken, nil), 404, samenplan.ENOTFOUND)

	// Password reset and disabling through the API.
	want(t, e.do("POST", "/v1/users/"+created.ID+"/password", admin.AccessToken, map[string]string{"password": "nog-een-wachtwoord"}), 204, "")
	if _, err := e.svc.Login(context.Background(), "cas", "nog-een-wachtwoord", "", "127.0.0.1"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	r = e.do("PATCH", "/v1/users/"+created.ID, admin.AccessToken, map[string]any{"disabled": true, "regions": []string{"kempen", "maasland"}})
	want(t, r, 200, "")
	r.decode(t, &created)
	if !created.Disabled || len(created.Regions) != 2 {
		t.Fatalf("patched: got %+v", created)
	}
	want(t, e.do("PATCH", "/v1/users/"+admin.User.ID, admin.AccessToken, map[string]any{"disabled": true}), 400, samenplan.EINVALID)
	want(t, e.do("GET", "/v1/users/no-such-user", admin.AccessToken, nil), 404, samenplan.ENOTFOUND)
}

func TestLastSeen_WrittenAtMostOnceAMinute(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	s := e.login("an")
	lastSeen := func() time.Time {
		d, err := e.svc.GetDevice(ctx, s.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		return d.LastSeen
	}
	waitFor := func(want time.Time) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !lastSeen().Equal(want) {
			if time.Now().After(deadline) {
				t.Fatalf("last_seen: got %v, want %v", lastSeen(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t0 := e.clock.Now()
	e.clock.Add(10 * time.Second)
	e.do("GET", "/v1/me", s.AccessToken, nil)
	waitFor(t0.Add(10 * time.Second))
	e.clock.Add(30 * time.Second)
	e.do("GET", "/v1/me", s.AccessToken, nil)
	time.Sleep(50 * time.Millisecond)
	if got := lastSeen(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("last_seen within the minute: got %v, want unchanged", got)
	}
	e.clock.Add(31 * time.Second)
	e.do("GET", "/v1/me", s.AccessToken, nil)
	waitFor(t0.Add(71 * time.Second))
}

func TestPasswordRehash_OnLoginWithOldParameters(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	var before string
	e.db.Reader.QueryRow(`SELECT password_hash FROM users`).Scan(&before)
	if !strings.HasPrefix(before, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("got hash %q, want PHC argon2id with the configured parameters", before)
	}
	// The same database opened with stronger parameters rehashes at login.
	stronger, err := auth.Open(ctx, e.db, auth.Config{Argon2: auth.Argon2Params{Memory: 128, Time: 2, Threads: 1}, ReloadEvery: -1, Audit: e.audit})
	if err != nil {
		t.Fatal(err)
	}
	defer stronger.Close()
	if _, err := stronger.Login(ctx, "an", password, "", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	var after string
	e.db.Reader.QueryRow(`SELECT password_hash FROM users`).Scan(&after)
	if !strings.HasPrefix(after, "$argon2id$v=19$m=128,t=2,p=1$") {
		t.Fatalf("got hash %q after login, want rehashed", after)
	}
	if _, err := e.svc.Login(ctx, "an", password, "", "127.0.0.1"); err != nil {
		t.Fatalf("old service, new hash: %v", err)
	}
}

func TestChangePassword_NeedsTheCurrentOne(t *testing.T) {
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	s := e.login("an")
	want(t, e.do("POST", "/v1/me/password", s.AccessToken, map[string]string{"current_password": "fout-wachtwoord", "new_password": "nieuw-wachtwoord"}), 401, samenplan.EUNAUTHORIZED)
	want(t, e.do("POST", "/v1/me/password", s.AccessToken, map[string]string{"current_password": password, "new_password": "kort"}), 400, samenplan.EINVALID)
	want(t, e.do("POST", "/v1/me/password", "", map[string]string{"current_password": password, "new_password": "nieuw-wachtwoord"}), 401, samenplan.EUNAUTHORIZED)
	want(t, e.do("POST", "/v1/me/password", s.AccessToken, map[string]string{"current_password": password, "new_password": "nieuw-wachtwoord"}), 204, "")
	want(t, e.do("POST", "/v1/auth/login", "", map[string]string{"username": "an", "password": password}), 401, samenplan.EUNAUTHORIZED)
	want(t, e.do("POST", "/v1/auth/login", "", map[string]string{"username": "an", "password": "nieuw-wachtwoord"}), 200, "")
	e.waitAudit(audit.Filter{Action: audit.ActionUserPassword})
}
