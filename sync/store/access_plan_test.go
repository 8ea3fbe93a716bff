package store

import (
	"strings"
	"testing"
)

// TestAccessQuery_UsesTheScopeIndex: the access fields of one family are
// found through row_scopes' scope index, never by walking every trajectory
// field of the region (the plan SQLite chose for a plain JOIN).
func TestAccessQuery_UsesTheScopeIndex(t *testing.T) {
	e := newEnv(t)
	rows, err := e.r.db.Reader.Query(`EXPLAIN QUERY PLAN `+accessQuery, "family:x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) == 0 || !strings.Contains(plan[0], "row_scopes_scope (scope=? AND collection=?)") {
		t.Fatalf("access query plan starts %q, want the row_scopes scope index first; plan:\n%s", plan, strings.Join(plan, "\n"))
	}
	for _, step := range plan {
		if strings.Contains(step, "(collection=?)") {
			t.Fatalf("access query walks a whole collection: %q", step)
		}
	}
}
