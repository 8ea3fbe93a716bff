package server

import (
	"net/http"
	"testing"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

func TestPull_CoachReceivesOnlyHerFamily(t *testing.T) {
	e := newTestEnv(t)
	c := e.login("coach.a")
	var resp protocol.PullResponse
	if status := c.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version}, &resp); status != http.StatusOK {
		t.Fatalf("pull: %d", status)
	}
	if len(resp.Changes) == 0 {
		t.Fatal("coach received nothing")
	}
	for _, ch := range resp.Changes {
		if ch.Scope != schema.FamilyScope(e.families["coach.a"]) && ch.Scope != schema.IntakeScope("kempen") {
			t.Fatalf("coach.a received %s/%s in scope %s", ch.Collection, ch.ID, ch.Scope)
		}
	}
}
