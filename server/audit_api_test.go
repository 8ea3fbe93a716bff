package server

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// auditPage returns GET /v1/audit?query as admin sees it.
func auditPage(t *testing.T, admin *testClient, query string) AuditPage {
	t.Helper()
	var page AuditPage
	if st := admin.do("GET", "/v1/audit?"+query, nil, &page); st != http.StatusOK {
		t.Fatalf("GET /v1/audit?%s: status %d", query, st)
	}
	return page
}

// waitAuditAPI polls GET /v1/audit?query until it holds at least n entries:
// the server records most entries through a queue.
func waitAuditAPI(t *testing.T, admin *testClient, query string, n int) AuditPage {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		page := auditPage(t, admin, query)
		if len(page.Items) >= n {
			return page
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/audit?%s: %d entries after 5 s, want at least %d: %+v", query, len(page.Items), n, page.Items)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getCSV fetches path as c and returns the status, the headers and the body.
func getCSV(t *testing.T, c *testClient, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func TestAuditAPI_AdminFiltersByUserFamilyActionRegionAndTime(t *testing.T) {
	we := newWorkflowEnv(t)
	ctx := context.Background()
	admin := we.login("admin")
	coachA, coord := we.login("coach.a"), we.login("coordinator.k")
	famA, famB := we.families["coach.a"], we.families["coach.b"]

	// Case reads through the web API: target family:<id>.
	for _, call := range []struct {
		c   *testClient
		fam string
	}{{coachA, famA}, {coord, famA}, {coord, famB}} {
		if st := call.c.do("GET", "/v1/families/"+call.fam, nil, nil); st != http.StatusOK {
			t.Fatalf("read family: %d", st)
		}
	}
	// A push with a note: its entry holds counts, never the note.
	const secret = "Moeder vertelt over de schulden"
	var push struct {
		Applied int `json:"applied"`
	}
	if st := coachA.do("POST", "/v1/sync/push", coachA.pushRequest(coachA.newContact(we.trajectories["coach.a"], secret)...), &push); st != 200 || push.Applied != 3 {
		t.Fatalf("push: %d applied %d", st, push.Applied)
	}
	// Entries whose target is the family's trajectory belong to the family
	// too (a reassignment names the trajectory), and fixed times for the
	// time filters: 22:30 UTC on 1 March is still 1 March in Brussels,
	// 23:30 UTC is 2 March.
	for _, e := range []audit.Entry{
		{At: time.Date(2026, 3, 1, 22, 30, 0, 0, time.UTC), Action: "trajectory.assign", Username: "coordinator.k", Region: "kempen", TargetKind: "trajectory", TargetID: we.trajectories["coach.a"]},
		{At: time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC), Action: "trajectory.assign", Username: "coordinator.k", Region: "kempen", TargetKind: "trajectory", TargetID: we.trajectories["coach.b"]},
	} {
		if err := we.audit.Log(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	reads := waitAuditAPI(t, admin, "action=case.read", 3)
	if len(reads.Items) != 3 || reads.NextBefore != nil {
		t.Fatalf("case reads: %d entries, next_before %v; want 3 and no next page", len(reads.Items), reads.NextBefore)
	}
	for i := 1; i < len(reads.Items); i++ {
		if reads.Items[i].ID >= reads.Items[i-1].ID {
			t.Fatalf("case reads not newest first: %+v", reads.Items)
		}
	}
	waitAuditAPI(t, admin, "action=sync.push", 1)

	for _, tc := range []struct {
		query string
		want  int
	}{
		{"action=case.read&user=" + we.users["coordinator.k"].ID, 2},
		{"action=case.read&user=coordinator.k", 2},
		{"action=case.read&user=Coordinator.K", 2},
		{"action=case.read&user=coach.a", 1},
		{"action=case.read&family=" + famA, 2},
		{"action=case.read&family=" + famB, 1},
		{"family=" + famA, 3},                           // two reads and the assignment of its trajectory
		{"family=" + famA + "&user=coordinator.k", 2},   // one read and the assignment
		{"action=trajectory.assign&region=kempen", 2},   //
		{"action=case.read&region=maasland", 0},         //
		{"action=trajectory.assign&from=2026-03-02", 1}, // a Brussels day
		{"action=trajectory.assign&to=2026-03-01", 1},   // to includes the whole day
		{"action=trajectory.assign&from=2026-03-01&to=2026-03-01", 1},
		{"action=trajectory.assign&from=2026-03-01T23:00:00Z", 1}, // RFC 3339
		{"action=trajectory.assign&to=2026-03-01T23:30:00Z", 1},   // to is exclusive
		{"action=trajectory.assign&from=2026-02-01&to=2026-03-31", 2},
		{"user=nobody", 0},
	} {
		page := auditPage(t, admin, tc.query)
		if len(page.Items) != tc.want {
			t.Errorf("?%s: %d entries, want %d: %+v", tc.query, len(page.Items), tc.want, page.Items)
		}
	}

	// The whole log, as JSON and as CSV: ids and counts, never case content.
	var raw json.RawMessage
	if st := admin.do("GET", "/v1/audit?limit=1000", nil, &raw); st != 200 {
		t.Fatalf("whole log: %d", st)
	}
	_, _, csvBody := getCSV(t, admin, "/v1/audit?format=csv")
	for _, content := range []string{secret, "Gezin coach.a", "home_visit"} {
		if bytes.Contains(raw, []byte(content)) || bytes.Contains(csvBody, []byte(content)) {
			t.Errorf("the audit log shows case content %q", content)
		}
	}
}

func TestAuditAPI_PagesBackwardsByID(t *testing.T) {
	we := newWorkflowEnv(t)
	admin := we.login("admin")
	for range 7 {
		if err := we.audit.Log(context.Background(), audit.Entry{Action: "test.page", Region: "kempen"}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int64
	before := ""
	for pages := 0; ; pages++ {
		if pages > 4 {
			t.Fatalf("more than 4 pages of 3 for 7 entries: %v", ids)
		}
		page := auditPage(t, admin, "action=test.page&limit=3"+before)
		for _, e := range page.Items {
			ids = append(ids, e.ID)
		}
		if page.NextBefore == nil {
			break
		}
		if len(page.Items) != 3 || *page.NextBefore != page.Items[2].ID {
			t.Fatalf("page %d: %d items, next_before %d; want 3 and the last id", pages, len(page.Items), *page.NextBefore)
		}
		before = "&before=" + strconv.FormatInt(*page.NextBefore, 10)
	}
	if len(ids) != 7 {
		t.Fatalf("paged %d entries, want 7: %v", len(ids), ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("ids not strictly descending across pages: %v", ids)
		}
	}
}

func TestAuditAPI_CSVExportStreamsTheSelectionAndIsAudited(t *testing.T) {
	we := newWorkflowEnv(t)
	ctx := context.Background()
	admin := we.login("admin")
	// More than one export page, written in one transaction.
	const n = auditExportPage + 150
	tx, err := we.stores.Main.Writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := audit.Entry{Action: "test.export", Region: "maasland", TargetKind: "family", TargetID: "f" + strconv.Itoa(i)}
		if i == 0 {
			e.TargetID = "=HYPERLINK(\"x\")" // a formula is defused
		}
		if err := we.audit.LogTx(ctx, tx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	st, h, body := getCSV(t, admin, "/v1/audit?format=csv&action=test.export&region=maasland")
	if st != 200 {
		t.Fatalf("export: %d %s", st, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q, want text/csv", ct)
	}
	if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, ".csv") {
		t.Errorf("Content-Disposition %q, want an attachment with a .csv name", cd)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v", err)
	}
	if got, want := strings.Join(rows[0], ","), strings.Join(audit.CSVHeader, ","); got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	if len(rows) != n+1 {
		t.Fatalf("export has %d rows, want %d and one header", len(rows)-1, n)
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		if r[6] != "test.export" || seen[r[0]] {
			t.Fatalf("row %v: another action or a repeated id", r)
		}
		seen[r[0]] = true
	}
	if last := rows[n]; !strings.HasPrefix(last[9], "'=") {
		t.Errorf("the oldest row's target_id %q starts a formula", last[9])
	}

	// limit caps the export; the same filter as JSON gives the same ids.
	_, _, body = getCSV(t, admin, "/v1/audit?format=csv&action=test.export&limit=5")
	rows, _ = csv.NewReader(bytes.NewReader(body)).ReadAll()
	page := auditPage(t, admin, "action=test.export&limit=5")
	if len(rows) != 6 || len(page.Items) != 5 {
		t.Fatalf("limit=5: %d csv rows, %d json items; want 5 each", len(rows)-1, len(page.Items))
	}
	for i, e := range page.Items {
		if rows[i+1][0] != strconv.FormatInt(e.ID, 10) {
			t.Fatalf("csv row %d id %s, json id %d", i, rows[i+1][0], e.ID)
		}
	}

	// Each export is in the log synchronously, with its filter.
	exports := auditPage(t, admin, "action=export&user=admin")
	if len(exports.Items) != 2 {
		t.Fatalf("exports audited: %d, want 2", len(exports.Items))
	}
	var detail map[string]any
	if err := json.Unmarshal(exports.Items[1].Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if detail["action"] != "test.export" || detail["region"] != "maasland" || exports.Items[1].Role != "admin" || exports.Items[1].DeviceID != admin.device {
		t.Errorf("export entry %+v detail %v; want the filter, the admin and her device", exports.Items[1], detail)
	}
}

func TestAuditAPI_BadParametersAre400WithAMessage(t *testing.T) {
	we := newWorkflowEnv(t)
	admin := we.login("admin")
	for _, q := range []string{
		"limit=0", "limit=1001", "limit=abc", "limit=-1", "format=csv&limit=10001",
		"before=0", "before=x",
		"from=yesterday", "from=2026-13-01", "to=2026-03-01T10:00", "from=2026-03-02&to=2026-03-01",
		"format=xml", "colour=red", "user=a&user=b",
		"action=" + url.QueryEscape("case.read' OR 1=1"), "action=Case.Read",
		"region=" + url.QueryEscape("kempen; DROP"), "family=" + url.QueryEscape("<script>"),
	} {
		var body ErrorBody
		if st := admin.do("GET", "/v1/audit?"+q, nil, &body); st != http.StatusBadRequest || body.Code != "invalid" || !strings.Contains(body.Message, " / ") {
			t.Errorf("?%s: %d %+v, want 400 invalid with a Dutch / English message", q, st, body)
		}
	}
	// A refused export is not audited.
	if page := auditPage(t, admin, "action=export"); len(page.Items) != 0 {
		t.Errorf("refused exports were audited: %+v", page.Items)
	}
}

func TestAuditAPI_OnlyAdmins(t *testing.T) {
	we := newWorkflowEnv(t)
	for user, want := range map[string]int{
		"coach.a": 403, "coordinator.k": 403, "reviewer.k": 403, "coordinator.m": 403, "admin": 200,
	} {
		c := we.login(user)
		if st := c.do("GET", "/v1/audit", nil, nil); st != want {
			t.Errorf("%s GET /v1/audit: %d, want %d", user, st, want)
		}
		if st, _, _ := getCSV(t, c, "/v1/audit?format=csv"); st != want {
			t.Errorf("%s GET /v1/audit?format=csv: %d, want %d", user, st, want)
		}
	}
	if st := (&testClient{t: t, base: we.url()}).do("GET", "/v1/audit", nil, nil); st != 401 {
		t.Errorf("no token: %d, want 401", st)
	}
}

// TestAuditAPI_FamilyFilterFindsItsTrajectoryAndQuarantineActions: the
// family filter finds the reassignment of its trajectory, the decision on
// its quarantined write, the region's quarantine list that showed it and
// the case read; another family's filter finds none of them.
func TestAuditAPI_FamilyFilterFindsItsTrajectoryAndQuarantineActions(t *testing.T) {
	we := newWorkflowEnv(t)
	ctx := context.Background()
	admin, coord, coachB := we.login("admin"), we.login("coordinator.k"), we.login("coach.b")
	fam, traj := we.families["coach.b"], we.trajectories["coach.b"]

	if st := coord.do("PUT", "/v1/trajectories/"+traj+"/assignment", map[string]any{"lead_coach_id": we.users["coach.c"].ID}, nil); st != http.StatusOK {
		t.Fatalf("reassign: %d", st)
	}
	late := coachB.newContact(traj, "late note")
	var push protocol.PushResponse
	if st := coachB.do("POST", "/v1/sync/push", coachB.pushRequest(late...), &push); st != 200 || len(push.Quarantined) != len(late) {
		t.Fatalf("late push: %d %+v", st, push)
	}
	region, _ := we.stores.Region("kempen")
	open, err := region.Quarantine(ctx, store.QuarantineOpen)
	if err != nil || len(open) == 0 {
		t.Fatalf("quarantine: %v %v", open, err)
	}
	if st := coord.do("POST", "/v1/regions/kempen/quarantine/"+strconv.FormatInt(open[0].ID, 10)+"/discard", nil, nil); st != http.StatusOK {
		t.Fatalf("discard: %d", st)
	}
	if st := coord.do("GET", "/v1/regions/kempen/quarantine", nil, nil); st != http.StatusOK {
		t.Fatalf("quarantine list: %d", st)
	}
	if st := coord.do("GET", "/v1/families/"+fam, nil, nil); st != http.StatusOK {
		t.Fatalf("read: %d", st)
	}

	page := waitAuditAPI(t, admin, "family="+fam, 4)
	var actions []string
	for _, e := range page.Items {
		actions = append(actions, e.Action)
	}
	if got, want := strings.Join(actions, " "), "case.read case.read quarantine.discard trajectory.assign"; got != want {
		t.Errorf("family=%s: actions %q, want %q", fam, got, want)
	}
	if page := auditPage(t, admin, "family="+we.families["coach.a"]); len(page.Items) != 0 {
		t.Errorf("another family's filter finds %+v", page.Items)
	}
}
