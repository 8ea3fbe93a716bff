package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

func TestPull_CoachReceivesOnlyHerFamily(t *testing.T) {
	e := newTestEnv(t)
	c := e.login("coach.a")
	var resp protocol.PullResponse
	if status := c.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version}, &resp); status != http.StatusOK {
		t.Fatalf("pull: %d", status)
	}
	if len(resp.Changes) == 0 {
		t.Fatal("coach received nothing")
	}
	for _, ch := range resp.Changes {
		if ch.Scope != schema.FamilyScope(e.families["coach.a"]) && ch.Scope != schema.IntakeScope("kempen") {
			t.Fatalf("coach.a received %s/%s in scope %s", ch.Collection, ch.ID, ch.Scope)
		}
	}
}

// caseState is everything a push can change in the case data of every
// region: the winning write of each field, the top of each change log, the
// quarantine and the conflicts.
type caseState struct {
	fields     map[string]string // "<region> <collection>/<id>/<field>" → "<value> @ <hlc>"
	seq        map[string]int64
	quarantine int
	conflicts  int
}

func fieldKeyOf(region string, c protocol.Change) string {
	return region + " " + c.Collection + "/" + c.ID + "/" + c.Field
}

func (e *testEnv) caseState() caseState {
	e.t.Helper()
	ctx := context.Background()
	s := caseState{fields: map[string]string{}, seq: map[string]int64{}}
	for _, name := range e.stores.Regions() {
		r, _ := e.stores.Region(name)
		if err := r.Scan(ctx, func(c protocol.Change) error {
			s.fields[fieldKeyOf(name, c)] = string(c.Value) + " @ " + c.HLC
			return nil
		}); err != nil {
			e.t.Fatal(err)
		}
		seq, err := r.MaxSeq(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		s.seq[name] = seq
		q, err := r.Quarantine(ctx, "")
		if err != nil {
			e.t.Fatal(err)
		}
		cs, err := r.Conflicts(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		s.quarantine += len(q)
		s.conflicts += len(cs)
	}
	return s
}

// changedKeys returns, sorted, the fields whose winner differs between s and after.
func (s caseState) changedKeys(after caseState) []string {
	var out []string
	for k, v := range after.fields {
		if s.fields[k] != v {
			out = append(out, k)
		}
	}
	for k := range s.fields {
		if _, ok := after.fields[k]; !ok {
			out = append(out, k+" (gone)")
		}
	}
	sort.Strings(out)
	return out
}

// change returns a write by c's device stamped now.
func (c *testClient) change(collection, id, field string, value any) protocol.Change {
	return protocol.Change{Collection: collection, ID: id, Field: field, Value: jsonValue(value), HLC: c.clock.Now().String()}
}

func (c *testClient) pushRequest(changes ...protocol.Change) protocol.PushRequest {
	return protocol.PushRequest{DeviceID: c.device, BatchID: newUUID(), SchemaVersion: schema.Version, Changes: changes}
}

// raw sends body with the given bearer token ("" for none) and returns the
// status and the body of the answer. Unlike do it tolerates a connection the
// server closed after answering early (a refused oversized body).
func (c *testClient) raw(method, path, token string, body []byte) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	buf, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, buf
}

// newContact returns the changes creating a contact on trajectory traj.
func (c *testClient) newContact(traj, note string) []protocol.Change {
	id := newUUID()
	return []protocol.Change{
		c.change("contacts", id, "trajectory_id", traj),
		c.change("contacts", id, "mode", "home_visit"),
		c.change("contacts", id, "note", note),
	}
}

// signingKey returns the kid and secret of the key the server signs with.
func (e *testEnv) signingKey() (string, []byte) {
	e.t.Helper()
	var kid string
	var secret []byte
	if err := e.stores.Main.Reader.QueryRow(`SELECT kid, secret FROM signing_keys WHERE retired_at IS NULL
		ORDER BY created_at DESC, kid DESC LIMIT 1`).Scan(&kid, &secret); err != nil {
		e.t.Fatal(err)
	}
	return kid, secret
}

// forgeToken signs an access token for username on device with method and
// key, valid from iat for ttl. It is how the bad-token cases are built, so
// that each differs from a good token in one thing only.
func (e *testEnv) forgeToken(username, device string, method jwt.SigningMethod, kid string, key any, iat time.Time, ttl time.Duration) string {
	e.t.Helper()
	u := e.users[username]
	claims := auth.Claims{
		Username: u.Username, Role: u.Role, Regions: u.Regions, Device: device,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: auth.Issuer, Subject: u.ID, ID: newUUID(),
			IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(iat.Add(ttl)),
		},
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestForgedToken_WithTheServerKeyIsAccepted(t *testing.T) {
	// The control of the bad-token cases: a token forged like them but with
	// the right key, algorithm and lifetime works.
	e := newTestEnv(t)
	c := e.login("coach.a")
	kid, secret := e.signingKey()
	tok := e.forgeToken("coach.a", c.device, jwt.SigningMethodHS256, kid, secret, time.Now(), time.Minute)
	body := jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version})
	if status, buf := c.raw("POST", "/v1/sync/pull", tok, body); status != http.StatusOK {
		t.Fatalf("pull with a well-forged token: %d %s", status, buf)
	}
}

