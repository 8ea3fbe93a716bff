package client

// fakeServer is SCAFFOLDING: a minimal in-test implementation of the push,
// pull and auth contract (docs/protocol.md) on crdt.State, so the client can
// be tested before the real server exists. It is not the server, checks far
// less than the server must, and should give way to the real one
// (server.Open on a temp dir and port :0) in these tests as soon as it runs.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

type fakeDevice struct {
	id, user string
	revoked  bool
	grants   map[string]bool // scopes the device may read and write
	lost     map[string]bool // scopes taken away: writes there are quarantined
	full     map[string]bool // scopes to send in full on the next pull
	evict    []string        // scopes to evict on the next pull
	queue    []protocol.Change
	upTo     int64 // the cursor of the answer being paged
	drop     map[crdt.Key]bool
	proofs   []string   // held_hash values received
	refetch  [][]string // refetch lists received
	sent     []protocol.Change
}

type fakeServer struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	clock      *crdt.Clock
	state      *crdt.State
	seq        int64
	changed    map[crdt.Key]int64 // seq at which the field's winner arrived
	users      map[string]string  // username → password
	devices    map[string]*fakeDevice
	access     map[string]string // access token → device id
	expired    map[string]bool   // access tokens that answer 401 unauthorized
	refresh    map[string]string // refresh token → device id
	answers    map[string]protocol.PushResponse
	pushes     []string // batch ids of every push request, in order
	refreshes  int
	expired401 int                    // answers 401 unauthorized for an expired token
	reject     map[string]bool        // fields the server rejects (to test reverts)
	qrows      map[[2]string][]string // scopes of rows known only from quarantined writes
	badCursor  bool                   // every non-empty cursor is invalid (restored from a backup)
	tokenN     int
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	f := &fakeServer{
		t: t, clock: crdt.NewClock("server", nil), state: crdt.NewState(),
		changed: map[crdt.Key]int64{}, users: map[string]string{}, devices: map[string]*fakeDevice{},
		access: map[string]string{}, expired: map[string]bool{}, refresh: map[string]string{},
		answers: map[string]protocol.PushResponse{}, reject: map[string]bool{}, qrows: map[[2]string][]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/login", f.login)
	mux.HandleFunc("POST /v1/auth/refresh", f.refreshToken)
	mux.HandleFunc("POST /v1/sync/push", f.push)
	mux.HandleFunc("POST /v1/sync/pull", f.pull)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) URL() string { return f.srv.URL }

func (f *fakeServer) addUser(name, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[name] = password
}

func (f *fakeServer) device(id string) *fakeDevice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devices[id]
}

// grant gives a device a scope; its next pull brings the scope's whole state.
func (f *fakeServer) grant(dev, scope string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[dev]
	d.grants[scope] = true
	d.full[scope] = true
	delete(d.lost, scope)
}

// take removes a scope from a device: evicted on its next pull, writes there quarantined.
func (f *fakeServer) take(dev, scope string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[dev]
	delete(d.grants, scope)
	d.lost[scope] = true
	d.evict = append(d.evict, scope)
}

func (f *fakeServer) revokeDevice(dev string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[dev].revoked = true
}

func (f *fakeServer) expireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for tok := range f.access {
		f.expired[tok] = true
	}
}

// dropOnce leaves a field out of the device's next pull answer: a lost
// change the checksums must catch.
func (f *fakeServer) dropOnce(dev string, k crdt.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[dev].drop[k] = true
}

// write is a server write (an intake decision, a coordinator's edit).
func (f *fakeServer) write(collection, id, field string, value any) {
	f.t.Helper()
	b, err := json.Marshal(value)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apply(crdt.Change{Collection: collection, ID: id, Field: field, Value: b, HLC: f.clock.Now()})
}

func (f *fakeServer) apply(c crdt.Change) bool {
	if !f.state.Apply(c) {
		return false
	}
	f.seq++
	f.changed[c.Key()] = f.seq
	return true
}

// fakeBackup is a copy of what the fake server stores.
type fakeBackup struct {
	state   []crdt.Change
	seq     int64
	changed map[crdt.Key]int64
	answers map[string]protocol.PushResponse
}

// backup copies the server's stored state: its fields, log position and
// remembered push answers.
func (f *fakeServer) backup() fakeBackup {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := fakeBackup{seq: f.seq, changed: maps.Clone(f.changed), answers: maps.Clone(f.answers)}
	f.state.Each(func(c crdt.Change) { b.state = append(b.state, c) })
	return b
}

// restore puts a backup back, as an operator restoring the server's files
// would: what was stored after it is gone, cursors past its log position
// are invalid. Devices, grants and tokens stay (they live in another file).
func (f *fakeServer) restore(b fakeBackup) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = crdt.NewState()
	for _, c := range b.state {
		f.state.Apply(c)
	}
	f.seq, f.changed, f.answers = b.seq, maps.Clone(b.changed), maps.Clone(b.answers)
	for _, d := range f.devices {
		d.queue = nil
	}
}

