package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	coachapp "github.com/samenplan/samenplan/clients/mobile/app"
	"github.com/samenplan/samenplan/clients/web"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// The role × endpoint matrix (DESIGN §7, issue 4 "Permissions"): every route
// the server registers has a row; every row says, for each column, the
// status of a well-formed request. The columns are who asks; the requests
// are about region kempen and the family of coach.a.
type mxCol int

const (
	colAnon       mxCol = iota // no token
	colHolder                  // coach.a: coach of kempen who holds the family
	colCoachOther              // coach.b: coach of kempen who does not
	colCoord                   // coordinator.k
	colReviewer                // reviewer.k
	colOtherCoord              // coordinator.m: coordinator of maasland
	colAdmin                   // admin: accounts, devices, audit; no case content
	nCols
)

var mxColumnUser = [nCols]string{"", "coach.a", "coach.b", "coordinator.k", "reviewer.k", "coordinator.m", "admin"}

func (w mxCol) String() string {
	if w == colAnon {
		return "no token"
	}
	return mxColumnUser[w]
}

// mxCells is a row's expected statuses, in column order.
type mxCells [nCols]int

// Common rows of statuses.
var (
	mxPublic      = mxCells{200, 200, 200, 200, 200, 200, 200}
	mxAnyRole     = mxCells{401, 200, 200, 200, 200, 200, 200}
	mxAdminOnly   = mxCells{401, 403, 403, 403, 403, 403, 200}
	mxCaseReaders = mxCells{401, 200, 200, 200, 200, 200, 403} // not region-scoped: each reads her own
)

// matrixRequest is one well-formed request of a row.
type matrixRequest struct {
	method, path, contentType string
	body                      []byte
}

// matrixRow is one route's row. req builds the request of one cell and may
// create what the cell changes (a fresh referral, trajectory or device), so
// no cell leaves the env different for the next. check, when set, looks at
// a cell's answer beyond its status.
type matrixRow struct {
	method, route string // as registered: "/v1/families/:id"
	variant       string // set on a second row of a route (format=csv)
	req           func(m *matrixEnv, col mxCol) matrixRequest
	want          mxCells
	check         func(t *testing.T, m *matrixEnv, col mxCol, body []byte)
	// audited is the audit action every successful cell must leave, under
	// its request id ("" when the route is not audited).
	audited string
}

// matrixEnv is a workflowEnv with one logged-in device per column.
type matrixEnv struct {
	*workflowEnv
	t       *testing.T
	clients [nCols]*testClient
	spare   auth.User // an account the admin cells change
	seq     int
}

