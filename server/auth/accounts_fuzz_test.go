package auth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/samenplan/samenplan/server/auth"
)

// FuzzAccountRequests sends arbitrary bodies and query strings to the
// account endpoints (login, refresh, logout, password changes, user
// creation and changes, the user and device lists, revocation) in process:
// the admin's and a coach's requests, with $USER replaced by a spare
// account's id and $DEV by the coach's device. Whatever comes in: no 5xx,
// every refusal is a JSON error with a known code and a message, no answer
// carries a password hash, and the service keeps serving (the admin's
// GET /v1/me answers 200).
func FuzzAccountRequests(f *testing.F) {
	e := newEnv(f)
	e.createUser("beheer", auth.RoleAdmin)
	e.createUser("an", auth.RoleCoach, "kempen")
	spare := e.createUser("reserve", auth.RoleCoach, "kempen")
	admin, coach := e.login("beheer"), e.login("an")
	known := map[string]bool{"invalid": true, "unauthorized": true, "forbidden": true, "not_found": true,
		"conflict": true, "too_large": true, "rate_limited": true, "device_revoked": true}
	type target struct{ method, path, who string }
	targets := []target{
		{"POST", "/v1/auth/login", ""},
		{"POST", "/v1/auth/refresh", ""},
		{"POST", "/v1/auth/logout", ""},
		{"POST", "/v1/me/password", "coach"},
		{"POST", "/v1/users", "admin"},
		{"PATCH", "/v1/users/$USER", "admin"},
		{"POST", "/v1/users/$USER/password", "admin"},
		{"GET", "/v1/users?", "admin"},
		{"GET", "/v1/devices?", "admin"},
		{"GET", "/v1/devices?", "coach"},
		{"POST", "/v1/devices/$DEV/revoke", "admin"},
	}
	for i, body := range []string{
		`{"username":"an","password":"geheim-wachtwoord","device_name":"Telefoon"}`,
		`{"refresh_token":"` + coach.RefreshToken + `"}`,
		`{"refresh_token":"AAAA","revoke_device":true}`,
		`{"current_password":"geheim-wachtwoord","new_password":"kort"}`,
		`{"username":"nieuw.k","display_name":"Nieuw","role":"coordinator","regions":["kempen"],"password":"lang-genoeg-wachtwoord"}`,
		`{"display_name":"Reserve","role":"reviewer","regions":["kempen","maasland"],"disabled":false}`,
		`{"password":"een-ander-wachtwoord"}`,
		`role=coach&region=kempen`,
		`user=an`,
		`user=$USER`,
		``,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Add(uint8(4), []byte(`{"username":"x","display_name":"","role":"admin","regions":null,"password":"`+strings.Repeat("p", 2000)+`","fte":-1}`))
	f.Add(uint8(5), []byte(`{"role":"superuser","regions":["nergens"],"fte":1e308}`))
	f.Add(uint8(7), []byte(`role=%ff&region=%00`))
	handler := e.echo
	f.Fuzz(func(t *testing.T, which uint8, input []byte) {
		tg := targets[int(which)%len(targets)]
		fill := strings.NewReplacer("$USER", spare.ID, "$DEV", coach.DeviceID)
		path := fill.Replace(tg.path)
		var body *bytes.Reader
		if tg.method == "GET" {
			path += fill.Replace(string(input))
			body = bytes.NewReader(nil)
		} else {
			body = bytes.NewReader([]byte(fill.Replace(string(input))))
		}
		req, err := http.NewRequest(tg.method, "http://fuzz"+path, body)
		if err != nil {
			return // not a request any client could send
		}
		req.Header.Set("Content-Type", "application/json")
		switch tg.who {
		case "admin":
			req.Header.Set("Authorization", "Bearer "+admin.AccessToken)
		case "coach":
			req.Header.Set("Authorization", "Bearer "+coach.AccessToken)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with %q: %d %s", tg.method, path, input, rec.Code, rec.Body.Bytes())
		}
		if bytes.Contains(rec.Body.Bytes(), []byte("$argon2")) {
			t.Fatalf("%s %s with %q: the answer holds a password hash", tg.method, path, input)
		}
		if rec.Code >= 400 {
			var eb struct{ Code, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || !known[eb.Code] || eb.Message == "" {
				t.Fatalf("%s %s with %q: %d and body %q is not a known error", tg.method, path, input, rec.Code, rec.Body.Bytes())
			}
		}
		me := httptest.NewRequest("GET", "/v1/me", nil)
		me.Header.Set("Authorization", "Bearer "+admin.AccessToken)
		mrec := httptest.NewRecorder()
		handler.ServeHTTP(mrec, me)
		if mrec.Code != http.StatusOK {
			t.Fatalf("the service stopped serving after %s %s %q: /v1/me %d %s", tg.method, path, input, mrec.Code, mrec.Body.Bytes())
		}
	})
}
