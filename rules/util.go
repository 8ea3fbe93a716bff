package rules

import (
	"sort"
	"time"
)

func sortStrings(s []string) { sort.Strings(s) }

// ParseTime parses an RFC 3339 timestamp.
func ParseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }
