package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/schema"
)

// cursorVersion is the version of the cursor format. Version 2 fills new
// scopes in key order (K) instead of log order.
const cursorVersion = 2

// Cursor bounds.
const (
	maxCursorLen    = 256 << 10
	maxCursorScopes = 5000
)

// cursor is a device's pull position. The held scopes H are delivered up to
// log seq S. The pending scopes P (being filled) are delivered in key order
// (scope, collection, id, field) up to and including K, each field as of
// some snapshot at or after seq F; so what changed after F is delivered
// again by walking the log from F. K is empty before the first key. On the
// wire a cursor is the base64url (unpadded) of its JSON; devices treat it
// as opaque.
type cursor struct {
	V int      `json:"v"`
	R string   `json:"r"`
	S int64    `json:"s"`
	F int64    `json:"f"`
	K []string `json:"k"`
	H []string `json:"h"`
	P []string `json:"p"`
}

func (c cursor) encode() string {
	buf, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain struct of strings and numbers
	}
	return base64.RawURLEncoding.EncodeToString(buf)
}

// decodeCursor parses a cursor of region; "" is the start. Anything that
// does not decode exactly, names a scope twice or is inconsistent is an
// *samenplan.Error with code invalid.
func decodeCursor(s, region string) (cursor, error) {
	if s == "" {
		return cursor{V: cursorVersion, R: region}, nil
	}
	bad := func(why string) (cursor, error) {
		return cursor{}, samenplan.Errorf(samenplan.EINVALID, "Ongeldige cursor / invalid cursor (%s); pull again without one", why)
	}
	if len(s) > maxCursorLen {
		return bad("too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad("not base64url")
	}
	var c cursor
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return bad("not a cursor")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("trailing data")
	}
	switch {
	case c.V != cursorVersion:
		return bad("unknown version")
	case c.R != region:
		return bad("cursor of another region")
	case c.S < 0 || c.F < 0:
		return bad("negative position")
	case len(c.H)+len(c.P) > maxCursorScopes:
		return bad("too many scopes")
	case len(c.P) == 0 && (c.F != 0 || c.K != nil):
		return bad("fill position without pending scopes")
	case c.K != nil && len(c.K) != 4:
		return bad("bad fill key")
	}
	seen := make(map[string]bool, len(c.H)+len(c.P))
	for _, list := range [][]string{c.H, c.P} {
		for _, sc := range list {
			if seen[sc] || !validScope(sc, region) {
				return bad("bad scope list")
			}
			seen[sc] = true
		}
	}
	return c, nil
}

// validScope reports whether s names a scope of region.
func validScope(s, region string) bool {
	if f, ok := strings.CutPrefix(s, schema.FamilyScopePrefix); ok {
		return schema.ValidID(f)
	}
	return s == schema.IntakeScope(region) || s == RegionScopePrefix+region
}
