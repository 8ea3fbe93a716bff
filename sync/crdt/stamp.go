// Package crdt holds the hybrid logical clock and the field-level
// last-writer-wins merge of Samenplan. It is pure: no I/O, no imports of ours.
package crdt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxNodeLen bounds the node id in a stamp (a device id is a 36-char UUID).
const MaxNodeLen = 64

// MaxCounter is the largest logical counter; past it the clock moves its
// wall component one millisecond ahead.
const MaxCounter = 0xffff

// maxWall is the largest wall time that fits in 13 decimal digits.
const maxWall = 9_999_999_999_999

// Stamp is a hybrid logical clock reading: wall milliseconds, a logical
// counter and the node that made it. Its wire form
// "<13-digit unix ms>-<4 hex counter>-<node>" sorts as the clock does.
type Stamp struct {
	Wall    int64
	Counter uint16
	Node    string
}

// String returns the wire form of s.
func (s Stamp) String() string {
	var b strings.Builder
	b.Grow(19 + len(s.Node))
	w := strconv.FormatInt(s.Wall, 10)
	for i := len(w); i < 13; i++ {
		b.WriteByte('0')
	}
	b.WriteString(w)
	b.WriteByte('-')
	const hex = "0123456789abcdef"
	b.WriteByte(hex[s.Counter>>12&0xf])
	b.WriteByte(hex[s.Counter>>8&0xf])
	b.WriteByte(hex[s.Counter>>4&0xf])
	b.WriteByte(hex[s.Counter&0xf])
	b.WriteByte('-')
	b.WriteString(s.Node)
	return b.String()
}

// IsZero reports whether s is the zero stamp (before every real write).
func (s Stamp) IsZero() bool { return s.Wall == 0 && s.Counter == 0 && s.Node == "" }

// Time returns the wall component as a time.
func (s Stamp) Time() time.Time { return time.UnixMilli(s.Wall).UTC() }

// Compare orders stamps: wall, then counter, then node. It agrees with the
// byte order of the wire forms.
func (s Stamp) Compare(o Stamp) int {
	switch {
	case s.Wall < o.Wall:
		return -1
	case s.Wall > o.Wall:
		return 1
	case s.Counter < o.Counter:
		return -1
	case s.Counter > o.Counter:
		return 1
	}
	return strings.Compare(s.Node, o.Node)
}

// ErrStamp is wrapped by every parse failure.
var ErrStamp = errors.New("invalid stamp")

// ParseStamp parses the wire form. It rejects anything that does not
// round-trip exactly: a wall that is not 13 digits, a counter that is not 4
// lowercase hex digits, an empty or oversized node, or a node with
// characters outside [A-Za-z0-9_.:-].
func ParseStamp(str string) (Stamp, error) {
	if len(str) < 13+1+4+1+1 || str[13] != '-' || str[18] != '-' {
		return Stamp{}, fmt.Errorf("%w %q: want <13-digit ms>-<4 hex>-<node>", ErrStamp, str)
	}
	var wall int64
	for i := 0; i < 13; i++ {
		c := str[i]
		if c < '0' || c > '9' {
			return Stamp{}, fmt.Errorf("%w %q: wall time must be 13 digits", ErrStamp, str)
		}
		wall = wall*10 + int64(c-'0')
	}
	var counter uint16
	for i := 14; i < 18; i++ {
		c := str[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return Stamp{}, fmt.Errorf("%w %q: counter must be 4 lowercase hex digits", ErrStamp, str)
		}
		counter = counter<<4 | uint16(v)
	}
	node := str[19:]
	if err := checkNode(node); err != nil {
		return Stamp{}, fmt.Errorf("%w %q: %v", ErrStamp, str, err)
	}
	return Stamp{Wall: wall, Counter: counter, Node: node}, nil
}

