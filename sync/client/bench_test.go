package client

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/samenplan/samenplan/sync/schema"
)

// BenchmarkPull_Caseload pulls a coach's caseload, 10 families with 10,000
// fields, in pages of 1,000 into an empty replica. The in-test fake server's
// share is in the figure too.
func BenchmarkPull_Caseload(b *testing.B) {
	ctx := context.Background()
	f := newFakeServer(b)
	f.addUser("ann", "secret")
	var fams []string
	for i := 0; i < 10; i++ {
		fid := NewID()
		fams = append(fams, fid)
		f.write("families", fid, "region", "kempen")
		for j := 0; j < 500; j++ {
			id := NewID()
			f.write("network_members", id, "family_id", fid)
			f.write("network_members", id, "name", fmt.Sprintf("Netwerklid %d van gezin %d", j, i))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r, err := Open(ctx, filepath.Join(b.TempDir(), "r.db"), Options{BaseURL: f.URL()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Login(ctx, "ann", "secret", "bench"); err != nil {
			b.Fatal(err)
		}
		for _, fid := range fams {
			f.grant(r.DeviceID(), schema.FamilyScope(fid))
		}
		b.StartTimer()
		res, err := r.Pull(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if res.Received < 10000 || len(res.Refetched) > 0 {
			b.Fatalf("pull: %+v", res)
		}
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(10010, "fields/op")
}

// BenchmarkWrite measures one local write: validate, stamp, apply, queue.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	f := newFakeServer(b)
	f.addUser("ann", "secret")
	r, err := Open(ctx, filepath.Join(b.TempDir(), "r.db"), Options{BaseURL: f.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Login(ctx, "ann", "secret", "bench"); err != nil {
		b.Fatal(err)
	}
	fid := NewID()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Write(ctx, "families", fid, "label", fmt.Sprint("Gezin ", i)); err != nil {
			b.Fatal(err)
		}
	}
}
