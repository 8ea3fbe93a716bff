package view

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/samenplan/samenplan/rules"
)

// Every query below reads one memdb snapshot: what it returns is the state
// after some whole number of commits. Returned pointers are shared and must
// not be modified.

// Case returns a family's consolidated case, or false when the model has no
// such family (or it is deleted). It does not check access.
func (m *Model) Case(id string) (*Case, bool) {
	m.Settle()
	return m.PeekCase(id)
}

// PeekCase is Case without waiting for the commits queued for the model
// (queue.go): what it answers may lag the latest writes. For answers that
// must not wait behind other writers' updates, as the signals a device's
// pull carries (after SettleFor its own writes; the next pull brings what
// others' queued writes change).
func (m *Model) PeekCase(id string) (*Case, bool) {
	o, err := m.db.Txn(false).First(tCases, iID, id)
	if err != nil || o == nil {
		return nil, false
	}
	return o.(*Case), true
}

// Filter selects cases; empty fields match everything.
type Filter struct {
	Region string
	// Coach matches cases she holds: lead or co-coach of a trajectory that
	// is not closed.
	Coach string
	// Status is a trajectory status (active, paused, closed), StatusIntake or
	// StatusNone.
	Status string
	// Q matches the label, the municipality or a member's name, ignoring case.
	Q string
	// Signal is a signal id that must have fired for the case.
	Signal string
	// Limit caps the page (0: no cap); Offset skips that many matches.
	Limit, Offset int
}

// Cases returns a page of the cases matching f, in label order, and how
// many match in all. Every index it reads is in label order, so only the
// page is materialised.
func (m *Model) Cases(f Filter) ([]CaseSummary, int) {
	m.Settle()
	return m.PeekCases(f)
}

// PeekCases is Cases without waiting for the queued commits (see PeekCase).
func (m *Model) PeekCases(f Filter) ([]CaseSummary, int) {
	txn := m.db.Txn(false)
	var (
		it  memdb.ResultIterator
		err error
	)
	switch {
	case f.Coach != "" && f.Region != "":
		it, err = txn.Get(tCases, iCoach+"_prefix", f.Coach, f.Region)
	case f.Coach != "":
		it, err = m.coachAcrossRegions(txn, f.Coach)
	case f.Signal != "" && f.Region != "":
		it, err = txn.Get(tCases, iSignal+"_prefix", f.Region, f.Signal)
	case f.Status != "" && f.Region != "":
		it, err = txn.Get(tCases, iRegionStatus+"_prefix", f.Region, f.Status)
	case f.Region != "":
		it, err = txn.Get(tCases, iRegion+"_prefix", f.Region)
	default:
		it, err = m.allRegions(txn)
	}
	if err != nil {
		return nil, 0
	}
	q := strings.ToLower(strings.TrimSpace(f.Q))
	total := 0
	var out []CaseSummary
	// A page of a whole region needs no walk past it: the region counts
	// its cases.
	regionOnly := f.Region != "" && f.Coach == "" && f.Signal == "" && f.Status == "" && q == "" && f.Limit > 0
	for o := it.Next(); o != nil; o = it.Next() {
		if regionOnly && len(out) == f.Limit {
			if info, err := txn.First(tRegions, iID, f.Region); err == nil && info != nil {
				return out, info.(*RegionInfo).Cases
			}
			regionOnly = false
		}
		c := o.(*Case)
		if (f.Region != "" && c.region != f.Region) || (f.Status != "" && c.Status != f.Status) ||
			(q != "" && !strings.Contains(c.search, q)) || (f.Signal != "" && !hasSignal(c, f.Signal)) ||
			(f.Coach != "" && !hasCoach(c, f.Coach)) {
			continue
		}
		if total >= f.Offset && (f.Limit <= 0 || len(out) < f.Limit) {
			out = append(out, c.Summary())
		}
		total++
	}
	return out, total
}

// sliceIterator walks cases gathered from several index ranges.
type sliceIterator struct{ cases []*Case }

func (s *sliceIterator) WatchCh() <-chan struct{} { return nil }

func (s *sliceIterator) Next() any {
	if len(s.cases) == 0 {
		return nil
	}
	c := s.cases[0]
	s.cases = s.cases[1:]
	return c
}