// badInput is one request that must be refused, whole or in part, leaving
// the case data as it was except for the changes listed in applied.
type badInput struct {
	name string
	user string // who sends it (a fresh login); coach.a when empty
	pull bool   // POST /v1/sync/pull instead of push
	// prepare runs before the state is read; it returns the body to send.
	// changes, when the body is a push, are its changes (for applied).
	prepare func(t *testing.T, e *testEnv, c *testClient) (body []byte, changes []protocol.Change)
	// token replaces the client's access token; "-" sends none.
	token func(t *testing.T, e *testEnv, c *testClient) string

	status int
	code   string // of the error body, when status is not 200
	// For a push answered 200: the problems by index, and which changes apply.
	rejected []protocol.Problem // Message is not compared, only that it is set
	applied  []int
	check    func(t *testing.T, e *testEnv, answer []byte)
}

func pushBody(req protocol.PushRequest) ([]byte, []protocol.Change) {
	return jsonValue(req), req.Changes
}

func onePush(build func(e *testEnv, c *testClient) []protocol.Change) func(*testing.T, *testEnv, *testClient) ([]byte, []protocol.Change) {
	return func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
		return pushBody(c.pushRequest(build(e, c)...))
	}
}

func pullBody(_ *testing.T, _ *testEnv, c *testClient) ([]byte, []protocol.Change) {
	return jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version}), nil
}

func problems(pairs ...any) []protocol.Problem {
	var out []protocol.Problem
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, protocol.Problem{Index: pairs[i].(int), Code: pairs[i+1].(string)})
	}
	return out
}

// tokenCases are the bad access tokens, each refused with 401 unauthorized.
var tokenCases = []struct {
	name  string
	token func(t *testing.T, e *testEnv, c *testClient) string
}{
	{"no token", func(*testing.T, *testEnv, *testClient) string { return "-" }},
	{"garbage token", func(*testing.T, *testEnv, *testClient) string { return "not.a.jwt" }},
	{"expired token", func(t *testing.T, e *testEnv, c *testClient) string {
		kid, secret := e.signingKey()
		return e.forgeToken("coach.a", c.device, jwt.SigningMethodHS256, kid, secret, time.Now().Add(-time.Hour), 15*time.Minute)
	}},
	{"token signed with another key", func(t *testing.T, e *testEnv, c *testClient) string {
		kid, _ := e.signingKey()
		other := make([]byte, 64)
		rand.Read(other)
		return e.forgeToken("coach.a", c.device, jwt.SigningMethodHS256, kid, other, time.Now(), time.Minute)
	}},
	{"token with an unknown kid", func(t *testing.T, e *testEnv, c *testClient) string {
		_, secret := e.signingKey()
		return e.forgeToken("coach.a", c.device, jwt.SigningMethodHS256, "no-such-kid", secret, time.Now(), time.Minute)
	}},
	{"alg none", func(t *testing.T, e *testEnv, c *testClient) string {
		kid, _ := e.signingKey()
		return e.forgeToken("coach.a", c.device, jwt.SigningMethodNone, kid, jwt.UnsafeAllowNoneSignatureType, time.Now(), time.Minute)
	}},
	{"alg HS512 with the server key", func(t *testing.T, e *testEnv, c *testClient) string {
		kid, secret := e.signingKey()
		return e.forgeToken("coach.a", c.device, jwt.SigningMethodHS512, kid, secret, time.Now(), time.Minute)
	}},
}

