package view

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/samenplan/samenplan/rules"
)

// fields is one row's current values by field name, whatever holds them: the
// JSON rows of LoadRows or the model's LWW cells. Decoding goes through it
// so the dry run and the read model read a row the same way.
type fields interface {
	get(field string) string
}

// jsonRow is a row of Rows.
type jsonRow map[string]json.RawMessage

func (r jsonRow) get(f string) string { return string(r[f]) }

// The decoders below read the values the schema admits (sync/schema) and
// give the zero value for null, a missing field or anything malformed: the
// store validated every value, so malformed means "not set" here. A string
// without escapes is a substring of the value, not a copy.

func sv(v string) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	if strings.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1]
	}
	var s string
	_ = json.Unmarshal([]byte(v), &s)
	return s
}

func bv(v string) bool { return v == "true" }

func iv(v string) int {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return int(f)
}

func dv(v string) rules.Date {
	s := sv(v)
	if s == "" {
		return rules.Date{}
	}
	d, err := rules.ParseDate(s)
	if err != nil {
		return rules.Date{}
	}
	return d
}

func tv(v string) time.Time {
	t, err := time.Parse(time.RFC3339, sv(v))
	if err != nil {
		return time.Time{}
	}
	return t
}

func lv(v string) []string {
	if len(v) == 0 || v[0] != '[' {
		return nil
	}
	var out []string
	_ = json.Unmarshal([]byte(v), &out)
	return out
}

func str(r fields, f string) string      { return sv(r.get(f)) }
func b(r fields, f string) bool          { return bv(r.get(f)) }
func date(r fields, f string) rules.Date { return dv(r.get(f)) }
func stamp(r fields, f string) time.Time { return tv(r.get(f)) }
func list(r fields, f string) []string   { return lv(r.get(f)) }
func integer(r fields, f string) int     { return iv(r.get(f)) }
