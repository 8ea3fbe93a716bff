package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/store"
)

// FuzzDecodeAuthBody feeds arbitrary bytes to the decoders of the login,
// refresh and logout bodies: they must never panic, must answer with a
// coded error or a value, and a decoded value must survive a round trip.
func FuzzDecodeAuthBody(f *testing.F) {
	for _, seed := range []string{
		`{"username":"an","password":"geheim-wachtwoord","device_name":"Telefoon"}`,
		`{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","revoke_device":true}`,
		`{"username":"an",`, `[]`, `null`, `{}`, `{"username":7}`, `{"a":1} {}`, "\x00", `"\ud800"`,
		`{"username":"` + strings.Repeat("a", 100) + `","password":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Add([]byte(`{"username":"` + strings.Repeat("a", MaxBodyBytes) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			if code := samenplan.ErrorCode(err); code != samenplan.EINVALID && code != samenplan.ETOOLARGE {
				t.Fatalf("got code %q (%v), want invalid or too_large", code, err)
			}
		}
		login, err := decodeLogin(bytes.NewReader(body))
		check(err)
		if err == nil {
			if login.Username == "" || login.Password == "" {
				t.Fatalf("decoded a login without username or password: %+v", login)
			}
			buf, _ := json.Marshal(login)
			again, err := decodeLogin(bytes.NewReader(buf))
			if err != nil || again != login {
				t.Fatalf("round trip: got %+v, %v, want %+v", again, err, login)
			}
			_ = cleanDeviceName(login.DeviceName)
		}
		refresh, err := decodeRefresh(bytes.NewReader(body))
		check(err)
		if samenplan.ErrorCode(err) == samenplan.ETOOLARGE && len(body) <= MaxBodyBytes {
			t.Fatalf("too_large for a body of %d bytes", len(body))
		}
		if err == nil && refresh.RefreshToken == "" {
			t.Fatalf("decoded a refresh without token: %+v", refresh)
		}
	})
}

// FuzzParseHash: stored hashes are ours, but a damaged row must not panic
// or allocate without bound.
func FuzzParseHash(f *testing.F) {
	h, _ := hashPassword("geheim-wachtwoord", Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	f.Add(h)
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Fuzz(func(t *testing.T, phc string) {
		p, _, _, err := parseHash(phc)
		if err == nil && (p.Memory > 4<<20 || p.Time > 100 || p.Threads == 0) {
			t.Fatalf("accepted parameters %+v", p)
		}
	})
}

func TestCleanDeviceName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  Telefoon An ", "Telefoon An"},
		{"", "toestel"},
		{"a\x00b\nc", "abc"},
		{"\xff\xfe", "toestel"},
		{strings.Repeat("é", 150), strings.Repeat("é", MaxDeviceNameLen)},
	} {
		if got := cleanDeviceName(tc.in); got != tc.want {
			t.Errorf("cleanDeviceName(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVerifyPassword(t *testing.T) {
	p := Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := hashPassword("geheim-wachtwoord", p)
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash := verifyPassword("geheim-wachtwoord", h, p); !ok || rehash {
		t.Fatalf("right password: got ok=%v rehash=%v, want true false", ok, rehash)
	}
	if ok, _ := verifyPassword("geheim-wachtwoorD", h, p); ok {
		t.Fatal("wrong password matched")
	}
	if ok, rehash := verifyPassword("geheim-wachtwoord", h, DefaultArgon2); !ok || !rehash {
		t.Fatalf("other parameters: got ok=%v rehash=%v, want true true", ok, rehash)
	}
	if ok, _ := verifyPassword("x", "not a hash", p); ok {
		t.Fatal("malformed hash matched")
	}
}

// fuzzKid and fuzzSecret are the signing key of FuzzVerifyAccessToken, fixed
// so that the tokens in its corpus (testdata/fuzz) stay valid.
const fuzzKid = "fuzz-key-1"

var fuzzSecret = []byte("samenplan-fuzz-signing-key-0123456789abcdef-0123456789abcdef-xyz")

// FuzzVerifyAccessToken: the bearer token is the most exposed decoder of
// all. Whatever the string, verifyAccess accepts it only when an HMAC-SHA256
// under our key (found by kid) over its first two parts is its third, its
// header says HS256, its issuer is ours, it has not expired and it names a
// user, a device, a valid role and an id; and the principal it returns is
// what the claims say. Everything else is unauthorized.
func FuzzVerifyAccessToken(f *testing.F) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	db, err := store.OpenDB(filepath.Join(f.TempDir(), "main.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s, err := Open(f.Context(), db, Config{Now: func() time.Time { return now }, ReloadEvery: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	s.keysMu.Lock()
	s.keys = map[string][]byte{fuzzKid: fuzzSecret}
	s.signKid = fuzzKid
	s.keysMu.Unlock()
	for _, p := range []Principal{
		{UserID: "0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11", Username: "an", Role: RoleCoach, Regions: []string{"kempen"}, DeviceID: "0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f12"},
		{UserID: "u", Username: "admin", Role: RoleAdmin, Regions: nil, DeviceID: "d"},
	} {
		tok, _, err := s.issueAccess(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
		if got, err := s.verifyAccess(tok); err != nil || got.UserID != p.UserID {
			f.Fatalf("control: our own token gives %+v, %v", got, err)
		}
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := s.verifyAccess(token)
		if err != nil {
			if samenplan.ErrorCode(err) != samenplan.EUNAUTHORIZED {
				t.Fatalf("verifyAccess(%q): code %q, want unauthorized", token, samenplan.ErrorCode(err))
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q of %d parts", token, len(parts))
		}
		var hdr struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[0])
		if err != nil || json.Unmarshal(raw, &hdr) != nil || hdr.Alg != "HS256" || hdr.Kid != fuzzKid {
			t.Fatalf("accepted %q with header %q (%v)", token, raw, err)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		mac := hmac.New(sha256.New, fuzzSecret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("accepted %q, which our key did not sign", token)
		}
		var claims struct {
			Iss     string      `json:"iss"`
			Sub     string      `json:"sub"`
			Exp     json.Number `json:"exp"` // golang-jwt also reads "exp":"123"; only our key signs, so that is harmless
			Role    string      `json:"role"`
			Dev     string      `json:"dev"`
			Usr     string      `json:"usr"`
			Regions []string    `json:"regions"`
		}
		raw, err = base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil || json.Unmarshal(raw, &claims) != nil {
			t.Fatalf("accepted %q with claims %q (%v)", token, raw, err)
		}
		exp, err := claims.Exp.Float64()
		if claims.Iss != Issuer || err != nil || !now.Before(time.Unix(int64(exp), 0)) {
			t.Fatalf("accepted %q: issuer %q, exp %v", token, claims.Iss, claims.Exp)
		}
		if p.UserID != claims.Sub || p.UserID == "" || p.DeviceID != claims.Dev || p.DeviceID == "" || p.Role != claims.Role || !ValidRole(p.Role) ||
			p.Username != claims.Usr || len(p.Regions) != len(claims.Regions) {
			t.Fatalf("accepted %q as %+v, claims say %+v", token, p, claims)
		}
	})
}