// coachAcrossRegions returns a coach's cases of every region in label order.
func (m *Model) coachAcrossRegions(txn *memdb.Txn, coach string) (memdb.ResultIterator, error) {
	it, err := txn.Get(tCases, iCoach+"_prefix", coach)
	if err != nil {
		return nil, err
	}
	var cs []*Case
	for o := it.Next(); o != nil; o = it.Next() {
		cs = append(cs, o.(*Case))
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].sortKey < cs[j].sortKey })
	return &sliceIterator{cs}, nil
}

// allRegions returns every case in label order.
func (m *Model) allRegions(txn *memdb.Txn) (memdb.ResultIterator, error) {
	it, err := txn.Get(tCases, iID)
	if err != nil {
		return nil, err
	}
	var cs []*Case
	for o := it.Next(); o != nil; o = it.Next() {
		cs = append(cs, o.(*Case))
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].sortKey < cs[j].sortKey })
	return &sliceIterator{cs}, nil
}

func hasSignal(c *Case, id string) bool {
	for _, s := range c.Signals {
		if s.ID == id {
			return true
		}
	}
	return false
}

func hasCoach(c *Case, id string) bool {
	for _, co := range c.Coaches {
		if co == id {
			return true
		}
	}
	return false
}

// Referral returns a referral, or false.
func (m *Model) Referral(id string) (*Referral, bool) {
	m.Settle()
	o, err := m.db.Txn(false).First(tReferrals, iID, id)
	if err != nil || o == nil {
		return nil, false
	}
	return o.(*Referral), true
}

// Referrals returns the region's referrals with status ("" for all; "open"
// includes referrals without a status), oldest received first.
func (m *Model) Referrals(region, status string) []*Referral {
	m.Settle()
	return referrals(m.db.Txn(false), region, status)
}

func referrals(txn *memdb.Txn, region, status string) []*Referral {
	var it memdb.ResultIterator
	var err error
	if status == "" {
		it, err = txn.Get(tReferrals, iRegion, region)
	} else {
		it, err = txn.Get(tReferrals, iRegionStatus, region, status)
	}
	if err != nil {
		return nil
	}
	var out []*Referral
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, o.(*Referral))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.ReceivedOn.Time().Equal(b.ReceivedOn.Time()) {
			return a.ReceivedOn.Time().Before(b.ReceivedOn.Time())
		}
		return a.ID < b.ID
	})
	return out
}

// IntakeInputs returns the intake rules' input for every undecided
// referral of the region as of today, from one snapshot: the referral, its
// family's members (ages as the model computed them) and the year's counts
// — what a dry-run decides again with candidate rules.
func (m *Model) IntakeInputs(region string, today rules.Date) []rules.IntakeInput {
	m.Settle()
	txn := m.db.Txn(false)
	year := yearCounts(txn, region, today.Time().Year())
	refs := referrals(txn, region, "open")
	out := make([]rules.IntakeInput, 0, len(refs))
	for _, ref := range refs {
		var members []Member
		if ref.FamilyID != "" {
			if o, err := txn.First(tCases, iID, ref.FamilyID); err == nil && o != nil && o.(*Case).region == region {
				members = o.(*Case).Members
			}
		}
		out = append(out, intakeInput(ref, members, year, today))
	}
	return out
}

// OpenReferrals returns the region's undecided referrals ranked for the
// intake board: eligible first, then by priority (highest first), then by
// received_on (oldest first). Without active rules they rank by received_on.
func (m *Model) OpenReferrals(region string) []*Referral {
	m.Settle()
	return openReferrals(m.db.Txn(false), region)
}

func openReferrals(txn *memdb.Txn, region string) []*Referral {
	out := referrals(txn, region, "open")
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Eligibility, out[j].Eligibility
		ae, be := a != nil && a.Eligible, b != nil && b.Eligible
		if ae != be {
			return ae
		}
		var ap, bp float64
		if a != nil {
			ap = a.Priority
		}
		if b != nil {
			bp = b.Priority
		}
		return ap > bp
	})
	return out
}

