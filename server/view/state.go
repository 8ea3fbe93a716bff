package view

import (
	"slices"
	"strings"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// cell is a field's winning write, packed: the value, the parsed stamp
// (its node interned per region) and the field as an index into
// fieldNames. A region holds a million of them.
type cell struct {
	v       string // the JSON value
	wall    int64
	counter uint16
	field   uint8
	node    uint32
}

// fieldNames lists every field name of the case file; fieldID inverts it.
var fieldNames, fieldID = func() ([]string, map[string]uint8) {
	var names []string
	ids := map[string]uint8{}
	for _, c := range schema.CaseFile.Collections {
		for _, f := range c.Fields {
			if _, ok := ids[f.Name]; !ok {
				if len(names) == 256 {
					panic("view: more than 256 field names in the case file")
				}
				ids[f.Name] = uint8(len(names))
				names = append(names, f.Name)
			}
		}
	}
	return names, ids
}()

// wins reports whether write c beats cur, as crdt.Wins does: the higher
// stamp (wall, counter, node), then the higher value bytes.
func (s *regionState) wins(c, cur *cell) bool {
	switch {
	case c.wall != cur.wall:
		return c.wall > cur.wall
	case c.counter != cur.counter:
		return c.counter > cur.counter
	case c.node != cur.node:
		return s.nodeNames[c.node] > s.nodeNames[cur.node]
	}
	return c.v > cur.v
}

// parseStamp reads the wire form "<13-digit ms>-<4 hex>-<node>". The store
// validated every stamp; a malformed one orders as the zero stamp.
func (s *regionState) parseStamp(hlc string) (wall int64, counter uint16, node uint32) {
	if len(hlc) < 20 || hlc[13] != '-' || hlc[18] != '-' {
		return 0, 0, s.internNode(hlc)
	}
	for i := 0; i < 13; i++ {
		wall = wall*10 + int64(hlc[i]-'0')
	}
	for i := 14; i < 18; i++ {
		c := hlc[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		}
		counter = counter<<4 | uint16(d)
	}
	return wall, counter, s.internNode(hlc[19:])
}

func (s *regionState) internNode(n string) uint32 {
	if i, ok := s.nodes[n]; ok {
		return i
	}
	i := uint32(len(s.nodeNames))
	n = strings.Clone(n)
	s.nodes[n] = i
	s.nodeNames = append(s.nodeNames, n)
	return i
}

// rawRow is a row's current state: per field, the winning write. A row has
// at most a score of fields, so a slice beats a map.
type rawRow struct {
	cells []cell
	// parent is the parent id the row is filed under in regionState.kids.
	parent string
}

func (r *rawRow) get(f string) string {
	id, ok := fieldID[f]
	if !ok {
		return ""
	}
	for i := range r.cells {
		if r.cells[i].field == id {
			return r.cells[i].v
		}
	}
	return ""
}

func (r *rawRow) deleted() bool { return bv(r.get(crdt.Deleted)) }

// parentField is the field naming each collection's parent row.
var parentField = map[string]string{
	"persons":         "family_id",
	"referrals":       "family_id",
	"trajectories":    "family_id",
	"network_members": "family_id",
	"plan_goals":      "trajectory_id",
	"contacts":        "trajectory_id",
}

// names interns the schema's collection names.
var names = func() map[string]string {
	m := map[string]string{}
	for _, c := range schema.CaseFile.Collections {
		m[c.Name] = c.Name
	}
	return m
}()

func intern(s string) string {
	if n, ok := names[s]; ok {
		return n
	}
	return s
}

type rowKey struct{ coll, id string }

// trajectoryCount is what a trajectory adds to the year counts.
type trajectoryCount struct {
	year     int
	mandated bool
}

// regionState is a region's current state as the LWW winners of every field,
// with the parent index the model needs to find a family's rows. It is
// guarded by Model.mu.
type regionState struct {
	name string
	rows map[string]map[string]*rawRow // collection → id → row
	// kids files rows under their parent: the sorted ids of a parent's
	// rows of a collection. (One flat map of small slices: a map of maps
	// of sets cost about three times the memory with a million fields.)
	kids map[kidsKey][]string
	// counted is each trajectory's share of the year counts; years the sums.
	counted map[string]trajectoryCount
	years   map[int]rules.YearCountFacts
	// conflicts counts recorded conflicts per row; quarantined the open
	// quarantined writes per family (both from the store, see SyncCounts).
	conflicts   map[rowKey]int
	quarantined map[string]int
	nodes       map[string]uint32 // interned stamp nodes
	nodeNames   []string
	load        map[string]int // coach → running families (as the load table)
	seq         int64
	cases       int // cases in the model
	built       bool
	version     string     // the rules version the region was last computed with
	today       rules.Date // the day it was last computed for
}

func newRegionState(name string) *regionState {
	return &regionState{
		name: name, rows: map[string]map[string]*rawRow{}, kids: map[kidsKey][]string{},
		counted: map[string]trajectoryCount{}, years: map[int]rules.YearCountFacts{},
		conflicts: map[rowKey]int{}, quarantined: map[string]int{}, nodes: map[string]uint32{},
		load: map[string]int{},
	}
}

func (s *regionState) row(coll, id string) *rawRow {
	if rs := s.rows[coll]; rs != nil {
		return rs[id]
	}
	return nil
}

// live returns the row unless it is missing or deleted.
func (s *regionState) live(coll, id string) *rawRow {
	r := s.row(coll, id)
	if r == nil || r.deleted() {
		return nil
	}
	return r
}

// merge applies one write; it reports whether it became the field's
// value. A field the case file does not have is ignored.
func (s *regionState) merge(c protocol.Change) bool {
	id, ok := fieldID[c.Field]
	if !ok {
		return false
	}
	in := cell{v: string(c.Value), field: id}
	in.wall, in.counter, in.node = s.parseStamp(c.HLC)
	return s.mergeCell(c.Collection, c.ID, in)
}

// mergeRow applies writes of one row (same collection and id), as merge
// does for each: a new row gets room for exactly its fields, and the row is
// looked up once. The store's scan delivers a row's fields together.
func (s *regionState) mergeRow(cs []protocol.Change) {
	if len(cs) == 0 {
		return
	}
	coll := intern(cs[0].Collection)
	rs := s.rows[coll]
	if rs == nil {
		rs = map[string]*rawRow{}
		s.rows[coll] = rs
	}
	r := rs[cs[0].ID]
	if r == nil {
		r = &rawRow{cells: make([]cell, 0, len(cs))}
		rs[strings.Clone(cs[0].ID)] = r
	}
	for _, c := range cs {
		id, ok := fieldID[c.Field]
		if !ok {
			continue
		}
		in := cell{v: string(c.Value), field: id}
		in.wall, in.counter, in.node = s.parseStamp(c.HLC)
		s.mergeInto(r, in)
	}
}

func (s *regionState) mergeCell(collection, id string, in cell) bool {
	coll := intern(collection)
	rs := s.rows[coll]
	if rs == nil {
		rs = map[string]*rawRow{}
		s.rows[coll] = rs
	}
	r := rs[id]
	if r == nil {
		r = &rawRow{}
		// The store's scan hands out ids that share memory with a few
		// thousand other fields: keep a copy of the id alone.
		rs[strings.Clone(id)] = r
	}
	return s.mergeInto(r, in)
}

// mergeInto merges a write into row r; it reports whether it became the
// field's value.
func (s *regionState) mergeInto(r *rawRow, in cell) bool {
	for i := range r.cells {
		if cur := &r.cells[i]; cur.field == in.field {
			if !s.wins(&in, cur) {
				return false
			}
			*cur = in
			return true
		}
	}
	r.cells = append(r.cells, in)
	return true
}

// refile moves a row under its current parent; it returns the former and
// the current parent id.
func (s *regionState) refile(coll, id string) (old, cur string) {
	pf, ok := parentField[coll]
	if !ok {
		return "", ""
	}
	r := s.row(coll, id)
	if r == nil {
		return "", ""
	}
	old, cur = r.parent, str(r, pf)
	if old == cur {
		return old, cur
	}
	if old != "" {
		k := kidsKey{old, coll}
		if ids := s.kids[k]; ids != nil {
			if i, ok := slices.BinarySearch(ids, id); ok {
				if ids = slices.Delete(ids, i, i+1); len(ids) == 0 {
					delete(s.kids, k)
				} else {
					s.kids[k] = ids
				}
			}
		}
	}
	if cur != "" {
		k := kidsKey{cur, coll}
		ids := s.kids[k]
		if i, ok := slices.BinarySearch(ids, id); !ok {
			s.kids[k] = slices.Insert(ids, i, id)
		}
	}
	r.parent = cur
	return old, cur
}

// kidsKey names a parent's rows of one collection in regionState.kids.
type kidsKey struct{ parent, coll string }

// children returns the ids of parent's rows in coll (deleted ones
// included), sorted. The slice is the model's: callers must not change it.
func (s *regionState) children(parent, coll string) []string {
	return s.kids[kidsKey{parent, coll}]
}

// familyOf returns the family a row belongs to, or "".
func (s *regionState) familyOf(coll, id string) string {
	switch coll {
	case "families":
		return id
	case "plan_goals", "contacts":
		r := s.row(coll, id)
		if r == nil || r.parent == "" {
			return ""
		}
		if t := s.row("trajectories", r.parent); t != nil {
			return t.parent
		}
		return ""
	}
	if r := s.row(coll, id); r != nil {
		return r.parent
	}
	return ""
}

// recount updates a trajectory's share of the year counts; it reports
// whether the counts changed.
func (s *regionState) recount(id string) bool {
	old, had := s.counted[id]
	var cur trajectoryCount
	has := false
	if r := s.live("trajectories", id); r != nil {
		if d := date(r, "started_on"); !d.IsZero() {
			cur, has = trajectoryCount{year: d.Time().Year(), mandated: b(r, "mandated")}, true
		}
	}
	if had == has && old == cur {
		return false
	}
	if had {
		s.add(old, -1)
		delete(s.counted, id)
	}
	if has {
		s.add(cur, 1)
		s.counted[id] = cur
	}
	return true
}

func (s *regionState) add(t trajectoryCount, n int) {
	y := s.years[t.year]
	if t.mandated {
		y.StartedMandated += n
	} else {
		y.StartedNonMandated += n
	}
	s.years[t.year] = y
}
