// Package protocol holds the wire types of push and pull (docs/protocol.md),
// shared by the server and the Go client, and their strict decoders.
package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/samenplan/samenplan"
)

// Limits of one request.
const (
	MaxBatch      = 5000 // changes in one push
	MaxPullLimit  = 5000 // changes in one pull page
	DefaultLimit  = 1000
	MaxBatchIDLen = 64
)

// Change is one field write on the wire. HLC is the writer's stamp in wire
// form; Base, when given, is the stamp of the value the writer saw before it
// wrote (it lets the server tell a concurrent edit from a later one). Scope is
// set by the server on pulled changes only: the scope through which the
// device receives the row (a referral linked to a family can arrive twice,
// once per scope).
type Change struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Field      string          `json:"field"`
	Value      json.RawMessage `json:"value"`
	HLC        string          `json:"hlc"`
	Base       string          `json:"base,omitempty"`
	Scope      string          `json:"scope,omitempty"`
}

// PushRequest is the body of POST /v1/sync/push.
type PushRequest struct {
	DeviceID      string   `json:"device_id"`
	BatchID       string   `json:"batch_id"`
	SchemaVersion int      `json:"schema_version"`
	Changes       []Change `json:"changes"`
}

// Problem names one change of a batch that was not applied, by its index.
type Problem struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// PushResponse is the answer to a push. Applied counts changes that became a
// field's value; Ignored counts changes that were logged but lost to a later
// write, or were already known. Rejected changes were not stored at all;
// quarantined ones were kept aside for the region's coordinator.
type PushResponse struct {
	BatchID     string    `json:"batch_id"`
	Applied     int       `json:"applied"`
	Ignored     int       `json:"ignored"`
	Rejected    []Problem `json:"rejected"`
	Quarantined []Problem `json:"quarantined"`
	ServerHLC   string    `json:"server_hlc"`
}

// PullRequest is the body of POST /v1/sync/pull. Cursor is the opaque value
// of the previous response ("" the first time). HeldHash proves which scopes
// the device still holds after an eviction (see ScopesHash). Refetch names
// scopes whose checksum did not match: they are sent again in full.
type PullRequest struct {
	DeviceID      string   `json:"device_id"`
	SchemaVersion int      `json:"schema_version"`
	Cursor        string   `json:"cursor"`
	Limit         int      `json:"limit"`
	HeldHash      string   `json:"held_hash,omitempty"`
	Refetch       []string `json:"refetch,omitempty"`
}

// PullResponse is the answer to a pull. Changes hold the current winning
// value of every field changed in the device's scopes since the cursor.
// Checksums are sent with the last page (More false); so are, for a coach,
// the fired Signals of the families she holds: the whole current list,
// which replaces the one the device has (absent on the last page: none).
type PullResponse struct {
	Changes   []Change          `json:"changes"`
	Cursor    string            `json:"cursor"`
	More      bool              `json:"more"`
	Evict     []string          `json:"evict"`
	Checksums map[string]string `json:"checksums,omitempty"`
	Signals   []Signal          `json:"signals,omitempty"`
	ServerHLC string            `json:"server_hlc"`
}

// Signal is a fired signal of the region's signal rules (signals.yaml)
// about a running trajectory or an undecided referral of a family, as a
// coach's devices receive it. Label is Dutch, LabelEN English; Version is
// the hash of the signals file that fired it. Signals are server-computed
// and read-only: a device never pushes them.
type Signal struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	LabelEN  string `json:"label_en,omitempty"`
	Severity string `json:"severity"` // info, warning, critical
	// About is "trajectory" or "referral"; SubjectID that row's id.
	About     string `json:"about"`
	SubjectID string `json:"subject_id"`
	FamilyID  string `json:"family_id"`
	Version   string `json:"version"`
}

// DecodePush decodes a push body strictly: unknown fields, trailing data,
// an empty or oversized batch are errors with code invalid. It reads r to
// its end; the request keeps no reference to what it read.
func DecodePush(r io.Reader) (PushRequest, error) {
	req, err := decodePush(r)
	if err != nil {
		return PushRequest{}, err
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

// DecodePull decodes a pull body strictly.
func DecodePull(r io.Reader) (PullRequest, error) {
	var req PullRequest
	if err := decodeStrict(r, &req); err != nil {
		return PullRequest{}, err
	}
	switch {
	case req.DeviceID == "":
		return PullRequest{}, samenplan.Errorf(samenplan.EINVALID, "device_id is required")
	case req.Limit < 0 || req.Limit > MaxPullLimit:
		return PullRequest{}, samenplan.Errorf(samenplan.EINVALID, "limit must be 0..%d", MaxPullLimit)
	case len(req.Refetch) > 1000:
		return PullRequest{}, samenplan.Errorf(samenplan.EINVALID, "refetch names at most 1000 scopes")
	}
	if req.Limit == 0 {
		req.Limit = DefaultLimit
	}
	return req, nil
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return samenplan.Errorf(samenplan.EINVALID, "malformed JSON body: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return samenplan.Errorf(samenplan.EINVALID, "malformed JSON body: trailing data after the object")
	}
	return nil
}

// jsonProblem describes a decode error without echoing the body back.
func jsonProblem(err error) string {
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
		return "unknown field " + clip(name)
	}
	return "cannot decode"
}

// clip cuts a name from the body to 64 bytes: an error echoes what was
// sent only as far as it helps to find it.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
