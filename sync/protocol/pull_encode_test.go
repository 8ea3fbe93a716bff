package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// sameAsEncodingJSON fails t unless AppendPullResponse gives exactly the
// bytes (or the failure) of json.Marshal for r.
func sameAsEncodingJSON(t *testing.T, r *PullResponse) {
	t.Helper()
	want, wantErr := json.Marshal(r)
	prefix := []byte("prefix")
	got, err := AppendPullResponse(prefix, r)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendPullResponse error %v, json.Marshal error %v", err, wantErr)
	}
	if err != nil {
		if string(got) != "prefix" {
			t.Fatalf("on error dst = %q, want it unchanged", got)
		}
		return
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("dst's bytes were not kept: %q", got)
	}
	if got = got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("AppendPullResponse differs from json.Marshal\n got: %s\nwant: %s", got, want)
	}
}

// awkwardValues are raw values each of which encoding/json rewrites or
// refuses, next to plain ones it copies.
var awkwardValues = []string{
	`"plain"`, `12`, `-0.5e+10`, `0`, `true`, `false`, `null`, `[]`, `{}`, `[1,"a",{"b":[null]}]`,
	`{"a":1,"b":{"c":[true,false]}}`, `"\u00e9\n\t\"\\\/"`, `"é ü 中文"`, `"\ud83d\ude00"`,
	` "spaced" `, `[1, 2]`, "{\n\"a\" : 1\n}", `"<b>&</b>"`, "\"\u2028\u2029\"", `"` + "\xe2\x82\xac" + `"`,
	`"\xff invalid utf-8"`, `1.`, `01`, `-`, `+1`, `.5`, `1e`, `tru`, `nul`, `"open`, `"bad \x escape"`,
	`"\u12"`, `[1,]`, `{"a"}`, `{"a":}`, `{,}`, `[1 2]`, `1 2`, ``, ` `, `"ctl ` + "\x01" + `"`, `{"a":1,}`,
	strings.Repeat("[", 150) + strings.Repeat("]", 150), strings.Repeat("[", 150) + strings.Repeat("]", 149),
}

func TestAppendPullResponse_SameAsEncodingJSON(t *testing.T) {
	base := func() PullResponse {
		return PullResponse{
			Changes: []Change{
				{Collection: "contacts", ID: "0190a000-0000-7000-8000-000000000001", Field: "note", Value: json.RawMessage(`"hi"`), HLC: "1795450929838-0001-dev"},
				{Collection: "families", ID: "f", Field: "name", Value: json.RawMessage(`{"a":[1,2]}`), HLC: "h", Base: "b", Scope: "family:f"},
				{Collection: "x", ID: "<&>", Field: "\u2028", HLC: "é\x00\xff", Scope: "s\"\\"},
			},
			Cursor: "eyJ2IjoyfQ", More: true, Evict: []string{"family:a", "<x>"},
			Checksums: map[string]string{"family:b": "00ff", "family:a": "0001", "intake:kempen": "<>"},
			Signals: []Signal{{ID: "s1", Label: "Lang geen contact", LabelEN: "No contact", Severity: "warning",
				About: "trajectory", SubjectID: "t", FamilyID: "f", Version: "v<1>"}, {ID: "s2"}},
			ServerHLC: "1795450929838-0002-server",
		}
	}
	tests := map[string]func(*PullResponse){
		"full":             func(*PullResponse) {},
		"nil changes":      func(r *PullResponse) { r.Changes = nil },
		"empty changes":    func(r *PullResponse) { r.Changes = []Change{} },
		"nil evict":        func(r *PullResponse) { r.Evict = nil },
		"empty evict":      func(r *PullResponse) { r.Evict = []string{} },
		"no checksums":     func(r *PullResponse) { r.Checksums = nil },
		"empty checksums":  func(r *PullResponse) { r.Checksums = map[string]string{} },
		"no signals":       func(r *PullResponse) { r.Signals = nil },
		"empty signals":    func(r *PullResponse) { r.Signals = []Signal{} },
		"last page":        func(r *PullResponse) { r.More = false },
		"zero":             func(r *PullResponse) { *r = PullResponse{} },
		"empty value":      func(r *PullResponse) { r.Changes[0].Value = json.RawMessage{} },
		"nil value":        func(r *PullResponse) { r.Changes[0].Value = nil },
		"cursor escapes":   func(r *PullResponse) { r.Cursor = "a<b>&c\n\u2029" },
		"server hlc bytes": func(r *PullResponse) { r.ServerHLC = "\x7f\x1f" },
	}
	for _, v := range awkwardValues {
		tests["value "+v] = func(r *PullResponse) { r.Changes[1].Value = json.RawMessage(v) }
	}
	for name, tweak := range tests {
		t.Run(name, func(t *testing.T) {
			r := base()
			tweak(&r)
			sameAsEncodingJSON(t, &r)
		})
	}
}

