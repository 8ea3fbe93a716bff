package crdt

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestParseStamp_RoundTrips(t *testing.T) {
	for _, s := range []Stamp{
		{Wall: 0, Counter: 0, Node: "a"},
		{Wall: 1795450929838, Counter: 1, Node: "server"},
		{Wall: 9_999_999_999_999, Counter: 0xffff, Node: "0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11"},
	} {
		got, err := ParseStamp(s.String())
		if err != nil {
			t.Fatalf("ParseStamp(%q): %v", s, err)
		}
		if got != s {
			t.Fatalf("ParseStamp(%q) = %+v, want %+v", s, got, s)
		}
	}
}

func TestParseStamp_RejectsWhatDoesNotRoundTrip(t *testing.T) {
	for _, in := range []string{
		"", "x", "1795450929838-0001", "1795450929838-0001-", "179545092983-0001-a",
		"17954509298380-001-a", "1795450929838-000G-a", "1795450929838-00AB-a",
		"1795450929838_0001-a", "-795450929838-0001-a", "1795450929838-0001-a b",
		"1795450929838-0001-" + strings.Repeat("n", MaxNodeLen+1), "1795450929838-0001-ä",
	} {
		if _, err := ParseStamp(in); !errors.Is(err, ErrStamp) {
			t.Errorf("ParseStamp(%q) = %v, want ErrStamp", in, err)
		}
	}
}

func genStamp() *rapid.Generator[Stamp] {
	return rapid.Custom(func(t *rapid.T) Stamp {
		return Stamp{
			Wall:    rapid.Int64Range(0, maxWall).Draw(t, "wall"),
			Counter: rapid.Uint16().Draw(t, "counter"),
			Node:    rapid.StringMatching(`[A-Za-z0-9_.:-]{1,20}`).Draw(t, "node"),
		}
	})
}

func TestStamp_StringOrderIsClockOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genStamp().Draw(t, "a"), genStamp().Draw(t, "b")
		if got, want := strings.Compare(a.String(), b.String()), a.Compare(b); sign(got) != sign(want) {
			// Node ids compare bytewise in both; walls and counters are fixed width.
			t.Fatalf("string order %d, clock order %d for %s and %s", got, want, a, b)
		}
	})
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestClock_NeverGoesBackwards drives a clock with a wall clock that jumps
// back and forth and with received stamps, and checks every reading is
// greater than the one before and than every stamp observed.
func TestClock_NeverGoesBackwards(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		wall := time.UnixMilli(1_795_000_000_000)
		c := NewClock("dev-1", func() time.Time { return wall })
		var last Stamp
		for i, n := 0, rapid.IntRange(1, 200).Draw(t, "steps"); i < n; i++ {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0: // the wall clock jumps, possibly backwards
				wall = wall.Add(time.Duration(rapid.IntRange(-10_000, 10_000).Draw(t, "jump")) * time.Millisecond)
			case 1: // a stamp from elsewhere, possibly ahead
				s := Stamp{Wall: wall.UnixMilli() + int64(rapid.IntRange(-5000, 5000).Draw(t, "skew")), Counter: rapid.Uint16().Draw(t, "ctr"), Node: "other"}
				if err := c.Observe(s, 0); err != nil {
					t.Fatal(err)
				}
				if s.Compare(last) > 0 {
					last = s
				}
			case 2:
				s := c.Now()
				if s.Compare(last) <= 0 {
					t.Fatalf("Now() = %s, not after %s", s, last)
				}
				if s.Node != "dev-1" {
					t.Fatalf("Now() node = %q", s.Node)
				}
				last = s
			}
		}
	})
}

func TestClock_CounterOverflowMovesWallAhead(t *testing.T) {
	wall := time.UnixMilli(1000)
	c := NewClock("n", func() time.Time { return wall })
	var prev Stamp
	for i := 0; i < MaxCounter+3; i++ {
		s := c.Now()
		if i > 0 && s.Compare(prev) <= 0 {
			t.Fatalf("step %d: %s not after %s", i, s, prev)
		}
		prev = s
	}
	if prev.Wall != 1001 {
		t.Fatalf("wall after overflow = %d, want 1001", prev.Wall)
	}
}

func TestClock_ObserveRefusesSkewAndStaysPut(t *testing.T) {
	wall := time.UnixMilli(1_000_000)
	c := NewClock("n", func() time.Time { return wall })
	before := c.Now()
	ahead := Stamp{Wall: wall.Add(6 * time.Minute).UnixMilli(), Node: "x"}
	if err := c.Observe(ahead, 5*time.Minute); !errors.Is(err, ErrClockSkew) {
		t.Fatalf("Observe(6 min ahead) = %v, want ErrClockSkew", err)
	}
	if got := c.Last(); got != before {
		t.Fatalf("clock moved to %s after a refused stamp", got)
	}
	within := Stamp{Wall: wall.Add(4 * time.Minute).UnixMilli(), Node: "x"}
	if err := c.Observe(within, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); got.Compare(within) <= 0 {
		t.Fatalf("Now() = %s, not after observed %s", got, within)
	}
}

// FuzzParseStamp: a stamp comes from a device in every change it pushes.
// Whatever the string, ParseStamp accepts it only when it is the exact
// wire form of its result (so a stored stamp prints back byte for byte),
// with every part within its bounds; an error wraps ErrStamp; and for two
// accepted stamps the byte order of the strings is the clock order
// (DESIGN §4: "string order is clock order").
func FuzzParseStamp(f *testing.F) {
	for _, s := range [][2]string{
		{"1795450929838-0001-server", "1795450929838-0001-0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11"},
		{"0000000000000-0000-a", "9999999999999-ffff-" + strings.Repeat("z", MaxNodeLen)},
		{"1795450929838-ffff-0195b7d2-7c1e", "1795450929839-0000-0195b7d2-7c1e"},
		{"1795450929838-0001-a", "1795450929838-0001-a-"},
		{"1795450929838-0001-A", "1795450929838-0001-a"},
		{"1795450929838-000A-a", "1795450929838-0001-" + strings.Repeat("z", MaxNodeLen+1)},
		{"", "1-2-3"},
		{"-795450929838-0001-a", "1795450929838-0001-a\x00"},
		{"1795450929838-0001-a b", "17954509298380001-a"},
		{"1795450929838-0001-\u00e9", "1795450929838-0001-a.b:c_d"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, errA := ParseStamp(a)
		sb, errB := ParseStamp(b)
		for _, c := range []struct {
			in  string
			s   Stamp
			err error
		}{{a, sa, errA}, {b, sb, errB}} {
			if c.err != nil {
				if !errors.Is(c.err, ErrStamp) {
					t.Fatalf("ParseStamp(%q): error %v does not wrap ErrStamp", c.in, c.err)
				}
				continue
			}
			if c.s.String() != c.in {
				t.Fatalf("ParseStamp(%q) round-trips to %q", c.in, c.s.String())
			}
			if c.s.Wall < 0 || c.s.Wall > 9_999_999_999_999 || c.s.Node == "" || len(c.s.Node) > MaxNodeLen {
				t.Fatalf("ParseStamp(%q) accepted %+v", c.in, c.s)
			}
		}
		if errA == nil && errB == nil {
			if got, want := sa.Compare(sb), strings.Compare(a, b); got != want {
				t.Fatalf("Compare(%q, %q) = %d, string order says %d", a, b, got, want)
			}
		}
	})
}
