package crdt

import (
	"bytes"
	"encoding/json"
)

// Deleted is the LWW field that marks a row deleted; rows are never removed.
const Deleted = "_deleted"

// Key names one field of one row.
type Key struct {
	Collection string
	ID         string
	Field      string
}

// Change is one write of one field: the unit of sync and of merge.
type Change struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Field      string          `json:"field"`
	Value      json.RawMessage `json:"value"`
	HLC        Stamp           `json:"hlc"`
}

// Key returns the field the change writes.
func (c Change) Key() Key { return Key{c.Collection, c.ID, c.Field} }

// Wins reports whether write a beats write b for the same field. The higher
// stamp wins; equal stamps (the same write seen twice, or a buggy node that
// reused a stamp) are ordered by value bytes so every replica agrees.
func Wins(a, b Change) bool {
	if c := a.HLC.Compare(b.HLC); c != 0 {
		return c > 0
	}
	return bytes.Compare(a.Value, b.Value) > 0
}

// State is the merged value of a set of writes: per field, the winner.
// The zero value is not usable; use NewState.
type State struct {
	fields map[Key]Change
}

// NewState returns an empty state.
func NewState() *State { return &State{fields: make(map[Key]Change)} }

// Apply merges c into the state and reports whether it became the field's
// value. Applying is commutative, associative and idempotent.
func (s *State) Apply(c Change) bool {
	cur, ok := s.fields[c.Key()]
	if ok && !Wins(c, cur) {
		return false
	}
	s.fields[c.Key()] = c
	return true
}

// Get returns the winning write of a field.
func (s *State) Get(k Key) (Change, bool) {
	c, ok := s.fields[k]
	return c, ok
}

// Len returns the number of fields with a value.
func (s *State) Len() int { return len(s.fields) }

// Each calls fn for every field's winning write, in no particular order.
func (s *State) Each(fn func(Change)) {
	for _, c := range s.fields {
		fn(c)
	}
}

// Equal reports whether two states hold the same winners.
func (s *State) Equal(o *State) bool {
	if len(s.fields) != len(o.fields) {
		return false
	}
	for k, a := range s.fields {
		b, ok := o.fields[k]
		if !ok || a.HLC != b.HLC || !bytes.Equal(a.Value, b.Value) {
			return false
		}
	}
	return true
}
