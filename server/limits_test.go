package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// Body and batch limits (issue 7, item 4; docs/security.md "Bad input").
// Every route that takes a body refuses one over the server's limit with
// 413 too_large and a JSON error, changes nothing, and the server keeps
// serving: whether the client announces the size (Content-Length, refused
// before a byte is read) or streams it (chunked, refused when the reader
// passes the limit).

const limitsBodyLimit = 4 << 20 // serveWired's BodyLimit

// TestLimits_OversizedBodyOnEveryWriteRoute walks every registered POST,
// PUT and PATCH route with the request the role matrix lets through, as the
// first column it lets in, grown past the body limit three ways.
func TestLimits_OversizedBodyOnEveryWriteRoute(t *testing.T) {
	m := newMatrixEnv(t)
	registered := map[Route]bool{}
	for _, r := range m.srv.Routes() {
		registered[r] = true
	}
	done := map[Route]bool{}
	routes, n := 0, 0
	for _, row := range matrixRows(m) {
		rt := Route{Method: row.method, Path: row.route}
		if row.method == "GET" || row.method == "DELETE" || !registered[rt] || done[rt] {
			continue
		}
		done[rt] = true
		routes++
		col := row.firstAdmitted(colAnon)
		r := row.req(m, col)
		auth := ""
		if col != colAnon {
			auth = "Bearer " + m.clients[col].token
		}
		contentType := r.contentType
		if contentType == "" {
			contentType = "application/json"
		}
		// The well-formed body, with whitespace before it (a decoder must
		// read through it) or after it (a decoder that acts on the first
		// value before it reads on would change something).
		pad := bytes.Repeat([]byte(" "), limitsBodyLimit+1-len(r.body))
		cases := []struct {
			name string
			send func() (int, []byte, error)
		}{
			{name: "announced by Content-Length", send: func() (int, []byte, error) {
				return sendAnnounced(m.srv.Addr(), r.method, r.path, contentType, auth, limitsBodyLimit+1)
			}},
			{name: "chunked, padded before", send: func() (int, []byte, error) {
				return sendChunked(m.url()+r.path, r.method, contentType, auth, append(append([]byte{}, pad...), r.body...))
			}},
			{name: "chunked, padded after", send: func() (int, []byte, error) {
				return sendChunked(m.url()+r.path, r.method, contentType, auth, append(append([]byte{}, r.body...), pad...))
			}},
		}
		if r.body == nil {
			// The route takes no body and never reads one: only an
			// announced size is refused (by the server, before the handler).
			cases = cases[:1]
		}
		for _, tc := range cases {
			before := m.fingerprint()
			status, body, err := tc.send()
			n++
			if err != nil {
				t.Errorf("%s %s as %s, %s: %v", r.method, r.path, col, tc.name, err)
				continue
			}
			var e ErrorBody
			if status != http.StatusRequestEntityTooLarge || json.Unmarshal(body, &e) != nil || e.Code != samenplan.ETOOLARGE || e.Message == "" {
				t.Errorf("%s %s as %s, %s: %d %.200s, want 413 too_large", r.method, r.path, col, tc.name, status, body)
			}
			if after := m.fingerprint(); after != before {
				t.Errorf("%s %s as %s, %s: refused but changed something:\n before %s\n after  %s", r.method, r.path, col, tc.name, before, after)
			}
			if st := m.clients[colHolder].do("GET", "/healthz", nil, nil); st != http.StatusOK {
				t.Fatalf("after %s %s, %s: healthz %d", r.method, r.path, tc.name, st)
			}
		}
	}
	if routes < 20 {
		t.Errorf("only %d write routes; the matrix rows did not load?", routes)
	}
	t.Logf("%d write routes, %d oversized requests", routes, n)
}

