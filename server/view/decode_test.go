package view

import (
	"testing"
	"time"
)

func TestDecoders_ReadWhatTheSchemaAdmits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{`"Gezin Klaproos"`, "Gezin Klaproos"},
		{`"Gezin \"de Linde\"\n"`, "Gezin \"de Linde\"\n"},
		{`"Café \u00e9"`, "Café é"},
		{`null`, ""},
		{``, ""},
		{`12`, ""},
	} {
		if got := sv(tc.in); got != tc.want {
			t.Errorf("sv(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !bv("true") || bv("false") || bv("null") || bv("") {
		t.Error("bv reads only true as true")
	}
	if iv("45") != 45 || iv("30.0") != 30 || iv("null") != 0 {
		t.Error("iv reads whole numbers, also written as floats")
	}
	if got := dv(`"2026-03-02"`).String(); got != "2026-03-02" {
		t.Errorf("dv = %s", got)
	}
	if !dv(`"not a date"`).IsZero() || !dv(`null`).IsZero() {
		t.Error("dv of a bad date is the zero date")
	}
	if got := tv(`"2026-03-02T10:30:00+01:00"`); !got.Equal(time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("tv = %v", got)
	}
	if got := lv(`["moeder","coach"]`); len(got) != 2 || got[1] != "coach" {
		t.Errorf("lv = %v", got)
	}
}
