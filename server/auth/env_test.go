package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/store"
)

// clock is a settable clock for the Service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cheap argon2 parameters keep the tests fast.
var cheap = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}

const password = "geheim-wachtwoord"

type env struct {
	t     testing.TB
	db    *store.DB
	svc   *auth.Service
	audit *audit.Logger
	clock *clock
	srv   *httptest.Server
	echo  *echo.Echo
}

// statusOf is the server's code → status table, repeated here so the tests
// see real statuses.
var statusOf = map[string]int{
	samenplan.EINVALID:       http.StatusBadRequest,
	samenplan.EUNAUTHORIZED:  http.StatusUnauthorized,
	samenplan.EDEVICEREVOKED: http.StatusUnauthorized,
	samenplan.EFORBIDDEN:     http.StatusForbidden,
	samenplan.ENOTFOUND:      http.StatusNotFound,
	samenplan.ECONFLICT:      http.StatusConflict,
	samenplan.ERATELIMITED:   http.StatusTooManyRequests,
	samenplan.ETOOLARGE:      http.StatusRequestEntityTooLarge,
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, auth.Config{})
}

func newEnvWith(t testing.TB, cfg auth.Config) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenDB(filepath.Join(t.TempDir(), "main.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	al, err := audit.Open(ctx, db, audit.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	cfg.Now = clk.Now
	cfg.Audit = al
	if cfg.Argon2 == (auth.Argon2Params{}) {
		cfg.Argon2 = cheap
	}
	if cfg.ReloadEvery == 0 {
		cfg.ReloadEvery = -1
	}
	svc, err := auth.Open(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })

	e := echo.New()
	e.HideBanner = true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		code, msg := samenplan.ErrorCode(err), samenplan.ErrorMessage(err)
		status, ok := statusOf[code]
		var he *echo.HTTPError
		if errors.As(err, &he) {
			status, code, msg = he.Code, "http", http.StatusText(he.Code)
		} else if !ok {
			status = http.StatusInternalServerError
			t.Logf("internal error: %v", err)
		}
		c.JSON(status, map[string]string{"code": code, "message": msg})
	}
	v1 := e.Group("/v1")
	svc.Routes(v1)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &env{t: t, db: db, svc: svc, audit: al, clock: clk, srv: srv, echo: e}
}

func (e *env) createUser(username, role string, regions ...string) auth.User {
	e.t.Helper()
	u, err := e.svc.CreateUser(context.Background(), auth.NewUser{
		Username: username, DisplayName: username, Role: role, Regions: regions, Password: password,
	}, auth.System("test"))
	if err != nil {
		e.t.Fatalf("create user %s: %v", username, err)
	}
	return u
}

type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) code() string {
	var b struct{ Code string }
	json.Unmarshal(r.body, &b)
	return b.Code
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; body is JSON-encoded unless it is a string or []byte.
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	buf, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, body: buf, header: res.Header}
}

func (e *env) login(username string) auth.Session {
	e.t.Helper()
	r := e.do("POST", "/v1/auth/login", "", map[string]string{"username": username, "password": password, "device_name": "telefoon"})
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: got %d %s, want 200", username, r.status, r.body)
	}
	var s auth.Session
	r.decode(e.t, &s)
	return s
}

// want checks the status and error code of r.
func want(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.status, r.code(), r.body, status, code)
	}
}

// waitAudit waits until the audit log holds an entry matching f.
func (e *env) waitAudit(f audit.Filter) []audit.Entry {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := e.audit.Query(context.Background(), f)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no audit entry for %+v", f)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type echoContext = echo.Context
