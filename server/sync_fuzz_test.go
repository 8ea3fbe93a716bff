package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// FuzzSyncRequests sends arbitrary push and pull bodies through the whole
// server (handler, decoder, the store's checks of schema, scope and clock,
// SQLite) as a coach who holds one family, in process. Placeholders in the
// input are replaced before sending, so that mutations of a real body
// reach past the device check: $DEV is her device id, $FAM her family,
// $TRAJ its trajectory, $ROW a fresh row id, $HLC a stamp of now by her
// device. With bit 2 of which set the body is sent gzipped
// (Content-Encoding: gzip), and must be handled the same.
//
// Whatever comes in: no 5xx; a refusal is a JSON error with a known code
// and leaves the change log as it was (so does a batch whose every change
// was rejected, and a replayed batch);
// a push answer accounts for every change exactly once (applied + ignored +
// rejected + quarantined = changes, each index in range and named once,
// with a known code), or, for a batch id pushed before, is the first
// answer again; and afterwards the device still pulls (200), every
// pulled value is JSON the schema accepts for its field: nothing that was
// let in can break a later pull.
func FuzzSyncRequests(f *testing.F) {
	var now func() time.Time
	st := newWorkflowStack(f, io.Discard, &now)
	ctx := f.Context()
	u, sess := fuzzLogin(f, st, auth.NewUser{Username: "coach.f", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1})
	fam, traj := newUUID(), newUUID()
	region, _ := st.stores.Region("kempen")
	if _, err := region.ServerWrite(ctx, store.Actor{Role: store.RoleServer}, []store.FieldWrite{
		{Collection: "families", ID: fam, Field: "region", Value: jsonValue("kempen")},
		{Collection: "families", ID: fam, Field: "label", Value: jsonValue("Gezin F")},
		{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
		{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue("kempen")},
		{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(u.ID)},
		{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("active")},
	}); err != nil {
		f.Fatal(err)
	}
	known := codeSet("invalid", "unauthorized", "forbidden", "not_found", "conflict", "clock_skew",
		"out_of_scope", "upgrade_required", "too_large")
	seeds := []string{
		`{"device_id":"$DEV","batch_id":"b-$ROW","schema_version":1,"changes":[{"collection":"contacts","id":"$ROW","field":"trajectory_id","value":"$TRAJ","hlc":"$HLC"},{"collection":"contacts","id":"$ROW","field":"note","value":"Huisbezoek","hlc":"$HLC"}]}`,
		`{"device_id":"$DEV","batch_id":"b-$ROW","schema_version":1,"changes":[{"collection":"families","id":"$FAM","field":"label","value":"Gezin G","hlc":"$HLC"}]}`,
		`{"device_id":"$DEV","cursor":"","limit":10}`,
	}
	for _, seed := range seeds {
		f.Add(uint8(0), []byte(seed))
	}
	f.Add(uint8(2), []byte(seeds[0])) // the same push, gzipped
	f.Add(uint8(1), []byte(`{"device_id":"$DEV","schema_version":1,"cursor":"","limit":5000,"refetch":["family:$FAM"]}`))
	handler := st.srv.Handler()
	maxSeq := func(t *testing.T) int64 {
		var seq int64
		if err := region.DB().Reader.QueryRow(`SELECT coalesce(max(seq), 0) FROM change_log`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	send := func(path string, body []byte, zipped ...bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		if len(zipped) > 0 && zipped[0] {
			req = httptest.NewRequest("POST", path, bytes.NewReader(gzipBytes(body)))
			req.Header.Set("Content-Encoding", "gzip")
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+sess.AccessToken)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	dev := crdt.NewClock(sess.DeviceID, nil)
	batches := map[string]protocol.PushResponse{} // first answers of the batches pushed in this process
	fill := func(input []byte) string {
		return strings.NewReplacer("$DEV", sess.DeviceID, "$FAM", fam, "$TRAJ", traj, "$ROW", newUUID(), "$HLC", dev.Now().String()).
			Replace(string(input))
	}
	// Control: the first seed is a push the coach may make; without this
	// the placeholders could be wrong and every input refused early.
	if rec := send("/v1/sync/push", []byte(fill([]byte(seeds[0])))); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"applied":2`) {
		f.Fatalf("control push: %d %s", rec.Code, rec.Body.Bytes())
	}
	f.Fuzz(func(t *testing.T, which uint8, input []byte) {
		body := fill(input)
		path := "/v1/sync/push"
		if which%2 == 1 {
			path = "/v1/sync/pull"
		}
		seqBefore := maxSeq(t)
		rec := send(path, []byte(body), which&2 != 0) // sent gzipped or plain: the same answer
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !known[e.Code] || e.Message == "" {
				t.Fatalf("%s %q: %d and body %q is not a known error", path, body, rec.Code, rec.Body.Bytes())
			}
			if after := maxSeq(t); after != seqBefore {
				t.Fatalf("%s %q was refused (%d) but the change log grew from %d to %d", path, body, rec.Code, seqBefore, after)
			}
			return
		}
		if path == "/v1/sync/push" {
			req, err := protocol.DecodePush(bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatalf("push %q answered %d but does not decode: %v", body, rec.Code, err)
			}
			var resp protocol.PushResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("push answer %q: %v", rec.Body.Bytes(), err)
			}
			if first, ok := batches[req.BatchID]; ok {
				// A batch id sent before gets the first answer back.
				if !reflect.DeepEqual(resp, first) {
					t.Fatalf("push %q replays batch %q with %+v, the first answer was %+v", body, req.BatchID, resp, first)
				}
				if after := maxSeq(t); after != seqBefore {
					t.Fatalf("push %q replays batch %q but the change log grew from %d to %d", body, req.BatchID, seqBefore, after)
				}
				return
			}
			seen := map[int]bool{}
			for _, p := range append(append([]protocol.Problem{}, resp.Rejected...), resp.Quarantined...) {
				if p.Index < 0 || p.Index >= len(req.Changes) || seen[p.Index] || !known[p.Code] || p.Message == "" {
					t.Fatalf("push %q: problem %+v (changes %d, seen %v)", body, p, len(req.Changes), seen)
				}
				seen[p.Index] = true
			}
			if n := resp.Applied + resp.Ignored + len(resp.Rejected) + len(resp.Quarantined); n != len(req.Changes) {
				t.Fatalf("push %q: answer counts %d changes, the batch has %d: %+v", body, n, len(req.Changes), resp)
			}
			if resp.BatchID != req.BatchID {
				t.Fatalf("push %q: answer for batch %q", body, resp.BatchID)
			}
			batches[req.BatchID] = resp
			if len(resp.Rejected) == len(req.Changes) {
				if after := maxSeq(t); after != seqBefore {
					t.Fatalf("push %q: every change rejected but the change log grew from %d to %d", body, seqBefore, after)
				}
			}
		}
		pull := send("/v1/sync/pull", jsonValue(protocol.PullRequest{DeviceID: sess.DeviceID, SchemaVersion: schema.Version, Limit: protocol.MaxPullLimit}))
		if pull.Code != http.StatusOK {
			t.Fatalf("after %s %q the device cannot pull: %d %s", path, body, pull.Code, pull.Body.Bytes())
		}
		var resp protocol.PullResponse
		if err := json.Unmarshal(pull.Body.Bytes(), &resp); err != nil {
			t.Fatalf("pull answer: %v", err)
		}
		for _, ch := range resp.Changes {
			if !json.Valid(ch.Value) {
				t.Fatalf("after %s %q: pulled %s/%s/%s holds invalid JSON %q", path, body, ch.Collection, ch.ID, ch.Field, ch.Value)
			}
			if ch.Field == "_deleted" {
				continue
			}
			if err := schema.CaseFile.Validate(ch.Collection, ch.Field, ch.Value); err != nil {
				t.Fatalf("after %s %q: pulled %s/%s/%s = %.100s, which the schema refuses: %v", path, body, ch.Collection, ch.ID, ch.Field, ch.Value, err)
			}
		}
	})
}
