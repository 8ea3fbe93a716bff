package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/samenplan/samenplan"
)

// referenceDecodePush is DecodePush as it was before the hand-written
// decoder (encoding/json, strict), kept whole here as the yardstick: the
// new decoder must answer every input exactly as this one does.
func referenceDecodePush(r io.Reader) (PushRequest, error) {
	var req PushRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return PushRequest{}, samenplan.Errorf(samenplan.EINVALID, "malformed JSON body: %s", referenceProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return PushRequest{}, samenplan.Errorf(samenplan.EINVALID, "malformed JSON body: trailing data after the object")
	}
	switch {
	case req.DeviceID == "":
		return PushRequest{}, samenplan.Errorf(samenplan.EINVALID, "device_id is required")
	case req.BatchID == "" || len(req.BatchID) > MaxBatchIDLen:
		return PushRequest{}, samenplan.Errorf(samenplan.EINVALID, "batch_id must be 1..%d characters", MaxBatchIDLen)
	case len(req.Changes) > MaxBatch:
		return PushRequest{}, samenplan.Errorf(samenplan.EINVALID, "a batch holds at most %d changes, got %d", MaxBatch, len(req.Changes))
	}
	return req, nil
}

func referenceProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q: want %s", clip(typ.Field), typ.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of body"
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + clip(name) // names echoed at most 64 bytes long, since 2026-11-23
	}
	return "cannot decode"
}

// sameAsReference fails t unless DecodePush and the reference decoder give
// the same request, or errors with the same code and message, for body.
func sameAsReference(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := DecodePush(bytes.NewReader(body))
	want, wantErr := referenceDecodePush(bytes.NewReader(body))
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %q:\n got error %v\nwant error %v", body, gotErr, wantErr)
	}
	if wantErr != nil {
		if samenplan.ErrorCode(gotErr) != samenplan.ErrorCode(wantErr) || gotErr.Error() != wantErr.Error() {
			t.Fatalf("body %q:\n got error %q (%s)\nwant error %q (%s)", body,
				gotErr, samenplan.ErrorCode(gotErr), wantErr, samenplan.ErrorCode(wantErr))
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\n got %#v\nwant %#v", body, got, want)
	}
}

const okChange = `{"collection":"contacts","id":"0b7e3c1e-2f7a-4c55-9a77-1c2d3e4f5a6b","field":"note","value":"hi","hlc":"1795450929838-0001-d"}`

// tricky are inputs where encoding/json has a quirk the fast path must
// either reproduce or leave to it.
var tricky = []string{
	`{"device_id":"d","batch_id":"b","schema_version":1,"changes":[` + okChange + `]}`,
	"\t\r\n {\"device_id\" :\"d\" , \"batch_id\":\"b\",\"schema_version\":2,\"changes\":[ " + okChange + " , {} ]} \n",
	`{"device_id":"d","batch_id":"b"}`,
	`{"device_id":"d","batch_id":"b","changes":[]}`,
	`{"device_id":"d","batch_id":"b","changes":null}`,
	`{"device_id":"d","batch_id":"b","changes":[null]}`,
	`{"device_id":"d","batch_id":"b","changes":[{}]}`,
	`{}`, `null`, `[]`, `"x"`, `1`, `1 2`, `{} x`, `{}{}`, ``, ` `, `{`, `{"device_id":`,
	// Keys: case folding, duplicates, unknown, escaped.
	`{"DEVICE_ID":"d","Batch_Id":"b"}`,
	`{"device_id":"d","batch_id":"b","changes":[{"COLLECTION":"c","Value":1}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"ſcope":"s"}]}`,
	`{"device_id":"a","device_id":"d","batch_id":"b"}`,
	`{"device_id":"d","batch_id":"b","changes":[{"id":"x"}],"changes":[{"field":"f"}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":[1],"value":{"a":2}}]}`,
	`{"device_id":"d","batch_id":"b","extra":1}`,
	`{"device_id":"d","batch_id":"b","changes":[{"extra":1}]}`,
	`{"device_\u0069d":"d","batch_id":"b"}`,
	// Strings: escapes, invalid UTF-8, control characters, nulls.
	`{"device_id":"d\u00e9\n","batch_id":"b"}`,
	`{"device_id":"\ud800","batch_id":"b"}`,
	"{\"device_id\":\"d\xff\",\"batch_id\":\"b\"}",
	"{\"device_id\":\"d\x01\",\"batch_id\":\"b\"}",
	`{"device_id":"dé","batch_id":"b"}`,
	`{"device_id":null,"batch_id":"b"}`,
	`{"device_id":"d","batch_id":"b","changes":[{"id":null,"hlc":1}]}`,
	`{"device_id":"d","batch_id":"` + strings.Repeat("b", 64) + `"}`,
	`{"device_id":"d","batch_id":"` + strings.Repeat("b", 65) + `"}`,
	// Numbers.
	`{"device_id":"d","batch_id":"b","schema_version":-0}`,
	`{"device_id":"d","batch_id":"b","schema_version":1.0}`,
	`{"device_id":"d","batch_id":"b","schema_version":1e2}`,
	`{"device_id":"d","batch_id":"b","schema_version":01}`,
	`{"device_id":"d","batch_id":"b","schema_version":9223372036854775807}`,
	`{"device_id":"d","batch_id":"b","schema_version":9223372036854775808}`,
	`{"device_id":"d","batch_id":"b","schema_version":"1"}`,
	`{"device_id":"d","batch_id":"b","schema_version":true}`,
	// Raw values.
	`{"device_id":"d","batch_id":"b","changes":[{"value":null}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value": {"a" : [1, -2.5e+3, true, false, null, "\u00e9\"\\\/\b\f\n\r\t"]} }]}`,
	"{\"device_id\":\"d\",\"batch_id\":\"b\",\"changes\":[{\"value\":\"\xff\xfe\"}]}",
	"{\"device_id\":\"d\",\"batch_id\":\"b\",\"changes\":[{\"value\":\"a\x1fb\"}]}",
	`{"device_id":"d","batch_id":"b","changes":[{"value":"\x"}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":"\u12"}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":01}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":1.}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":-}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":tru}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":[1,]}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":{"a":1,}}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]}`,
	`{"device_id":"d","batch_id":"b","changes":[{"value":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}]}`,
	// Shapes.
	`{"device_id":"d","batch_id":"b","changes":{}}`,
	`{"device_id":"d","batch_id":"b","changes":["x"]}`,
	`{"device_id":"d","batch_id":"b","changes":[[]]}`,
	`{"device_id":"d","batch_id":"b","changes":[{}],}`,
	`{"device_id":"d","batch_id":"b",}`,
	`{"device_id":"d" "batch_id":"b"}`,
}

