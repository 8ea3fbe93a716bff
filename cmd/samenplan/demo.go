package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/store"
)

// DemoPassword is the password of every demo account. Demo data is
// fictional: invented family names, no real person.
const DemoPassword = "samenplan-demo"

// DemoLogin is one demo account, printed at start.
type DemoLogin struct {
	Username, Role, Region string
}

// Fictional names: given names are common, family names are invented
// (plants, trees and field names), so that no real family is described.
var (
	demoGiven   = []string{"Lotte", "Noor", "Emma", "Fien", "Lina", "Mila", "Ines", "Amira", "Yara", "Hanne", "Jens", "Milan", "Lars", "Rayan", "Senne", "Arne", "Wout", "Ilias", "Bram", "Stan", "Nora", "Elif", "Sara", "Tuur"}
	demoFamily  = []string{"Klaproos", "Lindeveld", "Vlierhoven", "Heidebloem", "Wilgenhof", "Eikelaar", "Berkenrode", "Mosbeek", "Varenkamp", "Distelberg", "Hazelaer", "Sleedoorn", "Meidoorne", "Brembos", "Lijsterbes", "Zegge", "Rietveldt", "Wederik", "Duizendblad", "Kamperfoelie", "Vossenstaart", "Zilverberk", "Boterbloem", "Madelief", "Ratelpot", "Korenaar", "Pinksterbloem", "Smeerwortel", "Hondsdraf", "Ereprijs"}
	demoCoaches = []string{"An Wilgenroos", "Bert Haagdoorn", "Charlotte Veldbies", "Driss Ameland", "Eva Lindenhout", "Femke Rozelaar"}
	demoOrgs    = []string{"CLB De Brug (fictief)", "Huisartsenpraktijk Het Plein (fictief)", "CAW (fictieve medewerker)", "Kinderopvang Zonneweide (fictief)", "Basisschool De Vlinder (fictief)"}
	demoNotes   = []string{
		"Huisbezoek: moeder vertelt dat de ochtenden rustiger verlopen. Samen het weekschema overlopen.",
		"Gesprek met beide ouders over de afspraken met school. Vader neemt contact op met de leerkracht.",
		"Netwerkoverleg voorbereid: oma en buurvrouw willen helpen met vervoer naar de sporttraining.",
		"Telefonisch contact: afspraak bij de huisarts is gemaakt. Volgende week opnieuw langs.",
		"Wandeling met de jongere: praat open over vrienden en over thuis. Doel 'vrije tijd' bijgesteld.",
		"Budgetoverzicht samen ingevuld; aanvraag studietoelage opgestart met het gezin.",
	}
	demoGoals = []string{
		"We willen 's ochtends zonder ruzie op tijd op school zijn.",
		"Ik wil terug werk zoeken, en weten wie op de kinderen past.",
		"We willen een huis met een slaapkamer voor de kinderen.",
		"Ik wil dat mijn zoon weer graag naar school gaat.",
		"We willen minder schulden en een overzicht van onze rekeningen.",
		"We willen iemand in de buurt die we kunnen bellen als het moeilijk is.",
	}
)

type regionFile struct {
	Municipalities []string              `yaml:"municipalities"`
	LifeDomains    []struct{ ID string } `yaml:"life_domains"`
	ClosureReasons []struct{ ID string } `yaml:"closure_reasons"`
}

