package view

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// Rows is a region's current state grouped by collection and row id:
// field name → JSON value. Deleted rows are left out.
type Rows map[string]map[string]map[string]json.RawMessage

// LoadRows reads the current state of a region.
func LoadRows(ctx context.Context, r *store.Region) (Rows, error) {
	rows := Rows{}
	err := r.Scan(ctx, func(c protocol.Change) error {
		coll := rows[c.Collection]
		if coll == nil {
			coll = map[string]map[string]json.RawMessage{}
			rows[c.Collection] = coll
		}
		row := coll[c.ID]
		if row == nil {
			row = map[string]json.RawMessage{}
			coll[c.ID] = row
		}
		row[c.Field] = c.Value
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load rows of %s: %w", r.Name(), err)
	}
	for _, coll := range rows {
		for id, row := range coll {
			if b(jsonRow(row), crdt.Deleted) {
				delete(coll, id)
			}
		}
	}
	return rows, nil
}

// OpenReferral reports whether a referral still waits for a decision.
func OpenReferral(row map[string]json.RawMessage) bool {
	s := str(jsonRow(row), "status")
	return s == "" || s == "open"
}

// YearCounts counts the trajectories started in today's calendar year.
func YearCounts(rows Rows, today rules.Date) rules.YearCountFacts {
	var y rules.YearCountFacts
	for _, t := range rows["trajectories"] {
		started := date(jsonRow(t), "started_on")
		if started.IsZero() || started.Time().Year() != today.Time().Year() {
			continue
		}
		if b(jsonRow(t), "mandated") {
			y.StartedMandated++
		} else {
			y.StartedNonMandated++
		}
	}
	return y
}

// IntakeInputs returns the intake facts of every open referral of the
// region, in id order, as the intake rules see them. The read model builds
// its live eligibility through the same decoders and intakeInput.
func IntakeInputs(rows Rows, region string, today rules.Date) []rules.IntakeInput {
	members := map[string][]Member{}
	for _, id := range sortedKeys(rows["persons"]) {
		p := jsonRow(rows["persons"][id])
		fam := str(p, "family_id")
		members[fam] = append(members[fam], decodeMember(id, p, today))
	}
	year := YearCounts(rows, today)
	var out []rules.IntakeInput
	for id, r := range rows["referrals"] {
		if !OpenReferral(r) {
			continue
		}
		ref := decodeReferral(id, region, jsonRow(r))
		out = append(out, intakeInput(ref, members[ref.FamilyID], year, today))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ageYears(born, on time.Time) int {
	age := on.Year() - born.Year()
	if on.Month() < born.Month() || (on.Month() == born.Month() && on.Day() < born.Day()) {
		age--
	}
	return age
}

// LiveReferrals is a rules.ReferralSource over the live stores.
type LiveReferrals struct {
	Stores *store.Stores
	Today  rules.Date
}

var _ rules.ReferralSource = LiveReferrals{}

// Referrals returns the intake facts of the region's open referrals.
func (l LiveReferrals) Referrals(ctx context.Context, region string) ([]rules.IntakeInput, error) {
	r, ok := l.Stores.Region(region)
	if !ok {
		return nil, nil
	}
	rows, err := LoadRows(ctx, r)
	if err != nil {
		return nil, err
	}
	return IntakeInputs(rows, region, l.Today), nil
}
