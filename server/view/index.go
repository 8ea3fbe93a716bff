package view

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// keyIndex is a memdb index over a key made of string parts, joined with
// NUL and closed with one: a query with the first parts only is a prefix
// query (memdb's Get always seeks a prefix), and LowerBound orders by the
// parts in turn.
type keyIndex struct {
	key func(obj any) []string // nil or "" first part: not indexed
}

func (x keyIndex) FromObject(obj any) (bool, []byte, error) {
	parts := x.key(obj)
	if len(parts) == 0 || parts[0] == "" {
		return false, nil, nil
	}
	return true, joinKey(parts), nil
}

func (x keyIndex) FromArgs(args ...any) ([]byte, error) {
	parts := make([]string, len(args))
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("index argument %d: want a string, got %T", i, a)
		}
		parts[i] = s
	}
	return joinKey(parts), nil
}

// multiKeyIndex indexes an object under several keys.
type multiKeyIndex struct {
	keys func(obj any) [][]string
}

func (x multiKeyIndex) FromObject(obj any) (bool, [][]byte, error) {
	var out [][]byte
	for _, parts := range x.keys(obj) {
		if len(parts) > 0 && parts[0] != "" {
			out = append(out, joinKey(parts))
		}
	}
	return len(out) > 0, out, nil
}

func (x multiKeyIndex) FromArgs(args ...any) ([]byte, error) { return keyIndex{}.FromArgs(args...) }

func joinKey(parts []string) []byte {
	return []byte(strings.Join(parts, "\x00") + "\x00")
}

// Tables and indexes of the model.
const (
	tCases     = "cases"
	tReferrals = "referrals"
	tConsults  = "consults"
	tSignals   = "signals"

	iID           = "id"
	iRegion       = "region"        // cases: region, sort key (label order)
	iRegionStatus = "region_status" // cases: region, status, sort key; referrals: region, status
	iCoach        = "coach"         // cases: coach (lead and co of every trajectory not closed), region, sort key
	iSignal       = "signal"        // cases: region, signal id, sort key
	iFamily       = "family"        // referrals, signals: family id
	iRegionAt     = "region_at"     // consults: region, at (UTC, RFC 3339)
)

// signalRow is a fired signal as the signals table holds it.
type signalRow struct {
	key string // region \x00 subject id \x00 signal id
	Signal
}

const atLayout = "2006-01-02T15:04:05.000Z"

func consultAt(c *Consult) string {
	if c.At.IsZero() {
		return "0"
	}
	return c.At.UTC().Format(atLayout)
}

func dbSchema() *memdb.DBSchema {
	idx := func(name string, unique bool, key func(any) []string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, Unique: unique, AllowMissing: !unique || name != iID, Indexer: keyIndex{key}}
	}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tCases: {Name: tCases, Indexes: map[string]*memdb.IndexSchema{
			iID:           idx(iID, true, func(o any) []string { return []string{o.(*Case).Family.ID} }),
			iRegion:       idx(iRegion, false, func(o any) []string { c := o.(*Case); return []string{c.region, c.sortKey} }),
			iRegionStatus: idx(iRegionStatus, false, func(o any) []string { c := o.(*Case); return []string{c.region, c.Status, c.sortKey} }),
			iCoach: {Name: iCoach, AllowMissing: true, Indexer: multiKeyIndex{func(o any) [][]string {
				c := o.(*Case)
				out := make([][]string, len(c.Coaches))
				for i, co := range c.Coaches {
					out[i] = []string{co, c.region, c.sortKey}
				}
				return out
			}}},
			iSignal: {Name: iSignal, AllowMissing: true, Indexer: multiKeyIndex{func(o any) [][]string {
				c := o.(*Case)
				var out [][]string
				seen := map[string]bool{}
				for _, s := range c.Signals {
					if !seen[s.ID] {
						seen[s.ID] = true
						out = append(out, []string{c.region, s.ID, c.sortKey})
					}
				}
				return out
			}}},
		}},
		tReferrals: {Name: tReferrals, Indexes: map[string]*memdb.IndexSchema{
			iID:           idx(iID, true, func(o any) []string { return []string{o.(*Referral).ID} }),
			iRegion:       idx(iRegion, false, func(o any) []string { return []string{o.(*Referral).Region} }),
			iRegionStatus: idx(iRegionStatus, false, func(o any) []string { r := o.(*Referral); return []string{r.Region, r.Status} }),
			iFamily:       idx(iFamily, false, func(o any) []string { return []string{o.(*Referral).FamilyID} }),
		}},
		tConsults: {Name: tConsults, Indexes: map[string]*memdb.IndexSchema{
			iID:       idx(iID, true, func(o any) []string { return []string{o.(*Consult).ID} }),
			iRegionAt: idx(iRegionAt, false, func(o any) []string { c := o.(*Consult); return []string{c.Region, consultAt(c)} }),
		}},
		tSignals: {Name: tSignals, Indexes: map[string]*memdb.IndexSchema{
			iID: idx(iID, true, func(o any) []string { return []string{o.(*signalRow).key} }),
			// In the order Signals returns them: most severe first.
			iRegion: idx(iRegion, false, func(o any) []string {
				s := o.(*signalRow)
				return []string{s.Region, string(rune('a' + rankOf(s.Severity))), s.FamilyID, s.SubjectID, s.ID}
			}),
			iFamily: idx(iFamily, false, func(o any) []string { return []string{o.(*signalRow).FamilyID} }),
		}},
	}}
}

// PrefixFromArgs lets DeleteAll and "_prefix" queries use the leading parts.
func (x keyIndex) PrefixFromArgs(args ...any) ([]byte, error) { return x.FromArgs(args...) }

// PrefixFromArgs lets "_prefix" queries use the leading parts.
func (x multiKeyIndex) PrefixFromArgs(args ...any) ([]byte, error) {
	return keyIndex{}.FromArgs(args...)
}