func badInputs() []badInput {
	note := func(n int) string { return strings.Repeat("x", n) }
	cases := []badInput{
		{name: "malformed JSON", prepare: func(*testing.T, *testEnv, *testClient) ([]byte, []protocol.Change) {
			return []byte(`{"device_id": "x", "changes": [`), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "not an object", prepare: func(*testing.T, *testEnv, *testClient) ([]byte, []protocol.Change) {
			return []byte(`[1, 2, 3]`), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "empty body", prepare: func(*testing.T, *testEnv, *testClient) ([]byte, []protocol.Change) {
			return nil, nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "unknown top-level field", prepare: func(_ *testing.T, _ *testEnv, c *testClient) ([]byte, []protocol.Change) {
			return []byte(fmt.Sprintf(`{"device_id": %q, "batch_id": "b1", "schema_version": 1, "changes": [], "admin": true}`, c.device)), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "trailing data", prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			b, _ := pushBody(c.pushRequest(c.change("families", e.families["coach.a"], "label", "Gezin X")))
			return append(b, []byte(` {"more": 1}`)...), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "body over the limit", prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			var chs []protocol.Change
			for i := 0; i < 60; i++ { // 60 × 18 KB notes: over 1 MiB, each note within its own limit
				chs = append(chs, c.newContact(e.trajectories["coach.a"], note(18_000))...)
			}
			return pushBody(c.pushRequest(chs...))
		}, status: 413, code: samenplan.ETOOLARGE},
		{name: "batch over MaxBatch", prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			chs := make([]protocol.Change, protocol.MaxBatch+1)
			for i := range chs {
				chs[i] = c.change("families", e.families["coach.a"], "label", "L")
			}
			return pushBody(c.pushRequest(chs...))
		}, status: 400, code: samenplan.EINVALID},
		{name: "missing batch_id", prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			req := c.pushRequest(c.change("families", e.families["coach.a"], "label", "Gezin X"))
			req.BatchID = ""
			return pushBody(req)
		}, status: 400, code: samenplan.EINVALID},
		{name: "unknown collection", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("secrets", newUUID(), "text", "x")}
		}), status: 200, rejected: problems(0, samenplan.EINVALID)},
		{name: "unknown field", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("families", e.families["coach.a"], "income", "x")}
		}), status: 200, rejected: problems(0, samenplan.EINVALID)},
		{name: "wrong type", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			chs := c.newContact(e.trajectories["coach.a"], "ok")
			chs[1].Value = jsonValue(60) // mode is an enum string
			return append(chs, c.change("contacts", chs[0].ID, "minutes", "sixty"))
		}), status: 200, rejected: problems(1, samenplan.EINVALID, 3, samenplan.EINVALID), applied: []int{0, 2}},
		{name: "enum value not in the list", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("trajectories", e.trajectories["coach.a"], "rtj_requested", "yes")}
		}), status: 200, rejected: problems(0, samenplan.EINVALID)},
		{name: "value over its size", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			chs := c.newContact(e.trajectories["coach.a"], note(20_001))
			return append(chs, c.change("families", e.families["coach.a"], "label", note(201)))
		}), status: 200, rejected: problems(2, samenplan.EINVALID, 3, samenplan.EINVALID), applied: []int{0, 1}},
		{name: "invalid row id", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("families", strings.ToUpper(e.families["coach.a"]), "label", "L")}
		}), status: 200, rejected: problems(0, samenplan.EINVALID)},
		{name: "invalid stamp", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			bad := c.change("families", e.families["coach.a"], "label", "L")
			bad.HLC = "2026-11-23T10:00:00Z"
			return []protocol.Change{bad}
		}), status: 200, rejected: problems(0, samenplan.EINVALID)},
		{name: "stamp of another node", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			bad := c.change("families", e.families["coach.a"], "label", "L")
			bad.HLC = crdt.Stamp{Wall: time.Now().UnixMilli(), Node: "server"}.String()
			return []protocol.Change{bad}
		}), status: 200, rejected: problems(0, samenplan.EINVALID)},
		{name: "stamp more than 5 minutes ahead", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			bad := c.change("families", e.families["coach.a"], "label", "Uit de toekomst")
			bad.HLC = crdt.Stamp{Wall: time.Now().Add(6 * time.Minute).UnixMilli(), Node: c.device}.String()
			return []protocol.Change{bad}
		}), status: 200, rejected: problems(0, samenplan.ECLOCKSKEW),
			check: func(t *testing.T, e *testEnv, _ []byte) {
				r, _ := e.stores.Region("kempen")
				h, err := r.History(context.Background(), "families", e.families["coach.a"])
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range h {
					if strings.Contains(string(w.Value), "toekomst") {
						t.Errorf("a write with a future stamp is in the log: %+v", w)
					}
				}
				// The server's clock did not jump ahead either.
				if ahead := e.clock.Now().Time().Sub(time.Now()); ahead > time.Minute {
					t.Errorf("server clock is %s ahead after a refused future stamp", ahead)
				}
			}},
		{name: "a batch mixing good and bad changes", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			chs := c.newContact(e.trajectories["coach.a"], "Goed gesprek.") // 0, 1, 2: good
			future := c.change("contacts", chs[0].ID, "minutes", 45)
			future.HLC = crdt.Stamp{Wall: time.Now().Add(time.Hour).UnixMilli(), Node: c.device}.String()
			return append(chs,
				c.change("contacts", chs[0].ID, "colour", "blue"),  // 3: unknown field
				c.change("contacts", chs[0].ID, "minutes", "lang"), // 4: wrong type
				future, // 5: clock_skew
				c.change("families", e.families["coach.b"], "label", "Overgenomen"),     // 6: out_of_scope
				c.change("trajectories", e.trajectories["coach.a"], "status", "closed"), // 7: server only
				c.change("families", e.families["coach.a"], "municipality", "Geel"),     // 8: good
			)
		}), status: 200, applied: []int{0, 1, 2, 8}, rejected: problems(
			3, samenplan.EINVALID, 4, samenplan.EINVALID, 5, samenplan.ECLOCKSKEW,
			6, samenplan.EOUTOFSCOPE, 7, samenplan.EFORBIDDEN)},
		{name: "coach writes another coach's family", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("families", e.families["coach.b"], "label", "Van mij")}
		}), status: 200, rejected: problems(0, samenplan.EOUTOFSCOPE)},
		{name: "coach adds a contact to another coach's trajectory", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return c.newContact(e.trajectories["coach.b"], "Niet mijn gezin.")
		}), status: 200, rejected: problems(0, samenplan.EOUTOFSCOPE, 1, samenplan.EOUTOFSCOPE, 2, samenplan.EOUTOFSCOPE)},
		{name: "coach writes a family of another region", user: "coach.m", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("families", e.families["coach.a"], "label", "Van mij")}
		}), status: 200, rejected: problems(0, samenplan.EINVALID)}, // the row does not exist in maasland; a new family needs its region
		{name: "coach writes a server-only field", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("trajectories", e.trajectories["coach.a"], "lead_coach_id", e.users["coach.b"].ID)}
		}), status: 200, rejected: problems(0, samenplan.EFORBIDDEN)},
		{name: "coach creates a trajectory", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			id := newUUID()
			return []protocol.Change{
				c.change("trajectories", id, "family_id", e.families["coach.a"]),
				c.change("trajectories", id, "region", "kempen"),
			}
		}), status: 200, rejected: problems(0, samenplan.EFORBIDDEN, 1, samenplan.EFORBIDDEN)},
		{name: "unknown schema version", prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			req := c.pushRequest(c.change("families", e.families["coach.a"], "label", "L"))
			req.SchemaVersion = schema.Version + 1
			return pushBody(req)
		}, status: 426, code: samenplan.EUPGRADEREQUIRED},
		{name: "no schema version", prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			req := c.pushRequest(c.change("families", e.families["coach.a"], "label", "L"))
			req.SchemaVersion = 0
			return pushBody(req)
		}, status: 426, code: samenplan.EUPGRADEREQUIRED},
		{name: "replayed batch_id", prepare: func(t *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			first := c.pushRequest(c.change("families", e.families["coach.a"], "label", "Eerste"))
			var resp protocol.PushResponse
			if status := c.do("POST", "/v1/sync/push", first, &resp); status != 200 || resp.Applied != 1 {
				t.Fatalf("first push: %d %+v", status, resp)
			}
			// The replay carries other changes under the same batch_id: none apply.
			replay := first
			replay.Changes = []protocol.Change{c.change("families", e.families["coach.a"], "label", "Tweede")}
			return pushBody(replay)
		}, status: 200, check: func(t *testing.T, e *testEnv, answer []byte) {
			var resp protocol.PushResponse
			json.Unmarshal(answer, &resp)
			if resp.Applied != 1 || resp.Ignored != 0 {
				t.Errorf("replay answered %+v, want the first answer (applied 1)", resp)
			}
		}},
		{name: "device_id not of the token", prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			req := c.pushRequest(c.change("families", e.families["coach.a"], "label", "L"))
			req.DeviceID = newUUID()
			return pushBody(req)
		}, status: 403, code: samenplan.EFORBIDDEN},
		{name: "reviewer pushes", user: "reviewer.k", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("families", e.families["coach.a"], "label", "L")}
		}), status: 403, code: samenplan.EFORBIDDEN},
		{name: "admin pushes", user: "admin", prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
			return []protocol.Change{c.change("families", e.families["coach.a"], "label", "L")}
		}), status: 403, code: samenplan.EFORBIDDEN},
		{name: "revoked device pushes", prepare: func(t *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			revoke(t, c)
			return pushBody(c.pushRequest(c.change("families", e.families["coach.a"], "label", "L")))
		}, status: 401, code: samenplan.EDEVICEREVOKED},

		// Pull.
		{name: "pull: malformed JSON", pull: true, prepare: func(*testing.T, *testEnv, *testClient) ([]byte, []protocol.Change) {
			return []byte(`{"device_id":`), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "pull: garbage cursor", pull: true, prepare: func(_ *testing.T, _ *testEnv, c *testClient) ([]byte, []protocol.Change) {
			return jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: "eyJ2IjoxfQ"}), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "pull: limit out of range", pull: true, prepare: func(_ *testing.T, _ *testEnv, c *testClient) ([]byte, []protocol.Change) {
			return jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Limit: protocol.MaxPullLimit + 1}), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "pull: unknown schema version", pull: true, prepare: func(_ *testing.T, _ *testEnv, c *testClient) ([]byte, []protocol.Change) {
			return jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: 99}), nil
		}, status: 426, code: samenplan.EUPGRADEREQUIRED},
		{name: "pull: device_id not of the token", pull: true, prepare: func(_ *testing.T, _ *testEnv, c *testClient) ([]byte, []protocol.Change) {
			return jsonValue(protocol.PullRequest{DeviceID: newUUID(), SchemaVersion: schema.Version}), nil
		}, status: 403, code: samenplan.EFORBIDDEN},
		{name: "pull: refetch of another coach's family", pull: true, prepare: func(_ *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			return jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version,
				Refetch: []string{schema.FamilyScope(e.families["coach.b"]), "region:kempen"}}), nil
		}, status: 200, check: func(t *testing.T, e *testEnv, answer []byte) {
			var resp protocol.PullResponse
			json.Unmarshal(answer, &resp)
			for _, ch := range resp.Changes {
				if ch.Scope != schema.FamilyScope(e.families["coach.a"]) && ch.Scope != schema.IntakeScope("kempen") {
					t.Errorf("refetch delivered %s/%s of scope %s", ch.Collection, ch.ID, ch.Scope)
				}
			}
			if _, ok := resp.Checksums[schema.FamilyScope(e.families["coach.b"])]; ok {
				t.Errorf("refetch gave the checksum of another coach's family")
			}
		}},
		{name: "pull: cursor of another region", user: "coach.m", pull: true, prepare: func(t *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			k := e.login("coach.a")
			var first protocol.PullResponse
			if status := k.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: k.device, SchemaVersion: schema.Version}, &first); status != 200 {
				t.Fatalf("pull: %d", status)
			}
			return jsonValue(protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: first.Cursor}), nil
		}, status: 400, code: samenplan.EINVALID},
		{name: "pull: admin", user: "admin", pull: true, prepare: pullBody, status: 403, code: samenplan.EFORBIDDEN},
		{name: "pull: revoked device", pull: true, prepare: func(t *testing.T, e *testEnv, c *testClient) ([]byte, []protocol.Change) {
			revoke(t, c)
			return pullBody(t, e, c)
		}, status: 401, code: samenplan.EDEVICEREVOKED},
	}
	for _, tc := range tokenCases {
		for _, pull := range []bool{false, true} {
			bc := badInput{name: "push: " + tc.name, pull: pull, token: tc.token, status: 401, code: samenplan.EUNAUTHORIZED,
				prepare: onePush(func(e *testEnv, c *testClient) []protocol.Change {
					return []protocol.Change{c.change("families", e.families["coach.a"], "label", "L")}
				})}
			if pull {
				bc.name, bc.prepare = "pull: "+tc.name, pullBody
			}
			cases = append(cases, bc)
		}
	}
	return cases
}

