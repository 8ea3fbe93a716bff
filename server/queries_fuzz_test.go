package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/store"
)

// FuzzCaseAndRulesRequests covers the decoders FuzzWorkflowRequests does
// not: the family list's and the quarantine list's query strings, rule
// evaluations (a JSON input decoded into the rules' typed inputs, by a
// coordinator and by a coach), rule uploads (YAML, and JSON {content}),
// rollbacks, the rule file and history queries, a family's signals, and
// the bodies of resume and discard. In process, with $FAM and $TRAJ
// replaced by a family and its trajectory. Whatever comes in: no 5xx, every
// refusal is a JSON error with a known code, and afterwards the region's
// intake board still answers 200 (a rule upload that was let in did not
// break the region) and /healthz 200.
func FuzzCaseAndRulesRequests(f *testing.F) {
	var now func() time.Time
	st := newWorkflowStack(f, io.Discard, &now)
	ctx := f.Context()
	token := map[string]string{}
	users := map[string]auth.User{}
	for _, u := range []auth.NewUser{
		{Username: "coordinator.k", Role: auth.RoleCoordinator, Regions: []string{"kempen"}},
		{Username: "coach.b", Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1},
	} {
		created, sess := fuzzLogin(f, st, u)
		users[u.Username], token[u.Username] = created, sess.AccessToken
	}
	fam, traj := newUUID(), newUUID()
	region, _ := st.stores.Region("kempen")
	if _, err := region.ServerWrite(ctx, store.Actor{Role: store.RoleServer}, []store.FieldWrite{
		{Collection: "families", ID: fam, Field: "region", Value: jsonValue("kempen")},
		{Collection: "families", ID: fam, Field: "label", Value: jsonValue("Gezin F")},
		{Collection: "trajectories", ID: traj, Field: "family_id", Value: jsonValue(fam)},
		{Collection: "trajectories", ID: traj, Field: "region", Value: jsonValue("kempen")},
		{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(users["coach.b"].ID)},
		{Collection: "trajectories", ID: traj, Field: "status", Value: jsonValue("paused")},
	}); err != nil {
		f.Fatal(err)
	}
	known := codeSet("invalid", "unauthorized", "forbidden", "not_found", "conflict", "too_large", "rate_limited", "capacity_refused")
	type target struct{ method, path, who, contentType string }
	targets := []target{
		{"GET", "/v1/families?", "coordinator.k", ""},
		{"GET", "/v1/families?", "coach.b", ""},
		{"GET", "/v1/regions/kempen/quarantine?", "coordinator.k", ""},
		{"POST", "/v1/regions/kempen/rules/intake/eval", "coordinator.k", "application/json"},
		{"POST", "/v1/regions/kempen/rules/capacity/eval", "coordinator.k", "application/json"},
		{"POST", "/v1/regions/kempen/rules/signals/eval", "coordinator.k", "application/json"},
		{"POST", "/v1/regions/kempen/rules/intake/eval", "coach.b", "application/json"},
		{"PUT", "/v1/regions/kempen/rules/intake", "coordinator.k", "application/yaml"},
		{"PUT", "/v1/regions/kempen/rules/region", "coordinator.k", "application/yaml"},
		{"PUT", "/v1/regions/kempen/rules/capacity", "coordinator.k", "application/json"},
		{"POST", "/v1/regions/kempen/rules/rollback", "coordinator.k", "application/json"},
		{"GET", "/v1/regions/kempen/rules/intake?", "coordinator.k", ""},
		{"GET", "/v1/regions/kempen/rules/history?", "coordinator.k", ""},
		{"GET", "/v1/families/$FAM/signals?", "coach.b", ""},
		{"POST", "/v1/trajectories/$TRAJ/resume", "coordinator.k", "application/json"},
		{"POST", "/v1/regions/kempen/quarantine/1/discard", "coordinator.k", "application/json"},
	}
	add := func(i int, s string) { f.Add(uint8(i), []byte(s)) }
	add(0, "q=Gezin&status=active&limit=200&offset=0&coach="+users["coach.b"].ID)
	add(1, "coach=iemand&limit=0&offset=-1&signal=no_contact_10_days")
	add(2, "status=accepted")
	add(3, `{"referral":{"received_on":"2026-03-02","crisis":false,"articulated":true,"municipality":"Geel"},"family":{"members":[{"role":"child","age_years":4,"willing":true}],"pregnancy":false}}`)
	add(4, `{"coach":{"fte":0.5,"active_families":3,"volunteer":false},"referral":{"mandated":true}}`)
	add(5, `{"trajectory":{"status":"active","days_active":200,"days_since_last_contact":12}}`)
	add(6, `{"today":"2026-13-01","family":{"members":[{"age_years":-1}]}}`)
	for i, rs := range []string{"intake", "region"} {
		b, err := os.ReadFile(filepath.Join("..", "rules", "regions", "kempen", rs+".yaml"))
		if err != nil {
			f.Fatal(err)
		}
		add(7+i, string(b))
	}
	add(9, `{"content":"ruleset: capacity\nregion: kempen\nlimit: coach.fte * 10\n"}`)
	add(10, `{"hash":"0000"}`)
	add(11, "from=disk")
	add(12, "")
	add(13, "")
	add(14, `{}`)
	add(15, `{"reason":"dubbel"}`)
	handler := st.srv.Handler()
	serve := func(method, path, who, contentType string, body io.Reader) *httptest.ResponseRecorder {
		req, err := http.NewRequest(method, "http://fuzz"+path, body)
		if err != nil {
			return nil // not a request any client could send
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+token[who])
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve("GET", "/v1/regions/kempen/intake", "coordinator.k", "", nil); rec.Code != http.StatusOK {
		f.Fatalf("control: the intake board answers %d %s", rec.Code, rec.Body.Bytes())
	}
	fill := strings.NewReplacer("$FAM", fam, "$TRAJ", traj)
	f.Fuzz(func(t *testing.T, which uint8, input []byte) {
		tg := targets[int(which)%len(targets)]
		path := fill.Replace(tg.path)
		var body io.Reader
		if tg.method == "GET" {
			path += string(input)
		} else {
			body = bytes.NewReader(input)
		}
		rec := serve(tg.method, path, tg.who, tg.contentType, body)
		if rec == nil {
			return
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s as %s with %q: %d %s", tg.method, path, tg.who, input, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !known[e.Code] || e.Message == "" {
				t.Fatalf("%s %s with %q: %d and body %q is not a known error", tg.method, path, input, rec.Code, rec.Body.Bytes())
			}
		}
		if b := serve("GET", "/v1/regions/kempen/intake", "coordinator.k", "", nil); b.Code != http.StatusOK {
			t.Fatalf("after %s %s with %q the intake board answers %d %s", tg.method, path, input, b.Code, b.Body.Bytes())
		}
		if h := serve("GET", "/healthz", "", "", nil); h.Code != http.StatusOK {
			t.Fatalf("server stopped serving after %s %s %q: healthz %d", tg.method, path, input, h.Code)
		}
	})
}
