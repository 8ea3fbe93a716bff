// Package schema declares the synced case file once: its collections, their
// fields and types, size limits, parent links, who may write what, and how a
// row's scope is derived. It imports only the standard library and the
// shared error vocabulary.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/samenplan/samenplan"
)

// Version is the schema version devices state in every push and pull.
const Version = 1

// Supported reports whether a device's schema version is accepted: the
// current one and the one before it.
func Supported(v int) bool { return v == Version || (v == Version-1 && v >= 1) }

// Type is the type of a field's value.
type Type string

// Field types.
const (
	String   Type = "string"   // short text, single line
	Text     Type = "text"     // long text; a concurrent edit is a conflict
	Bool     Type = "bool"     // true or false
	Int      Type = "int"      // whole number within Min..Max
	Number   Type = "number"   // decimal number within Min..Max
	Date     Type = "date"     // "2026-11-23"
	DateTime Type = "datetime" // RFC 3339 with a zone
	Enum     Type = "enum"     // one of Values
	Ref      Type = "ref"      // the id (UUID) of a row in collection Ref
	UUID     Type = "uuid"     // the id of something that is not a synced row (a user)
	UUIDList Type = "uuid_list"
	List     Type = "list" // list of short strings
)

// Field describes one field of a collection.
type Field struct {
	Name     string   `json:"name"`
	Type     Type     `json:"type"`
	MaxLen   int      `json:"max_len,omitempty"`   // bytes for strings and texts, items for lists
	Min      *float64 `json:"min,omitempty"`       // for int and number
	Max      *float64 `json:"max,omitempty"`       // for int and number
	Values   []string `json:"values,omitempty"`    // for enum
	Ref      string   `json:"ref,omitempty"`       // for ref: the collection referred to
	Required bool     `json:"required,omitempty"`  // must be written when the row is created
	Fixed    bool     `json:"immutable,omitempty"` // once set, never changed
	// ServerOnly fields are written by the server (intake decisions,
	// reassignment) or a coordinator, never by a coach's device.
	ServerOnly bool `json:"server_only,omitempty"`
}

// ScopeKind says how a row's scope is derived.
type ScopeKind string

// Scope kinds.
const (
	ScopeFamilySelf ScopeKind = "family_self" // family:<id>
	ScopeViaFamily  ScopeKind = "via_family"  // family:<family_id>
	ScopeViaParent  ScopeKind = "via_parent"  // the scope of the row named by Parent
	ScopeIntake     ScopeKind = "intake"      // intake:<region>, and family:<family_id> once linked
)

// Collection describes one synced collection.
type Collection struct {
	Name   string    `json:"name"`
	Scope  ScopeKind `json:"scope"`
	Parent string    `json:"parent,omitempty"` // the ref field that links to the parent row
	// ServerCreated collections are created only by server writes.
	ServerCreated bool    `json:"server_created,omitempty"`
	Fields        []Field `json:"fields"`
	byName        map[string]*Field
}

// Field returns the named field, or nil.
func (c *Collection) Field(name string) *Field { return c.byName[name] }

// Schema is the whole case file.
type Schema struct {
	Version     int           `json:"version"`
	Collections []*Collection `json:"collections"`
	byName      map[string]*Collection
}

// Collection returns the named collection, or nil.
func (s *Schema) Collection(name string) *Collection { return s.byName[name] }

// JSON returns the schema as JSON, for GET /v1/schema and client generators.
func (s *Schema) JSON() []byte {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // the schema is static; failing here is a programming error
	}
	return b
}

// Scope names.
const (
	FamilyScopePrefix = "family:"
	IntakeScopePrefix = "intake:"
)

// FamilyScope returns the scope of a family's rows.
func FamilyScope(familyID string) string { return FamilyScopePrefix + familyID }

// IntakeScope returns the scope of a region's intake rows.
func IntakeScope(region string) string { return IntakeScopePrefix + region }

// ValidID reports whether id is a lowercase UUID, as every row id must be:
// 8-4-4-4-12 lowercase hex digits.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// Validate checks a value for field in collection: the collection and field
// exist, and the value has the field's type and size. null clears a field
// and is accepted for every field that is not required. It returns a
// *samenplan.Error with code invalid describing the first problem.
func (s *Schema) Validate(collection, field string, value json.RawMessage) error {
	c := s.byName[collection]
	if c == nil {
		return samenplan.Errorf(samenplan.EINVALID, "unknown collection %q", collection)
	}
	f := c.byName[field]
	if f == nil {
		return samenplan.Errorf(samenplan.EINVALID, "unknown field %q in %s", field, collection)
	}
	return f.Check(value)
}

