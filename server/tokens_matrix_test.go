package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/auth"
)

// The token-state dimension of the security matrix (issue 7, item 4): for
// every registered route that needs a token, a request that would succeed
// with a valid token of the column the matrix lets in gets 401 with the
// right code, and changes nothing, when its token is missing, malformed,
// expired, signed with a wrong key, unsigned (alg none), signed under an
// unknown kid, of a revoked device, or of a device whose refresh token was
// reused.

// tokenState is one column of the token-state matrix.
type tokenState struct {
	name string
	code string // the error code the 401 must carry
	// header returns the Authorization header value for user acting on
	// dev ("" sends none).
	header func(user auth.User, dev string) string
}

// mintToken builds an access token for user on dev by hand, as the server
// would, with header fields hdr and expiry exp, signed with HS256 under
// secret (unsigned when secret is nil).
func mintToken(t *testing.T, hdr map[string]any, user auth.User, dev string, iat, exp time.Time, secret []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	regions := user.Regions
	if regions == nil {
		regions = []string{}
	}
	claims := map[string]any{
		"usr": user.Username, "role": user.Role, "regions": regions, "dev": dev,
		"iss": auth.Issuer, "sub": user.ID, "iat": iat.Unix(), "exp": exp.Unix(), "jti": newUUID(),
	}
	signing := enc(hdr) + "." + enc(claims)
	if secret == nil {
		return signing + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tokenStates returns the states, with the revoked and reused devices of
// each user created on first use.
func (m *matrixEnv) tokenStates() []tokenState {
	kid, secret := m.signingKey()
	wrong := make([]byte, len(secret))
	if _, err := rand.Read(wrong); err != nil {
		m.t.Fatal(err)
	}
	now := m.now()
	revoked := map[string]string{} // username → Authorization of a revoked device
	reused := map[string]string{}  // username → Authorization of a device whose refresh token was reused
	reuses := 0
	return []tokenState{
		{name: "no Authorization header", code: samenplan.EUNAUTHORIZED,
			header: func(auth.User, string) string { return "" }},
		{name: "malformed header", code: samenplan.EUNAUTHORIZED,
			header: func(auth.User, string) string { return "Bearer not.a.jwt" }},
		{name: "expired token", code: samenplan.EUNAUTHORIZED,
			header: func(u auth.User, dev string) string {
				return "Bearer " + mintToken(m.t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, u, dev, now.Add(-2*time.Hour), now.Add(-time.Hour), secret)
			}},
		{name: "wrong key", code: samenplan.EUNAUTHORIZED,
			header: func(u auth.User, dev string) string {
				return "Bearer " + mintToken(m.t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, u, dev, now, now.Add(time.Hour), wrong)
			}},
		{name: "alg none", code: samenplan.EUNAUTHORIZED,
			header: func(u auth.User, dev string) string {
				return "Bearer " + mintToken(m.t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, u, dev, now, now.Add(time.Hour), nil)
			}},
		{name: "unknown kid", code: samenplan.EUNAUTHORIZED,
			header: func(u auth.User, dev string) string {
				return "Bearer " + mintToken(m.t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "no-such-kid"}, u, dev, now, now.Add(time.Hour), secret)
			}},
		{name: "revoked device", code: samenplan.EDEVICEREVOKED,
			header: func(u auth.User, _ string) string {
				if h, ok := revoked[u.Username]; ok {
					return h
				}
				c := m.login(u.Username)
				if err := m.auth.RevokeDevice(m.t.Context(), c.device, u.Principal(c.device)); err != nil {
					m.t.Fatal(err)
				}
				revoked[u.Username] = "Bearer " + c.token
				return revoked[u.Username]
			}},
		{name: "refresh-token reuse", code: samenplan.EDEVICEREVOKED,
			header: func(u auth.User, _ string) string {
				// Alternate between the access token of the rotation and
				// the one of the login: both are of the revoked device.
				if h, ok := reused[u.Username]; ok {
					reuses++
					if reuses%2 == 0 {
						return reused[u.Username+"/old"]
					}
					return h
				}
				c := m.login(u.Username)
				var fresh struct {
					AccessToken  string `json:"access_token"`
					RefreshToken string `json:"refresh_token"`
				}
				if st := c.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": c.refresh}, &fresh); st != 200 || fresh.AccessToken == "" {
					m.t.Fatalf("refresh %s: %d", u.Username, st)
				}
				var e ErrorBody
				if st := c.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": c.refresh}, &e); st != 401 || e.Code != samenplan.EDEVICEREVOKED {
					m.t.Fatalf("reused refresh token of %s: %d %q, want 401 %s", u.Username, st, e.Code, samenplan.EDEVICEREVOKED)
				}
				// The rotated refresh token dies with the device.
				if st := c.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": fresh.RefreshToken}, &e); st != 401 || e.Code != samenplan.EDEVICEREVOKED {
					m.t.Fatalf("rotated refresh token of %s after reuse: %d %q, want 401 %s", u.Username, st, e.Code, samenplan.EDEVICEREVOKED)
				}
				reused[u.Username] = "Bearer " + fresh.AccessToken
				reused[u.Username+"/old"] = "Bearer " + c.token
				return reused[u.Username]
			}},
	}
}

