package client

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/schema"
)

// TestPull_InvalidCursorReoffersOwnWrites restores the fake server from a
// backup taken between two of device A's acknowledged writes. A's next pull
// finds its cursor refused: it must queue every field whose local winner it
// stamped, with the same stamp and value (not B's writes it pulled), ahead
// of a write it made offline meanwhile, and push them in batches of its
// BatchSize. The write the backup kept is ignored, the lost ones applied,
// and A's label, older than a label the server wrote after the restore,
// does not overwrite it. B, which lost a write too, gets it back with one
// Sync although its cursor is not refused (the checksums tell). Everything
// converges.
func TestPull_InvalidCursorReoffersOwnWrites(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	a, _ := newReplica(t, f, Options{BatchSize: 2})
	b := openAt(t, filepath.Join(t.TempDir(), "b.db"), f, Options{})
	_, err := b.Login(ctx, "ann", "secret", "laptop")
	must(t, err)
	fam := a.NewID()
	f.write("families", fam, "region", "kempen")
	for _, r := range []*Replica{a, b} {
		f.grant(r.DeviceID(), schema.FamilyScope(fam))
		_, err := r.Sync(ctx)
		must(t, err)
	}

	must(t, a.Write(ctx, "families", fam, "municipality", "Geel")) // kept by the backup
	_, err = a.Sync(ctx)
	must(t, err)
	bk := f.backup()

	// Acknowledged after the backup: lost by the restore.
	p1 := a.NewID()
	must(t, a.Write(ctx, "families", fam, "label", "Na de back-up"))
	must(t, a.Write(ctx, "persons", p1, "family_id", fam))
	must(t, a.Write(ctx, "persons", p1, "given_name", "Lotte"))
	res, err := a.Sync(ctx)
	must(t, err)
	if res.Push.Applied != 3 {
		t.Fatalf("push after the backup applied %d, want 3", res.Push.Applied)
	}
	must(t, b.Write(ctx, "families", fam, "language", "nl"))
	_, err = b.Sync(ctx)
	must(t, err)
	_, err = a.Sync(ctx) // A now holds B's write too
	must(t, err)
	before, err := a.State(ctx)
	must(t, err)
	if got := before[crdt.Key{Collection: "families", ID: fam, Field: "language"}].HLC; got == "" {
		t.Fatal("A did not pull B's write")
	}

	f.restore(bk)
	f.write("families", fam, "label", "Nieuwer op de server") // after the restore: newer than A's label
	p2 := a.NewID()
	must(t, a.Write(ctx, "persons", p2, "family_id", fam)) // offline, not yet pushed
	must(t, a.Write(ctx, "persons", p2, "given_name", "Mats"))

	pull, err := a.Pull(ctx)
	must(t, err)
	own := []crdt.Key{
		{Collection: "families", ID: fam, Field: "municipality"},
		{Collection: "families", ID: fam, Field: "label"},
		{Collection: "persons", ID: p1, Field: "family_id"},
		{Collection: "persons", ID: p1, Field: "given_name"},
	}
	if pull.Reoffered != len(own) {
		t.Errorf("Reoffered = %d, want %d (A's own fields, not B's nor the pending ones)", pull.Reoffered, len(own))
	}
	pending, err := a.Pending(ctx)
	must(t, err)
	var got, want []string
	for _, c := range pending {
		got = append(got, c.Collection+"."+c.Field+"@"+c.HLC)
	}
	for _, k := range own {
		want = append(want, k.Collection+"."+k.Field+"@"+before[k].HLC)
	}
	want = append(want, "persons.family_id@", "persons.given_name@")
	for i := range got {
		if i >= len(own) && i < len(want) {
			got[i] = got[i][:len(got[i])-len(pending[i].HLC)] // the offline writes: stamps not known beforehand
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outbox after the refused cursor:\n got %v\nwant %v (own writes with their stamps, oldest first, then the offline ones)", got, want)
	}
	for _, c := range pending[:len(own)] {
		if c.Base != "" {
			t.Errorf("re-offered %s.%s has base %q, want none", c.Collection, c.Field, c.Base)
		}
	}
	st, err := a.Status(ctx)
	must(t, err)
	if st.Reoffered != len(own) || st.ReofferedAt.IsZero() {
		t.Errorf("Status: Reoffered = %d at %v, want %d and a time", st.Reoffered, st.ReofferedAt, len(own))
	}

	sentBefore := len(f.device(a.DeviceID()).sent)
	pushes := len(f.pushes)
	push, err := a.Push(ctx)
	must(t, err)
	if push.Applied != 4 || push.Ignored != 2 || len(push.Rejected)+len(push.Quarantined) > 0 {
		t.Errorf("push of the re-offered writes: %+v; want 4 applied (p1 and p2), 2 ignored (municipality kept by the backup, label older than the server's)", push)
	}
	if n := len(f.pushes) - pushes; n != 3 {
		t.Errorf("%d push requests for 6 writes in batches of 2, want 3", n)
	}
	sent := f.device(a.DeviceID()).sent[sentBefore:]
	for _, c := range sent {
		s, err := crdt.ParseStamp(c.HLC)
		must(t, err)
		if s.Node != a.DeviceID() {
			t.Errorf("A sent %s.%s stamped by %s", c.Collection, c.Field, s.Node)
		}
	}

	_, err = a.Pull(ctx)
	must(t, err)
	server := f.snapshot()
	label := crdt.Key{Collection: "families", ID: fam, Field: "label"}
	if v := string(server[label].Value); v != `"Nieuwer op de server"` {
		t.Errorf("server's label = %s: the re-offered older label overwrote the newer one", v)
	}
	if v := field(t, a, "families", fam, "label"); v != `"Nieuwer op de server"` {
		t.Errorf("A's label = %s, want the server's newer one", v)
	}
	for _, k := range own[2:] {
		if server[k].HLC != before[k].HLC {
			t.Errorf("server's %v = %q, want A's write %q back with its stamp", k, server[k].HLC, before[k].HLC)
		}
	}

	// B lost its write too, but A's pushes grew the log past B's cursor:
	// not refused, B finds out by the checksums. One Sync refetches, offers
	// B's own write of the scope that still differs, and pushes it.
	res, err = b.Sync(ctx)
	must(t, err)
	if res.Pull.Reoffered != 1 || res.Push.Applied != 1 || !slices.Contains(res.Pull.Refetched, schema.FamilyScope(fam)) {
		t.Errorf("B's sync after the restore: reoffered %d, applied %d, refetched %v; want 1, 1 and the family",
			res.Pull.Reoffered, res.Push.Applied, res.Pull.Refetched)
	}
	if len(res.Pull.Mismatched) > 0 {
		t.Errorf("B still mismatched: %v", res.Pull.Mismatched)
	}
	_, err = a.Pull(ctx)
	must(t, err)
	assertConverged(t, f, a, b)
	lang := crdt.Key{Collection: "families", ID: fam, Field: "language"}
	if got := f.snapshot()[lang]; got.HLC != before[lang].HLC {
		t.Errorf("server's language = %v, want B's write %q", got, before[lang].HLC)
	}
}

// TestPull_ForeignLostWriteOffersOwnWritesOnce: the restored server lost a
// write of its own that the device had pulled; the device cannot offer it
// (the stamp is not its own), so the scope keeps differing. Its own writes
// are offered once, when the cursor is refused, and not again on every
// Sync while the scope still differs. A device that wrote nothing offers
// nothing.
func TestPull_ForeignLostWriteOffersOwnWritesOnce(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	r, _ := newReplica(t, f, Options{})
	f.addUser("bob", "pw")
	idle := openAt(t, filepath.Join(t.TempDir(), "idle.db"), f, Options{})
	_, err := idle.Login(ctx, "bob", "pw", "tablet")
	must(t, err)
	fam := r.NewID()
	f.write("families", fam, "region", "kempen")
	scope := schema.FamilyScope(fam)
	for _, d := range []*Replica{r, idle} {
		f.grant(d.DeviceID(), scope)
		_, err := d.Sync(ctx)
		must(t, err)
	}
	must(t, r.Write(ctx, "families", fam, "municipality", "Geel"))
	_, err = r.Sync(ctx)
	must(t, err)
	bk := f.backup()
	f.write("families", fam, "label", "Van de server")
	for _, d := range []*Replica{r, idle} {
		_, err := d.Sync(ctx)
		must(t, err)
	}
	f.restore(bk)

	res, err := r.Sync(ctx)
	must(t, err)
	if res.Pull.Reoffered != 1 || res.Push.Ignored != 1 || res.Push.Applied != 0 {
		t.Errorf("first sync after the restore: reoffered %d, push %+v; want 1 offered and ignored", res.Pull.Reoffered, res.Push)
	}
	if !slices.Contains(res.Pull.Mismatched, scope) {
		t.Errorf("mismatched %v, want %s (the server lost its own label)", res.Pull.Mismatched, scope)
	}
	for i := range 2 {
		pushes := len(f.pushes)
		res, err = r.Sync(ctx)
		must(t, err)
		if res.Pull.Reoffered != 0 || len(f.pushes) != pushes {
			t.Errorf("sync %d after: reoffered %d, %d pushes; want none", i+2, res.Pull.Reoffered, len(f.pushes)-pushes)
		}
	}

	pushes := len(f.pushes)
	res, err = idle.Sync(ctx)
	must(t, err)
	if res.Pull.Reoffered != 0 || len(f.pushes) != pushes {
		t.Errorf("a device that wrote nothing: reoffered %d, %d pushes; want none", res.Pull.Reoffered, len(f.pushes)-pushes)
	}
}
