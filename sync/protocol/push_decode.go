package protocol

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The push body is the largest input the server decodes (a batch of up to
// MaxBatch changes), and encoding/json spent 13 % of a push's CPU on it
// (docs/benchmarks.md): it scans the value twice (once to find its end,
// once to decode it), goes through reflection and allocates every string
// and raw value on its own.
//
// fastPush decodes the common, well-formed body in one pass over the bytes
// read once. It accepts only what encoding/json accepts with the same
// result, and gives up (ok false) on anything else: an unknown, misspelled
// or repeated key, a key in another case, a string with an escape or
// invalid UTF-8, a null where a string is expected, a fractional schema
// version, trailing data, any syntax error. The body is then decoded by
// the reference path (decodeStrict, encoding/json), so every error and
// every unusual input gets exactly the answer it got before.
// FuzzDecodePush_SameAsReference checks this against a copy of the old
// decoder.

// bodyPool recycles the buffers push bodies are read into; the decoded
// request never points into them (see fastPush).
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest read buffer kept for reuse.
const maxPooledBody = 8 << 20

// decodePush reads r whole, once, and decodes it.
func decodePush(r io.Reader) (PushRequest, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		// Hand the reference decoder the same bytes followed by the same
		// read error, as it would have met them reading r itself.
		var req PushRequest
		err := decodeStrict(io.MultiReader(bytes.NewReader(buf.Bytes()), errReader{err}), &req)
		return req, err
	}
	if req, ok := fastPush(buf.Bytes()); ok {
		return req, nil
	}
	var req PushRequest
	if err := decodeStrict(bytes.NewReader(buf.Bytes()), &req); err != nil {
		return PushRequest{}, err
	}
	return req, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// pushParser is the state of one fastPush.
type pushParser struct {
	data []byte
	i    int
	// values holds a copy of every raw value of the batch, so that the
	// request does not keep the read buffer.
	values []byte
	// names interns collection, field and row id strings within one body
	// (a batch names few collections and fields, and each row several
	// times); it is per body, so nothing outside the request keeps them.
	names map[string]string
}

// fastPush decodes body if it is a well-formed push in the plain form
// every client sends; ok is false when it is not, and the caller must
// decode it with the reference decoder.
func fastPush(body []byte) (req PushRequest, ok bool) {
	p := pushParser{data: body}
	p.ws()
	if !p.eat('{') {
		return PushRequest{}, false
	}
	var seen [4]bool
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			p.ws()
			key, ok := p.plainString()
			if !ok {
				return PushRequest{}, false
			}
			p.ws()
			if !p.eat(':') {
				return PushRequest{}, false
			}
			p.ws()
			var k int
			switch string(key) {
			case "device_id":
				k = 0
				req.DeviceID, ok = p.stringValue()
			case "batch_id":
				k = 1
				req.BatchID, ok = p.stringValue()
			case "schema_version":
				k = 2
				req.SchemaVersion, ok = p.intValue()
			case "changes":
				k = 3
				req.Changes, ok = p.changes()
			default:
				return PushRequest{}, false
			}
			if !ok || seen[k] {
				return PushRequest{}, false
			}
			seen[k] = true
			p.ws()
			if p.eat(',') {
				continue
			}
			if !p.eat('}') {
				return PushRequest{}, false
			}
			break
		}
	}
	p.ws()
	if p.i != len(p.data) {
		return PushRequest{}, false
	}
	return req, true
}

func (p *pushParser) peek() byte {
	if p.i < len(p.data) {
		return p.data[p.i]
	}
	return 0
}