// TestTokenMatrix_EveryRouteEveryTokenState sends, for every registered
// route whose no-token cell in the role × endpoint matrix is 401, one
// request per token state, acting as the first column the matrix lets in,
// and wants 401 with the state's code and an unchanged fingerprint.
func TestTokenMatrix_EveryRouteEveryTokenState(t *testing.T) {
	m := newMatrixEnv(t)
	rows := matrixRows(m)
	states := m.tokenStates()

	// The hand-minted token is the server's own when its state is valid:
	// without this control the states below could fail for the wrong reason.
	kid, secret := m.signingKey()
	holder := m.clients[colHolder]
	good := mintToken(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, m.users["coach.a"], holder.device, m.now(), m.now().Add(time.Hour), secret)
	if st, body := m.sendAuth("Bearer "+good, matrixRequest{method: "GET", path: "/v1/me"}); st != 200 {
		t.Fatalf("control: a hand-minted valid token gets %d (%.200s), want 200", st, body)
	}

	registered := map[Route]bool{}
	for _, r := range m.srv.Routes() {
		registered[r] = true
	}
	done := map[Route]bool{}
	routes, n := 0, 0
	for _, row := range rows {
		rt := Route{Method: row.method, Path: row.route}
		if !registered[rt] || done[rt] || row.want[colAnon] != http.StatusUnauthorized {
			continue
		}
		done[rt] = true
		routes++
		col := row.firstAdmitted(colHolder)
		user, dev := m.users[m.user(col)], m.client(col).device
		// One request for every state: all are refused, so none of them
		// uses up what the request names.
		r := row.req(m, col)
		for _, s := range states {
			h := s.header(user, dev)
			before := m.fingerprint()
			got, body := m.sendAuth(h, r)
			n++
			var e ErrorBody
			_ = json.Unmarshal(body, &e)
			if got != http.StatusUnauthorized || e.Code != s.code {
				t.Errorf("%s %s as %s with %s: %d %q, want 401 %s (%.200s)", r.method, r.path, col, s.name, got, e.Code, s.code, body)
				continue
			}
			if after := m.fingerprint(); after != before {
				t.Errorf("%s %s as %s with %s: refused but changed something:\n before %s\n after  %s", r.method, r.path, col, s.name, before, after)
			}
		}
	}
	for rt := range registered {
		if !done[rt] {
			t.Logf("%s %s: needs no token (or has no matrix row): not in the token-state matrix", rt.Method, rt.Path)
		}
	}
	if routes < 20 {
		t.Errorf("only %d routes need a token; the matrix rows did not load?", routes)
	}
	t.Logf("token-state matrix: %d routes × %d states = %d requests", routes, len(states), n)
}

// sendAuth sends r with Authorization header h (none when h is "") and
// returns the status and body. A stream is closed once its status is known.
func (m *matrixEnv) sendAuth(h string, r matrixRequest) (int, []byte) {
	m.t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(m.t.Context(), r.method, m.url()+r.path, body)
	if err != nil {
		m.t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	} else if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h != "" {
		req.Header.Set("Authorization", h)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		m.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, nil
	}
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		m.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return resp.StatusCode, buf
}