// sendAnnounced sends the headers of a request whose Content-Length is
// size, and no body: a server that honours its limit answers at once.
func sendAnnounced(addr, method, path, contentType, auth string, size int) (int, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: samenplan\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n", method, path, contentType, size)
	if auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", auth)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("no answer before the body: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// sendChunked sends body without a Content-Length (chunked transfer
// encoding), so only reading it shows its size.
func sendChunked(url, method, contentType, auth string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, io.MultiReader(bytes.NewReader(body))) // no length known
	if err != nil {
		return 0, nil, err
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(resp.Body)
	return resp.StatusCode, buf, err
}

// TestLimits_PushAndPullBounds sends, over HTTP as the coach who holds the
// family, the requests at and just past each limit of a push and a pull
// that the decoder and the schema enforce: the batch size, the batch id's
// length, the pull limit, a field's size, and deep or huge JSON nesting.
// Past a limit the answer has a stable code and nothing changes; at the
// limit the request is served.
func TestLimits_PushAndPullBounds(t *testing.T) {
	m := newMatrixEnv(t)
	c := m.clients[colHolder]
	traj := m.trajectories["coach.a"]
	nest := func(depth int) json.RawMessage {
		return json.RawMessage(strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth))
	}
	type result struct {
		status   int
		code     string
		applied  int
		rejected int
	}
	// A deep value cannot go through json.Marshal (it refuses what it could
	// not decode): it replaces the placeholder string in the encoded body.
	const deepMark = `"deep-value-placeholder"`
	push := func(req protocol.PushRequest, deep json.RawMessage) (result, []byte) {
		var resp protocol.PushResponse
		raw := jsonValue(req)
		if deep != nil {
			raw = bytes.Replace(raw, []byte(deepMark), deep, 1)
		}
		status, body := c.raw("POST", "/v1/sync/push", c.token, raw)
		var e ErrorBody
		if status == http.StatusOK {
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("push answer %.200s: %v", body, err)
			}
		} else if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("push error %.200s: %v", body, err)
		}
		return result{status, e.Code, resp.Applied, len(resp.Rejected)}, body
	}
	contact := func(note string) []protocol.Change { return c.newContact(traj, note) }
	labels := func(n int) []protocol.Change {
		chs := make([]protocol.Change, n)
		for i := range chs {
			chs[i] = c.change("families", m.families["coach.a"], "label", fmt.Sprintf("Gezin %d", i))
		}
		return chs
	}
	noteMax := schema.CaseFile.Collection("contacts").Field("note").MaxLen
	if noteMax <= 0 {
		t.Fatal("contacts.note has no size limit")
	}
	for _, tc := range []struct {
		name string
		req  func() protocol.PushRequest
		deep json.RawMessage
		want result
	}{
		{"batch of MaxBatch changes", func() protocol.PushRequest { return c.pushRequest(labels(protocol.MaxBatch)...) },
			nil, result{status: 200, applied: protocol.MaxBatch}},
		{"batch of MaxBatch+1 changes", func() protocol.PushRequest { return c.pushRequest(labels(protocol.MaxBatch + 1)...) },
			nil, result{status: 400, code: samenplan.EINVALID}},
		{"batch_id of MaxBatchIDLen bytes", func() protocol.PushRequest {
			req := c.pushRequest(contact("ok")...)
			req.BatchID = strings.Repeat("b", protocol.MaxBatchIDLen)
			return req
		}, nil, result{status: 200, applied: 3}},
		{"batch_id of MaxBatchIDLen+1 bytes", func() protocol.PushRequest {
			req := c.pushRequest(contact("te lang")...)
			req.BatchID = strings.Repeat("b", protocol.MaxBatchIDLen+1)
			return req
		}, nil, result{status: 400, code: samenplan.EINVALID}},
		{"note at its size limit", func() protocol.PushRequest { return c.pushRequest(contact(strings.Repeat("n", noteMax))...) },
			nil, result{status: 200, applied: 3}},
		{"note one byte over its size limit", func() protocol.PushRequest {
			return c.pushRequest(contact(strings.Repeat("n", noteMax+1))...)
		}, nil, result{status: 200, applied: 2, rejected: 1}},
		{"value nested 9,000 deep", func() protocol.PushRequest {
			chs := contact("diep")
			chs[2].Value = json.RawMessage(deepMark)
			return c.pushRequest(chs...)
		}, nest(9_000), result{status: 200, applied: 2, rejected: 1}},
		{"value nested past the JSON decoder's depth", func() protocol.PushRequest {
			chs := contact("dieper")
			chs[2].Value = json.RawMessage(deepMark)
			return c.pushRequest(chs...)
		}, nest(20_000), result{status: 400, code: samenplan.EINVALID}}, // encoding/json stops at 10,000
		{"a list field of 100,000 items", func() protocol.PushRequest {
			chs := contact("breed")
			chs = append(chs, c.change("contacts", chs[0].ID, "participants", nil))
			chs[3].Value = json.RawMessage("[" + strings.Repeat(`"x",`, 100_000) + `"x"]`)
			return c.pushRequest(chs...)
		}, nil, result{status: 200, applied: 3, rejected: 1}},
	} {
		req := tc.req()
		before := m.fingerprint()
		got, body := push(req, tc.deep)
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v (%.200s)", tc.name, got, tc.want, body)
		}
		if after := m.fingerprint(); tc.want.status != 200 && after != before {
			t.Errorf("%s: refused but changed something:\n before %s\n after  %s", tc.name, before, after)
		}
	}

	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"pull limit MaxPullLimit", jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Limit: protocol.MaxPullLimit}), 200, ""},
		{"pull limit MaxPullLimit+1", jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Limit: protocol.MaxPullLimit + 1}), 400, samenplan.EINVALID},
		{"pull limit 1e99", []byte(fmt.Sprintf(`{"device_id":%q,"schema_version":1,"limit":1e99}`, c.device)), 400, samenplan.EINVALID},
		{"pull refetch of 1001 scopes", jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Refetch: make([]string, 1001)}), 400, samenplan.EINVALID},
		{"pull nested past the decoder's depth", []byte(fmt.Sprintf(`{"device_id":%q,"refetch":%s}`, c.device, strings.Repeat("[", 20_000))), 400, samenplan.EINVALID},
	} {
		before := m.fingerprint()
		status, body := c.raw("POST", "/v1/sync/pull", c.token, tc.body)
		var e ErrorBody
		_ = json.Unmarshal(body, &e)
		if status != tc.status || e.Code != tc.code {
			t.Errorf("%s: %d %q, want %d %q (%.200s)", tc.name, status, e.Code, tc.status, tc.code, body)
		}
		if after := m.fingerprint(); after != before {
			t.Errorf("%s: changed something:\n before %s\n after  %s", tc.name, before, after)
		}
	}
	if st := c.do("GET", "/healthz", nil, nil); st != http.StatusOK {
		t.Fatalf("healthz %d after the limits", st)
	}
}