// snapshot returns the server's state in the client's State form.
func (f *fakeServer) snapshot() map[crdt.Key]protocol.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[crdt.Key]protocol.Change{}
	f.state.Each(func(c crdt.Change) {
		m[c.Key()] = protocol.Change{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value, HLC: c.HLC.String()}
	})
	return m
}

// str reads a string field of the current state, with over taking precedence.
func (f *fakeServer) str(collection, id, field string, over *crdt.Change) string {
	var raw json.RawMessage
	if over != nil && over.Collection == collection && over.ID == id && over.Field == field {
		raw = over.Value
	} else if c, ok := f.state.Get(crdt.Key{Collection: collection, ID: id, Field: field}); ok {
		raw = c.Value
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// rowScopes derives a row's scopes as DESIGN §3 says.
func (f *fakeServer) rowScopes(collection, id string, over *crdt.Change) []string {
	fam := func(coll, id string) string {
		if fid := f.str(coll, id, "family_id", over); fid != "" {
			return schema.FamilyScope(fid)
		}
		return ""
	}
	var out []string
	switch collection {
	case "families":
		out = []string{schema.FamilyScope(id)}
	case "persons", "network_members", "trajectories":
		out = []string{fam(collection, id)}
	case "referrals", "consults":
		if r := f.str(collection, id, "region", over); r != "" {
			out = append(out, schema.IntakeScope(r))
		}
		if collection == "referrals" {
			out = append(out, fam(collection, id))
		}
	case "plan_goals", "contacts":
		if tid := f.str(collection, id, "trajectory_id", over); tid != "" {
			out = []string{fam("trajectories", tid)}
		}
	}
	res := out[:0]
	for _, s := range out {
		if s != "" {
			res = append(res, s)
		}
	}
	return res
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) newTokens(dev string) session {
	f.tokenN++
	a, r := fmt.Sprintf("access-%d", f.tokenN), fmt.Sprintf("refresh-%d", f.tokenN)
	f.access[a] = dev
	f.refresh[r] = dev
	d := f.devices[dev]
	return session{AccessToken: a, TokenType: "Bearer", ExpiresIn: 900, RefreshToken: r, DeviceID: dev,
		User: User{ID: "user-" + d.user, Username: d.user, Role: "coach", Regions: []string{"kempen"}}}
}

func (f *fakeServer) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username   string `json:"username"`
		Password   string `json:"password"`
		DeviceName string `json:"device_name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, 400, samenplan.EINVALID, "malformed JSON")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if pw, ok := f.users[req.Username]; !ok || pw != req.Password {
		writeErr(w, 401, samenplan.EUNAUTHORIZED, "wrong username or password")
		return
	}
	id := NewID()
	f.devices[id] = &fakeDevice{id: id, user: req.Username, grants: map[string]bool{}, lost: map[string]bool{},
		full: map[string]bool{}, drop: map[crdt.Key]bool{}}
	writeJSON(w, f.newTokens(id))
}

func (f *fakeServer) refreshToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, 400, samenplan.EINVALID, "malformed JSON")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dev, ok := f.refresh[req.RefreshToken]
	if !ok {
		writeErr(w, 401, samenplan.EUNAUTHORIZED, "invalid refresh token")
		return
	}
	if f.devices[dev].revoked {
		writeErr(w, 401, samenplan.EDEVICEREVOKED, "device revoked")
		return
	}
	delete(f.refresh, req.RefreshToken) // rotates
	f.refreshes++
	writeJSON(w, f.newTokens(dev))
}

// auth returns the device of the bearer token, or writes the error. Called with f.mu held.
func (f *fakeServer) auth(w http.ResponseWriter, r *http.Request) *fakeDevice {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	dev, known := f.access[tok]
	switch {
	case !ok || !known:
		writeErr(w, 401, samenplan.EUNAUTHORIZED, "authentication required")
	case f.devices[dev].revoked:
		writeErr(w, 401, samenplan.EDEVICEREVOKED, "device revoked")
	case f.expired[tok]:
		f.expired401++
		writeErr(w, 401, samenplan.EUNAUTHORIZED, "token expired")
	default:
		return f.devices[dev]
	}
	return nil
}

func (f *fakeServer) push(w http.ResponseWriter, r *http.Request) {
	req, err := protocol.DecodePush(r.Body)
	if err != nil {
		writeErr(w, 400, samenplan.ErrorCode(err), samenplan.ErrorMessage(err))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.auth(w, r)
	if d == nil {
		return
	}
	if req.DeviceID != d.id {
		writeErr(w, 403, samenplan.EFORBIDDEN, "not your device")
		return
	}
	f.pushes = append(f.pushes, req.BatchID)
	if ans, ok := f.answers[req.BatchID]; ok {
		writeJSON(w, ans)
		return
	}
	d.sent = append(d.sent, req.Changes...)
	ans := protocol.PushResponse{BatchID: req.BatchID, Rejected: []protocol.Problem{}, Quarantined: []protocol.Problem{}}
	for i, c := range req.Changes {
		problem := func(list *[]protocol.Problem, code, msg string) {
			*list = append(*list, protocol.Problem{Index: i, Code: code, Message: msg})
		}
		if err := schema.CaseFile.Validate(c.Collection, c.Field, c.Value); err != nil {
			problem(&ans.Rejected, samenplan.EINVALID, samenplan.ErrorMessage(err))
			continue
		}
		if f.reject[c.Field] {
			problem(&ans.Rejected, samenplan.EINVALID, "rejected by the test")
			continue
		}
		stamp, err := crdt.ParseStamp(c.HLC)
		if err != nil || stamp.Node != d.id {
			problem(&ans.Rejected, samenplan.EINVALID, "bad stamp")
			continue
		}
		if err := f.clock.Observe(stamp, 5*time.Minute); err != nil {
			problem(&ans.Rejected, samenplan.ECLOCKSKEW, "stamp ahead of the server")
			continue
		}
		cc := crdt.Change{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value, HLC: stamp}
		in, lost := false, false
		scopes := f.rowScopes(c.Collection, c.ID, &cc)
		if len(scopes) == 0 {
			scopes = f.qrows[[2]string{c.Collection, c.ID}]
		}
		for _, s := range scopes {
			in = in || d.grants[s]
			lost = lost || d.lost[s]
		}
		switch {
		case in:
		case lost:
			f.qrows[[2]string{c.Collection, c.ID}] = scopes
			problem(&ans.Quarantined, samenplan.EOUTOFSCOPE, "family no longer yours")
			continue
		default:
			problem(&ans.Rejected, samenplan.EOUTOFSCOPE, "not your family")
			continue
		}
		if f.apply(cc) {
			ans.Applied++
		} else {
			ans.Ignored++
		}
	}
	ans.ServerHLC = f.clock.Now().String()
	f.answers[req.BatchID] = ans
	writeJSON(w, ans)
}

func (f *fakeServer) pull(w http.ResponseWriter, r *http.Request) {
	req, err := protocol.DecodePull(r.Body)
	if err != nil {
		writeErr(w, 400, samenplan.ErrorCode(err), samenplan.ErrorMessage(err))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.auth(w, r)
	if d == nil {
		return
	}
	if since, _ := strconv.ParseInt(req.Cursor, 10, 64); (req.Cursor != "" && f.badCursor) || since > f.seq {
		writeErr(w, 400, samenplan.EINVALID, "invalid cursor; pull again without one")
		return
	}
	if req.Cursor == "" {
		d.queue = nil
	}
	if req.HeldHash != "" {
		d.proofs = append(d.proofs, req.HeldHash)
	}
	if len(req.Refetch) > 0 {
		d.refetch = append(d.refetch, req.Refetch)
		for _, s := range req.Refetch {
			if d.grants[s] {
				d.full[s] = true
			}
		}
	}
	resp := protocol.PullResponse{Changes: []protocol.Change{}, Evict: []string{}}
	if len(d.queue) == 0 {
		since, _ := strconv.ParseInt(req.Cursor, 10, 64)
		type item struct {
			seq int64
			c   protocol.Change
		}
		var items []item
		seen := map[string]bool{}
		f.state.Each(func(c crdt.Change) {
			k := c.Key()
			if d.drop[k] {
				delete(d.drop, k)
				return
			}
			for _, s := range f.rowScopes(c.Collection, c.ID, nil) {
				if !d.grants[s] || (f.changed[k] <= since && !d.full[s]) {
					continue
				}
				id := fmt.Sprint(k, s)
				if !seen[id] {
					seen[id] = true
					items = append(items, item{f.changed[k], protocol.Change{Collection: c.Collection, ID: c.ID,
						Field: c.Field, Value: c.Value, HLC: c.HLC.String(), Scope: s}})
				}
			}
		})
		sort.Slice(items, func(i, j int) bool {
			if items[i].seq != items[j].seq {
				return items[i].seq < items[j].seq
			}
			return fmt.Sprint(items[i].c) < fmt.Sprint(items[j].c)
		})
		for _, it := range items {
			d.queue = append(d.queue, it.c)
		}
		d.full = map[string]bool{}
		d.upTo = f.seq
		resp.Evict = append(resp.Evict, d.evict...)
		d.evict = nil
	}
	n := min(req.Limit, len(d.queue))
	resp.Changes = append(resp.Changes, d.queue[:n]...)
	d.queue = d.queue[n:]
	resp.More = len(d.queue) > 0
	resp.Cursor = strconv.FormatInt(d.upTo, 10)
	if !resp.More {
		sums := map[string]uint64{}
		for s := range d.grants {
			sums[s] = 0
		}
		f.state.Each(func(c crdt.Change) {
			for _, s := range f.rowScopes(c.Collection, c.ID, nil) {
				if d.grants[s] {
					sums[s] ^= crdt.FieldSum(c.Collection, c.ID, c.Field, c.HLC.String())
				}
			}
		})
		resp.Checksums = map[string]string{}
		for s, v := range sums {
			resp.Checksums[s] = crdt.FormatSum(v)
		}
	}
	resp.ServerHLC = f.clock.Now().String()
	writeJSON(w, resp)
}
