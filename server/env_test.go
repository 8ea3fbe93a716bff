package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/store"
)

const testPassword = "correct-horse-battery"

// testEnv is a real server on a temporary data directory and a loopback
// port, with a few accounts and one family per coach.
type testEnv struct {
	t      *testing.T
	srv    *Server
	stores *store.Stores
	auth   *auth.Service
	audit  *audit.Logger
	clock  *crdt.Clock
	logs   *lockedBuffer
	users  map[string]auth.User
	// families maps a coach's username to the id of a family she coaches,
	// and trajectories to its trajectory.
	families     map[string]string
	trajectories map[string]string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	e := &testEnv{t: t, users: map[string]auth.User{}, families: map[string]string{}, trajectories: map[string]string{}, logs: &lockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	e.clock = crdt.NewClock("server", nil)
	var err error
	e.stores, err = store.Open(ctx, t.TempDir(), []string{"kempen", "maasland"}, store.Options{Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.audit, err = audit.Open(ctx, e.stores.Main, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e.auth, err = auth.Open(ctx, e.stores.Main, auth.Config{Audit: e.audit, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = New(Config{Addr: "127.0.0.1:0", Logger: logger, Stores: e.stores, Auth: e.auth, Audit: e.audit, Clock: e.clock, BodyLimit: 1 << 20})
	if err := e.srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.srv.Close(ctx)
		e.auth.Close()
		e.audit.Close()
		e.stores.Close()
	})
	for _, u := range []auth.NewUser{
		{Username: "coach.a", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1},
		{Username: "coach.b", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1},
		{Username: "coach.m", Role: auth.RoleCoach, Regions: []string{"maasland"}, FTE: 1},
		{Username: "coordinator.k", Role: auth.RoleCoordinator, Regions: []string{"kempen"}},
		{Username: "reviewer.k", Role: auth.RoleReviewer, Regions: []string{"kempen"}},
		{Username: "admin", Role: auth.RoleAdmin},
	} {
		u.Password = testPassword
		u.DisplayName = u.Username
		created, err := e.auth.CreateUser(ctx, u, auth.System("test"))
		if err != nil {
			t.Fatal(err)
		}
		e.users[u.Username] = created
	}
	for _, coach := range []string{"coach.a", "coach.b", "coach.m"} {
		region := e.users[coach].Regions[0]
		fam, traj := newUUID(), newUUID()
		e.serverWrite(region,
			store.FieldWrite{Collection: "families", ID: fam, Field: "region", Value: jsonValue(region)},
			store.FieldWrite{Collection: "families", ID: fam, Field: "label", Value: jsonValue("Gezin " + coach)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue(region)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(e.users[coach].ID)},
			store.FieldWrite{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("active")},
		)
		e.families[coach], e.trajectories[coach] = fam, traj
	}
	return e
}

func (e *testEnv) serverWrite(region string, writes ...store.FieldWrite) {
	e.t.Helper()
	r, _ := e.stores.Region(region)
	if _, err := r.ServerWrite(context.Background(), store.Actor{Role: store.RoleServer}, writes); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) url() string { return e.srv.URL() }

func newUUID() string { return uuid.Must(uuid.NewV7()).String() }

func jsonValue(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// testClient is one logged-in device speaking raw HTTP.
type testClient struct {
	t       *testing.T
	base    string
	token   string
	refresh string
	device  string
	clock   *crdt.Clock
}

func (e *testEnv) login(username string) *testClient {
	e.t.Helper()
	c := &testClient{t: e.t, base: e.url()}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		DeviceID     string `json:"device_id"`
	}
	if status := c.do("POST", "/v1/auth/login", map[string]string{"username": username, "password": testPassword, "device_name": "test"}, &out); status != http.StatusOK {
		e.t.Fatalf("login %s: %d", username, status)
	}
	c.token, c.refresh, c.device = out.AccessToken, out.RefreshToken, out.DeviceID
	c.clock = crdt.NewClock(c.device, nil)
	return c
}

// do sends body (JSON-encoded unless it is []byte) and decodes the answer
// into out when out is not nil. It returns the status.
func (c *testClient) do(method, path string, body, out any) int {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		raw = jsonValue(b)
	}
	return c.doRaw(method, path, "application/json", raw, out)
}

// doRaw sends body as is with the given content type; see do.
func (c *testClient) doRaw(method, path, contentType string, body []byte, out any) int {
	c.t.Helper()
	status, err := c.send(method, path, contentType, body, out)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return status
}

// try is do without t.Fatal, for goroutines: errors are returned.
func (c *testClient) try(method, path string, body, out any) (int, error) {
	return c.send(method, path, "application/json", jsonValue(body), out)
}

func (c *testClient) send(method, path, contentType string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(buf) > 0 {
		if err := json.Unmarshal(buf, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %q: %w", buf, err)
		}
	}
	return resp.StatusCode, nil
}

// lockedBuffer is a log sink shared by handlers on many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
