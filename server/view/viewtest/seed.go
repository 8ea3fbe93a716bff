// Package viewtest fills a region's store with a large, fictional caseload
// for the read model's and the server's benchmarks. It is test support: no
// product code imports it.
package viewtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/sync/store"
)

// Options shape a seeded region. Zero values take the defaults noted.
type Options struct {
	Families int
	// Coaches are the user ids trajectories are led by, round robin.
	Coaches []string
	// Today anchors the dates: referrals in the 60 days before, trajectories
	// started 3–300 days before.
	Today time.Time
	// Seed makes the data reproducible (default 1).
	Seed uint64
}

// Seeded is what Seed wrote.
type Seeded struct {
	Families     []string
	Trajectories []string
	Fields       int
}

// Seed writes, as server writes in large transactions, opts.Families
// families of region: a tenth waiting at intake with an open referral, the
// rest with a trajectory (three in five active, one paused, one closed) led
// by one of opts.Coaches, 3 persons, 2 plan goals, 2 network members and 4
// contacts each; about 100 fields per family. Names are fictional.
func Seed(ctx context.Context, r *store.Region, opts Options) (Seeded, error) {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if len(opts.Coaches) == 0 {
		return Seeded{}, fmt.Errorf("viewtest: no coaches")
	}
	rnd := rand.New(rand.NewPCG(opts.Seed, 2))
	day := func(daysAgo int) string { return opts.Today.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }
	at := func(daysAgo int) string {
		return opts.Today.AddDate(0, 0, -daysAgo).Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	}
	var out Seeded
	var ws []store.FieldWrite
	set := func(coll, id string, fields map[string]any) {
		for k, v := range fields {
			raw, _ := json.Marshal(v)
			ws = append(ws, store.FieldWrite{Collection: coll, ID: id, Field: k, Value: raw})
		}
	}
	flush := func() error {
		if len(ws) == 0 {
			return nil
		}
		if _, err := r.ServerWrite(ctx, store.Actor{Role: store.RoleServer}, ws); err != nil {
			return err
		}
		out.Fields += len(ws)
		ws = ws[:0]
		return nil
	}
	region := r.Name()
	munis := []string{"Turnhout", "Geel", "Beerse", "Kasterlee", "Arendonk"}
	surnames := []string{"Klaproos", "Lindeveld", "Vlierhoven", "Heidebloem", "Wilgenhof", "Eikelaar", "Berkenrode", "Mosbeek"}
	for f := 0; f < opts.Families; f++ {
		fam := newID()
		out.Families = append(out.Families, fam)
		surname := surnames[rnd.IntN(len(surnames))]
		set("families", fam, map[string]any{"region": region, "municipality": munis[rnd.IntN(len(munis))], "label": fmt.Sprintf("Gezin %s %d", surname, f), "language": "nl"})
		for p := 0; p < 3; p++ {
			role, born := "parent", day(365*(28+rnd.IntN(15)))
			if p > 0 {
				role, born = "child", day(365*rnd.IntN(18)+rnd.IntN(300))
			}
			set("persons", newID(), map[string]any{"family_id": fam, "given_name": "Noor", "family_name": surname, "role": role, "birth_date": born, "willing": true})
		}
		ref := newID()
		status := "started"
		if f%10 == 0 {
			status = "open"
		}
		set("referrals", ref, map[string]any{"region": region, "family_id": fam, "received_on": day(rnd.IntN(60)), "channel": "permanentie",
			"referrer_name": "Sara Zegge", "referrer_org": "CLB", "question": "Ondersteuning gevraagd.", "articulated": rnd.IntN(3) > 0,
			"mandated": rnd.IntN(3) == 0, "crisis": rnd.IntN(20) == 0, "consent": true, "municipality": "Turnhout", "status": status})
		if status == "open" {
			continue
		}
		traj, coach := newID(), opts.Coaches[f%len(opts.Coaches)]
		out.Trajectories = append(out.Trajectories, traj)
		tstatus := []string{"active", "active", "active", "paused", "closed"}[rnd.IntN(5)]
		started := 3 + rnd.IntN(300)
		t := map[string]any{"family_id": fam, "referral_id": ref, "region": region, "lead_coach_id": coach, "co_coach_ids": []string{},
			"mandated": false, "status": tstatus, "started_on": day(started), "rtj_requested": false}
		if tstatus == "closed" {
			t["closed_on"], t["closure_reason"] = day(rnd.IntN(started)), "doelen_bereikt"
		}
		set("trajectories", traj, t)
		for g := 0; g < 2; g++ {
			set("plan_goals", newID(), map[string]any{"trajectory_id": traj, "life_domain": "opvoeding", "goal": "Rustige ochtenden.", "actions": "Weekschema.", "owner": "gezin", "status": "open", "scale": 5})
		}
		for k := 0; k < 2; k++ {
			set("network_members", newID(), map[string]any{"family_id": fam, "name": "Oma", "relation": "familie", "kind": "informal", "consent_to_contact": true})
		}
		for c := 0; c < 4; c++ {
			set("contacts", newID(), map[string]any{"trajectory_id": traj, "coach_id": coach, "occurred_at": at(rnd.IntN(started)), "mode": "home_visit",
				"minutes": 60, "participants": []string{"moeder"}, "note": "Huisbezoek: weekschema overlopen.", "follow_up": "Volgende week."})
		}
		if len(ws) > 20000 {
			if err := flush(); err != nil {
				return out, err
			}
		}
	}
	return out, flush()
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
