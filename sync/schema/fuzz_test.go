package schema

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/samenplan/samenplan"
)

// fuzzFields is every field of the case file, in a fixed order (collection,
// then field name), so that an index in the corpus keeps naming one field.
func fuzzFields() []*Field {
	var out []*Field
	for _, c := range CaseFile.Collections {
		for i := range c.Fields {
			out = append(out, &c.Fields[i])
		}
	}
	return out
}

// FuzzFieldCheck: every value a device pushes goes through Field.Check, and
// what it accepts is stored and later served to every device of the scope.
// Whatever the bytes, Check returns nil or an invalid error with a message;
// and an accepted value is valid JSON (a pull re-encodes it) of the field's
// type: null only for a field that is not required, true/false for bool,
// a number within Min..Max (whole for int), a list of at most MaxLen
// strings of at most 200 bytes of UTF-8 (UUIDs for uuid_list), or a string
// within MaxLen bytes that is a date, an RFC 3339 time, one of the enum's
// values, a lowercase UUID, or a single line, as the type says.
func FuzzFieldCheck(f *testing.F) {
	fields := fuzzFields()
	index := func(collection, field string) uint16 {
		for i, fd := range fields {
			if fd == CaseFile.Collection(collection).Field(field) {
				return uint16(i)
			}
		}
		f.Fatalf("no field %s.%s", collection, field)
		return 0
	}
	for _, s := range []struct {
		collection, field, value string
	}{
		{"contacts", "note", `"Huisbezoek: moeder en Tim thuis, plan besproken."`},
		{"contacts", "minutes", `45`},
		{"contacts", "minutes", `45.5`},
		{"contacts", "mode", `"home_visit"`},
		{"contacts", "participants", `["moeder","Tim"]`},
		{"contacts", "occurred_at", `"2026-03-02T10:15:00+01:00"`},
		{"contacts", "trajectory_id", `"0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11"`},
		{"plan_goals", "scale", `10`},
		{"plan_goals", "scale", `1e1`},
		{"plan_goals", "due_on", `"2026-02-29"`},
		{"referrals", "crisis", `true`},
		{"families", "label", "\"Gezin\\nX\""},
		{"families", "label", "\"\xff\xfe\""},
		{"trajectories", "co_coach_ids", `["0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11",null]`},
		{"persons", "birth_date", `null`},
		{"persons", "family_id", `null`},
		{"contacts", "note", `"\ud800"`},
		{"contacts", "participants", `["a",]`},
		{"contacts", "minutes", `-0`},
		{"contacts", "minutes", `1e400`},
	} {
		f.Add(index(s.collection, s.field), []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, which uint16, value []byte) {
		fd := fields[int(which)%len(fields)]
		err := fd.Check(value)
		if err != nil {
			if samenplan.ErrorCode(err) != samenplan.EINVALID || samenplan.ErrorMessage(err) == "" {
				t.Fatalf("%s.Check(%q): %v, want an invalid error with a message", fd, value, err)
			}
			return
		}
		bad := func(why string) { t.Helper(); t.Fatalf("%s.Check(%q) accepted %s", fd, value, why) }
		if !json.Valid(value) {
			bad("invalid JSON")
		}
		v := bytes.Trim(value, " \t\r\n")
		if bytes.Equal(v, []byte("null")) {
			if fd.Required {
				bad("null for a required field")
			}
			return
		}
		switch fd.Type {
		case Bool:
			var b bool
			if json.Unmarshal(v, &b) != nil {
				bad("a non-boolean")
			}
		case Int, Number:
			var n float64
			if json.Unmarshal(v, &n) != nil {
				bad("a non-number")
			}
			if fd.Type == Int && n != float64(int64(n)) {
				bad("a fraction for an int")
			}
			if (fd.Min != nil && n < *fd.Min) || (fd.Max != nil && n > *fd.Max) {
				bad("a number out of range")
			}
		case List, UUIDList:
			var items []string
			if json.Unmarshal(v, &items) != nil {
				bad("a non-list")
			}
			if fd.MaxLen > 0 && len(items) > fd.MaxLen {
				bad("too many items")
			}
			for _, it := range items {
				if len(it) > 200 || !utf8.ValidString(it) || (fd.Type == UUIDList && !ValidID(it)) {
					bad("a bad item")
				}
			}
		default:
			var s string
			if json.Unmarshal(v, &s) != nil {
				bad("a non-string")
			}
			if fd.MaxLen > 0 && len(s) > fd.MaxLen {
				bad("a string over its size")
			}
			switch fd.Type {
			case Date:
				if _, err := time.Parse(time.DateOnly, s); err != nil {
					bad("a non-date")
				}
			case DateTime:
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					bad("a non-time")
				}
			case Enum:
				if !slices.Contains(fd.Values, s) {
					bad("a value outside the enum")
				}
			case Ref, UUID:
				if !ValidID(s) {
					bad("a non-UUID")
				}
			case String:
				if bytes.ContainsAny([]byte(s), "\r\n") {
					bad("a line break in a single-line string")
				}
			}
		}
	})
}

// Found by FuzzFieldCheck (testdata/fuzz/FuzzFieldCheck/530f793a2220ef2f):
// Check trimmed Unicode whitespace, so "\v0" passed as an int and would
// have been stored as a value no JSON encoder accepts (a pull re-encodes
// every value). Only JSON's own whitespace may surround a value.
func TestFieldCheck_OnlyJSONWhitespaceAroundAValue(t *testing.T) {
	minutes := CaseFile.Collection("contacts").Field("minutes")
	label := CaseFile.Collection("families").Field("label")
	for _, v := range []string{"\v0", "0\v", "\f1", "\u00850", "\u00a0\"x\"", "\v\"x\"", "\vnull"} {
		for _, fd := range []*Field{minutes, label} {
			if err := fd.Check(json.RawMessage(v)); err == nil {
				t.Errorf("%s.Check(%q) accepted it", fd.Name, v)
			}
		}
	}
	for _, v := range []string{" 1 ", "\t\r\n1\n", " null "} {
		if err := minutes.Check(json.RawMessage(v)); err != nil {
			t.Errorf("minutes.Check(%q): %v", v, err)
		}
	}
}