func newMatrixEnv(t *testing.T) *matrixEnv {
	we := newWorkflowEnv(t)
	we.srv = serveWired(t, we)
	m := &matrixEnv{workflowEnv: we, t: t}
	m.clients[colAnon] = &testClient{t: t, base: we.url()}
	for col := colHolder; col < nCols; col++ {
		m.clients[col] = we.login(mxColumnUser[col])
	}
	var err error
	m.spare, err = we.auth.CreateUser(t.Context(), auth.NewUser{Username: "spare.k", DisplayName: "spare.k", Role: auth.RoleCoach,
		Regions: []string{"kempen"}, FTE: 1, Password: testPassword}, auth.System("test"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serveWired opens a second server over we's stores, auth, audit, rules and
// read model with everything `samenplan serve` adds (cmd/samenplan/serve.go:
// the embedded web client and coach app), so that its routes are the
// binary's routes.
func serveWired(t *testing.T, we *workflowEnv) *Server {
	t.Helper()
	srv := New(Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(we.logs, nil)), Stores: we.stores, Auth: we.auth,
		Audit: we.audit, Clock: we.clock, BodyLimit: 4 << 20, Rules: we.registry, View: we.model,
		Now: func() time.Time { return we.now() }, Static: func(e *echo.Echo) {
			// as serveClients in cmd/samenplan/serve.go
			web.Register(e)
			coachapp.Register(e)
		}})
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	return srv
}

// user returns the username a cell acts as; the no-token column acts as
// the holder where a public route needs somebody (login).
func (m *matrixEnv) user(col mxCol) string {
	if col == colAnon {
		return mxColumnUser[colHolder]
	}
	return mxColumnUser[col]
}

// client returns the logged-in device of col (for colAnon: the holder's, for
// request bodies that name a device).
func (m *matrixEnv) client(col mxCol) *testClient {
	if col == colAnon {
		return m.clients[colHolder]
	}
	return m.clients[col]
}

// fresh returns a unique name for a cell's throwaway things.
func (m *matrixEnv) fresh(prefix string) string {
	m.seq++
	return fmt.Sprintf("%s%d", prefix, m.seq)
}

// freshTrajectory creates, as the server, a new kempen family with an
// active trajectory held by coach.a, for a cell that changes a trajectory.
func (m *matrixEnv) freshTrajectory() (family, trajectory string) {
	family, trajectory = newUUID(), newUUID()
	m.serverWrite("kempen",
		store.FieldWrite{Collection: "families", ID: family, Field: "region", Value: jsonValue("kempen")},
		store.FieldWrite{Collection: "families", ID: family, Field: "label", Value: jsonValue(m.fresh("Gezin matrix "))},
		store.FieldWrite{Collection: "trajectories", ID: trajectory, Field: "family_id", Value: jsonValue(family)},
		store.FieldWrite{Collection: "trajectories", ID: trajectory, Field: "region", Value: jsonValue("kempen")},
		store.FieldWrite{Collection: "trajectories", ID: trajectory, Field: "lead_coach_id", Value: jsonValue(m.users["coach.a"].ID)},
		store.FieldWrite{Collection: "trajectories", ID: trajectory, Field: "status", Value: jsonValue("active")},
		store.FieldWrite{Collection: "trajectories", ID: trajectory, Field: "started_on", Value: jsonValue(m.now().Format("2006-01-02"))},
	)
	return family, trajectory
}

// freshReferral pushes, from coach.a's device (the permanence line), a new
// kempen family with a willing parent and a child, and an eligible
// referral for it; it returns the family and the referral.
func (m *matrixEnv) freshReferral() (family, referral string) {
	c := m.clients[colHolder]
	family, referral = newUUID(), newUUID()
	parent, child := newUUID(), newUUID()
	today := m.now()
	changes := []protocol.Change{
		c.change("families", family, "region", "kempen"),
		c.change("families", family, "label", m.fresh("Gezin aanmelding ")),
		c.change("families", family, "municipality", "Turnhout"),
		c.change("persons", parent, "family_id", family),
		c.change("persons", parent, "role", "parent"),
		c.change("persons", parent, "birth_date", today.AddDate(-34, 0, 0).Format("2006-01-02")),
		c.change("persons", parent, "willing", true),
		c.change("persons", child, "family_id", family),
		c.change("persons", child, "role", "child"),
		c.change("persons", child, "birth_date", today.AddDate(-7, 0, 0).Format("2006-01-02")),
		c.change("referrals", referral, "region", "kempen"),
		c.change("referrals", referral, "family_id", family),
		c.change("referrals", referral, "received_on", today.AddDate(0, 0, -3).Format("2006-01-02")),
		c.change("referrals", referral, "channel", "permanentie"),
		c.change("referrals", referral, "municipality", "Turnhout"),
		c.change("referrals", referral, "articulated", true),
		c.change("referrals", referral, "consent", true),
	}
	var resp protocol.PushResponse
	if st := c.do("POST", "/v1/sync/push", c.pushRequest(changes...), &resp); st != http.StatusOK || resp.Applied != len(changes) {
		m.t.Fatalf("push a referral: %d, %+v", st, resp)
	}
	return family, referral
}

// freshPaused is freshTrajectory, paused.
func (m *matrixEnv) freshPaused() (family, trajectory string) {
	family, trajectory = m.freshTrajectory()
	m.serverWrite("kempen", store.FieldWrite{Collection: "trajectories", ID: trajectory, Field: "status", Value: jsonValue("paused")})
	return family, trajectory
}

// freshQuarantined makes coach.a lose a fresh family to coach.c and then
// push a contact note for it from her device; it returns the id of the
// quarantined note.
func (m *matrixEnv) freshQuarantined() int64 {
	ctx := m.t.Context()
	_, traj := m.freshTrajectory()
	m.serverWrite("kempen", store.FieldWrite{Collection: "trajectories", ID: traj, Field: "lead_coach_id", Value: jsonValue(m.users["coach.c"].ID)})
	c := m.clients[colHolder]
	changes := c.newContact(traj, "matrix: late note")
	var resp protocol.PushResponse
	if st := c.do("POST", "/v1/sync/push", c.pushRequest(changes...), &resp); st != http.StatusOK || len(resp.Quarantined) != len(changes) {
		m.t.Fatalf("push to a lost family: %d, %+v; want every write quarantined", st, resp)
	}
	region, _ := m.stores.Region("kempen")
	open, err := region.Quarantine(ctx, store.QuarantineOpen)
	if err != nil {
		m.t.Fatal(err)
	}
	for _, q := range open {
		if q.RowID == changes[0].ID && q.Field == "note" {
			return q.ID
		}
	}
	m.t.Fatalf("the late note is not in quarantine: %+v", open)
	return 0
}

// fingerprint sums up what a request can change: each region's change log,
// decided quarantined writes and intake decisions, and the accounts,
// revoked devices and rule versions of the main database. A refused cell
// must leave it as it was.
func (m *matrixEnv) fingerprint() string {
	m.t.Helper()
	ctx := m.t.Context()
	var b strings.Builder
	for _, name := range m.stores.Regions() {
		r, _ := m.stores.Region(name)
		var seq, decided, decisions int64
		row := r.DB().Reader.QueryRowContext(ctx, `SELECT
			(SELECT coalesce(max(seq), 0) FROM change_log),
			(SELECT count(*) FROM quarantine WHERE status != 'open'),
			(SELECT count(*) FROM intake_decisions)`)
		if err := row.Scan(&seq, &decided, &decisions); err != nil {
			m.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: log %d, decided %d, decisions %d; ", name, seq, decided, decisions)
	}
	var users string
	var revoked, versions int64
	row := m.stores.Main.Reader.QueryRowContext(ctx, `SELECT
		(SELECT group_concat(id || display_name || role || regions || disabled || password_hash, ',') FROM users),
		(SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL),
		(SELECT count(*) FROM rule_versions)`)
	if err := row.Scan(&users, &revoked, &versions); err != nil {
		m.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(users))
	fmt.Fprintf(&b, "users %x, revoked devices %d, rule versions %d", sum[:8], revoked, versions)
	return b.String()
}

// noRedirects answers a redirect with the redirect: its status is the cell's.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send runs one cell and returns its status, body and request id. A stream
// (server-sent events) is closed once its status is known.
func (m *matrixEnv) send(col mxCol, r matrixRequest) (int, []byte, string) {
	m.t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(m.t.Context(), r.method, m.url()+r.path, body)
	if err != nil {
		m.t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	} else if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if col != colAnon {
		req.Header.Set("Authorization", "Bearer "+m.clients[col].token)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		m.t.Fatalf("%s %s as %s: %v", r.method, r.path, col, err)
	}
	defer resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, nil, id
	}
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		m.t.Fatalf("%s %s as %s: %v", r.method, r.path, col, err)
	}
	return resp.StatusCode, buf, id
}