var null = []byte("null")

// Check validates one value against the field.
func (f *Field) Check(value json.RawMessage) error {
	v := bytes.Trim(value, " \t\r\n") // JSON's whitespace only: TrimSpace would let "\v0" through
	if len(v) == 0 {
		return samenplan.Errorf(samenplan.EINVALID, "%s: missing value", f.Name)
	}
	if bytes.Equal(v, null) {
		if f.Required {
			return samenplan.Errorf(samenplan.EINVALID, "%s: is required and cannot be null", f.Name)
		}
		return nil
	}
	bad := func(want string) error {
		return samenplan.Errorf(samenplan.EINVALID, "%s: want %s", f.Name, want)
	}
	switch f.Type {
	case Bool:
		if !bytes.Equal(v, []byte("true")) && !bytes.Equal(v, []byte("false")) {
			return bad("true or false")
		}
	case Int, Number:
		n, ok := parseNumber(v)
		if !ok {
			return bad("a number")
		}
		if f.Type == Int && n != float64(int64(n)) {
			return bad("a whole number")
		}
		if (f.Min != nil && n < *f.Min) || (f.Max != nil && n > *f.Max) {
			return samenplan.Errorf(samenplan.EINVALID, "%s: %v is out of range %v..%v", f.Name, n, deref(f.Min), deref(f.Max))
		}
	case List, UUIDList:
		if v[0] != '[' {
			return bad("a list of strings")
		}
		items, ok := simpleList(v)
		if !ok && json.Unmarshal(v, &items) != nil {
			return bad("a list of strings")
		}
		if f.MaxLen > 0 && len(items) > f.MaxLen {
			return samenplan.Errorf(samenplan.EINVALID, "%s: at most %d items", f.Name, f.MaxLen)
		}
		for _, it := range items {
			if f.Type == UUIDList && !ValidID(it) {
				return bad("a list of lowercase UUIDs")
			}
			if len(it) > 200 || !utf8.ValidString(it) {
				return samenplan.Errorf(samenplan.EINVALID, "%s: an item is over 200 bytes or not UTF-8", f.Name)
			}
		}
	default:
		if v[0] != '"' {
			return bad("a string")
		}
		str, ok := simpleString(v)
		if !ok && json.Unmarshal(v, &str) != nil {
			return bad("a string")
		}
		return f.checkString(str)
	}
	return nil
}

func (f *Field) checkString(str string) error {
	if f.MaxLen > 0 && len(str) > f.MaxLen {
		return samenplan.Errorf(samenplan.EINVALID, "%s: %d bytes is over the limit of %d", f.Name, len(str), f.MaxLen)
	}
	switch f.Type {
	case Date:
		if _, err := time.Parse(time.DateOnly, str); err != nil {
			return samenplan.Errorf(samenplan.EINVALID, "%s: want a date YYYY-MM-DD", f.Name)
		}
	case DateTime:
		if _, err := time.Parse(time.RFC3339, str); err != nil {
			return samenplan.Errorf(samenplan.EINVALID, "%s: want an RFC 3339 time", f.Name)
		}
	case Enum:
		for _, ok := range f.Values {
			if str == ok {
				return nil
			}
		}
		return samenplan.Errorf(samenplan.EINVALID, "%s: %q is not one of %v", f.Name, str, f.Values)
	case Ref, UUID:
		if !ValidID(str) {
			return samenplan.Errorf(samenplan.EINVALID, "%s: want a lowercase UUID", f.Name)
		}
	case String:
		for i := 0; i < len(str); i++ {
			if str[i] == '\n' || str[i] == '\r' {
				return samenplan.Errorf(samenplan.EINVALID, "%s: must be a single line", f.Name)
			}
		}
	}
	return nil
}

func deref(p *float64) any {
	if p == nil {
		return "∞"
	}
	return *p
}

// String returns a short description, for error messages.
func (f *Field) String() string { return fmt.Sprintf("%s (%s)", f.Name, f.Type) }