// TestAppendPullResponse_RandomPages compares whole pages of random
// changes, as the store sends them and with random bytes.
func TestAppendPullResponse_RandomPages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		const chars = "abcxyz019-:_ \"\\<>&\n\té\u2028\x00\x7f\xff"
		var b strings.Builder
		for range rng.IntN(12) {
			r := []rune(chars)
			b.WriteRune(r[rng.IntN(len(r))])
		}
		if rng.IntN(10) == 0 {
			b.WriteByte(byte(rng.IntN(256)))
		}
		return b.String()
	}
	value := func() json.RawMessage {
		switch rng.IntN(4) {
		case 0:
			return json.RawMessage(awkwardValues[rng.IntN(len(awkwardValues))])
		case 1:
			v, _ := json.Marshal(text())
			return v
		case 2:
			return json.RawMessage(fmt.Sprint(rng.IntN(1000) - 500))
		}
		v, _ := json.Marshal(map[string]any{text(): []any{text(), rng.Float64(), nil, true}})
		return v
	}
	for i := range 2000 {
		r := PullResponse{Cursor: text(), More: rng.IntN(2) == 0, ServerHLC: text()}
		for range rng.IntN(20) {
			r.Changes = append(r.Changes, Change{Collection: text(), ID: text(), Field: text(), Value: value(), HLC: text(), Base: text(), Scope: text()})
		}
		for range rng.IntN(3) {
			r.Evict = append(r.Evict, text())
		}
		if rng.IntN(2) == 0 {
			r.Checksums = map[string]string{}
			for range rng.IntN(4) {
				r.Checksums[text()] = text()
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { sameAsEncodingJSON(t, &r) })
	}
}

// FuzzAppendPullResponse checks AppendPullResponse against json.Marshal on
// arbitrary values and strings, and plainValue against json.Valid and
// json.Compact: it may send a value through the slow path, but never copy
// one that encoding/json would change or refuse.
func FuzzAppendPullResponse(f *testing.F) {
	for _, v := range awkwardValues {
		f.Add([]byte(v), "contacts", "0190a000-0000-7000-8000-000000000001", "1795450929838-0001-dev", "family:x")
	}
	f.Fuzz(func(t *testing.T, value []byte, collection, id, hlc, scope string) {
		if plainValue(value) {
			var compact bytes.Buffer
			if !json.Valid(value) {
				t.Fatalf("plainValue(%q) but json.Valid says no", value)
			}
			if err := json.Compact(&compact, value); err != nil || !bytes.Equal(compact.Bytes(), value) {
				t.Fatalf("plainValue(%q) but json.Compact gives %q (%v)", value, compact.Bytes(), err)
			}
			if bytes.ContainsAny(value, "<>&\u2028\u2029") {
				t.Fatalf("plainValue(%q) but it holds a character encoding/json escapes", value)
			}
		}
		r := PullResponse{
			Changes:   []Change{{Collection: collection, ID: id, Field: scope, Value: value, HLC: hlc, Scope: scope}},
			Cursor:    id,
			Evict:     []string{scope},
			Checksums: map[string]string{scope: hlc, collection: id},
			ServerHLC: hlc,
		}
		sameAsEncodingJSON(t, &r)
	})
}

// BenchmarkEncodePull compares encoding a page of 5,000 changes with
// encoding/json and with AppendPullResponse.
func BenchmarkEncodePull(b *testing.B) {
	r := PullResponse{Cursor: strings.Repeat("c", 200), Evict: []string{}, ServerHLC: "1795450929838-0002-server",
		Checksums: map[string]string{"family:0190a000-0000-7000-8000-000000000001": "0123456789abcdef"}}
	fields := []string{"name", "phone", "note", "status", "kind", "date", "email", "summary"}
	values := []string{`"Jansen"`, `"+31 6 12345678"`, `"Kort gesprek over school en werk, afspraak volgende week."`, `"open"`,
		`"visit"`, `"2026-11-23"`, `"j.jansen@example.nl"`, `"Gezin met drie kinderen; vader werkt in ploegen."`}
	for i := range 5000 {
		r.Changes = append(r.Changes, Change{Collection: "contacts", ID: fmt.Sprintf("0190a000-0000-7000-8000-%012x", i/8),
			Field: fields[i%8], Value: json.RawMessage(values[i%8]), HLC: "1795450929838-0001-dev-coach-1",
			Scope: "family:0190a000-0000-7000-8000-000000000001"})
	}
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := json.NewEncoder(&buf).Encode(&r); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = AppendPullResponse(buf[:0], &r); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

func TestMarshalPullResponse_AsEncoderWritesIt(t *testing.T) {
	r := PullResponse{Changes: []Change{{Collection: "c", ID: "i", Field: "f", Value: json.RawMessage(` "<v>" `), HLC: "h"}},
		Cursor: "c", Evict: []string{}, ServerHLC: "s"}
	for range 3 { // pooled buffers are reused
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(&r); err != nil {
			t.Fatal(err)
		}
		got, release, err := MarshalPullResponse(&r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("MarshalPullResponse = %q, want %q", got, want.Bytes())
		}
		release()
		r.Changes = append(r.Changes, r.Changes[0])
	}
	r.Changes[0].Value = json.RawMessage(`{`)
	if _, _, err := MarshalPullResponse(&r); err == nil {
		t.Fatal("an invalid value encoded without an error")
	}
}
