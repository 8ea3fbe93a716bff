package view

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// RuleSource gives a region's active rules; *rules.Registry is one.
type RuleSource interface {
	Region(name string) (*rules.Region, bool)
}

// Model is the in-memory read model of consolidated cases of every region:
// typed cases, referrals with their live eligibility, consults and fired
// signals in a go-memdb database, kept current from the store's commits.
// Every update is one memdb write transaction, so a reader sees a commit
// whole or not at all. Its methods are safe for concurrent use.
type Model struct {
	stores *store.Stores
	rules  RuleSource
	now    func() time.Time
	db     *memdb.MemDB

	mu      sync.Mutex // serialises writers; guards regions
	regions map[string]*regionState
	events  fanout
	log     *slog.Logger
	q       applyQueue // commits waiting for Apply (queue.go)
}

// RegionInfo says how far the model is with a region.
type RegionInfo struct {
	Name string `json:"name"`
	// Seq is the change-log position of the last commit applied (or the
	// snapshot Build loaded).
	Seq int64 `json:"seq"`
	// Built is set once Build loaded the region from the store.
	Built bool `json:"built"`
	// RulesVersion is the region version of the rules the model last
	// computed eligibility and signals with ("" without active rules).
	RulesVersion string `json:"rules_version"`
	// Today is the day ages, eligibility and signals were last computed for.
	Today rules.Date `json:"today"`
	// Cases counts the region's cases.
	Cases int `json:"cases"`
}

// loadRow is a coach's number of running families in a region.
type loadRow struct {
	region, coach string
	families      int
}

// adjustLoad moves the coach load from old to c (either may be nil).
func adjustLoad(txn *memdb.Txn, st *regionState, old, c *Case) error {
	delta := map[string]int{}
	for _, x := range []struct {
		c *Case
		n int
	}{{old, -1}, {c, 1}} {
		if x.c == nil || (x.c.Status != "active" && x.c.Status != "paused") {
			continue
		}
		for _, co := range x.c.Coaches {
			delta[co] += x.n
		}
	}
	for co, d := range delta {
		if d == 0 {
			continue
		}
		st.load[co] += d
		if st.load[co] == 0 {
			delete(st.load, co)
			if _, err := txn.DeleteAll(tLoad, iID, st.name, co); err != nil {
				return err
			}
			continue
		}
		if err := txn.Insert(tLoad, &loadRow{region: st.name, coach: co, families: st.load[co]}); err != nil {
			return err
		}
	}
	return nil
}

type yearRow struct {
	region string
	year   int
	counts rules.YearCountFacts
}

const (
	tRegions = "regions"
	tYears   = "years"
	tLoad    = "load"
	iSubject = "subject"
)

// New returns an empty model over stores; call Build before serving, and
// wire Apply as the stores' Options.OnCommit. rs may be nil (no eligibility,
// no signals); now is the clock (its location decides the calendar day).
func New(stores *store.Stores, rs RuleSource, now func() time.Time) *Model {
	if now == nil {
		now = time.Now
	}
	s := dbSchema()
	s.Tables[tSignals].Indexes[iSubject] = &memdb.IndexSchema{Name: iSubject, Indexer: keyIndex{func(o any) []string {
		r := o.(*signalRow)
		return []string{r.Region, r.SubjectID}
	}}}
	s.Tables[tRegions] = &memdb.TableSchema{Name: tRegions, Indexes: map[string]*memdb.IndexSchema{
		iID: {Name: iID, Unique: true, Indexer: keyIndex{func(o any) []string { return []string{o.(*RegionInfo).Name} }}},
	}}
	s.Tables[tYears] = &memdb.TableSchema{Name: tYears, Indexes: map[string]*memdb.IndexSchema{
		iID: {Name: iID, Unique: true, Indexer: keyIndex{func(o any) []string {
			y := o.(*yearRow)
			return []string{y.region, strconv.Itoa(y.year)}
		}}},
	}}
	s.Tables[tLoad] = &memdb.TableSchema{Name: tLoad, Indexes: map[string]*memdb.IndexSchema{
		iID: {Name: iID, Unique: true, Indexer: keyIndex{func(o any) []string {
			l := o.(*loadRow)
			return []string{l.region, l.coach}
		}}},
	}}
	db, err := memdb.NewMemDB(s)
	if err != nil {
		panic(fmt.Sprintf("view: memdb schema: %v", err)) // static schema
	}
	return &Model{stores: stores, rules: rs, now: now, db: db, regions: map[string]*regionState{},
		log: slog.New(slog.DiscardHandler), q: applyQueue{wake: make(chan struct{}, 1), devices: map[string]int{}}}
}

