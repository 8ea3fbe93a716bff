// Package view builds typed, consolidated views of a region's case file
// from the store: the facts the rules decide on, and (with the workflow)
// the in-memory read model of consolidated cases.
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
			if b(row, crdt.Deleted) {
				delete(coll, id)
			}
		}
	}
	return rows, nil
}

func str(row map[string]json.RawMessage, f string) string {
	var s string
	_ = json.Unmarshal(row[f], &s)
	return s
}

func b(row map[string]json.RawMessage, f string) bool {
	var v bool
	_ = json.Unmarshal(row[f], &v)
	return v
}

func date(row map[string]json.RawMessage, f string) rules.Date {
	d, err := rules.ParseDate(str(row, f))
	if err != nil {
		return rules.Date{}
	}
	return d
}

// OpenReferral reports whether a referral still waits for a decision.
func OpenReferral(row map[string]json.RawMessage) bool {
	s := str(row, "status")
	return s == "" || s == "open"
}

// YearCounts counts the trajectories started in today's calendar year.
func YearCounts(rows Rows, today rules.Date) rules.YearCountFacts {
	var y rules.YearCountFacts
	for _, t := range rows["trajectories"] {
		started := date(t, "started_on")
		if started.IsZero() || started.Time().Year() != today.Time().Year() {
			continue
		}
		if b(t, "mandated") {
			y.StartedMandated++
		} else {
			y.StartedNonMandated++
		}
	}
	return y
}

// IntakeInputs returns the intake facts of every open referral of the
// region, in id order, as the intake rules see them.
func IntakeInputs(rows Rows, region string, today rules.Date) []rules.IntakeInput {
	members := map[string][]rules.MemberFacts{}
	pregnant := map[string]bool{}
	for _, p := range rows["persons"] {
		fam := str(p, "family_id")
		role := str(p, "role")
		m := rules.MemberFacts{Role: role, BirthDate: date(p, "birth_date"), Willing: b(p, "willing")}
		if !m.BirthDate.IsZero() {
			m.AgeYears = ageYears(m.BirthDate.Time(), today.Time())
		}
		if role == "unborn" {
			pregnant[fam] = true
		}
		members[fam] = append(members[fam], m)
	}
	year := YearCounts(rows, today)
	var out []rules.IntakeInput
	for id, r := range rows["referrals"] {
		if !OpenReferral(r) {
			continue
		}
		fam := str(r, "family_id")
		out = append(out, rules.IntakeInput{
			ID: id, Region: region, Today: today,
			Referral: rules.ReferralFacts{
				ReceivedOn: date(r, "received_on"), Channel: str(r, "channel"), Municipality: str(r, "municipality"),
				Mandated: b(r, "mandated"), Articulated: b(r, "articulated"), Crisis: b(r, "crisis"),
				NRTJRequested: b(r, "nrtj_requested"), RTJWithinMonth: b(r, "rtj_within_month"),
				InnovativeHelpAvailable: b(r, "innovative_help_available"), OtherHelpWithinMonth: b(r, "other_help_within_month"),
				Consent: b(r, "consent"),
			},
			Family: rules.FamilyFacts{Members: members[fam], Pregnancy: pregnant[fam]},
			Year:   year,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
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