// revoke revokes c's device through the API, as its owner.
func revoke(t *testing.T, c *testClient) {
	t.Helper()
	if status := c.do("POST", "/v1/devices/"+c.device+"/revoke", nil, nil); status != http.StatusNoContent {
		t.Fatalf("revoke: %d", status)
	}
}

// TestSync_BadInputIsRefusedAndChangesNothing sends every kind of bad push
// and pull of issue 2 to one running server. Each gets its status and stable
// code; the case data changes only by the good changes of a mixed batch; and
// the server goes on answering.
func TestSync_BadInputIsRefusedAndChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	watcher := e.login("coordinator.k")
	for _, bc := range badInputs() {
		t.Run(bc.name, func(t *testing.T) {
			user := bc.user
			if user == "" {
				user = "coach.a"
			}
			c := e.login(user)
			c.t = t
			body, changes := bc.prepare(t, e, c)
			token := c.token
			if bc.token != nil {
				if token = bc.token(t, e, c); token == "-" {
					token = ""
				}
			}
			before := e.caseState()
			path := "/v1/sync/push"
			if bc.pull {
				path = "/v1/sync/pull"
			}
			status, answer := c.raw("POST", path, token, body)
			if status != bc.status {
				t.Fatalf("status %d, want %d: %.300s", status, bc.status, answer)
			}
			if status != http.StatusOK {
				var eb ErrorBody
				if err := json.Unmarshal(answer, &eb); err != nil {
					t.Fatalf("error body %.300q: %v", answer, err)
				}
				if eb.Code != bc.code || eb.Message == "" {
					t.Errorf("error %+v, want code %s and a message", eb, bc.code)
				}
			} else if !bc.pull {
				var resp protocol.PushResponse
				if err := json.Unmarshal(answer, &resp); err != nil {
					t.Fatal(err)
				}
				if bc.check == nil { // a replay answers the first answer; check says what that was
					var got []protocol.Problem
					for _, p := range resp.Rejected {
						if p.Message == "" {
							t.Errorf("problem %+v has no message", p)
						}
						got = append(got, protocol.Problem{Index: p.Index, Code: p.Code})
					}
					if !slices.Equal(got, bc.rejected) {
						t.Errorf("rejected %+v, want %+v", got, bc.rejected)
					}
					if resp.Applied != len(bc.applied) || len(resp.Quarantined) != 0 {
						t.Errorf("applied %d, quarantined %d; want %d, 0", resp.Applied, len(resp.Quarantined), len(bc.applied))
					}
				}
			}
			after := e.caseState()
			var want []string
			for _, i := range bc.applied {
				want = append(want, fieldKeyOf("kempen", changes[i]))
			}
			sort.Strings(want)
			if got := before.changedKeys(after); !slices.Equal(got, want) {
				t.Errorf("fields changed: %v, want %v", got, want)
			}
			if got, want := after.seq["kempen"]-before.seq["kempen"], int64(len(bc.applied)); got != want {
				t.Errorf("kempen log grew by %d, want %d", got, want)
			}
			if after.seq["maasland"] != before.seq["maasland"] || after.quarantine != before.quarantine || after.conflicts != before.conflicts {
				t.Errorf("state changed: %+v → %+v", before, after)
			}
			if bc.check != nil {
				bc.check(t, e, answer)
			}
			// The server goes on serving.
			watcher.t = t
			var pr protocol.PullResponse
			if status := watcher.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: watcher.device, SchemaVersion: schema.Version}, &pr); status != 200 || len(pr.Changes) == 0 {
				t.Errorf("pull after the bad input: %d, %d changes", status, len(pr.Changes))
			}
		})
	}
}

