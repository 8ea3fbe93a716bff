package crdt

import (
	"sort"
	"strconv"
)

// FieldSum is the contribution of one field's winning write to its scope's
// checksum: FNV-1a (64 bit) of collection, id, field and stamp, separated by
// NUL bytes. Both server and clients compute it the same way.
func FieldSum(collection, id, field, stamp string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, s := range [...]string{collection, id, field, stamp} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h ^= 0
		h *= prime
	}
	return h
}

// FormatSum renders a scope checksum (the XOR of its FieldSums) as 16 hex digits.
func FormatSum(sum uint64) string {
	s := strconv.FormatUint(sum, 16)
	for len(s) < 16 {
		s = "0" + s
	}
	return s
}

// ScopesHash is the proof of the scopes a device holds: FNV-1a (64 bit) of
// the sorted scope names joined by newlines, as 16 hex digits.
func ScopesHash(scopes []string) string {
	sorted := append([]string(nil), scopes...)
	sort.Strings(sorted)
	var h uint64 = 14695981039346656037
	for i, s := range sorted {
		if i > 0 {
			h ^= '\n'
			h *= 1099511628211
		}
		for j := 0; j < len(s); j++ {
			h ^= uint64(s[j])
			h *= 1099511628211
		}
	}
	return FormatSum(h)
}