// Consults returns the region's consults at or after from and before to (a
// zero bound is open), oldest first.
func (m *Model) Consults(region string, from, to time.Time) []*Consult {
	m.Settle()
	lo := ""
	if !from.IsZero() {
		lo = from.UTC().Format(atLayout)
	}
	it, err := m.db.Txn(false).LowerBound(tConsults, iRegionAt, region, lo)
	if err != nil {
		return nil
	}
	var out []*Consult
	for o := it.Next(); o != nil; o = it.Next() {
		c := o.(*Consult)
		if c.Region != region || (!to.IsZero() && !c.At.Before(to)) {
			break
		}
		if !from.IsZero() && c.At.Before(from) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// CoachLoad returns, per coach, the region's running families (trajectory
// active or paused) she holds as lead or co-coach: the active_families of
// the capacity rules.
func (m *Model) CoachLoad(region string) map[string]int {
	m.Settle()
	return coachLoad(m.db.Txn(false), region)
}

func coachLoad(txn *memdb.Txn, region string) map[string]int {
	it, err := txn.Get(tLoad, iID+"_prefix", region)
	if err != nil {
		return nil
	}
	load := map[string]int{}
	for o := it.Next(); o != nil; o = it.Next() {
		l := o.(*loadRow)
		load[l.coach] = l.families
	}
	return load
}

// YearCounts counts the region's trajectories started in year (closed ones
// included, deleted ones not): the year.* of the rules.
func (m *Model) YearCounts(region string, year int) rules.YearCountFacts {
	m.Settle()
	return yearCounts(m.db.Txn(false), region, year)
}

func yearCounts(txn *memdb.Txn, region string, year int) rules.YearCountFacts {
	o, err := txn.First(tYears, iID, region, itoa(year))
	if err != nil || o == nil {
		return rules.YearCountFacts{}
	}
	return o.(*yearRow).counts
}

var severityRank = map[string]int{"critical": 0, "alert": 1, "warning": 2, "info": 3}

func rankOf(sev string) int {
	if r, ok := severityRank[sev]; ok {
		return r
	}
	return len(severityRank)
}

// Signals returns the region's fired signals, most severe first, then by
// family and subject. The signals are shared and must not be modified.
func (m *Model) Signals(region string) []*Signal {
	m.Settle()
	it, err := m.db.Txn(false).Get(tSignals, iRegion+"_prefix", region)
	if err != nil {
		return nil
	}
	var out []*Signal
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, &o.(*signalRow).Signal)
	}
	return out
}

// Info says how far the model is with a region, or false when it has never
// seen it.
func (m *Model) Info(region string) (RegionInfo, bool) {
	m.Settle()
	return info(m.db.Txn(false), region)
}

func info(txn *memdb.Txn, region string) (RegionInfo, bool) {
	o, err := txn.First(tRegions, iID, region)
	if err != nil || o == nil {
		return RegionInfo{}, false
	}
	return *o.(*RegionInfo), true
}

// Board is what the weekly intake meeting needs of a region, from one
// snapshot.
type Board struct {
	// Referrals are the undecided referrals, ranked as OpenReferrals.
	Referrals []*Referral `json:"referrals"`
	// Load is the running families per coach (CoachLoad).
	Load map[string]int `json:"load"`
	// Year counts the trajectories started in the board's year.
	Year rules.YearCountFacts `json:"year"`
	// RulesVersion is the intake rules' region version the decisions were
	// made with ("" without active rules).
	RulesVersion string `json:"rules_version"`
}

// Board returns the region's intake board for year, from one snapshot.
func (m *Model) Board(region string, year int) Board {
	m.Settle()
	txn := m.db.Txn(false)
	in, _ := info(txn, region)
	return Board{Referrals: openReferrals(txn, region), Load: coachLoad(txn, region),
		Year: yearCounts(txn, region, year), RulesVersion: in.RulesVersion}
}

// All returns every case of the region in label order, from one snapshot:
// for reports. The cases are shared and must not be modified.
func (m *Model) All(region string) []*Case {
	m.Settle()
	it, err := m.db.Txn(false).Get(tCases, iRegion+"_prefix", region)
	if err != nil {
		return nil
	}
	var out []*Case
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, o.(*Case))
	}
	return out
}

// Subscribe returns a channel of events, one per changed family, referral
// without family or consult, after each applied commit; it is closed when
// ctx is done. A subscriber that falls more than 256 events behind loses
// events and then receives one EventResync (see Dropped); Apply never waits
// for it.
func (m *Model) Subscribe(ctx context.Context) <-chan Event { return m.events.subscribe(ctx) }

// Dropped counts the events lost by slow subscribers so far.
func (m *Model) Dropped() int64 { return m.events.dropped.Load() }

func itoa(n int) string { return strconv.Itoa(n) }
