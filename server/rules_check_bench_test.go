package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view/viewtest"
	"github.com/samenplan/samenplan/sync/store"
)

// seedOpenReferrals writes, as server writes, n kempen families each with
// a willing parent, a child and an undecided referral; every fifth is a
// crisis.
func seedOpenReferrals(tb testing.TB, r *store.Region, n int, today time.Time) {
	tb.Helper()
	var ws []store.FieldWrite
	set := func(coll, id string, fields map[string]any) {
		for k, v := range fields {
			raw, _ := json.Marshal(v)
			ws = append(ws, store.FieldWrite{Collection: coll, ID: id, Field: k, Value: raw})
		}
	}
	day := func(ago int) string { return today.AddDate(0, 0, -ago).Format(time.DateOnly) }
	for i := 0; i < n; i++ {
		fam := newUUID()
		set("families", fam, map[string]any{"region": "kempen", "municipality": "Turnhout", "label": fmt.Sprintf("Gezin proef %d", i), "language": "nl"})
		set("persons", newUUID(), map[string]any{"family_id": fam, "given_name": "Noor", "role": "parent", "birth_date": day(365 * 35), "willing": true})
		set("persons", newUUID(), map[string]any{"family_id": fam, "given_name": "Lis", "role": "child", "birth_date": day(365*(i%17) + 20), "willing": false})
		set("referrals", newUUID(), map[string]any{"region": "kempen", "family_id": fam, "received_on": day(i % 60), "channel": "permanentie",
			"articulated": i%3 > 0, "mandated": i%4 == 0, "crisis": i%5 == 0, "consent": true, "municipality": "Turnhout", "status": "open"})
		if len(ws) > 20000 || i == n-1 {
			if _, err := r.ServerWrite(context.Background(), store.Actor{Role: store.RoleServer}, ws); err != nil {
				tb.Fatal(err)
			}
			ws = ws[:0]
		}
	}
}

// BenchmarkRulesDryRun10k measures, through the real HTTP stack, a check
// and a dry-run of the crisis edit over 10,000 undecided referrals in
// kempen; with SAMENPLAN_BENCH_CASELOAD=1 the region also holds 10,000
// families of running work (viewtest.Seed, ~1M fields) that the dry-run
// must not be slowed by much. Each request is timed from send to the
// last byte read, as a coordinator.
func BenchmarkRulesDryRun10k(b *testing.B) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()) }
	st := newWorkflowStack(b, io.Discard, &now)
	var coaches []string
	for i := 0; i < 40; i++ {
		u, err := st.auth.CreateUser(ctx, auth.NewUser{Username: fmt.Sprintf("coach%d.kempen", i), DisplayName: fmt.Sprintf("Coach %d", i),
			Role: auth.RoleCoach, Regions: []string{"kempen"}, FTE: 1, Password: testPassword}, auth.System("bench"))
		if err != nil {
			b.Fatal(err)
		}
		coaches = append(coaches, u.ID)
	}
	if _, err := st.auth.CreateUser(ctx, auth.NewUser{Username: "coordinator.k", DisplayName: "Coördinator", Role: auth.RoleCoordinator,
		Regions: []string{"kempen"}, Password: testPassword}, auth.System("bench")); err != nil {
		b.Fatal(err)
	}
	region, _ := st.stores.Region("kempen")
	t0 := time.Now()
	seedOpenReferrals(b, region, 10000, now())
	if os.Getenv("SAMENPLAN_BENCH_CASELOAD") != "" {
		if _, err := viewtest.Seed(ctx, region, viewtest.Options{Families: 10000, Coaches: coaches, Today: now()}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded in %v; open referrals in the read model: %d", time.Since(t0).Round(time.Millisecond), len(st.model.OpenReferrals("kempen")))

	var login struct {
		AccessToken string `json:"access_token"`
	}
	c := &testClient{base: st.srv.URL()}
	if status, err := c.send("POST", "/v1/auth/login", "application/json",
		jsonValue(map[string]string{"username": "coordinator.k", "password": testPassword, "device_name": "bench"}), &login); err != nil || status != 200 {
		b.Fatalf("login: %d %v", status, err)
	}
	intake, err := os.ReadFile(filepath.Join(st.dir, "kempen", "intake.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	candidate := strings.NewReplacer(
		"when: referral.crisis\n", "when: referral.crisis && referral.mandated\n",
		"given: {referral: {crisis: true}}", "given: {referral: {crisis: true, mandated: true}}",
		"referral: {crisis: true, municipality: Mol}", "referral: {crisis: true, mandated: true, municipality: Mol}",
	).Replace(string(intake))
	hc := &http.Client{}
	post := func(b *testing.B, op string, out any) {
		req, _ := http.NewRequest("POST", st.srv.URL()+"/v1/regions/kempen/rules/intake/"+op, strings.NewReader(candidate))
		req.Header.Set("Authorization", "Bearer "+login.AccessToken)
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d %.300s", op, resp.StatusCode, body)
		}
		if out != nil {
			json.Unmarshal(body, out)
		}
	}
	b.Run("Check", func(b *testing.B) {
		for b.Loop() {
			post(b, "check", nil)
		}
	})
	b.Run("DryRun", func(b *testing.B) {
		var rep RulesDryRun
		for b.Loop() {
			post(b, "dryrun", &rep)
		}
		b.ReportMetric(float64(rep.Referrals), "referrals")
		b.ReportMetric(float64(rep.Changed), "changed")
	})
}