// SetLogger sets where the model logs what it cannot do (default: nowhere).
// Call it before wiring Apply.
func (m *Model) SetLogger(l *slog.Logger) { m.log = l }

// failed handles a memdb write that failed, which only a bug in an index
// can cause: readers keep the last good snapshot and the region is rebuilt
// from the store in the background. The caller holds m.mu.
func (m *Model) failed(region string, err error) {
	m.log.Error("view: update failed; rebuilding the region", "region", region, "err", err)
	if m.stores == nil {
		return
	}
	go func() {
		if err := m.BuildRegion(context.Background(), region); err != nil {
			m.log.Error("view: rebuild failed", "region", region, "err", err)
		}
	}()
}

// state returns a region's state, creating it. The caller holds m.mu.
func (m *Model) state(region string) *regionState {
	st := m.regions[region]
	if st == nil {
		st = newRegionState(region)
		m.regions[region] = st
	}
	return st
}

func (m *Model) env(region string, st *regionState) *env {
	now := m.now()
	e := &env{now: now, today: rules.DateOf(now)}
	if m.rules != nil {
		if rs, ok := m.rules.Region(region); ok {
			e.rules = rs
		}
	}
	e.year = st.years[e.today.Time().Year()]
	return e
}

func (e *env) version() string {
	if e.rules == nil {
		return ""
	}
	return e.rules.Version
}