func (p *pushParser) eat(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// ws skips JSON whitespace.
func (p *pushParser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// plainString reads a string without escapes whose bytes are valid UTF-8
// with no control characters: encoding/json decodes such a string to
// exactly its bytes. It returns the bytes inside the quotes.
func (p *pushParser) plainString() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	ascii := true
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			s := p.data[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return nil, false
}

// stringValue reads a plain string into a new Go string.
func (p *pushParser) stringValue() (string, bool) {
	s, ok := p.plainString()
	if !ok {
		return "", false
	}
	return string(s), true
}

// name reads a plain string, interned within the body.
func (p *pushParser) name() (string, bool) {
	s, ok := p.plainString()
	if !ok {
		return "", false
	}
	if v, ok := p.names[string(s)]; ok {
		return v, true
	}
	if p.names == nil {
		p.names = make(map[string]string, 64)
	}
	v := string(s)
	p.names[v] = v
	return v, true
}

// intValue reads a JSON integer that fits an int, as encoding/json decodes
// it into an int. A fraction or exponent ("1.0", "1e2") is left to the
// reference decoder, which refuses it.
func (p *pushParser) intValue() (int, bool) {
	start := p.i
	if !p.number() {
		return 0, false
	}
	s := p.data[start:p.i]
	for _, c := range s {
		if c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(s), 10, strconv.IntSize)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *pushParser) number() bool {
	p.eat('-')
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return false
	}
	if p.eat('.') {
		if !p.digits() {
			return false
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more decimal digits.
func (p *pushParser) digits() bool {
	start := p.i
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// maxValueDepth bounds the nesting of a raw value on this path (the
// reference decoder allows more, and gets the deeper ones).
const maxValueDepth = 64

// rawValue reads any JSON value, checked as encoding/json's scanner checks
// it, and returns a copy of its bytes (what json.RawMessage receives).
func (p *pushParser) rawValue() ([]byte, bool) {
	start := p.i
	if !p.value(0) {
		return nil, false
	}
	if p.values == nil {
		p.values = make([]byte, 0, len(p.data)-start)
	}
	n := len(p.values)
	p.values = append(p.values, p.data[start:p.i]...)
	return p.values[n:len(p.values):len(p.values)], true
}

func (p *pushParser) value(depth int) bool {
	switch c := p.peek(); {
	case c == '"':
		return p.anyString()
	case c == '{':
		if depth >= maxValueDepth {
			return false
		}
		p.i++
		p.ws()
		if p.eat('}') {
			return true
		}
		for {
			p.ws()
			if !p.anyString() {
				return false
			}
			p.ws()
			if !p.eat(':') {
				return false
			}
			p.ws()
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			return p.eat('}')
		}
	case c == '[':
		if depth >= maxValueDepth {
			return false
		}
		p.i++
		p.ws()
		if p.eat(']') {
			return true
		}
		for {
			p.ws()
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			return p.eat(']')
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return false
}

func (p *pushParser) literal(s string) bool {
	if len(p.data)-p.i >= len(s) && string(p.data[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// anyString reads a JSON string as the scanner allows it: any byte from
// 0x20 up (invalid UTF-8 too), and the escapes \" \\ \/ \b \f \n \r \t
// and \u with four hex digits.
func (p *pushParser) anyString() bool {
	if !p.eat('"') {
		return false
	}
	for p.i < len(p.data) {
		c := p.data[p.i]
		p.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if p.i >= len(p.data) {
				return false
			}
			e := p.data[p.i]
			p.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(p.data)-p.i < 4 {
					return false
				}
				for _, h := range p.data[p.i : p.i+4] {
					if !isHex(h) {
						return false
					}
				}
				p.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// changes reads the array of changes. An empty array gives an empty,
// non-nil slice, as encoding/json does.
func (p *pushParser) changes() ([]Change, bool) {
	if !p.eat('[') {
		return nil, false
	}
	out := make([]Change, 0, p.estimateChanges())
	p.ws()
	if p.eat(']') {
		return out, true
	}
	for {
		p.ws()
		var c Change
		if !p.change(&c) {
			return nil, false
		}
		out = append(out, c)
		p.ws()
		if p.eat(',') {
			continue
		}
		if !p.eat(']') {
			return nil, false
		}
		return out, true
	}
}

// estimateChanges counts the '{' ahead (one per change, more when values
// hold objects), so that the slice of a client's batch is allocated once.
// Counting one byte is vectorized; counting a key such as "hlc" took as
// long as decoding the changes.
func (p *pushParser) estimateChanges() int {
	return min(bytes.Count(p.data[p.i:], []byte{'{'})+1, MaxBatch+1)
}

// change reads one change object.
func (p *pushParser) change(c *Change) bool {
	if !p.eat('{') {
		return false
	}
	p.ws()
	if p.eat('}') {
		return true
	}
	var seen [7]bool
	for {
		p.ws()
		key, ok := p.plainString()
		if !ok {
			return false
		}
		p.ws()
		if !p.eat(':') {
			return false
		}
		p.ws()
		var k int
		switch string(key) {
		case "collection":
			k = 0
			c.Collection, ok = p.name()
		case "id":
			k = 1
			c.ID, ok = p.name()
		case "field":
			k = 2
			c.Field, ok = p.name()
		case "value":
			k = 3
			c.Value, ok = p.rawValue()
		case "hlc":
			k = 4
			c.HLC, ok = p.stringValue()
		case "base":
			k = 5
			c.Base, ok = p.stringValue()
		case "scope":
			k = 6
			c.Scope, ok = p.name()
		default:
			return false
		}
		if !ok || seen[k] {
			return false
		}
		seen[k] = true
		p.ws()
		if p.eat(',') {
			continue
		}
		return p.eat('}')
	}
}
