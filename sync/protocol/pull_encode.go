package protocol

import (
	"encoding/json"
	"slices"
	"sync"
)

// MarshalPullResponse returns r encoded as json.NewEncoder(w).Encode(r)
// writes it (AppendPullResponse and a newline), in a pooled buffer. The
// caller must call release once it has written body, and not use body after.
func MarshalPullResponse(r *PullResponse) (body []byte, release func(), err error) {
	buf := pullBuffers.Get().(*[]byte)
	b, err := AppendPullResponse((*buf)[:0], r)
	if err != nil {
		pullBuffers.Put(buf)
		return nil, nil, err
	}
	b = append(b, '\n')
	return b, func() {
		if cap(b) <= maxPooledPull {
			*buf = b[:0]
			pullBuffers.Put(buf)
		}
	}, nil
}

// maxPooledPull is the largest buffer kept for reuse: a page of
// MaxPullLimit changes of ordinary fields is well under it.
const maxPooledPull = 4 << 20

var pullBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// AppendPullResponse appends the JSON encoding of r to dst and returns the
// extended buffer: byte for byte what json.Marshal(r) returns (HTML-escaped
// strings, compacted values, sorted checksum keys), without its reflection
// and its per-value copies. A caseload pull answers with thousands of
// changes, and encoding/json was about a seventh of its server time
// (docs/benchmarks.md § Pull).
//
// Plain strings and plain values (compact JSON without '<', '>', '&' or
// U+2028/U+2029) are copied as they are; anything else goes through
// encoding/json, so the output stays identical. A value that is not valid
// JSON is an error, as with json.Marshal; dst is then returned unchanged.
func AppendPullResponse(dst []byte, r *PullResponse) ([]byte, error) {
	orig := len(dst)
	fail := func(err error) ([]byte, error) { return dst[:orig], err }
	var err error
	dst = append(dst, `{"changes":`...)
	if r.Changes == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range r.Changes {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendChange(dst, &r.Changes[i]); err != nil {
				return fail(err)
			}
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"cursor":`...)
	dst = appendString(dst, r.Cursor)
	if r.More {
		dst = append(dst, `,"more":true`...)
	} else {
		dst = append(dst, `,"more":false`...)
	}
	dst = append(dst, `,"evict":`...)
	dst = appendStrings(dst, r.Evict)
	if len(r.Checksums) > 0 {
		dst = append(dst, `,"checksums":{`...)
		keys := make([]string, 0, len(r.Checksums))
		for k := range r.Checksums {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, r.Checksums[k])
		}
		dst = append(dst, '}')
	}
	if len(r.Signals) > 0 {
		// A few per coach: encoding/json is fast enough and exact by
		// definition.
		b, err := json.Marshal(r.Signals)
		if err != nil {
			return fail(err)
		}
		dst = append(dst, `,"signals":`...)
		dst = append(dst, b...)
	}
	dst = append(dst, `,"server_hlc":`...)
	dst = appendString(dst, r.ServerHLC)
	return append(dst, '}'), nil
}

func appendChange(dst []byte, c *Change) ([]byte, error) {
	dst = append(dst, `{"collection":`...)
	dst = appendString(dst, c.Collection)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, c.ID)
	dst = append(dst, `,"field":`...)
	dst = appendString(dst, c.Field)
	dst = append(dst, `,"value":`...)
	var err error
	if dst, err = appendValue(dst, c.Value); err != nil {
		return dst, err
	}
	dst = append(dst, `,"hlc":`...)
	dst = appendString(dst, c.HLC)
	if c.Base != "" {
		dst = append(dst, `,"base":`...)
		dst = appendString(dst, c.Base)
	}
	if c.Scope != "" {
		dst = append(dst, `,"scope":`...)
		dst = appendString(dst, c.Scope)
	}
	return append(dst, '}'), nil
}

func appendStrings(dst []byte, list []string) []byte {
	if list == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// plainByte marks the bytes a JSON string holds as they are in
// encoding/json's HTML-escaped output: printable ASCII but '"', '\\', '<',
// '>' and '&'.
var plainByte = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendString appends s as a JSON string, as encoding/json writes it.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendValue appends a raw JSON value as encoding/json writes a
// json.RawMessage: null when nil, else compacted and HTML-escaped, an error
// when it is not valid JSON.
func appendValue(dst []byte, v json.RawMessage) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	if plainValue(v) {
		return append(dst, v...), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// plainValue reports whether v is one valid JSON value that encoding/json
// copies unchanged: no whitespace outside strings, no '<', '>' or '&', and
// no byte 0xE2 (the first byte of U+2028 and U+2029, and of other
// characters: those take the slow path too). It may say false for a plain
// value (very deep nesting); it never says true for anything else.
func plainValue(v []byte) bool {
	i, ok := scanValue(v, 0, 0)
	return ok && i == len(v)
}

// maxPlainDepth bounds scanValue's recursion; deeper values take the slow
// path (encoding/json allows 10,000 levels).
const maxPlainDepth = 100

// stringByte marks the bytes a plain value's strings hold unescaped.
var stringByte = func() (t [256]bool) {
	for b := 0x20; b < 0x100; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' && b != 0xE2
	}
	return t
}()

// scanValue reads one plain JSON value of v from i and returns the index
// after it.
func scanValue(v []byte, i, depth int) (int, bool) {
	if i >= len(v) {
		return i, false
	}
	switch c := v[i]; {
	case c == '"':
		return scanString(v, i)
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(v, i)
	case c == 't':
		return scanLiteral(v, i, "true")
	case c == 'f':
		return scanLiteral(v, i, "false")
	case c == 'n':
		return scanLiteral(v, i, "null")
	case c == '[':
		if depth >= maxPlainDepth {
			return i, false
		}
		i++
		if i < len(v) && v[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = scanValue(v, i, depth+1); !ok || i >= len(v) {
				return i, false
			}
			switch v[i] {
			case ',':
				i++
			case ']':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '{':
		if depth >= maxPlainDepth {
			return i, false
		}
		i++
		if i < len(v) && v[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(v) || v[i] != '"' {
				return i, false
			}
			var ok bool
			if i, ok = scanString(v, i); !ok || i >= len(v) || v[i] != ':' {
				return i, false
			}
			if i, ok = scanValue(v, i+1, depth+1); !ok || i >= len(v) {
				return i, false
			}
			switch v[i] {
			case ',':
				i++
			case '}':
				return i + 1, true
			default:
				return i, false
			}
		}
	}
	return i, false
}

// scanString reads a plain JSON string starting at the quote at i.
func scanString(v []byte, i int) (int, bool) {
	for i++; i < len(v); i++ {
		c := v[i]
		if stringByte[c] {
			continue
		}
		switch c {
		case '"':
			return i + 1, true
		case '\\':
			i++
			if i >= len(v) {
				return i, false
			}
			switch v[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(v) {
					return i, false
				}
				for _, h := range v[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		default: // control characters, '<', '>', '&', 0xE2
			return i, false
		}
	}
	return i, false
}

// scanNumber reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(v []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if v[i] == '-' {
		i++
	}
	if i >= len(v) {
		return i, false
	}
	if v[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	if i < len(v) && v[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}

func scanLiteral(v []byte, i int, lit string) (int, bool) {
	if len(v)-i < len(lit) || string(v[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}
