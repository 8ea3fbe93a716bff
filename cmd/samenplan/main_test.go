package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestMain lets a test re-run this test binary as the real program: with
// SAMENPLAN_RUN_MAIN=1 it behaves exactly as `samenplan` with the given
// arguments. The crash test uses it to SIGKILL a real server process.
func TestMain(m *testing.M) {
	if os.Getenv("SAMENPLAN_RUN_MAIN") == "1" {
		ctx, stop := signalContext()
		code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// apiClient is a bare HTTP client of the API for end-to-end tests.
type apiClient struct {
	t       testing.TB
	base    string
	token   string
	refresh string
	device  string
	http    *http.Client
}

func login(t testing.TB, base, username string) *apiClient {
	t.Helper()
	c := &apiClient{t: t, base: base, http: &http.Client{Timeout: 30 * time.Second}}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		DeviceID     string `json:"device_id"`
	}
	status := c.call("POST", "/v1/auth/login", map[string]string{"username": username, "password": DemoPassword, "device_name": "test " + username}, &out)
	if status != http.StatusOK {
		t.Fatalf("login %s: status %d", username, status)
	}
	c.token, c.refresh, c.device = out.AccessToken, out.RefreshToken, out.DeviceID
	return c
}

// call sends body as JSON and decodes the answer into out (when not nil);
// it returns the status. Transport errors fail the test.
func (c *apiClient) call(method, path string, body, out any) int {
	c.t.Helper()
	status, err := c.try(method, path, body, out)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return status
}

func (c *apiClient) try(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
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
			return resp.StatusCode, fmt.Errorf("decode %s: %w", buf, err)
		}
	}
	return resp.StatusCode, nil
}
