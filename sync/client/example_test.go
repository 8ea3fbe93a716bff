package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/samenplan/samenplan/sync/client"
)

// A coach's device: log in once, write offline, sync when there is a network.
func Example() {
	ctx := context.Background()
	r, err := client.Open(ctx, "/data/replica.db", client.Options{BaseURL: "https://samenplan.example"})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if r.DeviceID() == "" {
		if _, err := r.Login(ctx, "coach.kempen", "wachtwoord", "Telefoon van An"); err != nil {
			log.Fatal(err)
		}
	}
	// Offline is fine: the write is local at once and queued.
	contact := r.NewID()
	trajectory := "0190f3c2-7d1e-7b6a-9a51-3f1c2d4e5f60" // a trajectory the device holds
	if err := r.Write(ctx, "contacts", contact, "trajectory_id", trajectory); err != nil {
		log.Fatal(err)
	}
	if err := r.Write(ctx, "contacts", contact, "note", "Huisbezoek: plan besproken."); err != nil {
		log.Fatal(err)
	}
	// Whenever the network allows.
	res, err := r.Sync(ctx)
	switch {
	case client.IsOffline(err):
		// Nothing lost; try again later.
	case err != nil:
		log.Print(err)
	}
	st, _ := r.Status(ctx)
	fmt.Println(res.Push.Applied, st.Pending, len(st.Quarantined))
}