// TestLogs_NeverHoldTokensPasswordsOrCaseContent runs logins, good and bad
// pushes and pulls, and a refresh, then searches every log line for the
// secrets and the case text that went over the wire.
func TestLogs_NeverHoldTokensPasswordsOrCaseContent(t *testing.T) {
	e := newTestEnv(t)
	c := e.login("coach.a")
	const noteText = "Moeder vertelt over de ruzie met de buren (vertrouwelijk-7f3a)"
	const wrongPassword = "wrong-password-91c2"
	secrets := map[string]string{"access token": c.token, "refresh token": c.refresh, "password": testPassword, "wrong password": wrongPassword}

	for i := 0; i < 5; i++ {
		chs := c.newContact(e.trajectories["coach.a"], fmt.Sprintf("%s %d", noteText, i))
		var resp protocol.PushResponse
		if status := c.do("POST", "/v1/sync/push", c.pushRequest(chs...), &resp); status != 200 || resp.Applied != 3 {
			t.Fatalf("push: %d %+v", status, resp)
		}
	}
	// Refused writes carrying the text: out of scope, too long, malformed.
	c.do("POST", "/v1/sync/push", c.pushRequest(c.newContact(e.trajectories["coach.b"], noteText)...), nil)
	c.do("POST", "/v1/sync/push", c.pushRequest(c.newContact(e.trajectories["coach.a"], noteText+strings.Repeat(".", 20_000))...), nil)
	c.raw("POST", "/v1/sync/push", c.token, []byte(`{"changes": [{"note": "`+noteText+`"`))
	c.raw("POST", "/v1/sync/push", c.token+"x", jsonValue(c.pushRequest(c.newContact(e.trajectories["coach.a"], noteText)...)))
	c.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version}, nil)
	c.do("POST", "/v1/auth/login", map[string]string{"username": "coach.a", "password": wrongPassword, "device_name": "x"}, nil)
	var refreshed struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if status := c.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": c.refresh}, &refreshed); status != 200 {
		t.Fatalf("refresh: %d", status)
	}
	secrets["new access token"], secrets["new refresh token"] = refreshed.AccessToken, refreshed.RefreshToken

	for _, what := range []string{"access token", "new access token"} {
		// A JWT's claims and signature on their own are as telling.
		if parts := strings.Split(secrets[what], "."); len(parts) == 3 {
			secrets[what+" claims"], secrets[what+" signature"] = parts[1], parts[2]
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "/v1/sync/push") {
		t.Fatalf("the requests were not logged at all:\n%s", logs)
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("a log line holds the %s", what)
		}
	}
	for _, s := range []string{"vertrouwelijk-7f3a", "ruzie met de buren"} {
		if strings.Contains(logs, s) {
			t.Errorf("a log line holds a note's text %q", s)
		}
	}
}