// Build loads every region of the stores and computes all its cases,
// replacing what the model held for it. Commits applied while it loads are
// kept: the loaded snapshot and the model's state merge as LWW does.
func (m *Model) Build(ctx context.Context) error {
	if m.stores == nil {
		return nil
	}
	for _, name := range m.stores.Regions() {
		if err := m.BuildRegion(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// BuildRegion loads one region from the store (see Build).
func (m *Model) BuildRegion(ctx context.Context, name string) error {
	r, ok := m.stores.Region(name)
	if !ok {
		return fmt.Errorf("build view of %s: no such region", name)
	}
	fresh := newRegionState(name)
	seq, err := scanInto(ctx, r, fresh)
	if err != nil {
		return fmt.Errorf("build view of %s: %w", name, err)
	}
	conflicts, quarantine, err := loadCounts(ctx, r)
	if err != nil {
		return fmt.Errorf("build view of %s: %w", name, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.regions[name]; old != nil {
		for coll, rows := range old.rows {
			for id, row := range rows {
				for _, c := range row.cells {
					c.node = fresh.internNode(old.nodeNames[c.node])
					fresh.mergeCell(coll, id, c)
				}
			}
		}
		fresh.seq = max(seq, old.seq)
	} else {
		fresh.seq = seq
	}
	for coll, rows := range fresh.rows {
		for id := range rows {
			fresh.refile(coll, id)
			if coll == "trajectories" {
				fresh.recount(id)
			}
		}
	}
	fresh.setCounts(conflicts, quarantine)
	fresh.built = true
	m.regions[name] = fresh

	txn := m.db.Txn(true)
	defer txn.Abort()
	for _, t := range []string{tCases, tReferrals, tSignals} {
		if _, err := txn.DeleteAll(t, iRegion+"_prefix", name); err != nil {
			return fmt.Errorf("build view of %s: %w", name, err)
		}
	}
	if _, err := txn.DeleteAll(tLoad, iID+"_prefix", name); err != nil {
		return fmt.Errorf("build view of %s: %w", name, err)
	}
	if _, err := txn.DeleteAll(tConsults, iRegionAt+"_prefix", name); err != nil {
		return fmt.Errorf("build view of %s: %w", name, err)
	}
	e := m.env(name, fresh)
	w := fresh.everything()
	if _, err := m.write(txn, fresh, e, w); err != nil {
		return fmt.Errorf("build view of %s: %w", name, err)
	}
	fresh.version, fresh.today = e.version(), e.today
	if err := m.writeInfo(txn, fresh); err != nil {
		return fmt.Errorf("build view of %s: %w", name, err)
	}
	txn.Commit()
	m.events.publish([]Event{{Region: name, Kind: EventResync}})
	return nil
}

// scanBatch is how many scanned fields travel to the merging goroutine at
// a time.
const scanBatch = 4096

// scanInto merges every winning field of the region into st. The store's
// scan (SQLite and cgo) and the merge run on two goroutines, so a start-up
// build uses both cores (docs/benchmarks.md has the figures).
func scanInto(ctx context.Context, r *store.Region, st *regionState) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []protocol.Change, 4)
	var (
		seq     int64
		scanErr error
	)
	go func() {
		defer close(batches)
		buf := make([]protocol.Change, 0, scanBatch)
		seq, scanErr = r.ScanSeq(ctx, func(c protocol.Change) error {
			buf = append(buf, c)
			if len(buf) < scanBatch {
				return nil
			}
			select {
			case batches <- buf:
			case <-ctx.Done():
				return ctx.Err()
			}
			buf = make([]protocol.Change, 0, scanBatch)
			return nil
		})
		if scanErr == nil && len(buf) > 0 {
			batches <- buf
		}
	}()
	for b := range batches {
		for i := 0; i < len(b); {
			j := i + 1
			for j < len(b) && b[j].ID == b[i].ID && b[j].Collection == b[i].Collection {
				j++
			}
			st.mergeRow(b[i:j])
			i = j
		}
	}
	return seq, scanErr
}

// loadCounts reads the region's conflicts and open quarantined writes.
func loadCounts(ctx context.Context, r *store.Region) (map[rowKey]int, map[string]int, error) {
	cs, err := r.Conflicts(ctx)
	if err != nil {
		return nil, nil, err
	}
	qs, err := r.Quarantine(ctx, store.QuarantineOpen)
	if err != nil {
		return nil, nil, err
	}
	conflicts := map[rowKey]int{}
	for _, c := range cs {
		conflicts[rowKey{intern(c.Collection), c.RowID}]++
	}
	quarantined := map[string]int{}
	for _, q := range qs {
		if f, ok := strings.CutPrefix(q.Scope, schema.FamilyScopePrefix); ok {
			quarantined[f]++
		}
	}
	return conflicts, quarantined, nil
}

// setCounts replaces the conflict and quarantine counts; it returns the
// families whose counts changed.
func (s *regionState) setCounts(conflicts map[rowKey]int, quarantined map[string]int) map[string]bool {
	changed := map[string]bool{}
	for k, n := range conflicts {
		if s.conflicts[k] != n {
			changed[s.familyOf(k.coll, k.id)] = true
		}
	}
	for k, n := range s.conflicts {
		if conflicts[k] != n {
			changed[s.familyOf(k.coll, k.id)] = true
		}
	}
	for f, n := range quarantined {
		if s.quarantined[f] != n {
			changed[f] = true
		}
	}
	for f, n := range s.quarantined {
		if quarantined[f] != n {
			changed[f] = true
		}
	}
	delete(changed, "")
	s.conflicts, s.quarantined = conflicts, quarantined
	return changed
}

// work is what a write recomputes.
type work struct {
	families  map[string]bool
	referrals map[string]bool
	consults  map[string]bool
}

func newWork() *work {
	return &work{families: map[string]bool{}, referrals: map[string]bool{}, consults: map[string]bool{}}
}

func (w *work) family(id string) {
	if id != "" {
		w.families[id] = true
	}
}

// everything is every row the region's model is made of.
func (s *regionState) everything() *work {
	w := newWork()
	for id := range s.rows["families"] {
		w.families[id] = true
	}
	for id := range s.rows["referrals"] {
		w.referrals[id] = true
	}
	for id := range s.rows["consults"] {
		w.consults[id] = true
	}
	return w
}

// Apply merges a committed batch into the model and recomputes the cases
// it touches, in one memdb transaction, then tells subscribers. It is the
// stores' Options.OnCommit. Changes are merged by LWW, so a commit seen
// twice or out of order (or one already in Build's snapshot) is harmless.
func (m *Model) Apply(c store.Commit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(c.Region)
	st.seq = max(st.seq, c.MaxSeq)
	changed := map[rowKey]bool{}
	for _, ch := range c.Changes {
		if st.merge(ch) {
			changed[rowKey{intern(ch.Collection), ch.ID}] = true
		}
	}
	e := m.env(c.Region, st)
	w := newWork()
	yearBefore := st.years[e.today.Time().Year()]
	// File every row under its parent first: a batch may bring a
	// trajectory and its contacts together.
	moved := map[rowKey][2]string{}
	for k := range changed {
		old, cur := st.refile(k.coll, k.id)
		moved[k] = [2]string{old, cur}
	}
	for k := range changed {
		oc := moved[k]
		switch k.coll {
		case "families":
			w.family(k.id)
		case "persons", "network_members":
			w.family(oc[0])
			w.family(oc[1])
		case "referrals":
			w.family(oc[0])
			w.family(oc[1])
			w.referrals[k.id] = true
		case "trajectories":
			w.family(oc[0])
			w.family(oc[1])
			st.recount(k.id)
		case "plan_goals", "contacts":
			for _, t := range oc {
				if tr := st.row("trajectories", t); tr != nil {
					w.family(tr.parent)
				}
			}
		case "consults":
			w.consults[k.id] = true
		}
	}
	txn := m.db.Txn(true)
	defer txn.Abort()
	e.year = st.years[e.today.Time().Year()]
	evs, err := m.write(txn, st, e, w)
	if err == nil && (e.version() != st.version || e.today != st.today) {
		// The rules or the day changed under us: evaluate the whole region
		// anew, so no two cases were decided by different rule versions.
		var more []Event
		more, err = m.reevaluate(txn, st, e, nil)
		evs = append(evs, more...)
		st.version, st.today = e.version(), e.today
	} else if err == nil && e.year != yearBefore {
		// Eligibility may count the year's starts.
		var more []Event
		more, err = m.reevaluate(txn, st, e, m.openReferrals(txn, c.Region))
		evs = append(evs, more...)
	}
	if err == nil {
		err = m.writeInfo(txn, st)
	}
	if err != nil {
		m.failed(c.Region, err)
		return
	}
	txn.Commit()
	m.events.publish(evs)
}

// openReferrals returns the families and the referrals without a family
// case that have an open referral: their eligibility depends on the year
// counts.
func (m *Model) openReferrals(txn *memdb.Txn, region string) *work {
	w := newWork()
	it, err := txn.Get(tReferrals, iRegionStatus, region, "open")
	if err != nil {
		return w
	}
	for o := it.Next(); o != nil; o = it.Next() {
		r := o.(*Referral)
		if r.FamilyID != "" {
			w.families[r.FamilyID] = true
		}
		w.referrals[r.ID] = true
	}
	return w
}

// reevaluate evaluates cases and referrals anew for e's day and rules (w
// nil: the whole region), without rebuilding them from the rows, and
// writes and announces those that changed. The caller holds m.mu.
func (m *Model) reevaluate(txn *memdb.Txn, st *regionState, e *env, w *work) ([]Event, error) {
	var cases []*Case
	var refs []*Referral
	if w == nil {
		it, err := txn.Get(tCases, iRegion+"_prefix", st.name)
		if err != nil {
			return nil, err
		}
		for o := it.Next(); o != nil; o = it.Next() {
			cases = append(cases, o.(*Case))
		}
		it, err = txn.Get(tReferrals, iRegion, st.name)
		if err != nil {
			return nil, err
		}
		for o := it.Next(); o != nil; o = it.Next() {
			refs = append(refs, o.(*Referral))
		}
	} else {
		for id := range w.families {
			if o, err := txn.First(tCases, iID, id); err != nil {
				return nil, err
			} else if o != nil {
				cases = append(cases, o.(*Case))
			}
		}
		for id := range w.referrals {
			if o, err := txn.First(tReferrals, iID, id); err != nil {
				return nil, err
			} else if o != nil {
				refs = append(refs, o.(*Referral))
			}
		}
	}
	var evs []Event
	for _, old := range cases {
		c := reevaluate(old, e)
		if c == nil {
			continue
		}
		if err := m.insertCase(txn, c); err != nil {
			return nil, err
		}
		evs = append(evs, Event{Region: st.name, FamilyID: c.Family.ID, Kind: EventCase})
	}
	for _, old := range refs {
		if old.FamilyID != "" && st.live("families", old.FamilyID) != nil {
			continue // evaluated with its case
		}
		ref := *old
		evalReferral(&ref, "", nil, e)
		if referralPrint(&ref) == referralPrint(old) {
			continue
		}
		if err := txn.Insert(tReferrals, &ref); err != nil {
			return nil, err
		}
		if err := deleteSignals(txn, st.name, ref.ID, nil); err != nil {
			return nil, err
		}
		if err := insertSignals(txn, ref.Signals); err != nil {
			return nil, err
		}
		evs = append(evs, Event{Region: st.name, Kind: EventReferral, ID: ref.ID})
	}
	return evs, nil
}

// insertCase writes a case, its referrals and its signals.
func (m *Model) insertCase(txn *memdb.Txn, c *Case) error {
	if _, err := txn.DeleteAll(tSignals, iFamily, c.Family.ID); err != nil {
		return err
	}
	if err := txn.Insert(tCases, c); err != nil {
		return err
	}
	for _, r := range c.Referrals {
		if err := txn.Insert(tReferrals, r); err != nil {
			return err
		}
	}
	return insertSignals(txn, c.Signals)
}

// RulesChanged recomputes the eligibility and signals of every case of the
// region with its active rules. Call it when the region's active rule
// version changes; Apply and Refresh also notice a new version themselves.
// Only cases whose eligibility or signals changed are announced.
func (m *Model) RulesChanged(region string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recomputeAll(region)
}

func (m *Model) recomputeAll(region string) {
	st := m.regions[region]
	if st == nil {
		return
	}
	e := m.env(region, st)
	txn := m.db.Txn(true)
	defer txn.Abort()
	evs, err := m.reevaluate(txn, st, e, nil)
	if err == nil {
		st.version, st.today = e.version(), e.today
		err = m.writeInfo(txn, st)
	}
	if err != nil {
		m.failed(region, err)
		return
	}
	txn.Commit()
	m.events.publish(evs)
}

// Refresh re-reads the conflict and quarantine counts of every region and
// recomputes every case for today: ages, days since the last contact,
// waiting days, hence eligibility and signals. Run it daily (RunDaily) and
// after a quarantine decision (or call SyncCounts for one region).
func (m *Model) Refresh(ctx context.Context) error {
	m.mu.Lock()
	names := make([]string, 0, len(m.regions))
	for n := range m.regions {
		names = append(names, n)
	}
	m.mu.Unlock()
	for _, n := range names {
		if err := m.SyncCounts(ctx, n); err != nil {
			return err
		}
		m.mu.Lock()
		m.recomputeAll(n)
		m.mu.Unlock()
	}
	return nil
}

// SyncCounts re-reads a region's conflicts and open quarantined writes from
// the store and updates the cases whose counts changed. The store reports
// neither in its commits (a push can quarantine or lose without applying
// anything), so call it after a push that quarantined or conflicted and
// after a quarantine decision.
func (m *Model) SyncCounts(ctx context.Context, region string) error {
	if m.stores == nil {
		return nil
	}
	r, ok := m.stores.Region(region)
	if !ok {
		return fmt.Errorf("sync counts of %s: no such region", region)
	}
	conflicts, quarantined, err := loadCounts(ctx, r)
	if err != nil {
		return fmt.Errorf("sync counts of %s: %w", region, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(region)
	w := newWork()
	for f := range st.setCounts(conflicts, quarantined) {
		w.family(f)
	}
	if len(w.families) == 0 {
		return nil
	}
	e := m.env(region, st)
	txn := m.db.Txn(true)
	defer txn.Abort()
	evs, err := m.write(txn, st, e, w)
	if err == nil {
		err = m.writeInfo(txn, st)
	}
	if err != nil {
		return fmt.Errorf("sync counts of %s: %w", region, err)
	}
	txn.Commit()
	m.events.publish(evs)
	return nil
}

// RunDaily calls Refresh whenever the calendar day of the model's clock
// changes (checked every minute) until ctx is done. Errors are returned to
// onErr (which may be nil) and do not stop it.
func (m *Model) RunDaily(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	last := rules.DateOf(m.now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if today := rules.DateOf(m.now()); today != last {
			if err := m.Refresh(ctx); err != nil && onErr != nil {
				onErr(err)
				continue
			}
			last = today
		}
	}
}

// write rebuilds w's cases, referrals and consults from the rows in txn and
// returns the events to publish. The caller holds m.mu.
func (m *Model) write(txn *memdb.Txn, st *regionState, e *env, w *work) ([]Event, error) {
	var evs []Event
	var built map[string]*Case
	if len(w.families) >= parallelBuildMin {
		built = buildCases(st, e, w.families)
	}
	for fam := range w.families {
		old, err := txn.First(tCases, iID, fam)
		if err != nil {
			return nil, err
		}
		var oldCase *Case
		if old != nil {
			oldCase = old.(*Case)
			// Its referrals are settled below: still in this family, moved
			// or gone.
			for _, r := range oldCase.Referrals {
				w.referrals[r.ID] = true
			}
		}
		c, ok := built[fam]
		if !ok {
			c = buildCase(st, fam, e)
		}
		if c == nil {
			if _, err := txn.DeleteAll(tSignals, iFamily, fam); err != nil {
				return nil, err
			}
			if oldCase != nil {
				if err := txn.Delete(tCases, oldCase); err != nil {
					return nil, err
				}
				st.cases--
				if err := adjustLoad(txn, st, oldCase, nil); err != nil {
					return nil, err
				}
				evs = append(evs, Event{Region: st.name, FamilyID: fam, Kind: EventCase})
			}
			for _, id := range st.children(fam, "referrals") {
				w.referrals[id] = true
			}
			continue
		}
		if err := m.insertCase(txn, c); err != nil {
			return nil, err
		}
		if err := adjustLoad(txn, st, oldCase, c); err != nil {
			return nil, err
		}
		if oldCase == nil {
			st.cases++
		}
		// A referral that waited for its family row leaves signals of its
		// own behind.
		for _, r := range c.Referrals {
			w.referrals[r.ID] = true
		}
		evs = append(evs, Event{Region: st.name, FamilyID: fam, Kind: EventCase})
	}
	for id := range w.referrals {
		if err := m.settleReferral(txn, st, e, id, &evs); err != nil {
			return nil, err
		}
	}
	for id := range w.consults {
		old, err := txn.First(tConsults, iID, id)
		if err != nil {
			return nil, err
		}
		r := st.live("consults", id)
		switch {
		case r != nil:
			if err := txn.Insert(tConsults, decodeConsult(id, st.name, r)); err != nil {
				return nil, err
			}
		case old != nil:
			if err := txn.Delete(tConsults, old); err != nil {
				return nil, err
			}
		default:
			continue
		}
		evs = append(evs, Event{Region: st.name, Kind: EventConsult, ID: id})
	}
	for y, counts := range st.years {
		if err := txn.Insert(tYears, &yearRow{region: st.name, year: y, counts: counts}); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// parallelBuildMin is the number of families from which write builds the
// cases on every core before it inserts them (a start-up build, a rebuild):
// below it, the goroutines cost more than they save.
const parallelBuildMin = 512

// buildCases builds the cases of fams on GOMAXPROCS goroutines. buildCase
// only reads st and e (the rules' evaluation pools its scratch space), so
// they can share them; a deleted family maps to nil.
func buildCases(st *regionState, e *env, fams map[string]bool) map[string]*Case {
	ids := make([]string, 0, len(fams))
	for id := range fams {
		ids = append(ids, id)
	}
	out := make([]*Case, len(ids))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(ids); i += workers {
				out[i] = buildCase(st, ids[i], e)
			}
		}()
	}
	wg.Wait()
	m := make(map[string]*Case, len(ids))
	for i, id := range ids {
		m[id] = out[i]
	}
	return m
}

// settleReferral puts a referral where it belongs: in its family's case
// (already inserted with the case), on its own when it has no family case,
// or nowhere when it is gone.
func (m *Model) settleReferral(txn *memdb.Txn, st *regionState, e *env, id string, evs *[]Event) error {
	r := st.live("referrals", id)
	if r != nil {
		if fam := str(r, "family_id"); fam != "" && st.live("families", fam) != nil {
			// Its family's case holds it; drop what it fired on its own.
			return deleteSignals(txn, st.name, id, func(s *signalRow) bool { return s.FamilyID == "" })
		}
	}
	old, err := txn.First(tReferrals, iID, id)
	if err != nil {
		return err
	}
	if err := deleteSignals(txn, st.name, id, nil); err != nil {
		return err
	}
	if r == nil {
		if old == nil {
			return nil
		}
		if err := txn.Delete(tReferrals, old); err != nil {
			return err
		}
		*evs = append(*evs, Event{Region: st.name, Kind: EventReferral, ID: id})
		return nil
	}
	ref := buildReferral(st, id, e)
	if err := txn.Insert(tReferrals, ref); err != nil {
		return err
	}
	if err := insertSignals(txn, ref.Signals); err != nil {
		return err
	}
	*evs = append(*evs, Event{Region: st.name, Kind: EventReferral, ID: id})
	return nil
}

// deleteSignals deletes the signals about subject that match (all with a
// nil match).
func deleteSignals(txn *memdb.Txn, region, subject string, match func(*signalRow) bool) error {
	it, err := txn.Get(tSignals, iSubject, region, subject)
	if err != nil {
		return err
	}
	var del []any
	for o := it.Next(); o != nil; o = it.Next() {
		if match == nil || match(o.(*signalRow)) {
			del = append(del, o)
		}
	}
	for _, o := range del {
		if err := txn.Delete(tSignals, o); err != nil {
			return err
		}
	}
	return nil
}

func insertSignals(txn *memdb.Txn, ss []Signal) error {
	for _, s := range ss {
		if err := txn.Insert(tSignals, &signalRow{key: s.Region + "\x00" + s.SubjectID + "\x00" + s.ID, Signal: s}); err != nil {
			return err
		}
	}
	return nil
}

func (m *Model) writeInfo(txn *memdb.Txn, st *regionState) error {
	return txn.Insert(tRegions, &RegionInfo{Name: st.name, Seq: st.seq, Built: st.built, RulesVersion: st.version,
		Today: st.today, Cases: st.cases})
}

// fingerprint is what a recompute for the rules or the day can change.
func fingerprint(c *Case) string {
	var sb strings.Builder
	for _, m := range c.Members {
		if m.AgeYears != nil {
			sb.WriteString(strconv.Itoa(*m.AgeYears))
		}
		sb.WriteByte(',')
	}
	for _, r := range c.Referrals {
		sb.WriteString(referralPrint(r))
	}
	for _, s := range c.Signals {
		sb.WriteString(s.SubjectID + s.ID + s.Version + ";")
	}
	return sb.String()
}

func referralPrint(r *Referral) string {
	var sb strings.Builder
	if d := r.Eligibility; d != nil {
		fmt.Fprintf(&sb, "%s %t %v %v;", d.RegionVersion, d.Eligible, d.Priority, d.Reasons)
	}
	for _, s := range r.Signals {
		sb.WriteString(s.ID + ";")
	}
	return sb.String()
}