func TestDecodePush_SameAsReference(t *testing.T) {
	for _, body := range tricky {
		sameAsReference(t, []byte(body))
	}
	// A batch at and over the limit.
	for _, n := range []int{MaxBatch, MaxBatch + 1} {
		var b strings.Builder
		b.WriteString(`{"device_id":"d","batch_id":"b","changes":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(okChange)
		}
		b.WriteString(`]}`)
		sameAsReference(t, []byte(b.String()))
	}
}

// The fast path must be the one a client's push takes: a body as the Go
// client encodes it (json.Marshal, HTML escapes in values and all).
func TestDecodePush_ClientBodyTakesTheFastPath(t *testing.T) {
	req := PushRequest{DeviceID: "d1", BatchID: "b1", SchemaVersion: 3}
	for i, v := range []any{"<b>Tom & Jerry</b>\n", 60, []string{"moeder", "zoon"}, nil, true, map[string]any{"a": 1.5}} {
		val, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		req.Changes = append(req.Changes, Change{Collection: "contacts", ID: fmt.Sprintf("id-%d", i%2), Field: "note",
			Value: val, HLC: fmt.Sprintf("1795450929838-%04x-d1", i), Base: "1795450929838-0000-d1"})
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := fastPush(body)
	if !ok {
		t.Fatalf("fastPush(%s) gave up", body)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("fastPush:\n got %#v\nwant %#v", got, req)
	}
	sameAsReference(t, body)
}

// The request must not point into the pooled read buffer: a later body read
// into the same buffer must leave it unchanged.
func TestDecodePush_RequestOutlivesTheReadBuffer(t *testing.T) {
	first := []byte(`{"device_id":"d","batch_id":"b","changes":[` + okChange + `]}`)
	req, err := DecodePush(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := referenceDecodePush(bytes.NewReader(first))
	for i := 0; i < 10; i++ {
		other := bytes.Repeat([]byte("x"), len(first))
		DecodePush(bytes.NewReader(other))
	}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("request changed after later reads:\n got %#v\nwant %#v", req, want)
	}
}

// A read error is met as the reference decoder met it: after the same bytes.
func TestDecodePush_ReadErrorSameAsReference(t *testing.T) {
	full := `{"device_id":"d","batch_id":"b","changes":[` + okChange + `]}`
	for _, cut := range []int{0, 5, len(full) - 1, len(full)} {
		errRead := errors.New("connection reset")
		mk := func() io.Reader {
			return io.MultiReader(strings.NewReader(full[:cut]), iotest.ErrReader(errRead))
		}
		_, gotErr := DecodePush(mk())
		_, wantErr := referenceDecodePush(mk())
		if gotErr == nil || wantErr == nil || gotErr.Error() != wantErr.Error() {
			t.Errorf("cut %d: got %v, want %v", cut, gotErr, wantErr)
		}
	}
}

// FuzzDecodePush_SameAsReference is the differential fuzz test: whatever
// the bytes, DecodePush answers as the reference decoder does.
func FuzzDecodePush_SameAsReference(f *testing.F) {
	for _, s := range tricky {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAsReference(t, body)
	})
}

// BenchmarkDecodePush decodes a push of 1,000 contact fields (125 contacts
// × 8, as server/bench_test.go pushes them) with the reference decoder and
// with DecodePush.
func BenchmarkDecodePush(b *testing.B) {
	req := PushRequest{DeviceID: "0b7e3c1e-2f7a-4c55-9a77-1c2d3e4f5a6b", BatchID: "c3d4e5f6-2f7a-4c55-9a77-1c2d3e4f5a6b", SchemaVersion: 1}
	note := strings.Repeat("Huisbezoek: gesprek met moeder over de week, afspraken rond school. ", 3)
	for i := 0; i < 125; i++ {
		id := fmt.Sprintf("%08x-2f7a-4c55-9a77-1c2d3e4f5a6b", i)
		for j, v := range []any{id, id, "2026-03-02T10:00:00+01:00", "home_visit", 60, []string{"moeder", "zoon"}, note, "Volgende week bellen."} {
			val, _ := json.Marshal(v)
			req.Changes = append(req.Changes, Change{Collection: "contacts", ID: id, Field: fmt.Sprintf("field_%d", j), Value: val,
				HLC: fmt.Sprintf("1795450929838-%04x-%s", i*8+j, req.DeviceID)})
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name   string
		decode func(io.Reader) (PushRequest, error)
	}{{"reference", referenceDecodePush}, {"DecodePush", DecodePush}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if got, err := d.decode(bytes.NewReader(body)); err != nil || len(got.Changes) != 1000 {
					b.Fatalf("decode: %v, %d changes", err, len(got.Changes))
				}
			}
		})
	}
}