// TestLimits_LoginLockoutOnTheWiredServer checks the login lockout
// (docs/security.md; its clock-driven walk is server/auth/ratelimit_test.go)
// through the server as serve wires it: its error table, its client address
// (the socket, not X-Forwarded-For) and its routes. Five wrong passwords
// for one account lock the account: the right password then gets 429
// rate_limited with a Retry-After of the lock's 15 minutes, no token and
// no device, and nothing else changes; another account still logs in. Then
// failures across many names lock the address, whatever X-Forwarded-For
// each claims.
func TestLimits_LoginLockoutOnTheWiredServer(t *testing.T) {
	m := newMatrixEnv(t)
	devices := func() int {
		var n int
		if err := m.stores.Main.Reader.QueryRow(`SELECT count(*) FROM devices WHERE user_id = ?`, m.spare.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	login := func(username, password string, i int) (int, http.Header, []byte) {
		req, err := http.NewRequest("POST", m.url()+"/v1/auth/login", bytes.NewReader(jsonValue(map[string]string{"username": username, "password": password})))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}
	for i := range 5 {
		if st, _, body := login(m.spare.Username, "fout-wachtwoord", i); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d %s, want 401", i+1, st, body)
		}
	}
	before, devs := m.fingerprint(), devices()
	st, h, body := login(m.spare.Username, testPassword, 9)
	var e ErrorBody
	_ = json.Unmarshal(body, &e)
	if st != http.StatusTooManyRequests || e.Code != samenplan.ERATELIMITED || e.Message == "" {
		t.Fatalf("right password while locked: %d %s, want 429 rate_limited", st, body)
	}
	if ra := h.Get("Retry-After"); ra != "900" && ra != "899" {
		t.Errorf("Retry-After %q, want the lock's 900 s", ra)
	}
	if bytes.Contains(body, []byte("access_token")) || bytes.Contains(body, []byte("refresh_token")) {
		t.Errorf("a locked login answered with tokens: %s", body)
	}
	if after := m.fingerprint(); after != before || devices() != devs {
		t.Errorf("a locked login changed something: devices %d → %d\n before %s\n after  %s", devs, devices(), before, after)
	}
	if st, _, body := login("coach.b", testPassword, 10); st != http.StatusOK {
		t.Errorf("another account during the lock: %d %s, want 200", st, body)
	}
	// Spraying: 50 failures (auth.DefaultLimits.IPMaxFailures) over 50
	// names, each claiming another forwarded address, lock the socket's
	// address for everyone; were X-Forwarded-For trusted, none would.
	for i := range auth.DefaultLimits.IPMaxFailures - 5 { // the 5 above count too
		if st, _, body := login(fmt.Sprintf("sproei.%d", i), "fout-wachtwoord", 20+i); st != http.StatusUnauthorized {
			t.Fatalf("spray %d: %d %s, want 401", i, st, body)
		}
	}
	if st, h, body := login("coach.c", testPassword, 200); st != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("from a sprayed address: %d %s, want 429 with Retry-After", st, body)
	}
}
