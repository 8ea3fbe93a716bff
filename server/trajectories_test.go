package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/sync/store"
)

// tjError is the error body every handler answers with.
type tjError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// tjCall sends body and decodes a 200 answer into out, an error into the
// returned tjError.
func tjCall(t *testing.T, c *testClient, method, path string, body, out any) (int, tjError) {
	t.Helper()
	var raw json.RawMessage
	st := c.do(method, path, body, &raw)
	var e tjError
	if st == http.StatusOK && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	} else if st != http.StatusOK && len(raw) > 0 {
		_ = json.Unmarshal(raw, &e)
	}
	return st, e
}

// tjLog returns the logged writes of a trajectory: how a test proves that a
// refused request changed nothing.
func tjLog(t *testing.T, we *workflowEnv, region, id string) []store.HistoryEntry {
	t.Helper()
	r, _ := we.stores.Region(region)
	h, err := r.History(context.Background(), "trajectories", id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tjAudit waits up to 2 s for the audit entries of action to satisfy ok
// (Record writes in the background) and returns them.
func tjAudit(t *testing.T, we *workflowEnv, action string, ok func([]audit.Entry) bool) []audit.Entry {
	t.Helper()
	var es []audit.Entry
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		es, err = we.audit.Query(context.Background(), audit.Filter{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		if ok(es) {
			return es
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("audit entries %s: %+v", action, es)
	return es
}

func detailOf(e audit.Entry) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(e.Detail, &m)
	return m
}

func TestTrajectory_PauseResumeCloseAndIllegalTransitions(t *testing.T) {
	we := newWorkflowEnv(t)
	coord := we.login("coordinator.k")
	traj := we.trajectories["coach.a"]
	base := "/v1/trajectories/" + traj

	var d TrajectoryDetail
	if st, e := tjCall(t, coord, "GET", base, nil, &d); st != 200 || d.Trajectory.Status != "active" || d.FamilyID != we.families["coach.a"] {
		t.Fatalf("GET: %d %+v %+v", st, e, d)
	}
	if len(d.Coaches) != 1 || d.Coaches[0].UserID != we.users["coach.a"].ID || d.Coaches[0].DisplayName != "coach.a" || d.Coaches[0].Role != "lead" {
		t.Errorf("coaches = %+v, want coach.a as lead with her name", d.Coaches)
	}

	steps := []struct {
		action, body string
		status       int
		after        string
	}{
		{"resume", "", 409, "active"},
		{"pause", "", 200, "paused"},
		{"pause", "{}", 409, "paused"},
		{"resume", "{}", 200, "active"},
		{"pause", "", 200, "paused"},
		{"close", `{"reason":"gezin_stopt"}`, 200, "closed"}, // a paused one may close
		{"close", `{"reason":"gezin_stopt"}`, 409, "closed"},
		{"pause", "", 409, "closed"},
		{"resume", "", 409, "closed"},
	}
	for i, s := range steps {
		var body any
		if s.body != "" {
			body = []byte(s.body)
		}
		var got TrajectoryDetail
		st, e := tjCall(t, coord, "POST", base+"/"+s.action, body, &got)
		if st != s.status {
			t.Fatalf("step %d %s: %d %+v, want %d", i, s.action, st, e, s.status)
		}
		if st == 200 && got.Trajectory.Status != s.after {
			t.Fatalf("step %d %s: status %s, want %s", i, s.action, got.Trajectory.Status, s.after)
		}
		if st == 409 && (e.Code != "conflict" || !strings.Contains(e.Message, " / ")) {
			t.Errorf("step %d %s: error %+v, want conflict in Dutch / English", i, s.action, e)
		}
		tjCall(t, coord, "GET", base, nil, &got)
		if got.Trajectory.Status != s.after {
			t.Fatalf("step %d %s: GET shows %s, want %s", i, s.action, got.Trajectory.Status, s.after)
		}
	}
	tjCall(t, coord, "GET", base, nil, &d)
	if today := we.now().Format("2006-01-02"); d.Trajectory.ClosedOn.String() != today || d.Trajectory.ClosureReason != "gezin_stopt" {
		t.Errorf("closed trajectory: closed_on %s reason %q, want %s gezin_stopt", d.Trajectory.ClosedOn, d.Trajectory.ClosureReason, today)
	}
	if st, e := tjCall(t, coord, "POST", base+"/rtj", map[string]bool{"requested": true}, nil); st != 409 {
		t.Errorf("RTJ on a closed trajectory: %d %+v, want 409", st, e)
	}
	if st, e := tjCall(t, coord, "PUT", base+"/assignment", map[string]any{"lead_coach_id": we.users["coach.c"].ID}, nil); st != 409 {
		t.Errorf("reassigning a closed trajectory: %d %+v, want 409", st, e)
	}

	// The writes went through the merge path: server stamps, logged under
	// the coordinator and her device.
	var statuses []string
	for _, h := range tjLog(t, we, "kempen", traj) {
		if h.Field != "status" || h.UserID == "server" {
			continue
		}
		statuses = append(statuses, string(h.Value))
		if h.UserID != we.users["coordinator.k"].ID || h.DeviceID != coord.device || !strings.HasSuffix(h.HLC, "-server") {
			t.Errorf("status write %+v: want the coordinator's user and device and a server stamp", h)
		}
	}
	if want := []string{`"paused"`, `"active"`, `"paused"`, `"closed"`}; !slices.Equal(statuses, want) {
		t.Errorf("status writes %v, want %v (a refused transition writes nothing)", statuses, want)
	}

	tjAudit(t, we, audit.ActionTrajectoryStatus, func(es []audit.Entry) bool { return len(es) == 3 })
	closes := tjAudit(t, we, audit.ActionTrajectoryClose, func(es []audit.Entry) bool { return len(es) == 1 })
	if len(closes) == 1 {
		c := closes[0]
		if dt := detailOf(c); c.TargetID != traj || c.Region != "kempen" || c.UserID != we.users["coordinator.k"].ID ||
			dt["reason"] != "gezin_stopt" || dt["from"] != "paused" {
			t.Errorf("close audit entry %+v %v", c, dt)
		}
	}
}

func TestTrajectory_CloseWithReasonFromRegionConfig_BadBodiesChangeNothing(t *testing.T) {
	we := newWorkflowEnv(t)
	coord := we.login("coordinator.k")
	traj := we.trajectories["coach.a"]
	path := "/v1/trajectories/" + traj + "/close"
	before := len(tjLog(t, we, "kempen", traj))

	for _, tc := range []struct {
		name string
		body any
		want string // in the message
	}{
		{"reason of another region", map[string]string{"reason": "overbrugd"}, "doelen_bereikt, rtj_gestart, gezin_stopt, verhuisd, andere"},
		{"no reason", map[string]string{}, "doelen_bereikt"},
		{"empty body", nil, "JSON"},
		{"bad date", map[string]string{"reason": "andere", "closed_on": "23/11/2026"}, "closed_on"},
		{"future date", map[string]string{"reason": "andere", "closed_on": we.now().AddDate(0, 0, 3).Format("2006-01-02")}, "toekomst"},
		{"before the start", map[string]string{"reason": "andere", "closed_on": we.now().AddDate(0, -1, 0).Format("2006-01-02")}, "start"},
		{"unknown field", map[string]string{"reason": "andere", "why": "x"}, "JSON"},
		{"malformed", []byte(`{"reason":`), "JSON"},
		{"trailing data", []byte(`{"reason":"andere"} {}`), "JSON"},
		{"not an object", []byte(`["andere"]`), "JSON"},
	} {
		st, e := tjCall(t, coord, "POST", path, tc.body, nil)
		if st != 400 || e.Code != "invalid" || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: %d %+v, want 400 invalid mentioning %q", tc.name, st, e, tc.want)
		}
	}
	if after := len(tjLog(t, we, "kempen", traj)); after != before {
		t.Errorf("refused closes wrote %d log entries", after-before)
	}
	var d TrajectoryDetail
	tjCall(t, coord, "GET", "/v1/trajectories/"+traj, nil, &d)
	if d.Trajectory.Status != "active" || d.Trajectory.ClosureReason != "" {
		t.Errorf("after refused closes: %+v", d.Trajectory)
	}

	// A valid one with a date in the past (not before the start).
	day := we.now().Format("2006-01-02")
	if st, e := tjCall(t, coord, "POST", path, map[string]string{"reason": "rtj_gestart", "closed_on": day}, &d); st != 200 ||
		d.Trajectory.ClosedOn.String() != day || d.Trajectory.ClosureReason != "rtj_gestart" {
		t.Fatalf("close: %d %+v %+v", st, e, d.Trajectory)
	}
	// Closing takes the family away from its coach.
	r, _ := we.stores.Region("kempen")
	if acc, _ := r.FamilyAccess(context.Background(), we.families["coach.a"]); len(acc) != 0 {
		t.Errorf("access after closing: %+v, want none", acc)
	}
}

func TestTrajectory_RTJRequestFromThePlan(t *testing.T) {
	we := newWorkflowEnv(t)
	coach := we.login("coach.a")
	path := "/v1/trajectories/" + we.trajectories["coach.a"] + "/rtj"
	var d TrajectoryDetail
	if st, e := tjCall(t, coach, "POST", path, map[string]bool{"requested": true}, &d); st != 200 || !d.Trajectory.RTJRequested {
		t.Fatalf("request RTJ: %d %+v %+v", st, e, d.Trajectory)
	}
	for _, body := range []any{map[string]any{}, map[string]any{"requested": "yes"}, map[string]any{"requested": nil}, []byte(`{"requested":true,"x":1}`)} {
		if st, e := tjCall(t, coach, "POST", path, body, nil); st != 400 || e.Code != "invalid" {
			t.Errorf("body %v: %d %+v, want 400", body, st, e)
		}
	}
	cs, _ := we.model.Case(we.families["coach.a"])
	if !cs.Trajectory.RTJRequested {
		t.Error("a refused RTJ body changed the request")
	}
	if st, _ := tjCall(t, coach, "POST", path, map[string]bool{"requested": false}, &d); st != 200 || d.Trajectory.RTJRequested {
		t.Fatalf("withdraw RTJ: %d %+v", st, d.Trajectory)
	}
	es := tjAudit(t, we, audit.ActionTrajectoryRTJ, func(es []audit.Entry) bool { return len(es) == 2 })
	if len(es) == 2 && (detailOf(es[0])["requested"] != false || es[0].UserID != we.users["coach.a"].ID) {
		// Query returns newest first.
		t.Errorf("RTJ audit entries %+v", es)
	}
}

// TestTrajectory_RoleCells proves every role's cell of the trajectory
// endpoints on coach.a's trajectory (co-coach coach.c).
func TestTrajectory_RoleCells(t *testing.T) {
	we := newWorkflowEnv(t)
	traj := we.trajectories["coach.a"]
	base := "/v1/trajectories/" + traj
	coord := we.login("coordinator.k")
	if st, e := tjCall(t, coord, "PUT", base+"/assignment", map[string]any{"lead_coach_id": we.users["coach.a"].ID, "co_coach_ids": []string{we.users["coach.c"].ID}}, nil); st != 200 {
		t.Fatalf("add co-coach: %d %+v", st, e)
	}
	assign := map[string]any{"lead_coach_id": we.users["coach.a"].ID, "co_coach_ids": []string{we.users["coach.c"].ID}}
	type cell struct{ get, pauseResume, close, rtj, assign int }
	for _, tc := range []struct {
		user string
		want cell
	}{
		{"coach.a", cell{200, 200, 200, 200, 403}},       // lead coach
		{"coach.c", cell{200, 403, 403, 403, 403}},       // co-coach: reads, does not act
		{"coach.b", cell{404, 404, 404, 404, 404}},       // another coach of the region
		{"coach.m", cell{404, 404, 404, 404, 404}},       // another region
		{"reviewer.k", cell{200, 403, 403, 403, 403}},    // reads only
		{"coordinator.m", cell{404, 404, 404, 404, 404}}, // another region
		{"admin", cell{403, 403, 403, 403, 403}},         // no case content
		{"coordinator.k", cell{200, 200, 200, 200, 200}},
	} {
		c := we.login(tc.user)
		if st, _ := tjCall(t, c, "GET", base, nil, nil); st != tc.want.get {
			t.Errorf("%s GET: %d, want %d", tc.user, st, tc.want.get)
		}
		st, _ := tjCall(t, c, "POST", base+"/pause", nil, nil)
		if st == 200 {
			st, _ = tjCall(t, c, "POST", base+"/resume", nil, nil)
		}
		if st != tc.want.pauseResume {
			t.Errorf("%s pause/resume: %d, want %d", tc.user, st, tc.want.pauseResume)
		}
		if st, _ := tjCall(t, c, "POST", base+"/rtj", map[string]bool{"requested": true}, nil); st != tc.want.rtj {
			t.Errorf("%s rtj: %d, want %d", tc.user, st, tc.want.rtj)
		}
		if st, _ := tjCall(t, c, "PUT", base+"/assignment", assign, nil); st != tc.want.assign {
			t.Errorf("%s assignment: %d, want %d", tc.user, st, tc.want.assign)
		}
		if tc.want.close == 200 {
			continue // closing is proven below, once
		}
		if st, _ := tjCall(t, c, "POST", base+"/close", map[string]string{"reason": "andere"}, nil); st != tc.want.close {
			t.Errorf("%s close: %d, want %d", tc.user, st, tc.want.close)
		}
	}
	if st := (&testClient{t: t, base: we.url()}).do("GET", base, nil, nil); st != 401 {
		t.Errorf("no token: %d, want 401", st)
	}
	for _, id := range []string{newUUID(), "not-a-uuid", we.trajectories["coach.m"]} {
		if st, _ := tjCall(t, coord, "GET", "/v1/trajectories/"+id, nil, nil); st != 404 {
			t.Errorf("GET trajectory %s: %d, want 404", id, st)
		}
	}

	// The lead coach closes her own trajectory; the answer still shows it,
	// and then she no longer holds it.
	a := we.login("coach.a")
	var d TrajectoryDetail
	if st, e := tjCall(t, a, "POST", base+"/close", map[string]string{"reason": "doelen_bereikt"}, &d); st != 200 || d.Trajectory.Status != "closed" {
		t.Fatalf("coach.a closes her trajectory: %d %+v %+v", st, e, d.Trajectory)
	}
	if st, _ := tjCall(t, a, "GET", base, nil, nil); st != 404 {
		t.Errorf("coach.a reads her closed trajectory: %d, want 404 (she no longer holds it)", st)
	}
	if st, _ := tjCall(t, we.login("reviewer.k"), "GET", base, nil, &d); st != 200 || d.Trajectory.Status != "closed" {
		t.Errorf("reviewer reads the closed trajectory: %d %+v", st, d.Trajectory)
	}
}

func TestAssignment_BadBodiesAre400AndChangeNothing(t *testing.T) {
	we := newWorkflowEnv(t)
	coord := we.login("coordinator.k")
	traj := we.trajectories["coach.b"]
	path := "/v1/trajectories/" + traj + "/assignment"
	before := len(tjLog(t, we, "kempen", traj))
	id := func(u string) string { return we.users[u].ID }
	for _, tc := range []struct {
		name string
		body any
	}{
		{"no lead", map[string]any{"co_coach_ids": []string{id("coach.c")}}},
		{"unknown user", map[string]any{"lead_coach_id": newUUID()}},
		{"not a uuid", map[string]any{"lead_coach_id": "coach.c"}},
		{"a coordinator", map[string]any{"lead_coach_id": id("coordinator.k")}},
		{"a reviewer as co-coach", map[string]any{"lead_coach_id": id("coach.c"), "co_coach_ids": []string{id("reviewer.k")}}},
		{"a coach of another region", map[string]any{"lead_coach_id": id("coach.m")}},
		{"lead among co-coaches", map[string]any{"lead_coach_id": id("coach.c"), "co_coach_ids": []string{id("coach.c")}}},
		{"duplicate co-coach", map[string]any{"lead_coach_id": id("coach.c"), "co_coach_ids": []string{id("coach.a"), id("coach.a")}}},
		{"unknown field", map[string]any{"lead_coach_id": id("coach.c"), "coach": "x"}},
		{"wrong type", map[string]any{"lead_coach_id": id("coach.c"), "co_coach_ids": id("coach.a")}},
		{"malformed", []byte(`{"lead_coach_id":`)},
		{"empty", nil},
	} {
		if st, e := tjCall(t, coord, "PUT", path, tc.body, nil); st != 400 || e.Code != "invalid" || !strings.Contains(e.Message, " / ") {
			t.Errorf("%s: %d %+v, want 400 invalid in Dutch / English", tc.name, st, e)
		}
	}
	if after := len(tjLog(t, we, "kempen", traj)); after != before {
		t.Errorf("refused assignments wrote %d log entries", after-before)
	}
	r, _ := we.stores.Region("kempen")
	if acc, _ := r.FamilyAccess(context.Background(), we.families["coach.b"]); len(acc) != 1 || acc[0].UserID != id("coach.b") {
		t.Errorf("access after refused assignments: %+v", acc)
	}
	if es, _ := we.audit.Query(context.Background(), audit.Filter{Action: audit.ActionTrajectoryAssign}); len(es) != 0 {
		t.Errorf("refused assignments audited: %+v", es)
	}
}