// TestPull_ForgedCursorDoesNotTurnOutOfScopeIntoQuarantine: the cursor is
// opaque but not signed (scopes are recomputed from the store on every pull). A device that names another coach's family in its
// cursor must not get an eviction recorded for a family it never held, and
// its writes to that family must stay out_of_scope, not go to quarantine
// (where a coordinator may accept them).
func TestPull_ForgedCursorDoesNotTurnOutOfScopeIntoQuarantine(t *testing.T) {
	e := newTestEnv(t)
	c := e.login("coach.a")
	region, _ := e.stores.Region("kempen")
	var first protocol.PullResponse
	if status := c.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version}, &first); status != 200 {
		t.Fatalf("pull: %d", status)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(first.Cursor)
	var cur map[string]any
	if err := json.Unmarshal(raw, &cur); err != nil {
		t.Fatal(err)
	}
	other := schema.FamilyScope(e.families["coach.b"])
	cur["h"] = append(cur["h"].([]any), other)
	forged := base64.RawURLEncoding.EncodeToString(jsonValue(cur))
	var resp protocol.PullResponse
	if status := c.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: c.device, SchemaVersion: schema.Version, Cursor: forged}, &resp); status != 200 && status != 400 {
		t.Fatalf("pull with a forged cursor: %d", status)
	}
	for _, ch := range resp.Changes {
		if ch.Scope == other {
			t.Fatalf("a forged cursor delivered %s", other)
		}
	}
	if ev, _ := region.Evictions(context.Background(), store.EvictionFilter{DeviceID: c.device, Scope: other}); len(ev) != 0 {
		t.Errorf("an eviction of a family the device never held was recorded: %+v", ev)
	}
	var push protocol.PushResponse
	c.do("POST", "/v1/sync/push", c.pushRequest(c.change("families", e.families["coach.b"], "label", "Van mij")), &push)
	if len(push.Quarantined) != 0 || len(push.Rejected) != 1 || push.Rejected[0].Code != samenplan.EOUTOFSCOPE {
		t.Errorf("write to another coach's family after a forged cursor: rejected %+v, quarantined %+v; want out_of_scope", push.Rejected, push.Quarantined)
	}
}
