package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// rawGzipClient does not ask for or undo compression by itself, so the
// test sees the encoding the server chose.
var rawGzipClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	return gzipBytes(b)
}

// gzipBytes compresses b (writing to a bytes.Buffer cannot fail).
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// FuzzGzipBodies sends arbitrary bytes as a gzip push body (the request
// decompression is an outside decoder): never a 5xx, a refusal is a JSON
// error with a known code and leaves the change log as it was, and the
// server keeps serving. Seeds: a valid gzipped push, a cut one, plain JSON,
// a gzip of gzip.
func FuzzGzipBodies(f *testing.F) {
	var now func() time.Time
	st := newWorkflowStack(f, io.Discard, &now)
	_, sess := fuzzLogin(f, st, auth.NewUser{Username: "coach.z", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1})
	region, _ := st.stores.Region("kempen")
	push := []byte(`{"device_id":"` + sess.DeviceID + `","batch_id":"b1","schema_version":1,"changes":[]}`)
	for _, seed := range [][]byte{gzipBytes(push), gzipBytes(push)[:20], push, gzipBytes(gzipBytes(push)), {}} {
		f.Add(seed)
	}
	known := codeSet("invalid", "unauthorized", "forbidden", "too_large")
	handler := st.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		before, err := region.MaxSeq(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("POST", "/v1/sync/push", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+sess.AccessToken)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d %s", rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !known[e.Code] || e.Message == "" {
				t.Fatalf("%d and body %q is not a known error", rec.Code, rec.Body.Bytes())
			}
			if after, _ := region.MaxSeq(t.Context()); after != before {
				t.Fatalf("refused (%d) but the change log grew from %d to %d", rec.Code, before, after)
			}
		}
		health := httptest.NewRecorder()
		handler.ServeHTTP(health, httptest.NewRequest("GET", "/healthz", nil))
		if health.Code != http.StatusOK {
			t.Fatalf("healthz after the input: %d", health.Code)
		}
	})
}

// send posts body with the given encodings and returns the status, the
// answer's Content-Encoding and the answer, decompressed.
func (c *testClient) sendEncoded(method, path string, body []byte, contentEncoding, acceptEncoding string) (int, string, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	resp, err := rawGzipClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	enc := resp.Header.Get("Content-Encoding")
	var rd io.Reader = resp.Body
	if enc == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			c.t.Fatalf("%s %s: the answer says gzip but is not: %v", method, path, err)
		}
		rd = zr
	}
	out, err := io.ReadAll(rd)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, enc, out
}

// TestCompression_GzipBothWays: a large answer is gzipped for a client that
// accepts it and is the same JSON as without; a small one is not; a push
// sent gzipped applies like a plain one.
func TestCompression_GzipBothWays(t *testing.T) {
	e := newTestEnv(t)
	coord := e.login("coordinator.k")
	coach := e.login("coach.a")

	var changes []protocol.Change
	for range 40 {
		changes = append(changes, coach.newContact(e.trajectories["coach.a"], strings.Repeat("Huisbezoek, gesprek over de week. ", 4))...)
	}
	body := jsonValue(coach.pushRequest(changes...))
	st, enc, answer := coach.sendEncoded("POST", "/v1/sync/push", gzipped(t, body), "gzip", "gzip")
	var push protocol.PushResponse
	if err := json.Unmarshal(answer, &push); err != nil || st != http.StatusOK || push.Applied != len(changes) {
		t.Fatalf("gzipped push: %d %q applied %d of %d (%v)", st, answer, push.Applied, len(changes), err)
	}
	if enc != "" {
		t.Errorf("a push answer of %d bytes came %s; small answers go plain", len(answer), enc)
	}

	pull := jsonValue(protocol.PullRequest{DeviceID: coord.device, SchemaVersion: schema.Version})
	st1, enc1, zipped := coord.sendEncoded("POST", "/v1/sync/pull", pull, "", "gzip")
	st2, enc2, plain := coord.sendEncoded("POST", "/v1/sync/pull", pull, "", "")
	if st1 != http.StatusOK || st2 != http.StatusOK {
		t.Fatalf("pulls: %d, %d", st1, st2)
	}
	if enc1 != "gzip" || enc2 != "" {
		t.Fatalf("pull of %d bytes: encoding %q with gzip accepted, %q without; want gzip and none", len(plain), enc1, enc2)
	}
	var a, b protocol.PullResponse
	if json.Unmarshal(zipped, &a) != nil || json.Unmarshal(plain, &b) != nil {
		t.Fatal("pull answers are not JSON")
	}
	if len(a.Changes) != len(b.Changes) || len(a.Changes) < len(changes) {
		t.Fatalf("gzipped pull has %d changes, plain %d; pushed %d", len(a.Changes), len(b.Changes), len(changes))
	}
	if !bytes.Equal(jsonValue(a.Changes), jsonValue(b.Changes)) {
		t.Fatal("the gzipped pull's changes differ from the plain one's")
	}

	// The event stream is never buffered by compression.
	req, _ := http.NewRequest("GET", coord.base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+coord.token)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := rawGzipClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("the event stream came %s", resp.Header.Get("Content-Encoding"))
	}
}

// TestCompression_BadBodiesChangeNothing: a gzip body that unpacks past the
// body limit is too_large, a body that is not gzip or another encoding is
// invalid; nothing changes and the server keeps serving.
func TestCompression_BadBodiesChangeNothing(t *testing.T) {
	e := newTestEnv(t) // body limit 1 MiB
	coach := e.login("coach.a")
	before := e.caseState()

	// One contact whose note unpacks to 8 MiB, from a few KiB of gzip: a
	// request the decoder would read whole (and the store refuse as one
	// change) if the limit counted the compressed bytes.
	bomb := gzipped(t, jsonValue(coach.pushRequest(coach.newContact(e.trajectories["coach.a"], strings.Repeat("a", 8<<20))...)))
	if len(bomb) >= 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed; it must fit under the limit to test the unpacked size", len(bomb))
	}
	valid := jsonValue(coach.pushRequest(coach.newContact(e.trajectories["coach.a"], "Kort gesprek")...))
	for _, tc := range []struct {
		name, enc string
		body      []byte
		status    int
		code      string
	}{
		{"a gzip bomb", "gzip", bomb, http.StatusRequestEntityTooLarge, "too_large"},
		{"plain JSON said to be gzip", "gzip", valid, http.StatusBadRequest, "invalid"},
		{"an empty gzip body", "gzip", nil, http.StatusBadRequest, "invalid"},
		{"a cut gzip stream", "gzip", gzipped(t, valid)[:40], http.StatusBadRequest, "invalid"},
		{"brotli", "br", valid, http.StatusBadRequest, "invalid"},
		{"deflate", "deflate", valid, http.StatusBadRequest, "invalid"},
	} {
		st, _, answer := coach.sendEncoded("POST", "/v1/sync/push", tc.body, tc.enc, "")
		var er struct {
			Code string `json:"code"`
		}
		json.Unmarshal(answer, &er)
		if st != tc.status || er.Code != tc.code {
			t.Errorf("%s: %d %s; want %d %s", tc.name, st, answer, tc.status, tc.code)
		}
	}
	if changed := before.changedKeys(e.caseState()); len(changed) > 0 {
		t.Fatalf("refused bodies changed %v", changed)
	}
	if st, _, _ := coach.sendEncoded("POST", "/v1/sync/push", gzipped(t, valid), "gzip", ""); st != http.StatusOK {
		t.Fatalf("the server does not serve a good gzipped push after the bad ones: %d", st)
	}
}
