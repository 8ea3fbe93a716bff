package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view/viewtest"
)

// BenchmarkWorkflow10k measures, through the real HTTP stack on loopback,
// the pages of the weekly meeting and the case file with 10,000 families in
// kempen (DESIGN §8 and issue 4: p99 under 50 ms). Each request is timed
// from send to the last byte read, as a coordinator.
func BenchmarkWorkflow10k(b *testing.B) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, brussels()) }
	st := newWorkflowStack(b, io.Discard, &now)
	var coaches []string
	for i := 0; i < 10000/12+1; i++ {
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
	seeded, err := viewtest.Seed(ctx, region, viewtest.Options{Families: 10000, Coaches: coaches, Today: now()})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d families, %d fields in %v", len(seeded.Families), seeded.Fields, time.Since(t0).Round(time.Millisecond))

	var login struct {
		AccessToken string `json:"access_token"`
	}
	c := &testClient{base: st.srv.URL()}
	if status, err := c.send("POST", "/v1/auth/login", "application/json",
		jsonValue(map[string]string{"username": "coordinator.k", "password": testPassword, "device_name": "bench"}), &login); err != nil || status != 200 {
		b.Fatalf("login: %d %v", status, err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(b *testing.B, path string) {
		req, _ := http.NewRequest("GET", st.srv.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+login.AccessToken)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		b.SetBytes(n)
	}
	for _, bc := range []struct{ name, path string }{
		{"Board", "/v1/regions/kempen/intake?week=2026-W48"},
		{"Family", ""},
		{"FamiliesPage", "/v1/families?region=kempen&status=active&limit=50"},
		{"Report", "/v1/regions/kempen/report?year=2026"},
		{"ReportCSV", "/v1/regions/kempen/report?year=2026&format=csv"},
		{"Signals", "/v1/regions/kempen/signals"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				path := bc.path
				if path == "" {
					path = "/v1/families/" + seeded.Families[(i*7919)%len(seeded.Families)]
				}
				t := time.Now()
				get(b, path)
				d = append(d, time.Since(t))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
