package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
)

// rulesEnv is a testEnv whose server serves the rules of a copy of
// rules/regions, watched, with versions in the main database.
type rulesEnv struct {
	*testEnv
	dir      string
	registry *rules.Registry
	versions *RuleVersions
}

// newRulesEnv replaces the server of a testEnv by one with Config.Rules set.
// The watcher stops before the databases close.
func newRulesEnv(t *testing.T) *rulesEnv {
	t.Helper()
	e := newTestEnv(t)
	ctx := context.Background()
	shut, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.srv.Close(shut); err != nil {
		t.Fatal(err)
	}
	re := &rulesEnv{testEnv: e, dir: copyRuleRegions(t)}
	var err error
	re.versions, err = OpenRuleVersions(ctx, e.stores.Main)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	re.registry = rules.NewRegistry(re.dir, rules.RegistryOptions{Versions: re.versions, Logger: logger, Debounce: 50 * time.Millisecond})
	if err := re.registry.Load(ctx); err != nil {
		t.Fatal(err)
	}
	watchCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- re.registry.Watch(watchCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	select {
	case <-re.registry.Watching():
	case err := <-done:
		t.Fatalf("watch: %v", err)
	}
	e.srv = New(Config{Addr: "127.0.0.1:0", Logger: logger, Stores: e.stores, Auth: e.auth, Audit: e.audit, Clock: e.clock,
		BodyLimit: 4 << 20, Rules: re.registry})
	if err := e.srv.Open(); err != nil {
		t.Fatal(err)
	}
	return re
}

// copyRuleRegions copies the shipped rule files into a temp directory.
func copyRuleRegions(t testing.TB) string {
	t.Helper()
	src := filepath.Join("..", "rules", "regions")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func (re *rulesEnv) path(region, ruleset string) string {
	return filepath.Join(re.dir, region, ruleset+".yaml")
}

func (re *rulesEnv) read(region, ruleset string) string {
	re.t.Helper()
	b, err := os.ReadFile(re.path(region, ruleset))
	if err != nil {
		re.t.Fatal(err)
	}
	return string(b)
}

// edit writes a rule file the way an editor would: a new file renamed over
// the old one.
func (re *rulesEnv) edit(region, ruleset, content string) {
	re.t.Helper()
	tmp := re.path(region, ruleset) + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		re.t.Fatal(err)
	}
	if err := os.Rename(tmp, re.path(region, ruleset)); err != nil {
		re.t.Fatal(err)
	}
}

// status returns GET /v1/regions/{region}/rules as c sees it.
func status(t *testing.T, c *testClient, region string) RulesStatus {
	t.Helper()
	var st RulesStatus
	if got := c.do("GET", "/v1/regions/"+region+"/rules", nil, &st); got != http.StatusOK {
		t.Fatalf("GET rules of %s: status %d", region, got)
	}
	return st
}

func history(t *testing.T, c *testClient, region string) []RulesVersion {
	t.Helper()
	var hist []RulesVersion
	if got := c.do("GET", "/v1/regions/"+region+"/rules/history", nil, &hist); got != http.StatusOK {
		t.Fatalf("GET history of %s: status %d", region, got)
	}
	return hist
}

// waitUntil polls cond every 20ms until it holds or 2s pass.
func waitUntil(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not within 2s: %s", what)
	return 0
}

// lineOf returns the 1-based line of the first line of content holding s.
func lineOf(t *testing.T, content, s string) int {
	t.Helper()
	for i, l := range strings.Split(content, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line holds %q", s)
	return 0
}

// crisissCol is the column of the misspelt name in "      when: referral.crisiss".
var crisissCol = strings.Index("      when: referral.crisiss", "crisiss") + 1

// intakeBase is test_base of the shipped kempen intake.yaml: eligible, priority 7.
const intakeBase = `{"today": "2026-03-02",
 "referral": {"received_on": "2026-02-23", "channel": "permanentie", "municipality": "Turnhout", "consent": true, "articulated": true},
 "family": {"members": [{"role": "parent", "age_years": 34, "willing": true}, {"role": "child", "age_years": 7, "willing": false}]},
 "year": {"started_mandated": 20, "started_non_mandated": 50}}`

// crisisLabel evaluates intake in region as c and returns the label of the
// crisis exclude.
func crisisLabel(t *testing.T, c *testClient, region string) string {
	t.Helper()
	var d rules.IntakeDecision
	if got := c.doRaw("POST", "/v1/regions/"+region+"/rules/intake/eval", "application/json", []byte(intakeBase), &d); got != http.StatusOK {
		t.Fatalf("eval: status %d", got)
	}
	for _, x := range d.Exclude {
		if x.ID == "crisis" {
			return x.Label
		}
	}
	t.Fatal("no crisis exclude in the decision")
	return ""
}

const (
	crisisLabelNL = `label: "Nood aan crisishulp"`
	crisisWhen    = "when: referral.crisis\n"
)

func TestRulesAPI_WatchedEditIsActiveWithin2sAndABrokenEditKeepsTheLastGood(t *testing.T) {
	re := newRulesEnv(t)
	coord := re.login("coordinator.k")
	before := status(t, coord, "kempen")
	if before.LoadStatus != rules.LoadOK || before.ActiveVersion == "" || before.Source != rules.SourceStartup || len(before.Files) != 4 {
		t.Fatalf("status at start: %+v", before)
	}
	original := re.read("kempen", "intake")

	re.edit("kempen", "intake", strings.Replace(original, crisisLabelNL, `label: "Crisishulp is nodig"`, 1))
	var good RulesStatus
	took := waitUntil(t, "the edit is the active version", func() bool {
		good = status(t, coord, "kempen")
		return good.ActiveVersion != before.ActiveVersion
	})
	t.Logf("edited file active after %v", took)
	if good.Source != rules.SourceWatch || good.LoadStatus != rules.LoadOK || good.ActivatedBy != "" {
		t.Errorf("status after the edit: %+v", good)
	}
	if got, want := crisisLabel(t, coord, "kempen"), "Crisishulp is nodig"; got != want {
		t.Errorf("crisis label: got %q, want %q", got, want)
	}
	if hist := history(t, coord, "kempen"); len(hist) != 2 || hist[0].Hash != good.ActiveVersion || hist[0].Source != rules.SourceWatch {
		t.Errorf("history after the edit: %+v", hist)
	}

	for _, tc := range []struct {
		name, content, code, id string
		line                    int // 0: any line
	}{
		{
			name:    "unknown name",
			content: strings.Replace(original, crisisWhen, "when: referral.crisiss\n", 1),
			code:    rules.CodeUnknownName, id: "crisis",
			line: lineOf(t, original, crisisWhen[:len(crisisWhen)-1]),
		},
		{
			name:    "yaml syntax",
			content: strings.Replace(original, "ruleset: intake\n", "ruleset: [intake\n", 1),
			code:    rules.CodeSyntax,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re.edit("kempen", "intake", tc.content)
			var st RulesStatus
			waitUntil(t, "the broken edit is reported", func() bool {
				st = status(t, coord, "kempen")
				return st.LoadStatus == rules.LoadError && st.AttemptedVersion != "" && st.AttemptedVersion != good.ActiveVersion &&
					len(st.Errors) > 0 && st.Errors[0].Code == tc.code
			})
			if st.ActiveVersion != good.ActiveVersion {
				t.Errorf("active version: got %s, want the last good %s", st.ActiveVersion, good.ActiveVersion)
			}
			d := st.Errors[0]
			if d.File != "kempen/intake.yaml" || d.Line < 1 || d.Col < 1 || d.Severity != "error" || d.Message == "" {
				t.Errorf("error: got %+v, want file kempen/intake.yaml with line and col", d)
			}
			if tc.line != 0 && (d.Line != tc.line || d.Col != crisissCol || d.ID != tc.id || !strings.Contains(d.Message, "referral.crisiss")) {
				t.Errorf("error: got %+v, want %d:%d, id %s, naming referral.crisiss", d, tc.line, crisissCol, tc.id)
			}
			if got, want := crisisLabel(t, coord, "kempen"), "Crisishulp is nodig"; got != want {
				t.Errorf("crisis label: got %q, want the last good %q", got, want)
			}
			var disk RulesSource
			if got := coord.do("GET", "/v1/regions/kempen/rules/intake?from=disk", nil, &disk); got != http.StatusOK || disk.Content != tc.content {
				t.Errorf("GET intake from disk: status %d, content matches: %v", got, disk.Content == tc.content)
			}
			var active RulesSource
			if got := coord.do("GET", "/v1/regions/kempen/rules/intake", nil, &active); got != http.StatusOK ||
				!strings.Contains(active.Content, "Crisishulp is nodig") || active.RegionVersion != good.ActiveVersion {
				t.Errorf("GET active intake: status %d, region version %s", got, active.RegionVersion)
			}
		})
	}
	if hist := history(t, coord, "kempen"); len(hist) != 2 {
		t.Errorf("history: got %d versions, want 2 (broken edits are never activated)", len(hist))
	}

	// With Accept: application/yaml the file comes as it is, for an editor.
	req, _ := http.NewRequest("GET", coord.base+"/v1/regions/kempen/rules/intake", nil)
	req.Header.Set("Authorization", "Bearer "+coord.token)
	req.Header.Set("Accept", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") ||
		!strings.Contains(string(raw), "Crisishulp is nodig") || resp.Header.Get("ETag") == "" {
		t.Errorf("GET intake as YAML: status %d, type %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for path, want := range map[string]int{
		"/v1/regions/kempen/rules/eligibility":        http.StatusNotFound,
		"/v1/regions/kempen/rules/intake?from=backup": http.StatusBadRequest,
	} {
		if got := coord.do("GET", path, nil, nil); got != want {
			t.Errorf("GET %s: status %d, want %d", path, got, want)
		}
	}
}

func TestRulesAPI_PutActivatesWritesAndRecordsWho(t *testing.T) {
	re := newRulesEnv(t)
	coord := re.login("coordinator.k")
	before := status(t, coord, "kempen")
	edited := strings.Replace(re.read("kempen", "intake"), crisisLabelNL, `label: "Crisishulp nodig (via API)"`, 1)

	var got RulesActivation
	if code := coord.doRaw("PUT", "/v1/regions/kempen/rules/intake", "application/yaml", []byte(edited), &got); code != http.StatusOK {
		t.Fatalf("PUT: status %d", code)
	}
	if !got.Activated || got.ActiveVersion == before.ActiveVersion || got.Source != rules.SourcePut || got.ActivatedBy != "coordinator.k" {
		t.Errorf("PUT answer: %+v", got)
	}
	if disk := re.read("kempen", "intake"); disk != edited {
		t.Error("the file on disk is not the put content")
	}
	if label := crisisLabel(t, coord, "kempen"); label != "Crisishulp nodig (via API)" {
		t.Errorf("crisis label: got %q", label)
	}
	hist := history(t, coord, "kempen")
	if len(hist) != 2 || hist[0].Hash != got.ActiveVersion || hist[0].ActivatedBy != "coordinator.k" || hist[0].Source != rules.SourcePut ||
		hist[1].Hash != before.ActiveVersion || hist[1].Source != rules.SourceStartup {
		t.Errorf("history: %+v", hist)
	}

	// The same content again, as JSON: no new version.
	var again RulesActivation
	if code := coord.do("PUT", "/v1/regions/kempen/rules/intake", map[string]string{"content": edited}, &again); code != http.StatusOK {
		t.Fatalf("PUT again: status %d", code)
	}
	if again.Activated || again.ActiveVersion != got.ActiveVersion {
		t.Errorf("PUT of the active content: %+v", again)
	}
	// The watcher sees the written file and finds nothing new.
	time.Sleep(200 * time.Millisecond)
	if hist := history(t, coord, "kempen"); len(hist) != 2 {
		t.Errorf("history after the watcher saw the put: %d versions, want 2", len(hist))
	}

	// A stale If-Match is a conflict.
	req, _ := http.NewRequest("PUT", coord.base+"/v1/regions/kempen/rules/intake", strings.NewReader(edited))
	req.Header.Set("Content-Type", "text/yaml")
	req.Header.Set("Authorization", "Bearer "+coord.token)
	req.Header.Set("If-Match", `"`+before.ActiveVersion+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT with a stale If-Match: status %d, want 409", resp.StatusCode)
	}

	waitAudit(t, re, func(es []audit.Entry) bool {
		return len(es) == 1 && es[0].Region == "kempen" && es[0].TargetID == got.ActiveVersion && es[0].Username == "coordinator.k" &&
			strings.Contains(string(es[0].Detail), `"ruleset":"intake"`)
	})
}

// waitAudit waits up to 2 s for the rule-change entries of the audit log to
// satisfy ok (Record writes in the background).
func waitAudit(t *testing.T, re *rulesEnv, ok func([]audit.Entry) bool) {
	t.Helper()
	var es []audit.Entry
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		es, err = re.audit.Query(context.Background(), audit.Filter{Action: audit.ActionRuleChange})
		if err != nil {
			t.Fatal(err)
		}
		if ok(es) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("audit entries: %+v", es)
}

func TestRulesAPI_InvalidPutIs400WithDiagnosticsAndChangesNothing(t *testing.T) {
	re := newRulesEnv(t)
	coord := re.login("coordinator.k")
	before := status(t, coord, "kempen")
	original := re.read("kempen", "intake")

	for _, tc := range []struct {
		name    string
		content string
		code    string
		id      string
		line    int
	}{
		{"unknown name", strings.Replace(original, crisisWhen, "when: referral.crisiss\n", 1),
			rules.CodeUnknownName, "crisis", lineOf(t, original, crisisWhen[:len(crisisWhen)-1])},
		{"failing test", strings.Replace(original, "points_per_waiting_day: {value: 1,", "points_per_waiting_day: {value: 2,", 1),
			rules.CodeTestFailed, "", 0},
		{"yaml syntax", "ruleset: [intake\n", rules.CodeSyntax, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body InvalidRules
			if code := coord.doRaw("PUT", "/v1/regions/kempen/rules/intake", "text/yaml; charset=utf-8", []byte(tc.content), &body); code != http.StatusBadRequest {
				t.Fatalf("PUT: status %d, want 400", code)
			}
			if body.Code != samenplan.EINVALID || body.Message == "" || len(body.Diagnostics) == 0 {
				t.Fatalf("body: %+v", body)
			}
			var found *RuleDiagnostic
			for i, d := range body.Diagnostics {
				if d.Code == tc.code && d.Severity == "error" {
					found = &body.Diagnostics[i]
					break
				}
			}
			if found == nil {
				t.Fatalf("no %s error in %+v", tc.code, body.Diagnostics)
			}
			if found.File != "kempen/intake.yaml" || found.Line < 1 || found.Col < 1 {
				t.Errorf("diagnostic: %+v", *found)
			}
			if tc.line != 0 && (found.Line != tc.line || found.Col != crisissCol || found.ID != tc.id) {
				t.Errorf("diagnostic: got %+v, want %d:%d id %s", *found, tc.line, crisissCol, tc.id)
			}
			after := status(t, coord, "kempen")
			if after.ActiveVersion != before.ActiveVersion || after.LoadStatus != rules.LoadOK || len(after.Errors) != 0 {
				t.Errorf("status changed: %+v", after)
			}
			if re.read("kempen", "intake") != original {
				t.Error("the file on disk changed")
			}
		})
	}
	for _, tc := range []struct {
		name, contentType string
		body              string
		want              int
	}{
		{"malformed json", "application/json", `{"content": `, http.StatusBadRequest},
		{"json without content", "application/json", `{"text": "x"}`, http.StatusBadRequest},
		{"unknown content type", "application/octet-stream", original, http.StatusBadRequest},
		{"too large", "application/yaml", strings.Repeat("#", rules.MaxFileSize+1), http.StatusRequestEntityTooLarge},
	} {
		var body ErrorBody
		if got := coord.doRaw("PUT", "/v1/regions/kempen/rules/intake", tc.contentType, []byte(tc.body), &body); got != tc.want || body.Code == "" {
			t.Errorf("%s: status %d %+v, want %d", tc.name, got, body, tc.want)
		}
	}
	if got := coord.doRaw("PUT", "/v1/regions/kempen/rules/eligibility", "application/yaml", []byte(original), nil); got != http.StatusBadRequest {
		t.Errorf("PUT of an unknown ruleset: status %d, want 400", got)
	}
	if hist := history(t, coord, "kempen"); len(hist) != 1 {
		t.Errorf("history: %d versions, want 1", len(hist))
	}
	waitAudit(t, re, func(es []audit.Entry) bool { return len(es) == 0 })
}

func TestRulesAPI_RollbackActivatesAnEarlierHash(t *testing.T) {
	re := newRulesEnv(t)
	coord := re.login("coordinator.k")
	first := status(t, coord, "kempen")
	original := re.read("kempen", "intake")
	edited := strings.Replace(original, crisisLabelNL, `label: "Tijdelijk label"`, 1)
	var put RulesActivation
	if code := coord.doRaw("PUT", "/v1/regions/kempen/rules/intake", "application/yaml", []byte(edited), &put); code != http.StatusOK {
		t.Fatalf("PUT: status %d", code)
	}

	var back RulesActivation
	if code := coord.do("POST", "/v1/regions/kempen/rules/rollback", map[string]string{"hash": first.ActiveVersion}, &back); code != http.StatusOK {
		t.Fatalf("rollback: status %d", code)
	}
	if !back.Activated || back.ActiveVersion != first.ActiveVersion || back.Source != rules.SourceRollback || back.ActivatedBy != "coordinator.k" {
		t.Errorf("rollback answer: %+v", back)
	}
	if re.read("kempen", "intake") != original {
		t.Error("the file on disk is not the rolled-back content")
	}
	if label := crisisLabel(t, coord, "kempen"); label != "Nood aan crisishulp" {
		t.Errorf("crisis label after rollback: %q", label)
	}
	hist := history(t, coord, "kempen")
	if len(hist) != 3 || hist[0].Hash != first.ActiveVersion || hist[0].Source != rules.SourceRollback || hist[1].Hash != put.ActiveVersion {
		t.Errorf("history: %+v", hist)
	}
	var full []RulesVersion
	coord.do("GET", "/v1/regions/kempen/rules/history?content=true", nil, &full)
	if len(full) != 3 || len(full[1].Files) != 4 || !strings.Contains(full[1].Files[1].Content, "Tijdelijk label") {
		t.Errorf("history with content: %+v", full)
	}

	for _, tc := range []struct {
		body any
		want int
	}{
		{map[string]string{"hash": strings.Repeat("0", 64)}, http.StatusNotFound},
		{map[string]string{"hash": ""}, http.StatusBadRequest},
		{map[string]any{"hash": first.ActiveVersion, "force": true}, http.StatusBadRequest},
	} {
		if got := coord.do("POST", "/v1/regions/kempen/rules/rollback", tc.body, nil); got != tc.want {
			t.Errorf("rollback %v: status %d, want %d", tc.body, got, tc.want)
		}
	}
	waitAudit(t, re, func(es []audit.Entry) bool {
		return len(es) == 2 && es[0].TargetID == first.ActiveVersion && strings.Contains(string(es[0].Detail), `"source":"rollback"`)
	})
}

func TestRulesAPI_EvalExplainsTheDecision(t *testing.T) {
	re := newRulesEnv(t)
	coord := re.login("coordinator.k")
	st := status(t, coord, "kempen")
	var d rules.IntakeDecision
	if code := coord.doRaw("POST", "/v1/regions/kempen/rules/intake/eval", "application/json", []byte(intakeBase), &d); code != http.StatusOK {
		t.Fatalf("eval: status %d", code)
	}
	if !d.Eligible || len(d.Reasons) != 0 || d.Priority != 7 || d.Region != "kempen" || d.Ruleset != "intake" || d.RegionVersion != st.ActiveVersion {
		t.Errorf("decision: %+v", d)
	}
	if len(d.Require) != 3 || len(d.Exclude) != 5 || len(d.Parts) != 1 || d.Require[0].ID != "willing_participant" || d.Require[0].Label == "" || !d.Require[0].Result {
		t.Errorf("explanation: %+v", d)
	}
	if d.Version != st.Files[1].Hash {
		t.Errorf("version: got %s, want the hash of intake.yaml %s", d.Version, st.Files[1].Hash)
	}

	crisis := strings.Replace(intakeBase, `"consent": true`, `"consent": true, "crisis": true`, 1)
	coord.doRaw("POST", "/v1/regions/kempen/rules/intake/eval", "application/json", []byte(crisis), &d)
	if d.Eligible || len(d.Reasons) != 1 || d.Reasons[0] != "crisis" {
		t.Errorf("crisis decision: eligible %v reasons %v", d.Eligible, d.Reasons)
	}

	var sig rules.SignalsDecision
	if code := coord.do("POST", "/v1/regions/maasland/rules/signals/eval", map[string]any{}, &sig); code != http.StatusNotFound {
		t.Errorf("eval in another region: status %d, want 404", code)
	}
	reviewer := re.login("reviewer.k")
	if code := reviewer.do("POST", "/v1/regions/kempen/rules/signals/eval", map[string]any{"today": "2026-03-02"}, &sig); code != http.StatusOK || sig.Ruleset != "signals" {
		t.Errorf("reviewer eval of signals: status %d %+v", code, sig)
	}
	for _, tc := range []struct {
		path, body string
	}{
		{"/v1/regions/kempen/rules/intake/eval", `{"referral": {"crisis": "yes"}}`},
		{"/v1/regions/kempen/rules/intake/eval", `{"unknown": 1}`},
		{"/v1/regions/kempen/rules/region/eval", `{}`},
		{"/v1/regions/kempen/rules/nothing/eval", `{}`},
	} {
		var body ErrorBody
		if got := coord.doRaw("POST", tc.path, "application/json", []byte(tc.body), &body); got != http.StatusBadRequest || body.Code != samenplan.EINVALID {
			t.Errorf("POST %s %s: status %d %+v, want 400 invalid", tc.path, tc.body, got, body)
		}
	}
}

func TestRulesAPI_OnlyTheRegionsCoordinatorChangesRules(t *testing.T) {
	re := newRulesEnv(t)
	intake := []byte(re.read("kempen", "intake"))
	clients := map[string]*testClient{"": {t: t, base: re.url()}}
	for _, u := range []string{"coordinator.k", "reviewer.k", "coach.a", "coach.m", "admin"} {
		clients[u] = re.login(u)
	}
	rollback := []byte(`{"hash": "` + strings.Repeat("0", 64) + `"}`)
	type call struct {
		method, path, contentType string
		body                      []byte
	}
	var (
		getStatus   = call{"GET", "/v1/regions/kempen/rules", "", nil}
		getHistory  = call{"GET", "/v1/regions/kempen/rules/history", "", nil}
		getFile     = call{"GET", "/v1/regions/kempen/rules/intake", "", nil}
		put         = call{"PUT", "/v1/regions/kempen/rules/intake", "application/yaml", intake}
		doRollback  = call{"POST", "/v1/regions/kempen/rules/rollback", "application/json", rollback}
		evalIntake  = call{"POST", "/v1/regions/kempen/rules/intake/eval", "application/json", []byte(intakeBase)}
		evalCap     = call{"POST", "/v1/regions/kempen/rules/capacity/eval", "application/json", []byte(`{}`)}
		maasStatus  = call{"GET", "/v1/regions/maasland/rules", "", nil}
		maasPut     = call{"PUT", "/v1/regions/maasland/rules/intake", "application/yaml", intake}
		maasEval    = call{"POST", "/v1/regions/maasland/rules/intake/eval", "application/json", []byte(`{}`)}
		maasHistory = call{"GET", "/v1/regions/maasland/rules/history", "", nil}
	)
	for _, tc := range []struct {
		user string
		call call
		want int
	}{
		{"", getStatus, 401}, {"", put, 401}, {"", doRollback, 401}, {"", evalIntake, 401},

		{"coordinator.k", getStatus, 200}, {"coordinator.k", getHistory, 200}, {"coordinator.k", getFile, 200},
		{"coordinator.k", put, 200}, {"coordinator.k", doRollback, 404}, {"coordinator.k", evalIntake, 200}, {"coordinator.k", evalCap, 200},
		{"coordinator.k", maasStatus, 404}, {"coordinator.k", maasPut, 404}, {"coordinator.k", maasEval, 404}, {"coordinator.k", maasHistory, 404},

		{"reviewer.k", getStatus, 200}, {"reviewer.k", getHistory, 200}, {"reviewer.k", getFile, 200},
		{"reviewer.k", put, 403}, {"reviewer.k", doRollback, 403}, {"reviewer.k", evalIntake, 200}, {"reviewer.k", evalCap, 200},
		{"reviewer.k", maasStatus, 404}, {"reviewer.k", maasPut, 404},

		{"coach.a", getStatus, 403}, {"coach.a", getHistory, 403}, {"coach.a", getFile, 403},
		{"coach.a", put, 403}, {"coach.a", doRollback, 403}, {"coach.a", evalIntake, 200}, {"coach.a", evalCap, 403},
		{"coach.a", maasEval, 404},

		{"coach.m", getStatus, 404}, {"coach.m", put, 404}, {"coach.m", evalIntake, 404}, {"coach.m", maasEval, 200},
		{"coach.m", maasStatus, 403},

		{"admin", getStatus, 403}, {"admin", getHistory, 403}, {"admin", getFile, 403}, {"admin", put, 403},
		{"admin", doRollback, 403}, {"admin", evalIntake, 403}, {"admin", maasStatus, 403}, {"admin", maasPut, 403},
	} {
		var body json.RawMessage
		got := clients[tc.user].doRaw(tc.call.method, tc.call.path, tc.call.contentType, tc.call.body, &body)
		if got != tc.want {
			t.Errorf("%q %s %s: status %d (%.200s), want %d", tc.user, tc.call.method, tc.call.path, got, body, tc.want)
		}
	}
	if hist := history(t, clients["coordinator.k"], "kempen"); len(hist) != 1 {
		t.Errorf("history: %d versions, want 1 (the coordinator put the active content)", len(hist))
	}
}

func TestRuleVersions_AppendOnlyRoundTrip(t *testing.T) {
	re := newRulesEnv(t)
	ctx := context.Background()
	// Migrating again is a no-op.
	rv, err := OpenRuleVersions(ctx, re.stores.Main)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 10, 0, 0, 123456789, time.UTC)
	files := []rules.File{{Name: "intake.yaml", Content: "ruleset: intake\n", Hash: "abc"}}
	for i, by := range []string{"coordinator.k", "other"} {
		if err := rv.Record(ctx, rules.Version{Region: "test", Hash: "h1", Files: files, ActivatedAt: at.Add(time.Duration(i) * time.Second),
			ActivatedBy: by, Source: rules.SourcePut}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rv.Get(ctx, "test", "h1")
	if err != nil || got.ActivatedBy != "other" || !got.ActivatedAt.Equal(at.Add(time.Second)) || len(got.Files) != 1 || got.Files[0] != files[0] {
		t.Errorf("Get: %+v %v", got, err)
	}
	list, err := rv.List(ctx, "test")
	if err != nil || len(list) != 2 || list[1].ActivatedBy != "coordinator.k" || !list[1].ActivatedAt.Equal(at) {
		t.Errorf("List: %+v %v", list, err)
	}
	if _, err := rv.Get(ctx, "test", "nope"); samenplan.ErrorCode(err) != samenplan.ENOTFOUND {
		t.Errorf("Get of an unknown hash: %v, want not_found", err)
	}
	if empty, err := rv.List(ctx, "nowhere"); err != nil || len(empty) != 0 {
		t.Errorf("List of an unknown region: %v %v", empty, err)
	}
	for _, q := range []string{
		`UPDATE rule_versions SET activated_by = 'x'`,
		`DELETE FROM rule_versions`,
	} {
		if _, err := re.stores.Main.Writer.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: got %v, want append-only", q, err)
		}
	}
	if list, _ := rv.List(ctx, "kempen"); len(list) != 1 || list[0].Source != rules.SourceStartup || len(list[0].Files) != 4 {
		t.Errorf("kempen versions recorded at load: %+v", list)
	}
}
