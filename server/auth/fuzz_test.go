package auth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	samenplan "github.com/samenplan/samenplan"
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