// SeedDemo fills an empty installation with fictional demo accounts and
// cases for every region. It does nothing when accounts already exist.
func SeedDemo(ctx context.Context, app *App) ([]DemoLogin, error) {
	users, err := app.Auth.ListUsers(ctx, auth.UserFilter{})
	if err != nil {
		return nil, err
	}
	var logins []DemoLogin
	if len(users) > 0 {
		for _, u := range users {
			if strings.HasSuffix(u.Username, ".demo") || u.Username == "admin" {
				logins = append(logins, DemoLogin{u.Username, u.Role, strings.Join(u.Regions, ",")})
			}
		}
		return logins, nil
	}
	by := auth.System("demo")
	add := func(nu auth.NewUser) (auth.User, error) {
		nu.Password = DemoPassword
		u, err := app.Auth.CreateUser(ctx, nu, by)
		if err == nil {
			logins = append(logins, DemoLogin{u.Username, u.Role, strings.Join(u.Regions, ",")})
		}
		return u, err
	}
	if _, err := add(auth.NewUser{Username: "admin", DisplayName: "Beheerder", Role: auth.RoleAdmin}); err != nil {
		return nil, err
	}
	for i, region := range app.Stores.Regions() {
		var rf regionFile
		buf, err := os.ReadFile(filepath.Join(app.Config.Rules, region, "region.yaml"))
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(buf, &rf); err != nil {
			return nil, fmt.Errorf("%s/region.yaml: %w", region, err)
		}
		if _, err := add(auth.NewUser{Username: "coordinator." + region + ".demo", DisplayName: "Coördinator " + region, Role: auth.RoleCoordinator, Regions: []string{region}}); err != nil {
			return nil, err
		}
		if _, err := add(auth.NewUser{Username: "reviewer." + region + ".demo", DisplayName: "Reviewer " + region, Role: auth.RoleReviewer, Regions: []string{region}}); err != nil {
			return nil, err
		}
		var coaches []auth.User
		ftes := []float64{1, 0.8, 1, 0.5}
		for j, fte := range ftes {
			name := demoCoaches[(i*len(ftes)+j)%len(demoCoaches)]
			u, err := add(auth.NewUser{
				Username: fmt.Sprintf("coach%d.%s.demo", j+1, region), DisplayName: name,
				Role: auth.RoleCoach, Regions: []string{region}, FTE: fte, Organisation: "Samenplan demo",
			})
			if err != nil {
				return nil, err
			}
			coaches = append(coaches, u)
		}
		reg, ok := app.Stores.Region(region)
		if !ok {
			return nil, fmt.Errorf("no store for region %s", region)
		}
		rows := demoCases(region, rf, coaches, rand.New(rand.NewPCG(uint64(i+1), 42)), time.Now())
		if _, err := reg.ServerWrite(ctx, store.Actor{Role: "server", UserID: "demo"}, rows); err != nil {
			return nil, fmt.Errorf("write demo cases for %s: %w", region, err)
		}
	}
	return logins, nil
}

func printLogins(w io.Writer, url string, logins []DemoLogin) {
	if len(logins) == 0 {
		return
	}
	fmt.Fprintf(w, "\nDemo-accounts (wachtwoord / password %q):\n", DemoPassword)
	for _, l := range logins {
		fmt.Fprintf(w, "  %-32s %-12s %s\n", l.Username, l.Role, l.Region)
	}
	fmt.Fprintf(w, "\nOpen %s — API: %s/v1/schema, health: %s/healthz\n\n", url, url, url)
}