// checkAudited waits up to 5 s for an audit entry with each request id and
// action of want (entries are written in the background) and fails for
// those that never come.
func (m *matrixEnv) checkAudited(want map[string]string) {
	m.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, err := m.audit.Query(m.t.Context(), audit.Filter{Limit: audit.MaxLimit})
		if err != nil {
			m.t.Fatal(err)
		}
		got := map[string]bool{}
		for _, e := range entries {
			got[e.RequestID+" "+e.Action] = true
		}
		var missing []string
		for id, what := range want {
			action, _, _ := strings.Cut(what, " ")
			if !got[id+" "+action] {
				missing = append(missing, what)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			for _, what := range missing {
				m.t.Errorf("not in the audit log: %s", what)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkScope checks the scope of a region page: a coach's is her own
// caseload ("coach"), the others' the region.
func checkScope(t *testing.T, _ *matrixEnv, col mxCol, body []byte) {
	var page struct {
		Scope string `json:"scope"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Errorf("as %s: %v", col, err)
		return
	}
	want := "region"
	if col == colHolder || col == colCoachOther {
		want = "coach"
	}
	if page.Scope != want {
		t.Errorf("as %s: scope %q, want %q", col, page.Scope, want)
	}
}

func mxGet(path string) func(*matrixEnv, mxCol) matrixRequest {
	return func(*matrixEnv, mxCol) matrixRequest { return matrixRequest{method: "GET", path: path} }
}

func mxJSON(method, path string, body any) matrixRequest {
	return matrixRequest{method: method, path: path, body: jsonValue(body)}
}

// matrixRows is the whole table. Paths are built from the env's ids when a
// cell runs.
// firstAdmitted is the first caller from col on whom the row lets in
// (a status under 300), or colHolder when it lets nobody in: any valid
// token is then refused with 403 or 404.
func (row matrixRow) firstAdmitted(col mxCol) mxCol {
	for ; col < nCols; col++ {
		if row.want[col] < 300 {
			return col
		}
	}
	return colHolder
}

func matrixRows(m *matrixEnv) []matrixRow {
	famA := m.families["coach.a"]
	unbuilt := mxCells{503, 503, 503, 503, 503, 503, 503}
	webPage, coachPage := mxPublic, mxPublic
	if !web.Built() {
		webPage = unbuilt
	}
	if !coachapp.Built() {
		coachPage = unbuilt
	}
	intake := []byte(mxReadFile(m.t, filepath.Join(m.dir, "kempen", "intake.yaml")))
	return []matrixRow{
		// The web client, health, metrics, schema: no token needed. Without
		// a built client (no `make build`) "/" says how to build it.
		{method: "GET", route: "/", req: mxGet("/"), want: webPage},
		{method: "GET", route: "/app/*", req: mxGet("/app/.gitkeep"), want: mxPublic},
		{method: "GET", route: "/coach", req: mxGet("/coach"), want: mxCells{301, 301, 301, 301, 301, 301, 301}},
		{method: "GET", route: "/coach/*", req: mxGet("/coach/"), want: coachPage},
		{method: "GET", route: "/healthz", req: mxGet("/healthz"), want: mxPublic},
		{method: "GET", route: "/readyz", req: mxGet("/readyz"), want: mxPublic},
		{method: "GET", route: "/metrics", req: mxGet("/metrics"), want: mxPublic},
		{method: "GET", route: "/v1/schema", req: mxGet("/v1/schema"), want: mxPublic},

		// Auth: the session routes take no access token.
		{method: "POST", route: "/v1/auth/login", audited: audit.ActionLogin, want: mxPublic,
			req: func(m *matrixEnv, col mxCol) matrixRequest {
				return mxJSON("POST", "/v1/auth/login", map[string]string{"username": m.user(col), "password": testPassword, "device_name": "matrix"})
			}},
		{method: "POST", route: "/v1/auth/refresh", want: mxPublic,
			req: func(m *matrixEnv, col mxCol) matrixRequest {
				return mxJSON("POST", "/v1/auth/refresh", map[string]string{"refresh_token": m.login(m.user(col)).refresh})
			}},
		{method: "POST", route: "/v1/auth/logout", audited: audit.ActionLogout, want: mxCells{204, 204, 204, 204, 204, 204, 204},
			req: func(m *matrixEnv, col mxCol) matrixRequest {
				return mxJSON("POST", "/v1/auth/logout", map[string]any{"refresh_token": m.login(m.user(col)).refresh, "revoke_device": true})
			}},
		{method: "GET", route: "/v1/me", req: mxGet("/v1/me"), want: mxAnyRole},
		{method: "POST", route: "/v1/me/password", audited: audit.ActionUserPassword, want: mxCells{401, 204, 204, 204, 204, 204, 204},
			req: func(*matrixEnv, mxCol) matrixRequest {
				return mxJSON("POST", "/v1/me/password", map[string]string{"current_password": testPassword, "new_password": testPassword})
			}},
		{method: "GET", route: "/v1/devices", req: mxGet("/v1/devices"), want: mxAnyRole},
		{method: "GET", route: "/v1/devices", variant: "another user's", req: mxGet("/v1/devices?user=coach.a"), want: mxCells{401, 200, 403, 403, 403, 403, 200}},
		// A spare device of coach.a: hers to revoke, and the admin's; to
		// anyone else it does not exist.
		{method: "POST", route: "/v1/devices/:id/revoke", audited: audit.ActionDeviceRevoke, want: mxCells{401, 204, 404, 404, 404, 404, 204},
			req: func(m *matrixEnv, col mxCol) matrixRequest {
				return matrixRequest{method: "POST", path: "/v1/devices/" + m.login("coach.a").device + "/revoke"}
			}},
		{method: "GET", route: "/v1/users", req: mxGet("/v1/users?region=kempen"), want: mxAdminOnly},
		{method: "POST", route: "/v1/users", audited: audit.ActionUserCreate, want: mxCells{401, 403, 403, 403, 403, 403, 201},
			req: func(m *matrixEnv, col mxCol) matrixRequest {
				return mxJSON("POST", "/v1/users", map[string]any{"username": m.fresh("matrix.user"), "display_name": "Matrix", "role": "coach",
					"regions": []string{"kempen"}, "fte": 1, "password": testPassword})
			}},
		{method: "GET", route: "/v1/users/:id", want: mxAdminOnly,
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				return matrixRequest{method: "GET", path: "/v1/users/" + m.users["coach.a"].ID}
			}},
		{method: "PATCH", route: "/v1/users/:id", audited: audit.ActionUserUpdate, want: mxAdminOnly,
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				return mxJSON("PATCH", "/v1/users/"+m.spare.ID, map[string]any{"display_name": m.fresh("Reserve ")})
			}},
		{method: "POST", route: "/v1/users/:id/password", audited: audit.ActionUserPassword, want: mxCells{401, 403, 403, 403, 403, 403, 204},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				return mxJSON("POST", "/v1/users/"+m.spare.ID+"/password", map[string]string{"password": testPassword})
			}},

		// Sync: each device pushes a new contact on coach.a's trajectory and
		// pulls from the start. Only the holder and the region's coordinator
		// get it applied; the others' changes are refused inside a 200.
		{method: "POST", route: "/v1/sync/push", audited: audit.ActionPush, want: mxCells{401, 200, 200, 200, 403, 200, 403},
			req: func(m *matrixEnv, col mxCol) matrixRequest {
				c := m.client(col)
				return mxJSON("POST", "/v1/sync/push", c.pushRequest(c.newContact(m.trajectories["coach.a"], "matrix")...))
			},
			check: func(t *testing.T, m *matrixEnv, col mxCol, body []byte) {
				var resp protocol.PushResponse
				if err := json.Unmarshal(body, &resp); err != nil {
					t.Errorf("push as %s: %v", col, err)
					return
				}
				want := 0
				if col == colHolder || col == colCoord {
					want = 3
				}
				if resp.Applied != want {
					t.Errorf("push as %s: applied %d, want %d (%+v)", col, resp.Applied, want, resp)
				}
			}},
		{method: "POST", route: "/v1/sync/pull", audited: audit.ActionPull, want: mxCaseReaders,
			req: func(m *matrixEnv, col mxCol) matrixRequest {
				return mxJSON("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: m.client(col).device, SchemaVersion: schema.Version, Limit: 1000})
			},
			check: func(t *testing.T, m *matrixEnv, col mxCol, body []byte) {
				var resp protocol.PullResponse
				if err := json.Unmarshal(body, &resp); err != nil {
					t.Errorf("pull as %s: %v", col, err)
					return
				}
				gotFam := false
				for _, c := range resp.Changes {
					gotFam = gotFam || c.ID == m.families["coach.a"]
				}
				if want := col == colHolder || col == colCoord || col == colReviewer; gotFam != want {
					t.Errorf("pull as %s: coach.a's family received %v, want %v", col, gotFam, want)
				}
			}},

		// Rules of kempen.
		{method: "GET", route: "/v1/regions/:region/rules", req: mxGet("/v1/regions/kempen/rules"), want: mxCells{401, 403, 403, 200, 200, 404, 403}},
		{method: "GET", route: "/v1/regions/:region/rules/history", req: mxGet("/v1/regions/kempen/rules/history"), want: mxCells{401, 403, 403, 200, 200, 404, 403}},
		{method: "GET", route: "/v1/regions/:region/rules/:ruleset", req: mxGet("/v1/regions/kempen/rules/intake"), want: mxCells{401, 403, 403, 200, 200, 404, 403}},
		// The active content again: valid, changes nothing.
		{method: "PUT", route: "/v1/regions/:region/rules/:ruleset", want: mxCells{401, 403, 403, 200, 403, 404, 403},
			req: func(*matrixEnv, mxCol) matrixRequest {
				return matrixRequest{method: "PUT", path: "/v1/regions/kempen/rules/intake", contentType: "application/yaml", body: intake}
			}},
		// Back to the active version: the same files, one more history entry.
		{method: "POST", route: "/v1/regions/:region/rules/rollback", audited: audit.ActionRuleChange, want: mxCells{401, 403, 403, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				st := status(m.t, m.clients[colCoord], "kempen")
				return mxJSON("POST", "/v1/regions/kempen/rules/rollback", map[string]string{"hash": st.ActiveVersion})
			}},
		{method: "POST", route: "/v1/regions/:region/rules/:ruleset/eval", want: mxCells{401, 200, 200, 200, 200, 404, 403},
			req: func(*matrixEnv, mxCol) matrixRequest {
				return matrixRequest{method: "POST", path: "/v1/regions/kempen/rules/intake/eval", body: []byte(intakeBase)}
			}},
		// What-ifs of a candidate file (the active content): write nothing.
		{method: "POST", route: "/v1/regions/:region/rules/:ruleset/check", want: mxCells{401, 403, 403, 200, 200, 404, 403},
			req: func(*matrixEnv, mxCol) matrixRequest {
				return matrixRequest{method: "POST", path: "/v1/regions/kempen/rules/intake/check", contentType: "application/yaml", body: intake}
			}},
		{method: "POST", route: "/v1/regions/:region/rules/:ruleset/dryrun", want: mxCells{401, 403, 403, 200, 200, 404, 403},
			req: func(*matrixEnv, mxCol) matrixRequest {
				return matrixRequest{method: "POST", path: "/v1/regions/kempen/rules/intake/dryrun", contentType: "application/yaml", body: intake}
			}},
		{method: "POST", route: "/v1/regions/:region/rules/:ruleset/eval", variant: "capacity", want: mxCells{401, 403, 403, 200, 200, 404, 403},
			req: func(*matrixEnv, mxCol) matrixRequest {
				return matrixRequest{method: "POST", path: "/v1/regions/kempen/rules/capacity/eval", body: []byte(`{}`)}
			}},

		// Cases and live events.
		{method: "GET", route: "/v1/families", audited: audit.ActionCaseList, req: mxGet("/v1/families?region=kempen"), want: mxCells{401, 200, 200, 200, 200, 404, 403},
			check: func(t *testing.T, m *matrixEnv, col mxCol, body []byte) {
				var page familiesPage
				json.Unmarshal(body, &page)
				for _, it := range page.Items {
					if col == colCoachOther && it.FamilyID == m.families["coach.a"] {
						t.Errorf("coach.b lists coach.a's family")
					}
				}
			}},
		{method: "GET", route: "/v1/families", variant: "one coach's", audited: audit.ActionCaseList, req: mxGet("/v1/families?region=kempen&coach=" + m.users["coach.a"].ID), want: mxCells{401, 200, 403, 200, 200, 404, 403}},
		{method: "GET", route: "/v1/families/:id", audited: audit.ActionCaseRead, req: mxGet("/v1/families/" + famA), want: mxCells{401, 200, 404, 200, 200, 404, 403}},
		{method: "GET", route: "/v1/families/:id/history", audited: audit.ActionCaseRead, req: mxGet("/v1/families/" + famA + "/history"), want: mxCells{401, 200, 404, 200, 200, 404, 403}},
		{method: "GET", route: "/v1/events", req: mxGet("/v1/events"), want: mxCaseReaders},

		// The weekly intake: the board for the region's coaches too (the
		// permanence line); decisions are the coordinator's, read by the
		// reviewer. Each decision cell declines a referral of its own.
		{method: "GET", route: "/v1/regions/:region/intake", audited: audit.ActionCaseList, req: mxGet("/v1/regions/kempen/intake"), want: mxCells{401, 200, 200, 200, 200, 404, 403}},
		{method: "GET", route: "/v1/regions/:region/intake/decisions", audited: audit.ActionCaseList, req: mxGet("/v1/regions/kempen/intake/decisions"), want: mxCells{401, 403, 403, 200, 200, 404, 403}},
		{method: "POST", route: "/v1/regions/:region/intake/decisions", audited: audit.ActionDecision, want: mxCells{401, 403, 403, 201, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				_, ref := m.freshReferral()
				return mxJSON("POST", "/v1/regions/kempen/intake/decisions", map[string]string{"referral_id": ref, "kind": "decline", "reason": "matrix: geen aanbod"})
			}},

		// Trajectories: the holder (lead coach) and the region's coordinator
		// change one; only the coordinator reassigns. Each changing cell gets
		// a trajectory of its own, held by coach.a.
		{method: "GET", route: "/v1/trajectories/:id", audited: audit.ActionCaseRead, req: mxGet("/v1/trajectories/" + m.trajectories["coach.a"]), want: mxCells{401, 200, 404, 200, 200, 404, 403}},
		{method: "POST", route: "/v1/trajectories/:id/pause", audited: audit.ActionTrajectoryStatus, want: mxCells{401, 200, 404, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				_, traj := m.freshTrajectory()
				return matrixRequest{method: "POST", path: "/v1/trajectories/" + traj + "/pause"}
			}},
		{method: "POST", route: "/v1/trajectories/:id/resume", audited: audit.ActionTrajectoryStatus, want: mxCells{401, 200, 404, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				_, traj := m.freshPaused()
				return matrixRequest{method: "POST", path: "/v1/trajectories/" + traj + "/resume"}
			}},
		{method: "POST", route: "/v1/trajectories/:id/close", audited: audit.ActionTrajectoryClose, want: mxCells{401, 200, 404, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				_, traj := m.freshTrajectory()
				return mxJSON("POST", "/v1/trajectories/"+traj+"/close", map[string]string{"reason": "doelen_bereikt"})
			}},
		{method: "POST", route: "/v1/trajectories/:id/rtj", audited: audit.ActionTrajectoryRTJ, want: mxCells{401, 200, 404, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				_, traj := m.freshTrajectory()
				return mxJSON("POST", "/v1/trajectories/"+traj+"/rtj", map[string]bool{"requested": true})
			}},
		{method: "PUT", route: "/v1/trajectories/:id/assignment", audited: audit.ActionTrajectoryAssign, want: mxCells{401, 403, 404, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				_, traj := m.freshTrajectory()
				return mxJSON("PUT", "/v1/trajectories/"+traj+"/assignment", map[string]any{"lead_coach_id": m.users["coach.c"].ID, "co_coach_ids": []string{}})
			}},

		// Quarantine: read by the region's coordinator and reviewer, decided
		// by the coordinator. Each deciding cell gets a late note of its own.
		{method: "GET", route: "/v1/regions/:region/quarantine", audited: audit.ActionCaseRead, req: mxGet("/v1/regions/kempen/quarantine"), want: mxCells{401, 403, 403, 200, 200, 404, 403}},
		{method: "POST", route: "/v1/regions/:region/quarantine/:id/accept", audited: audit.ActionQuarantineAccept, want: mxCells{401, 403, 403, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				return matrixRequest{method: "POST", path: fmt.Sprintf("/v1/regions/kempen/quarantine/%d/accept", m.freshQuarantined())}
			}},
		{method: "POST", route: "/v1/regions/:region/quarantine/:id/discard", audited: audit.ActionQuarantineDiscard, want: mxCells{401, 403, 403, 200, 403, 404, 403},
			req: func(m *matrixEnv, _ mxCol) matrixRequest {
				return matrixRequest{method: "POST", path: fmt.Sprintf("/v1/regions/kempen/quarantine/%d/discard", m.freshQuarantined())}
			}},

		// Signals: a coach sees her own families' signals of the region.
		{method: "GET", route: "/v1/regions/:region/signals", audited: audit.ActionCaseList, req: mxGet("/v1/regions/kempen/signals"), want: mxCells{401, 200, 200, 200, 200, 404, 403},
			check: checkScope},
		{method: "GET", route: "/v1/families/:id/signals", audited: audit.ActionCaseRead, req: mxGet("/v1/families/" + famA + "/signals"), want: mxCells{401, 200, 404, 200, 200, 404, 403}},

		// The region's coaches: names for its coaches, capacity for its staff.
		{method: "GET", route: "/v1/regions/:region/coaches", req: mxGet("/v1/regions/kempen/coaches"), want: mxCells{401, 200, 200, 200, 200, 404, 403},
			check: func(t *testing.T, _ *matrixEnv, col mxCol, body []byte) {
				shown, coach := bytes.Contains(body, []byte(`"free"`)), col == colHolder || col == colCoachOther
				if shown == coach {
					t.Errorf("coaches as %s: capacity shown %v, want %v (%.200s)", col, shown, !coach, body)
				}
			}},

		// Permanence and the yearly report: the region's coaches too (a
		// coach's report is her own caseload).
		{method: "GET", route: "/v1/regions/:region/permanence", audited: audit.ActionCaseList, req: mxGet("/v1/regions/kempen/permanence"), want: mxCells{401, 200, 200, 200, 200, 404, 403}},
		{method: "GET", route: "/v1/regions/:region/report", req: mxGet("/v1/regions/kempen/report"), want: mxCells{401, 200, 200, 200, 200, 404, 403},
			check: checkScope},
		{method: "GET", route: "/v1/regions/:region/report", variant: "csv", audited: audit.ActionExport, req: mxGet("/v1/regions/kempen/report?format=csv"), want: mxCells{401, 200, 200, 200, 200, 404, 403}},

		// Audit log.
		{method: "GET", route: "/v1/audit", req: mxGet("/v1/audit?family=" + famA), want: mxAdminOnly},
		{method: "GET", route: "/v1/audit", variant: "csv", audited: audit.ActionExport, req: mxGet("/v1/audit?format=csv&family=" + famA), want: mxAdminOnly},
	}
}

// TestMatrix_EveryRouteEveryRole runs every cell of the role × endpoint
// matrix, and fails when the server registers a route without a row, when
// a refused cell changed anything, or when an audited cell left no entry.
func TestMatrix_EveryRouteEveryRole(t *testing.T) {
	m := newMatrixEnv(t)
	rows := matrixRows(m)
	registered := map[Route]bool{}
	for _, r := range m.srv.Routes() {
		registered[r] = true
	}
	covered := map[Route]bool{}
	for _, row := range rows {
		rt := Route{Method: row.method, Path: row.route}
		if covered[rt] && row.variant == "" {
			t.Errorf("%s %s has two rows; name the second one's variant", row.method, row.route)
		}
		covered[rt] = true
		if !registered[rt] {
			// A row may come before its route lands; a renamed route still
			// fails below, as registered without a row.
			t.Logf("%s %s has a row but is not registered (yet): skipped", row.method, row.route)
		}
	}
	for rt := range registered {
		if !covered[rt] {
			t.Errorf("%s %s is registered but has no row in the role × endpoint matrix (server/matrix_test.go)", rt.Method, rt.Path)
		}
	}
	n := 0
	audited := map[string]string{} // request id → "action (cell)"
	for _, row := range rows {
		if !registered[Route{Method: row.method, Path: row.route}] {
			continue
		}
		for col := colAnon; col < nCols; col++ {
			r := row.req(m, col)
			before := m.fingerprint()
			got, body, id := m.send(col, r)
			n++
			if got != row.want[col] {
				t.Errorf("%s %s as %s: %d, want %d (%.200s)", r.method, r.path, col, got, row.want[col], body)
				continue
			}
			if after := m.fingerprint(); got >= 400 && after != before {
				t.Errorf("%s %s as %s: refused with %d but changed something:\n before %s\n after  %s", r.method, r.path, col, got, before, after)
			}
			if row.check != nil && got < 300 {
				row.check(t, m, col, body)
			}
			if row.audited != "" && got < 300 {
				audited[id] = fmt.Sprintf("%s (%s %s as %s)", row.audited, r.method, r.path, col)
			}
		}
	}
	m.checkAudited(audited)
	t.Logf("role × endpoint matrix: %d routes (%d rows) × %d columns = %d cells", len(registered), len(rows), nCols, n)
}

func mxReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
