package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/store"
)

// FuzzWorkflowRequests sends arbitrary bodies and query strings to the
// workflow's endpoints that decode outside input (intake decisions,
// trajectory actions and assignment, quarantine decisions, rule checks and
// dry-runs, the board's, report's, signals', coaches' and audit log's query
// parameters), as the region's
// coordinator and as the admin, in process. Whatever comes in, the answer
// is never a 5xx, every refusal is a JSON error with a known code, and the
// server keeps serving.
func FuzzWorkflowRequests(f *testing.F) {
	var now func() time.Time
	st := newWorkflowStack(f, io.Discard, &now)
	ctx := f.Context()
	token := map[string]string{}
	for _, u := range []auth.NewUser{
		{Username: "coordinator.k", Role: auth.RoleCoordinator, Regions: []string{"kempen"}},
		{Username: "coach.b", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1},
		{Username: "admin", Role: auth.RoleAdmin},
	} {
		_, sess := fuzzLogin(f, st, u)
		token[u.Username] = sess.AccessToken
	}
	fam, traj, ref := newUUID(), newUUID(), newUUID()
	region, _ := st.stores.Region("kempen")
	if _, err := region.ServerWrite(ctx, store.Actor{Role: store.RoleServer}, []store.FieldWrite{
		{Collection: "families", ID: fam, Field: "region", Value: jsonValue("kempen")},
		{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
		{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue("kempen")},
		{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("active")},
		{Collection: "referrals", ID: ref, Field: "region", Value: jsonValue("kempen")},
		{Collection: "referrals", ID: ref, Field: "family_id", Value: jsonValue(fam)},
	}); err != nil {
		f.Fatal(err)
	}
	known := codeSet("invalid", "unauthorized", "forbidden", "not_found", "conflict", "too_large", "rate_limited", "capacity_refused")
	type target struct{ method, path string }
	targets := []target{
		{"POST", "/v1/regions/kempen/intake/decisions"},
		{"PUT", "/v1/trajectories/" + traj + "/assignment"},
		{"POST", "/v1/trajectories/" + traj + "/close"},
		{"POST", "/v1/trajectories/" + traj + "/rtj"},
		{"POST", "/v1/trajectories/" + traj + "/pause"},
		{"POST", "/v1/regions/kempen/quarantine/1/accept"},
		{"GET", "/v1/regions/kempen/intake?"},
		{"GET", "/v1/regions/kempen/intake/decisions?"},
		{"GET", "/v1/regions/kempen/report?"},
		{"GET", "/v1/regions/kempen/signals?"},
		{"GET", "/v1/regions/kempen/permanence?"},
		{"GET", "/v1/families/" + fam + "/history?"},
		{"GET", "/v1/audit?"},
		{"POST", "/v1/regions/kempen/rules/intake/check"},
		{"POST", "/v1/regions/kempen/rules/capacity/dryrun"},
		{"GET", "/v1/regions/kempen/coaches?"},
	}
	for i := range targets {
		f.Add(uint8(i), []byte(`{"referral_id":"`+ref+`","kind":"start","coach_id":"x"}`))
	}
	f.Add(uint8(0), []byte(`{"referral_id":"`+ref+`","kind":"decline","reason":"r"}`))
	f.Add(uint8(1), []byte(`{"lead_coach_id":"","co_coach_ids":["a","a"]}`))
	f.Add(uint8(2), []byte(`{"reason":"doelen_bereikt","closed_on":"2026-13-40"}`))
	f.Add(uint8(3), []byte(`{"requested":null}`))
	f.Add(uint8(6), []byte(`week=2026-W99&limit=-1`))
	f.Add(uint8(8), []byte(`year=99999999999&format=csv`))
	f.Add(uint8(12), []byte(`from=2026-02-30&to=x&limit=0&before=-5&format=csv&user=%00`))
	f.Add(uint8(13), []byte(`{"content":"ruleset: intake\nregion: kempen\neligibility: {require: [{id: x, label: y, when: referral.crisiss}]}\n"}`))
	f.Add(uint8(14), []byte("ruleset: capacity\nregion: kempen\nlimit: coach.fte * 10\n"))
	f.Fuzz(func(t *testing.T, which uint8, input []byte) {
		tg := targets[int(which)%len(targets)]
		path, body := tg.path, io.Reader(bytes.NewReader(input))
		if tg.method == "GET" {
			path, body = path+string(input), nil
		}
		who := "coordinator.k"
		if strings.HasPrefix(tg.path, "/v1/audit") {
			who = "admin"
		} else if which >= 128 {
			who = "coach.b"
		}
		req, err := http.NewRequest(tg.method, "http://fuzz"+path, body)
		if err != nil {
			return // not a request any client could send
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token[who])
		rec := httptest.NewRecorder()
		st.srv.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s as %s with %q: %d %s", tg.method, path, who, input, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !known[e.Code] || e.Message == "" {
				t.Fatalf("%s %s with %q: %d and body %q is not a known error", tg.method, path, input, rec.Code, rec.Body.Bytes())
			}
		}
		hreq, _ := http.NewRequest("GET", "http://fuzz/healthz", nil)
		hrec := httptest.NewRecorder()
		st.srv.Handler().ServeHTTP(hrec, hreq)
		if hrec.Code != http.StatusOK {
			t.Fatalf("server stopped serving after %s %s %q: healthz %d", tg.method, path, input, hrec.Code)
		}
	})
}

// fuzzSession is what a fuzz target keeps of a login.
type fuzzSession struct {
	AccessToken string `json:"access_token"`
	DeviceID    string `json:"device_id"`
}

// fuzzLogin creates u (password testPassword, display name its username)
// on st and logs it in on a new device.
func fuzzLogin(tb testing.TB, st *workflowStack, u auth.NewUser) (auth.User, fuzzSession) {
	tb.Helper()
	u.Password, u.DisplayName = testPassword, u.Username
	created, err := st.auth.CreateUser(context.Background(), u, auth.System("fuzz"))
	if err != nil {
		tb.Fatal(err)
	}
	var sess fuzzSession
	c := &testClient{base: st.srv.URL()}
	if status, err := c.send("POST", "/v1/auth/login", "application/json",
		jsonValue(map[string]string{"username": u.Username, "password": testPassword, "device_name": "fuzz"}), &sess); err != nil || status != 200 {
		tb.Fatalf("login %s: %d %v", u.Username, status, err)
	}
	return created, sess
}

// codeSet is the set of the error codes a fuzz target accepts.
func codeSet(codes ...string) map[string]bool {
	known := make(map[string]bool, len(codes))
	for _, c := range codes {
		known[c] = true
	}
	return known
}
