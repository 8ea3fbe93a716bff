// Package loadtest holds what the server's Go benchmarks (server/bench_test.go)
// and the load command (samenplan bench) measure with, so that both measure
// the same thing: the contact rows they push, the server time of sync
// requests, and the bare batched SQLite upsert that DESIGN §8 compares the
// push with. It is not part of the product's request path.
package loadtest

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// Note is the 200-odd byte note of every benchmark contact.
var Note = strings.Repeat("Huisbezoek: gesprek met moeder over de week, afspraken rond school. ", 3)

// FieldsPerContact is how many fields Contacts writes per contact.
const FieldsPerContact = 8

// Contacts returns n new contacts × 8 fields on trajectory traj by coachID,
// each change stamped by clock (nil: no stamp).
func Contacts(clock *crdt.Clock, traj, coachID string, n int) []protocol.Change {
	out := make([]protocol.Change, 0, n*FieldsPerContact)
	for i := 0; i < n; i++ {
		id := uuid.Must(uuid.NewV7()).String() // time-ordered, as the clients make them
		for _, f := range [FieldsPerContact]struct {
			name  string
			value any
		}{
			{"trajectory_id", traj}, {"coach_id", coachID}, {"occurred_at", "2026-03-02T10:00:00+01:00"},
			{"mode", "home_visit"}, {"minutes", 60}, {"participants", []string{"moeder", "zoon"}},
			{"note", Note}, {"follow_up", "Volgende week bellen."},
		} {
			raw, _ := json.Marshal(f.value) // plain values: cannot fail
			c := protocol.Change{Collection: "contacts", ID: id, Field: f.name, Value: raw}
			if clock != nil {
				c.HLC = clock.Now().String()
			}
			out = append(out, c)
		}
	}
	return out
}

// Timer wraps a server's handler and records how long the server spends on
// each sync request, from the request line read to the last byte of the
// answer handed to the socket.
type Timer struct {
	Next http.Handler
	mu   sync.Mutex
	durs []time.Duration
}

func (s *Timer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.Next.ServeHTTP(w, r)
	if strings.HasPrefix(r.URL.Path, "/v1/sync/") {
		d := time.Since(start)
		s.mu.Lock()
		s.durs = append(s.durs, d)
		s.mu.Unlock()
	}
}

// Take returns and forgets the durations recorded so far.
func (s *Timer) Take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.durs
	s.durs = nil
	return d
}

// BareUpserter is the yardstick of DESIGN §8: the same rows upserted into a
// plain table (collection, id, field, value, hlc) with the same primary key
// and the same DSN settings (store.OpenDB), one prepared statement, one
// transaction per batch.
type BareUpserter struct {
	db   *store.DB
	stmt *sql.Stmt
}

// OpenBareUpserter creates the bare table in a new database at path.
func OpenBareUpserter(path string) (*BareUpserter, error) {
	db, err := store.OpenDB(path)
	if err != nil {
		return nil, err
	}
	if _, err := db.Writer.Exec(`CREATE TABLE bare (collection TEXT NOT NULL, id TEXT NOT NULL, field TEXT NOT NULL,
		value TEXT NOT NULL, hlc TEXT NOT NULL, PRIMARY KEY (collection, id, field)) WITHOUT ROWID`); err != nil {
		db.Close()
		return nil, err
	}
	stmt, err := db.Writer.Prepare(`INSERT INTO bare (collection, id, field, value, hlc) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (collection, id, field) DO UPDATE SET value = excluded.value, hlc = excluded.hlc`)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &BareUpserter{db: db, stmt: stmt}, nil
}

// Upsert writes one batch in one transaction.
func (u *BareUpserter) Upsert(batch []protocol.Change) error {
	tx, err := u.db.Writer.Begin()
	if err != nil {
		return err
	}
	st := tx.Stmt(u.stmt)
	for _, c := range batch {
		if _, err := st.Exec(c.Collection, c.ID, c.Field, string(c.Value), c.HLC); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// Close closes the statement and the database.
func (u *BareUpserter) Close() error {
	u.stmt.Close()
	return u.db.Close()
}
