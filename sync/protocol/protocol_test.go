package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/samenplan/samenplan"
)

func TestDecodePush(t *testing.T) {
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"minimal", `{"device_id":"d","batch_id":"b","schema_version":1,"changes":[]}`, true},
		{"change", `{"device_id":"d","batch_id":"b","schema_version":1,"changes":[{"collection":"contacts","id":"x","field":"note","value":"hi","hlc":"1795450929838-0001-d"}]}`, true},
		{"malformed", `{"device_id":`, false},
		{"empty", ``, false},
		{"unknown field", `{"device_id":"d","batch_id":"b","extra":1}`, false},
		{"trailing data", `{"device_id":"d","batch_id":"b"} {}`, false},
		{"no device", `{"batch_id":"b"}`, false},
		{"no batch", `{"device_id":"d"}`, false},
		{"long batch id", `{"device_id":"d","batch_id":"` + strings.Repeat("b", 65) + `"}`, false},
		{"changes not a list", `{"device_id":"d","batch_id":"b","changes":{}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodePush(strings.NewReader(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("DecodePush = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && samenplan.ErrorCode(err) != samenplan.EINVALID {
				t.Fatalf("code %q, want invalid", samenplan.ErrorCode(err))
			}
		})
	}
}

func TestDecodePush_RefusesOversizedBatch(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"device_id":"d","batch_id":"b","changes":[`)
	for i := 0; i <= MaxBatch; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{}`)
	}
	b.WriteString(`]}`)
	if _, err := DecodePush(strings.NewReader(b.String())); samenplan.ErrorCode(err) != samenplan.EINVALID {
		t.Fatalf("DecodePush(%d changes) = %v, want invalid", MaxBatch+1, err)
	}
}

func TestDecodePull_DefaultsAndLimits(t *testing.T) {
	req, err := DecodePull(strings.NewReader(`{"device_id":"d","schema_version":1}`))
	if err != nil || req.Limit != DefaultLimit {
		t.Fatalf("DecodePull = %+v, %v; want limit %d", req, err, DefaultLimit)
	}
	for _, body := range []string{`{"device_id":"d","limit":-1}`, `{"device_id":"d","limit":5001}`, `{"limit":1}`, `[]`} {
		if _, err := DecodePull(strings.NewReader(body)); samenplan.ErrorCode(err) != samenplan.EINVALID {
			t.Errorf("DecodePull(%s) = %v, want invalid", body, err)
		}
	}
}

// The decoders face the network: whatever the bytes, they return an
// invalid error, or a request within every limit that survives a round
// trip (encoded again, it decodes to the same request), never panic.
func FuzzDecodePush(f *testing.F) {
	f.Add(`{"device_id":"d","batch_id":"b","schema_version":1,"changes":[{"collection":"contacts","id":"x","field":"note","value":"hi","hlc":"1795450929838-0001-d"}]}`)
	f.Add(`{"device_id":`)
	f.Add(`{"changes":[{"value":{"a":[1,2,{"b":null}]}}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := DecodePush(strings.NewReader(body))
		if err != nil {
			if samenplan.ErrorCode(err) != samenplan.EINVALID || samenplan.ErrorMessage(err) == "" {
				t.Fatalf("DecodePush: %v, want an invalid error with a message", err)
			}
			return
		}
		if req.DeviceID == "" || req.BatchID == "" || len(req.BatchID) > MaxBatchIDLen || len(req.Changes) > MaxBatch {
			t.Fatalf("DecodePush(%q) accepted device %q, batch %q, %d changes", body, req.DeviceID, req.BatchID, len(req.Changes))
		}
		roundTrip(t, body, req, func(b []byte) (any, error) { return DecodePush(bytes.NewReader(b)) })
	})
}

func FuzzDecodePull(f *testing.F) {
	f.Add(`{"device_id":"d","schema_version":1,"cursor":"","limit":10,"held_hash":"00","refetch":["family:x"]}`)
	f.Add(`{"limit":1e99}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := DecodePull(strings.NewReader(body))
		if err != nil {
			if samenplan.ErrorCode(err) != samenplan.EINVALID || samenplan.ErrorMessage(err) == "" {
				t.Fatalf("DecodePull: %v, want an invalid error with a message", err)
			}
			return
		}
		if req.DeviceID == "" || req.Limit < 1 || req.Limit > MaxPullLimit || len(req.Refetch) > 1000 {
			t.Fatalf("DecodePull(%q) accepted device %q, limit %d, %d refetch scopes", body, req.DeviceID, req.Limit, len(req.Refetch))
		}
		roundTrip(t, body, req, func(b []byte) (any, error) { return DecodePull(bytes.NewReader(b)) })
	})
}

// roundTrip checks that req, decoded from body, encodes (its raw values
// are valid JSON) and decodes again to a request that encodes the same.
func roundTrip(t *testing.T, body string, req any, decode func([]byte) (any, error)) {
	t.Helper()
	enc, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("%q decoded to a request that does not encode: %v", body, err)
	}
	again, err := decode(enc)
	if err != nil {
		t.Fatalf("%q decoded, but its encoding %q does not: %v", body, enc, err)
	}
	enc2, err := json.Marshal(again)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("round trip of %q: %s, then %s (%v)", body, enc, enc2, err)
	}
}

// TestDecodePush_EchoesAnUnknownNameOnlyClipped: an error names an unknown
// field so it can be found, but not a whole body's worth of it.
func TestDecodePush_EchoesAnUnknownNameOnlyClipped(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	_, err := DecodePush(strings.NewReader(`{"device_id":"d","batch_id":"b","` + long + `":1,"changes":[]}`))
	if samenplan.ErrorCode(err) != samenplan.EINVALID {
		t.Fatalf("err = %v, want invalid", err)
	}
	if msg := err.Error(); len(msg) > 200 || !strings.Contains(msg, "unknown field") {
		t.Fatalf("the error is %d bytes: %.120s…", len(msg), msg)
	}
}
