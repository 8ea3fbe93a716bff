package schema

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzFastJSON checks that the allocation-free checks agree with
// encoding/json on every input they accept.
func FuzzFastJSON(f *testing.F) {
	for _, s := range []string{`"a"`, `""`, `"a\"b"`, `"\u00e9"`, "\"\x01\"", `"é"`, "\"\xff\"",
		`[]`, `["a","b"]`, `["a", "b"]`, `[null]`, `["a",]`, `["a\\",1]`,
		`0`, `-0`, `1.5`, `1e3`, `1E+3`, `01`, `1.`, `.5`, `-`, `1e400`, `+1`, `0x10`, ` 1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if s, ok := simpleString(v); ok {
			var want string
			if err := json.Unmarshal(v, &want); err != nil || s != want {
				t.Fatalf("simpleString(%q) = %q, json says %q, %v", v, s, want, err)
			}
		}
		if items, ok := simpleList(v); ok {
			var want []string
			if err := json.Unmarshal(v, &want); err != nil || len(items) != len(want) {
				t.Fatalf("simpleList(%q) = %q, json says %q, %v", v, items, want, err)
			}
			for i := range want {
				if items[i] != want[i] {
					t.Fatalf("simpleList(%q) = %q, json says %q", v, items, want)
				}
			}
		}
		n, ok := parseNumber(v)
		var want float64
		err := json.Unmarshal(v, &want)
		if len(v) > 0 && bytes.Equal(bytes.TrimSpace(v), v) && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
			if ok != (err == nil) || (ok && n != want) {
				t.Fatalf("parseNumber(%q) = %v, %v; json says %v, %v", v, n, ok, want, err)
			}
		} else if ok {
			t.Fatalf("parseNumber(%q) accepted %v", v, n)
		}
	})
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f11":  true,
		"0195B7D2-7c1e-7a4e-9b1f-2a1d4c0e9f11":  false,
		"0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f1":   false,
		"0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9f111": false,
		"0195b7d2x7c1e-7a4e-9b1f-2a1d4c0e9f11":  false,
		"0195b7d2-7c1e-7a4e-9b1f-2a1d4c0e9g11":  false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
