package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/audit"
)

// TestRequestID_IsTheServersOwn: the request id goes into every log line
// and every audit entry (which is append-only and outlives retention), so
// it must not be whatever a client sends in X-Request-Id: a buggy or
// hostile client could put a token or a child's name there, of any length.
// The server answers with an id of its own, and neither its logs nor its
// audit log hold the client's.
func TestRequestID_IsTheServersOwn(t *testing.T) {
	m := newMatrixEnv(t)
	planted := "clientid-Tim-Janssens-" + strings.Repeat("x", 2000)
	for _, path := range []string{"/v1/auth/login", "/v1/me"} {
		req, err := http.NewRequest("POST", m.url()+path, bytes.NewReader(jsonValue(map[string]string{"username": "coach.a", "password": "fout-wachtwoord"})))
		if path == "/v1/me" {
			req, err = http.NewRequest("GET", m.url()+path, nil)
			req.Header.Set("Authorization", "Bearer "+m.clients[colHolder].token)
		}
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", planted)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if got == "" || strings.Contains(got, "clientid") || len(got) > 64 {
			t.Errorf("%s: answered with request id %.80q, want one of the server's own", path, got)
		}
	}
	// The failed login is audited in the background.
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, err := m.audit.Query(context.Background(), audit.Filter{Action: audit.ActionLoginFailed})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			for _, e := range entries {
				if strings.Contains(e.RequestID, "clientid") {
					t.Errorf("audit entry %d holds the client's request id %.80q", e.ID, e.RequestID)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed login was not audited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if logs := m.logs.String(); strings.Contains(logs, "clientid") {
		i := strings.Index(logs, "clientid")
		t.Errorf("the server logged the client's request id: %.120q", logs[max(0, i-40):])
	}
}
