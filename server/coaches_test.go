package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/samenplan/samenplan/server/auth"
)

// TestCoaches_CoordinatorSeesCapacityAsTheBoardDoes: the region's enabled
// coaches by username, each with the limit, running families and free
// places of the intake board; a disabled coach and another region's are
// left out.
func TestCoaches_CoordinatorSeesCapacityAsTheBoardDoes(t *testing.T) {
	we := newWorkflowEnv(t)
	ctx := t.Context()
	gone, err := we.auth.CreateUser(ctx, auth.NewUser{Username: "coach.gone", DisplayName: "Weg", Role: auth.RoleCoach,
		Regions: []string{"kempen"}, FTE: 1, Password: testPassword}, auth.System("test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := we.auth.SetDisabled(ctx, gone.ID, true, auth.System("test")); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"coordinator.k", "reviewer.k"} {
		var got []RegionCoach
		if st := we.login(who).do("GET", "/v1/regions/kempen/coaches", nil, &got); st != http.StatusOK {
			t.Fatalf("as %s: %d", who, st)
		}
		want := []RegionCoach{
			{CoachName: CoachName{ID: we.users["coach.a"].ID, Username: "coach.a", DisplayName: "coach.a"}, FTE: 1, ActiveFamilies: 1, Limit: 12, Free: 11},
			{CoachName: CoachName{ID: we.users["coach.b"].ID, Username: "coach.b", DisplayName: "coach.b"}, FTE: 1, ActiveFamilies: 1, Limit: 12, Free: 11},
			{CoachName: CoachName{ID: we.users["coach.c"].ID, Username: "coach.c", DisplayName: "coach.c"}, FTE: 0.5, ActiveFamilies: 1, Limit: 6, Free: 5},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("as %s:\n got  %+v\n want %+v", who, got, want)
		}
		var board IntakeBoard
		if st := we.login("coordinator.k").do("GET", "/v1/regions/kempen/intake", nil, &board); st != http.StatusOK {
			t.Fatalf("board: %d", st)
		}
		for i, cc := range board.Coaches {
			if g := got[i]; g.ID != cc.CoachID || g.Limit != cc.Limit || g.Free != cc.Free || g.ActiveFamilies != cc.ActiveFamilies {
				t.Errorf("coach %d: %+v, the board says %+v", i, g, cc)
			}
		}
	}
}

// TestCoaches_CoachSeesNamesOnly: a coach gets her colleagues' id, username
// and display name, and not one key more.
func TestCoaches_CoachSeesNamesOnly(t *testing.T) {
	we := newWorkflowEnv(t)
	var raw []map[string]any
	if st := we.login("coach.b").do("GET", "/v1/regions/kempen/coaches", nil, &raw); st != http.StatusOK {
		t.Fatalf("as coach.b: %d", st)
	}
	if len(raw) != 3 {
		t.Fatalf("coach.b sees %d coaches, want 3: %v", len(raw), raw)
	}
	for _, c := range raw {
		keys := map[string]bool{}
		for k := range c {
			keys[k] = true
		}
		if !reflect.DeepEqual(keys, map[string]bool{"id": true, "username": true, "display_name": true}) {
			t.Errorf("a coach sees %v, want id, username and display_name only", c)
		}
	}
	if raw[0]["username"] != "coach.a" || raw[0]["id"] != we.users["coach.a"].ID {
		t.Errorf("first coach %v, want coach.a", raw[0])
	}
}

// TestCoaches_RefusedOutsideTheRegion: an admin is forbidden, another
// region's staff and coaches get not_found, no token unauthorized.
func TestCoaches_RefusedOutsideTheRegion(t *testing.T) {
	we := newWorkflowEnv(t)
	for _, tc := range []struct {
		who  string
		want int
	}{{"admin", 403}, {"coordinator.m", 404}, {"coach.m", 404}} {
		var body ErrorBody
		if st := we.login(tc.who).do("GET", "/v1/regions/kempen/coaches", nil, &body); st != tc.want || body.Code == "" {
			t.Errorf("as %s: %d %+v, want %d with a code", tc.who, st, body, tc.want)
		}
	}
	anon := &testClient{t: t, base: we.url()}
	if st := anon.do("GET", "/v1/regions/kempen/coaches", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", st)
	}
	var maas []RegionCoach
	if st := we.login("coordinator.m").do("GET", "/v1/regions/maasland/coaches", nil, &maas); st != 200 || len(maas) != 1 || maas[0].Username != "coach.m" {
		b, _ := json.Marshal(maas)
		t.Errorf("maasland as its coordinator: %d %s, want coach.m only", st, b)
	}
}