func checkNode(node string) error {
	if node == "" || len(node) > MaxNodeLen {
		return fmt.Errorf("node id must be 1..%d characters", MaxNodeLen)
	}
	for i := 0; i < len(node); i++ {
		c := node[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return fmt.Errorf("node id has character %q", c)
		}
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Stamp) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Stamp) UnmarshalText(b []byte) error {
	p, err := ParseStamp(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// Clock is a hybrid logical clock for one node. It is safe for concurrent use.
// Its readings never go backwards, also when the wall clock does (Rebase
// aside). Its physical time is the wall clock minus an offset (zero unless
// SetOffset or Calibrate set one), so a device whose wall clock runs ahead of
// the server's can still make stamps the server accepts.
type Clock struct {
	mu     sync.Mutex
	node   string
	now    func() time.Time
	offset int64 // ms subtracted from the wall clock; >= 0
	last   Stamp
}

// NewClock returns a clock for node reading wall time from now (time.Now
// when nil). It panics on an invalid node id: that is a programming error.
func NewClock(node string, now func() time.Time) *Clock {
	if err := checkNode(node); err != nil {
		panic("crdt.NewClock: " + err.Error())
	}
	if now == nil {
		now = time.Now
	}
	return &Clock{node: node, now: now}
}

// Node returns the clock's node id.
func (c *Clock) Node() string { return c.node }

// Now returns a new stamp, greater than every stamp this clock has made or
// observed (the HLC send rule).
func (c *Clock) Now() Stamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.physical()
	if pt > c.last.Wall {
		c.last = Stamp{Wall: pt, Node: c.node}
	} else {
		c.last = bump(c.last)
		c.last.Node = c.node
	}
	return c.last
}

// Last returns the latest stamp made or observed, without advancing.
func (c *Clock) Last() Stamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// ErrClockSkew is returned by Observe for a stamp too far ahead of the wall clock.
var ErrClockSkew = errors.New("stamp too far ahead of the clock")

// Observe merges a received stamp into the clock (the HLC receive rule) so
// that every later Now is greater than s. A stamp more than maxAhead ahead of
// the wall clock is refused with ErrClockSkew and leaves the clock unchanged;
// maxAhead <= 0 means no limit.
func (c *Clock) Observe(s Stamp, maxAhead time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.physical()
	if maxAhead > 0 && s.Wall > pt+maxAhead.Milliseconds() {
		return fmt.Errorf("%w: %s is %s ahead", ErrClockSkew, s, time.Duration(s.Wall-pt)*time.Millisecond)
	}
	if s.Compare(c.last) > 0 {
		c.last = Stamp{Wall: s.Wall, Counter: s.Counter, Node: c.node}
	}
	return nil
}

// physical is the wall clock less the offset, in unix ms. c.mu is held.
func (c *Clock) physical() int64 { return c.now().UnixMilli() - c.offset }

// Offset returns how far the clock reads its physical time behind the wall
// clock (zero by default).
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(c.offset) * time.Millisecond
}

// SetOffset makes the clock read its physical time as the wall clock minus d
// (whole milliseconds; a negative d counts as zero). It restores an offset
// learned by Calibrate in an earlier session.
func (c *Clock) SetOffset(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = max(0, d.Milliseconds())
}

// Calibrate compares the clock's physical time with server, a stamp the
// server made just now (server_hlc), and corrects the offset when they are
// more than tolerance apart, ahead, or behind while there is an offset: the
// offset becomes how far the wall clock is ahead of server, or zero when
// that is within tolerance (a wall clock that was put right is no longer
// held back). A clock that is behind without an offset is left alone: the
// receive rule carries it forward. It reports whether the offset changed.
// The last reading does not change: see Rebase.
func (c *Clock) Calibrate(server Stamp, tolerance time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := c.now().UnixMilli()
	ahead := wall - c.offset - server.Wall
	tol := max(0, tolerance.Milliseconds())
	if ahead <= tol && (ahead >= -tol || c.offset == 0) {
		return false
	}
	off := wall - server.Wall
	if off <= tol {
		off = 0
	}
	changed := off != c.offset
	c.offset = off
	return changed
}

// Rebase lowers the clock's last reading to floor when it is beyond it, so
// that later stamps are just past floor instead of past stamps the server
// refused; it reports whether the reading changed. This breaks the rule that
// readings never go backwards, so the caller must give a floor at or above
// every stamp of this clock that anyone stored (for a device: the server's
// server_hlc and every stamp it holds as stored) and must stamp anew every
// write it still has with a stamp above floor.
func (c *Clock) Rebase(floor Stamp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last.Compare(floor) <= 0 {
		return false
	}
	// The reading keeps the clock's node: it may sort just below floor
	// (a greater node), but the next Now moves the counter past it.
	next := Stamp{Wall: floor.Wall, Counter: floor.Counter, Node: c.node}
	changed := next != c.last
	c.last = next
	return changed
}

func bump(s Stamp) Stamp {
	if s.Counter == MaxCounter {
		if s.Wall < maxWall {
			s.Wall++
		}
		s.Counter = 0
		return s
	}
	s.Counter++
	return s
}
