package schema

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// The hand-written checks below cover the values devices send (plain
// strings, numbers, short lists) without allocating; anything they do not
// recognise goes to encoding/json, so the verdict is always json.Unmarshal's.

// simpleString returns the content of a JSON string without escapes or
// control characters, and ok; !ok means v needs a full JSON decode. The
// result shares v's memory and lives as long as v.
func simpleString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	s := v[1 : len(v)-1]
	for _, c := range s {
		if c == '"' || c == '\\' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(s) {
		return "", false // json.Unmarshal replaces bad bytes: let it
	}
	if len(s) == 0 {
		return "", true
	}
	return unsafe.String(&s[0], len(s)), true
}

// simpleList returns the items of a JSON array of simple strings without
// whitespace (["a","b"]), and ok; !ok means v needs a full JSON decode.
// Items share v's memory.
func simpleList(v []byte) ([]string, bool) {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return nil, false
	}
	body := v[1 : len(v)-1]
	if len(body) == 0 {
		return []string{}, true
	}
	var items []string
	for {
		if len(body) < 2 || body[0] != '"' {
			return nil, false
		}
		end := 1
		for end < len(body) && body[end] != '"' {
			end++
		}
		if end == len(body) {
			return nil, false
		}
		s, ok := simpleString(body[:end+1])
		if !ok {
			return nil, false
		}
		items = append(items, s)
		body = body[end+1:]
		if len(body) == 0 {
			return items, true
		}
		if body[0] != ',' {
			return nil, false
		}
		body = body[1:]
	}
}

// parseNumber parses v as a JSON number (RFC 8259 grammar) into a float64;
// !ok for anything else, including numbers out of float64's range.
func parseNumber(v []byte) (float64, bool) {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	switch {
	case i < len(v) && v[i] == '0':
		i++
	case i < len(v) && v[i] >= '1' && v[i] <= '9':
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(v) && v[i] == '.' {
		i++
		if i == len(v) || v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if i == len(v) || v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
	}
	if i != len(v) {
		return 0, false
	}
	n, err := strconv.ParseFloat(unsafe.String(&v[0], len(v)), 64)
	return n, err == nil
}