// demoCases builds the fictional case files of one region as field writes.
func demoCases(region string, rf regionFile, coaches []auth.User, rnd *rand.Rand, now time.Time) []store.FieldWrite {
	var out []store.FieldWrite
	set := func(collection, id string, fields map[string]any) {
		for k, v := range fields {
			raw, _ := json.Marshal(v)
			out = append(out, store.FieldWrite{Collection: collection, ID: id, Field: k, Value: raw})
		}
	}
	newID := func() string { return uuid.Must(uuid.NewV7()).String() }
	day := func(daysAgo int) string { return now.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }
	pick := func(xs []string) string { return xs[rnd.IntN(len(xs))] }
	domains := []string{"opvoeding"}
	if len(rf.LifeDomains) > 0 {
		domains = domains[:0]
		for _, d := range rf.LifeDomains {
			domains = append(domains, d.ID)
		}
	}
	munis := rf.Municipalities
	if len(munis) == 0 {
		munis = []string{"—"}
	}
	const families = 30
	for f := 0; f < families; f++ {
		fam := newID()
		surname := demoFamily[(f+rnd.IntN(3))%len(demoFamily)]
		muni := pick(munis)
		set("families", fam, map[string]any{"region": region, "municipality": muni, "label": "Gezin " + surname, "language": pick([]string{"nl", "nl", "nl", "fr", "ar", "tr"})})
		willing := rnd.IntN(10) > 0
		for p := 0; p < 2+rnd.IntN(3); p++ {
			role, born := "parent", day(365*(28+rnd.IntN(15)))
			if p > 0 {
				role, born = "child", day(365*rnd.IntN(18)+rnd.IntN(300))
			}
			set("persons", newID(), map[string]any{"family_id": fam, "given_name": pick(demoGiven), "family_name": surname, "role": role, "birth_date": born, "willing": willing || p > 0})
		}
		if rnd.IntN(8) == 0 {
			set("persons", newID(), map[string]any{"family_id": fam, "role": "unborn", "due_date": day(-30 - rnd.IntN(120)), "family_name": surname})
		}
		ref := newID()
		received := 3 + rnd.IntN(70)
		status := "started"
		switch {
		case f >= 24:
			status, received = "open", rnd.IntN(10)
		case f >= 21:
			status = pick([]string{"declined", "redirected", "consult_only"})
		}
		mandated := region == "kempen" && rnd.IntN(3) == 0
		set("referrals", ref, map[string]any{
			"region": region, "family_id": fam, "received_on": day(received), "channel": pick([]string{"permanentie", "clb", "huisarts", "gezin_zelf"}),
			"referrer_name": pick(demoGiven) + " " + pick(demoFamily), "referrer_org": pick(demoOrgs),
			"question": "Het gezin zoekt ondersteuning: " + strings.ToLower(pick(demoGoals)), "articulated": rnd.IntN(3) > 0,
			"mandated": mandated, "crisis": f == 25, "nrtj_requested": false, "rtj_within_month": f == 26, "innovative_help_available": false,
			"other_help_within_month": false, "consent": true, "municipality": muni, "status": status,
		})
		if status == "declined" {
			set("referrals", ref, map[string]any{"outcome_reason": "Andere hulp kan binnen de maand starten."})
		}
		if status != "started" {
			continue
		}
		traj := newID()
		coach := coaches[f%len(coaches)]
		started := received - 2 - rnd.IntN(3)
		if started < 0 {
			started = 0
		}
		tstatus := "active"
		if f%11 == 5 {
			tstatus = "paused"
		}
		set("trajectories", traj, map[string]any{"family_id": fam, "referral_id": ref, "region": region, "lead_coach_id": coach.ID, "co_coach_ids": []string{}, "mandated": mandated, "status": tstatus, "started_on": day(started), "rtj_requested": false})
		// A few trajectories have ended, so the report has durations and
		// closure reasons to show.
		if f%7 == 3 && started >= 20 && len(rf.ClosureReasons) > 0 {
			set("trajectories", traj, map[string]any{"status": "closed", "closed_on": day(rnd.IntN(started - 10)),
				"closure_reason": rf.ClosureReasons[rnd.IntN(len(rf.ClosureReasons))].ID})
		}
		for g := 0; g < 1+rnd.IntN(3); g++ {
			if started < 28 && g > 0 {
				break
			}
			set("plan_goals", newID(), map[string]any{"trajectory_id": traj, "life_domain": pick(domains), "goal": pick(demoGoals), "strength": "Het gezin zoekt zelf oplossingen.", "concern": "Weinig ondersteuning in de buurt.", "actions": "Wekelijks overleg; netwerk aanspreken.", "owner": "gezin en coach", "due_on": day(-30 - rnd.IntN(60)), "status": pick([]string{"open", "in_progress", "in_progress", "achieved"}), "scale": rnd.IntN(11)})
		}
		for n := 0; n < 2+rnd.IntN(3); n++ {
			kind := pick([]string{"informal", "informal", "professional", "volunteer"})
			set("network_members", newID(), map[string]any{"family_id": fam, "name": pick(demoGiven) + " " + pick(demoFamily), "relation": map[string]string{"informal": "familie of buur", "professional": "hulpverlener", "volunteer": "vrijwilliger"}[kind], "kind": kind, "consent_to_contact": true})
		}
		for c, at := 0, started; at > 0; c++ {
			occurred := now.AddDate(0, 0, -at).Add(time.Duration(9+rnd.IntN(8)) * time.Hour).UTC().Truncate(time.Minute)
			set("contacts", newID(), map[string]any{"trajectory_id": traj, "coach_id": coach.ID, "occurred_at": occurred.Format(time.RFC3339), "mode": pick([]string{"home_visit", "home_visit", "phone", "office", "outdoor"}), "minutes": 30 + 15*rnd.IntN(5), "participants": []string{"moeder", "coach"}, "note": pick(demoNotes), "follow_up": "Volgende afspraak ingepland."})
			at -= 5 + rnd.IntN(8)
			if f%9 == 0 && c == 0 {
				break // a few families without recent contact, so that signals fire
			}
		}
	}
	for k := 0; k < 10; k++ {
		set("consults", newID(), map[string]any{"region": region, "at": now.AddDate(0, 0, -rnd.IntN(60)).UTC().Truncate(time.Minute).Format(time.RFC3339), "referrer": pick(demoOrgs), "question": "Hoe ondersteun ik dit gezin verder? (fictief)", "advice": "Samen bekeken wat nog mogelijk is; verwijzer neemt zelf verder op.", "minutes": 15 + 5*rnd.IntN(6), "coach_id": coaches[k%len(coaches)].ID})
	}
	return out
}
