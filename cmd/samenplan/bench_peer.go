package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/samenplan/samenplan/internal/loadtest"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// The peer workload of `samenplan bench` (DESIGN §8, docs/benchmarks.md §
// Peer): the same records pushed, pulled by a fresh client and changed in one
// field, against Samenplan and against pouchdb-server (bench/peer, npm), both
// over loopback HTTP with the same Go client code around a byte-counting
// connection. The two servers' requests are interleaved, step by step, so
// that both see the same load on the shared machine.
//
// The CouchDB side uses the peer's cheapest path: POST /db/_bulk_docs of
// whole documents and GET /db/_changes?include_docs=true, no _revs_diff, no
// checkpoints (PouchDB's replicator would add those requests).

// PeerConfig drives the peer workload.
type PeerConfig struct {
	Dir     string // bench/peer, holding node_modules/pouchdb-server; "none": Samenplan only
	Records int    // contact records of 8 fields
	Batch   int    // records per push, pull page and update batch
	Only    bool   // run only the peer workload
	// GzipRequests: both clients gzip their request bodies (no client does
	// by default: browsers' fetch and PouchDB do not, nor does the SDK).
	GzipRequests bool
	Region       string
	Rules        string
	reason       string // why the peer does not run, when known before starting
}

// peerFieldsPerRecord is the contact fields of loadtest.Contacts.
const peerFieldsPerRecord = 8

// peerFlags registers the peer workload's flags on bench's flag set; call
// its check after parsing.
func peerFlags(fs *flag.FlagSet, quick bool) *PeerConfig {
	cfg := &PeerConfig{Dir: filepath.Join("bench", "peer"), Records: 10_000, Batch: 1_000}
	if quick {
		// make test runs --quick: no npm there, and a small Samenplan half.
		cfg.Dir, cfg.Records, cfg.reason = "none", 1_000, "--quick (give --peer bench/peer to run it)"
	}
	fs.StringVar(&cfg.Dir, "peer", cfg.Dir, `folder of the peer (pouchdb-server installed by make bench); "none" runs the Samenplan half only`)
	fs.IntVar(&cfg.Records, "peer-records", cfg.Records, "records (8 fields each) of the peer workload")
	fs.IntVar(&cfg.Batch, "peer-batch", cfg.Batch, "records per push, pull page and update batch of the peer workload")
	fs.BoolVar(&cfg.Only, "peer-only", false, "run only the peer workload and print its table")
	fs.BoolVar(&cfg.GzipRequests, "peer-gzip-requests", false, "both clients of the peer workload gzip their request bodies")
	return cfg
}

// check validates the flags and decides whether the peer can run.
func (c *PeerConfig) check(quick bool, fs *flag.FlagSet) error {
	if c.Records < 1 || c.Batch < 1 {
		return fmt.Errorf("%w: bench: --peer-records and --peer-batch must be ≥ 1", errUsage)
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "peer" })
	if quick && !explicit {
		return nil // peerFlags said why
	}
	c.reason = ""
	switch {
	case c.Dir == "none" || c.Dir == "":
		c.Dir, c.reason = "none", "--peer none"
	default:
		if _, err := os.Stat(pouchBin(c.Dir)); err != nil {
			c.reason = fmt.Sprintf("%s not installed (make bench runs npm ci there)", filepath.Join(c.Dir, "node_modules", "pouchdb-server"))
			c.Dir = "none"
		} else if _, err := exec.LookPath("node"); err != nil {
			c.reason, c.Dir = "no node on PATH", "none"
		}
	}
	return nil
}

func pouchBin(dir string) string {
	return filepath.Join(dir, "node_modules", "pouchdb-server", "bin", "pouchdb-server")
}

// PeerPhase is one phase of one server: how many records, requests, how
// long the requests took (client side, encoding and decoding included) and
// the bytes through the client's sockets (HTTP headers and bodies, both
// ways; TCP/IP headers not counted).
type PeerPhase struct {
	Records, Requests int
	Dur               time.Duration
	Sent, Received    int64
}

// PerSec is records per second; 0 when nothing was timed.
func (p PeerPhase) PerSec() float64 {
	if p.Dur <= 0 {
		return 0
	}
	return float64(p.Records) / p.Dur.Seconds()
}

// Bytes is the bytes both ways.
func (p PeerPhase) Bytes() int64 { return p.Sent + p.Received }

// PeerSide is one server's three phases.
type PeerSide struct{ Push, Pull, Update PeerPhase }

// PeerReport is what the peer workload measured. Pouch is zero and Skipped
// says why when pouchdb-server did not run.
type PeerReport struct {
	Ran                 bool // the workload ran at all (false: an empty report)
	Records, Batch      int
	PushFields          int // changes per Samenplan push in the push phase
	PullLimit           int // limit of each Samenplan pull page
	Samenplan, Pouch    PeerSide
	PouchVersion        string
	Skipped             string
	PouchGzip           bool // pouchdb-server compressed its answers (the client asks, as browsers do)
	SamenplanGzip       bool // Samenplan compressed its answers
	GzipRequests        bool // both clients gzipped their request bodies
	SamenplanPullFields int  // fields pulled, contacts and their families
}

// BenchPeer runs the peer workload: a fresh Samenplan app on a temporary data
// directory served on loopback and, unless cfg.Dir is "none", pouchdb-server
// started from cfg.Dir on another loopback port with a temporary database
// directory, stopped (its process group) before returning. A wrong count
// (records pulled ≠ pushed, a write refused) is an error.
func BenchPeer(ctx context.Context, cfg PeerConfig, progress io.Writer) (PeerReport, error) {
	rep := PeerReport{Ran: true, Records: cfg.Records, Batch: cfg.Batch, Skipped: cfg.reason, GzipRequests: cfg.GzipRequests}
	perPush := samenplanRecordsPerRequest(cfg.Batch)
	rep.PushFields, rep.PullLimit = perPush*peerFieldsPerRecord, perPush*peerFieldsPerRecord

	dir, err := os.MkdirTemp("", "samenplan-peer-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	sp, err := openPeerSamenplan(ctx, cfg, filepath.Join(dir, "samenplan"))
	if err != nil {
		return rep, err
	}
	defer sp.close()
	sp.gzipRequests = cfg.GzipRequests
	var pouch *pouchSide
	if cfg.Dir != "none" {
		srv, err := startPouch(ctx, cfg.Dir, filepath.Join(dir, "pouch"))
		if err != nil {
			return rep, fmt.Errorf("peer: %w", err)
		}
		defer srv.stop()
		rep.PouchVersion = srv.version
		pouch = &pouchSide{srv: srv, wire: &wireCounter{}, db: "/samenplan_bench", gzipRequests: cfg.GzipRequests}
		pouch.http = &http.Client{Timeout: 60 * time.Second, Transport: pouch.wire.transport()}
		defer pouch.http.CloseIdleConnections()
		if err := pouch.createDB(); err != nil {
			return rep, fmt.Errorf("peer: %w", err)
		}
	}

	// An untimed warm-up of every path on both servers (node's JIT,
	// LevelDB's and SQLite's caches), with a coach and a database of its
	// own so that the measured pull does not see it.
	warmSP := &samenplanSide{app: sp.app, b: sp.b, wire: sp.wire, region: sp.region, gzipRequests: cfg.GzipRequests}
	if err := warmSP.setupCoach(ctx, "coach.bench.peer.warmup"); err != nil {
		return rep, err
	}
	var warmPouch *pouchSide
	if pouch != nil {
		warmPouch = &pouchSide{srv: pouch.srv, http: pouch.http, wire: pouch.wire, db: "/samenplan_warmup", gzipRequests: cfg.GzipRequests}
		if err := warmPouch.createDB(); err != nil {
			return rep, fmt.Errorf("peer: %w", err)
		}
	}
	warm := min(cfg.Records, 200)
	if _, err := runPeerPhases(ctx, warmSP, warmPouch, peerRecords(warmSP, warm), min(cfg.Batch, warm/2+1), io.Discard); err != nil {
		return rep, fmt.Errorf("peer warm-up: %w", err)
	}

	// The same records for both: loadtest.Contacts' 8 fields, over 10 families.
	recs := peerRecords(sp, cfg.Records)
	res, err := runPeerPhases(ctx, sp, pouch, recs, cfg.Batch, progress)
	if err != nil {
		return rep, err
	}
	rep.Samenplan, rep.Pouch = res[0], res[1]
	rep.SamenplanPullFields, rep.SamenplanGzip = sp.pulledFields, sp.gzip.Load()
	if pouch != nil {
		rep.PouchGzip = pouch.gzip.Load()
		// The update must have landed: every document's follow_up is the new
		// text at pouchdb-server (one _all_docs read, not measured).
		if err := pouch.checkUpdated(len(recs), peerNewFollowUp); err != nil {
			return rep, fmt.Errorf("peer: %w", err)
		}
	}
	if err := sp.checkUpdated(ctx, recs, peerFollowUp()); err != nil {
		return rep, fmt.Errorf("peer: %w", err)
	}
	return rep, nil
}

// peerNewFollowUp is the one field changed in every record by the update.
const peerNewFollowUp = "Gebeld: volgende afspraak donderdag om tien uur."

func peerFollowUp() json.RawMessage {
	raw, _ := json.Marshal(peerNewFollowUp)
	return raw
}

// samenplanRecordsPerRequest is the records of a batch of batch records that
// go in one Samenplan request: a push takes at most protocol.MaxBatch
// changes and a pull page MaxPullLimit, so a batch is split in as few equal
// requests as that allows (1,000 records: two of 500, 4,000 fields each).
func samenplanRecordsPerRequest(batch int) int {
	most := min(protocol.MaxBatch, protocol.MaxPullLimit)
	parts := (batch*peerFieldsPerRecord + most - 1) / most
	return (batch + parts - 1) / parts
}

// peerRecords makes n contact records on s's coach's families, round robin.
func peerRecords(s *samenplanSide, n int) []peerRecord {
	recs := make([]peerRecord, n)
	for i := range recs {
		cs := loadtest.Contacts(nil, s.trajs[i%len(s.trajs)], s.coachID, 1)
		recs[i] = peerRecord{id: cs[0].ID, fields: cs}
	}
	return recs
}

// runPeerPhases pushes recs to both servers (pouch may be nil) in batches of
// batch records, pulls them with a fresh client, and changes one field of
// each, the two servers' requests interleaved; it returns each server's
// phases, Samenplan first.
func runPeerPhases(ctx context.Context, sp *samenplanSide, pouch *pouchSide, recs []peerRecord, batch int, progress io.Writer) ([2]PeerSide, error) {
	var res [2]PeerSide
	perPush := samenplanRecordsPerRequest(batch)
	followUp := peerFollowUp()
	type phase struct {
		name        string
		sp, pouch   func() peerStepper
		spP, pouchP *PeerPhase
	}
	phases := []phase{
		{"push", func() peerStepper { return sp.pushSteps(recs, perPush) }, func() peerStepper { return pouch.pushSteps(recs, batch) },
			&res[0].Push, &res[1].Push},
		{"pull", func() peerStepper { return sp.pullSteps(perPush*peerFieldsPerRecord, len(recs)) }, func() peerStepper { return pouch.pullSteps(batch, len(recs)) },
			&res[0].Pull, &res[1].Pull},
		{"update", func() peerStepper { return sp.updateSteps(recs, batch, followUp) }, func() peerStepper { return pouch.updateSteps(recs, batch, followUp) },
			&res[0].Update, &res[1].Update},
	}
	for _, ph := range phases {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if ph.name == "pull" {
			// The fresh client: a new device of the same coach; its login is
			// not measured.
			if err := sp.newPuller(); err != nil {
				return res, err
			}
		}
		a := &peerRun{stepper: ph.sp(), wire: sp.wire}
		var b *peerRun
		if pouch != nil {
			b = &peerRun{stepper: ph.pouch(), wire: pouch.wire}
		}
		if err := interleave(a, b); err != nil {
			return res, fmt.Errorf("peer %s: %w", ph.name, err)
		}
		*ph.spP = a.phase()
		if b != nil {
			*ph.pouchP = b.phase()
		}
		if ph.spP.Records != len(recs) || (b != nil && ph.pouchP.Records != len(recs)) {
			return res, fmt.Errorf("peer %s: %d records at Samenplan, %d at pouchdb-server, want %d", ph.name, ph.spP.Records, ph.pouchP.Records, len(recs))
		}
		fmt.Fprintf(progress, "peer %s: Samenplan %d records in %d requests, %s", ph.name, ph.spP.Records, ph.spP.Requests, ph.spP.Dur.Round(time.Millisecond))
		if b != nil {
			fmt.Fprintf(progress, "; pouchdb-server %d in %d, %s", ph.pouchP.Records, ph.pouchP.Requests, ph.pouchP.Dur.Round(time.Millisecond))
		}
		fmt.Fprintln(progress)
	}
	return res, nil
}

// peerRecord is one contact: its id and its 8 fields as Samenplan changes
// (no stamp yet).
type peerRecord struct {
	id     string
	fields []protocol.Change
}

// peerStepper does one request of a phase per call; it returns the records
// the request completed, whether more requests follow, and the time of the
// request alone (bookkeeping around it is not timed).
type peerStepper func() (records int, more bool, took time.Duration, err error)

// peerRun is one server's progress through a phase.
type peerRun struct {
	stepper          peerStepper
	wire             *wireCounter
	done, requests   int
	dur              time.Duration
	more             bool
	sent0, received0 int64
	sentN, receivedN int64
}

func (r *peerRun) phase() PeerPhase {
	return PeerPhase{Records: r.done, Requests: r.requests, Dur: r.dur, Sent: r.sentN - r.sent0, Received: r.receivedN - r.received0}
}

func (r *peerRun) step() error {
	n, more, took, err := r.stepper()
	if err != nil {
		return err
	}
	r.done, r.more, r.dur, r.requests = r.done+n, more, r.dur+took, r.requests+1
	return nil
}

// interleave runs a's and b's steps (b may be nil) alternately, always
// advancing the one with fewer records done, so both see the same load.
func interleave(a, b *peerRun) error {
	runs := []*peerRun{a}
	if b != nil {
		runs = append(runs, b)
	}
	for _, r := range runs {
		r.more = true
		r.sent0, r.received0 = r.wire.sent.Load(), r.wire.received.Load()
	}
	turn := 0
	for {
		var next *peerRun
		for i := range runs {
			r := runs[(turn+i)%len(runs)]
			if r.more && (next == nil || r.done < next.done) {
				next = r
			}
		}
		if next == nil {
			break
		}
		turn++
		if err := next.step(); err != nil {
			return err
		}
	}
	for _, r := range runs {
		r.sentN, r.receivedN = r.wire.sent.Load(), r.wire.received.Load()
	}
	return nil
}

// wireCounter counts the bytes through the connections of one client.
type wireCounter struct{ sent, received atomic.Int64 }

func (w *wireCounter) transport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, w: w}, nil
		},
		MaxIdleConnsPerHost: 4,
	}
}

type countingConn struct {
	net.Conn
	w *wireCounter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.received.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.sent.Add(int64(n))
	return n, err
}

// samenplanSide is the Samenplan half: an app of its own, a coach with 10
// families, her pushing device and, for the pull, a new device.
type samenplanSide struct {
	app          *App
	hs           *http.Server
	b            *benchHTTP
	wire         *wireCounter
	region       string
	coach        string
	coachID      string
	trajs        []string
	pusher       *benchDevice
	puller       *benchDevice
	pulled       map[string]int // contact id → fields received by the puller
	pulledFields int
	gzipRequests bool
	gzip         atomic.Bool // an answer came gzip-compressed
}

func openPeerSamenplan(ctx context.Context, cfg PeerConfig, data string) (_ *samenplanSide, err error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	argon := auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	app, err := OpenApp(ctx, ServeConfig{Addr: "127.0.0.1:0", Data: data, Rules: cfg.Rules, Argon2: argon}, logger)
	if err != nil {
		return nil, err
	}
	s := &samenplanSide{app: app, wire: &wireCounter{}, region: cfg.Region}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.hs = &http.Server{Handler: app.Server.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.hs.Serve(ln)
	s.b = &benchHTTP{url: "http://" + ln.Addr().String(), http: &http.Client{Timeout: 60 * time.Second, Transport: s.wire.transport()}}
	if err := s.setupCoach(ctx, "coach.bench.peer"); err != nil {
		return nil, err
	}
	return s, nil
}

// setupCoach creates the coach named name with 10 families, logs her
// pushing device in and syncs it.
func (s *samenplanSide) setupCoach(ctx context.Context, name string) error {
	region, ok := s.app.Stores.Region(s.region)
	if !ok {
		return fmt.Errorf("peer: no region %q", s.region)
	}
	u, err := s.app.Auth.CreateUser(ctx, auth.NewUser{Username: name, DisplayName: name, Role: auth.RoleCoach,
		Regions: []string{s.region}, Password: benchPassword, FTE: 1}, auth.System("bench"))
	if err != nil {
		return fmt.Errorf("create coach: %w", err)
	}
	s.coach, s.coachID, s.trajs = name, u.ID, nil
	for f := 0; f < 10; f++ {
		traj, err := benchFamily(ctx, region, s.region, u.ID, 0)
		if err != nil {
			return err
		}
		s.trajs = append(s.trajs, traj)
	}
	if s.pusher, err = s.b.login(s.coach, s.coachID); err != nil {
		return err
	}
	// Her device holds the families before it writes contacts to them.
	if _, _, err := s.pusher.pullAll(nil); err != nil {
		return fmt.Errorf("first pull: %w", err)
	}
	return nil
}

func (s *samenplanSide) close() {
	if s.hs != nil {
		s.hs.Close()
	}
	if s.b != nil {
		s.b.http.CloseIdleConnections()
	}
	s.app.Close(context.Background())
}

// post sends in as JSON (gzipped when s.gzipRequests) from device d and
// decodes the answer into out; benchDevice.post with the encoding choice.
func (s *samenplanSide) post(d *benchDevice, path string, in, out any) error {
	body, encoding, err := requestBody(in, s.gzipRequests)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", s.b.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := s.b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.Uncompressed {
		s.gzip.Store(true)
	}
	if resp.StatusCode != http.StatusOK {
		buf, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, buf)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// push sends batch from the pushing device; every change must be applied.
func (s *samenplanSide) push(batch []protocol.Change) error {
	var resp protocol.PushResponse
	req := protocol.PushRequest{DeviceID: s.pusher.device, BatchID: uuid.NewString(), SchemaVersion: schema.Version, Changes: batch}
	if err := s.post(s.pusher, "/v1/sync/push", req, &resp); err != nil {
		return err
	}
	if resp.Applied != len(batch) {
		return fmt.Errorf("push: applied %d of %d: %+v", resp.Applied, len(batch), resp.Rejected)
	}
	return nil
}

// requestBody is in as JSON, gzipped (at the fastest level, as the server
// answers) when gz; encoding is the Content-Encoding to send, "" for none.
func requestBody(in any, gz bool) (_ io.Reader, encoding string, _ error) {
	buf, err := json.Marshal(in)
	if err != nil {
		return nil, "", err
	}
	if !gz {
		return bytes.NewReader(buf), "", nil
	}
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	w.Write(buf)
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return &out, "gzip", nil
}

// pushSteps pushes the records' fields, perPush records (× 8 fields) a push.
func (s *samenplanSide) pushSteps(recs []peerRecord, perPush int) peerStepper {
	i := 0
	return func() (int, bool, time.Duration, error) {
		end := min(i+perPush, len(recs))
		batch := make([]protocol.Change, 0, (end-i)*peerFieldsPerRecord)
		for _, r := range recs[i:end] {
			for _, c := range r.fields {
				c.HLC = s.pusher.clock.Now().String()
				batch = append(batch, c)
			}
		}
		t0 := time.Now()
		if err := s.push(batch); err != nil {
			return 0, false, 0, err
		}
		took := time.Since(t0)
		n := end - i
		i = end
		return n, i < len(recs), took, nil
	}
}

func (s *samenplanSide) newPuller() error {
	d, err := s.b.login(s.coach, s.coachID)
	if err != nil {
		return err
	}
	s.puller, s.pulled, s.pulledFields = d, map[string]int{}, 0
	return nil
}

// pullSteps pulls the new device's whole scope in pages of limit fields; a
// record counts when all its fields have come.
func (s *samenplanSide) pullSteps(limit, want int) peerStepper {
	return func() (int, bool, time.Duration, error) {
		var resp protocol.PullResponse
		req := protocol.PullRequest{DeviceID: s.puller.device, SchemaVersion: schema.Version, Cursor: s.puller.cursor, Limit: limit}
		t0 := time.Now()
		if err := s.post(s.puller, "/v1/sync/pull", req, &resp); err != nil {
			return 0, false, 0, err
		}
		took := time.Since(t0)
		s.puller.cursor = resp.Cursor
		n := 0
		for _, c := range resp.Changes {
			s.pulledFields++
			if c.Collection != "contacts" {
				continue
			}
			s.pulled[c.ID]++
			if s.pulled[c.ID] == peerFieldsPerRecord {
				n++
			}
		}
		if !resp.More {
			if len(s.pulled) != want {
				return n, false, took, fmt.Errorf("pulled %d contacts, pushed %d", len(s.pulled), want)
			}
			for id, k := range s.pulled {
				if k != peerFieldsPerRecord {
					return n, false, took, fmt.Errorf("pulled %d fields of contact %s, want %d", k, id, peerFieldsPerRecord)
				}
			}
		}
		return n, resp.More, took, nil
	}
}

// updateSteps changes follow_up of every record, batch records (one change
// each) a push.
func (s *samenplanSide) updateSteps(recs []peerRecord, batch int, value json.RawMessage) peerStepper {
	i := 0
	return func() (int, bool, time.Duration, error) {
		end := min(i+batch, len(recs))
		changes := make([]protocol.Change, 0, end-i)
		for _, r := range recs[i:end] {
			changes = append(changes, protocol.Change{Collection: "contacts", ID: r.id, Field: "follow_up", Value: value, HLC: s.pusher.clock.Now().String()})
		}
		t0 := time.Now()
		if err := s.push(changes); err != nil {
			return 0, false, 0, err
		}
		took := time.Since(t0)
		n := end - i
		i = end
		return n, i < len(recs), took, nil
	}
}

// checkUpdated pulls on the new device (not measured) and checks that it
// receives every record's new follow_up and nothing else.
func (s *samenplanSide) checkUpdated(ctx context.Context, recs []peerRecord, value json.RawMessage) error {
	got := map[string]bool{}
	for {
		var resp protocol.PullResponse
		req := protocol.PullRequest{DeviceID: s.puller.device, SchemaVersion: schema.Version, Cursor: s.puller.cursor, Limit: protocol.MaxPullLimit}
		if err := s.post(s.puller, "/v1/sync/pull", req, &resp); err != nil {
			return err
		}
		s.puller.cursor = resp.Cursor
		for _, c := range resp.Changes {
			if c.Collection != "contacts" || c.Field != "follow_up" || !bytes.Equal(c.Value, value) {
				return fmt.Errorf("after the update the puller got %s.%s = %s", c.Collection, c.Field, c.Value)
			}
			got[c.ID] = true
		}
		if !resp.More {
			break
		}
	}
	if len(got) != len(recs) {
		return fmt.Errorf("after the update the puller got %d changed records, want %d", len(got), len(recs))
	}
	return nil
}

// pouchServer is pouchdb-server running as a child process.
type pouchServer struct {
	cmd     *exec.Cmd
	url     string
	dir     string
	log     string
	version string
	exited  chan struct{}
}

// errPouchExited: pouchdb-server ended before it answered (its log says why).
var errPouchExited = errors.New("pouchdb-server exited before answering")

// startPouch starts pouchdb-server from peerDir on a free loopback port,
// storing in LevelDB under dir (on disk, like SQLite), in a process group
// of its own, and waits until it answers (30 s at most). The port is free
// when chosen but may be taken before pouchdb-server binds it: a server that
// exits at once is started again on another port, three times at most.
func startPouch(ctx context.Context, peerDir, dir string) (*pouchServer, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var p *pouchServer
		p, err = startPouchOnce(ctx, peerDir, filepath.Join(dir, strconv.Itoa(attempt)))
		if !errors.Is(err, errPouchExited) {
			return p, err
		}
	}
	return nil, err
}

func startPouchOnce(ctx context.Context, peerDir, dir string) (*pouchServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(pouchBin(peerDir))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	logPath := filepath.Join(dir, "out.log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	// Its config.json and log.txt go to dir, not to the checkout.
	cmd := exec.Command("node", bin, "--port", port, "--host", "127.0.0.1", "--dir", filepath.Join(dir, "db"),
		"--config", filepath.Join(dir, "config.json"), "--no-stdout-logs", "--no-color")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pouchdb-server: %w", err)
	}
	p := &pouchServer{cmd: cmd, url: "http://127.0.0.1:" + port, dir: dir, log: logPath, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		var hello struct {
			Version string `json:"version"`
		}
		resp, err := c.Get(p.url + "/")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&hello)
			resp.Body.Close()
			if err == nil && hello.Version != "" {
				p.version = hello.Version
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%w: %s", errPouchExited, p.logTail())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("pouchdb-server did not answer on %s within 30 s: %s", p.url, p.logTail())
		}
	}
}

func (p *pouchServer) logTail() string {
	buf, _ := os.ReadFile(p.log)
	s := strings.TrimSpace(string(buf))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// stop ends the server's process group: SIGTERM, then SIGKILL after 5 s.
func (p *pouchServer) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	signalGroup(p.cmd, false)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		signalGroup(p.cmd, true)
		<-p.exited
	}
}

// pouchSide is the CouchDB-protocol client of the peer workload.
type pouchSide struct {
	srv   *pouchServer
	http  *http.Client
	wire  *wireCounter
	revs  map[string]string // id → the revision the client last wrote
	docs  map[string]map[string]json.RawMessage
	since json.RawMessage
	gzip  atomic.Bool // an answer came gzip-compressed
	db    string      // "/name" of the database

	gzipRequests bool
}

func (p *pouchSide) do(method, path string, in, out any) error {
	var body io.Reader
	var encoding string
	if in != nil {
		var err error
		if body, encoding, err = requestBody(in, p.gzipRequests); err != nil {
			return err
		}
	}
	req, err := http.NewRequest(method, p.srv.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.Uncompressed {
		p.gzip.Store(true)
	}
	if resp.StatusCode/100 != 2 {
		buf, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, buf)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (p *pouchSide) createDB() error {
	var ok struct {
		OK bool `json:"ok"`
	}
	if err := p.do("PUT", p.db, nil, &ok); err != nil {
		return err
	}
	if !ok.OK {
		return errors.New("PUT " + p.db + " did not answer ok")
	}
	return nil
}

// pouchDoc is a record as a CouchDB document: _id and its 8 fields (and
// _rev, once written).
func pouchDoc(r peerRecord) map[string]json.RawMessage {
	id, _ := json.Marshal(r.id)
	doc := map[string]json.RawMessage{"_id": id}
	for _, c := range r.fields {
		doc[c.Field] = c.Value
	}
	return doc
}

type bulkResult struct {
	OK    bool   `json:"ok"`
	ID    string `json:"id"`
	Rev   string `json:"rev"`
	Error string `json:"error"`
}

// bulk posts docs to _bulk_docs and records their new revisions.
func (p *pouchSide) bulk(docs []map[string]json.RawMessage) (time.Duration, error) {
	var res []bulkResult
	t0 := time.Now()
	if err := p.do("POST", p.db+"/_bulk_docs", map[string]any{"docs": docs}, &res); err != nil {
		return 0, err
	}
	took := time.Since(t0)
	if len(res) != len(docs) {
		return took, fmt.Errorf("_bulk_docs answered %d results for %d docs", len(res), len(docs))
	}
	for _, r := range res {
		if !r.OK || r.Error != "" {
			return took, fmt.Errorf("_bulk_docs: %s: %s", r.ID, r.Error)
		}
		p.revs[r.ID] = r.Rev
	}
	return took, nil
}

func (p *pouchSide) pushSteps(recs []peerRecord, batch int) peerStepper {
	p.revs = make(map[string]string, len(recs))
	i := 0
	return func() (int, bool, time.Duration, error) {
		end := min(i+batch, len(recs))
		docs := make([]map[string]json.RawMessage, 0, end-i)
		for _, r := range recs[i:end] {
			docs = append(docs, pouchDoc(r))
		}
		took, err := p.bulk(docs)
		if err != nil {
			return 0, false, 0, err
		}
		n := end - i
		i = end
		return n, i < len(recs), took, nil
	}
}

// pullSteps reads the changes feed with the documents, limit a page, as a
// fresh client (since 0).
func (p *pouchSide) pullSteps(limit, want int) peerStepper {
	p.docs, p.since = make(map[string]map[string]json.RawMessage, want), json.RawMessage("0")
	return func() (int, bool, time.Duration, error) {
		var resp struct {
			Results []struct {
				ID  string                     `json:"id"`
				Doc map[string]json.RawMessage `json:"doc"`
			} `json:"results"`
			LastSeq json.RawMessage `json:"last_seq"`
		}
		since := string(p.since)
		if s, err := strconv.Unquote(since); err == nil {
			since = s
		}
		t0 := time.Now()
		if err := p.do("GET", fmt.Sprintf("%s/_changes?include_docs=true&limit=%d&since=%s", p.db, limit, url.QueryEscape(since)), nil, &resp); err != nil {
			return 0, false, 0, err
		}
		took := time.Since(t0)
		p.since = resp.LastSeq
		n := 0
		for _, r := range resp.Results {
			if len(r.Doc) != peerFieldsPerRecord+2 { // + _id, _rev
				return 0, false, took, fmt.Errorf("_changes: %s has %d members, want %d", r.ID, len(r.Doc), peerFieldsPerRecord+2)
			}
			if _, seen := p.docs[r.ID]; !seen {
				n++
			}
			p.docs[r.ID] = r.Doc
		}
		more := len(resp.Results) == limit
		if !more && len(p.docs) != want {
			return n, false, took, fmt.Errorf("pulled %d documents, pushed %d", len(p.docs), want)
		}
		return n, more, took, nil
	}
}

// updateSteps changes follow_up of every record: the client sends the whole
// document with the revision it last wrote, batch documents a request.
func (p *pouchSide) updateSteps(recs []peerRecord, batch int, value json.RawMessage) peerStepper {
	i := 0
	return func() (int, bool, time.Duration, error) {
		end := min(i+batch, len(recs))
		docs := make([]map[string]json.RawMessage, 0, end-i)
		for _, r := range recs[i:end] {
			doc := pouchDoc(r)
			rev, _ := json.Marshal(p.revs[r.id])
			doc["_rev"], doc["follow_up"] = rev, value
			docs = append(docs, doc)
		}
		took, err := p.bulk(docs)
		if err != nil {
			return 0, false, 0, err
		}
		n := end - i
		i = end
		return n, i < len(recs), took, nil
	}
}

// checkUpdated reads every document (not measured) and checks its
// follow_up is the new text.
func (p *pouchSide) checkUpdated(want int, followUp string) error {
	var all struct {
		Rows []struct {
			Doc struct {
				ID       string `json:"_id"`
				FollowUp string `json:"follow_up"`
			} `json:"doc"`
		} `json:"rows"`
	}
	if err := p.do("GET", p.db+"/_all_docs?include_docs=true", nil, &all); err != nil {
		return err
	}
	if len(all.Rows) != want {
		return fmt.Errorf("pouchdb-server holds %d documents, want %d", len(all.Rows), want)
	}
	for _, r := range all.Rows {
		if r.Doc.FollowUp != followUp {
			return fmt.Errorf("pouchdb-server: %s.follow_up = %q after the update", r.Doc.ID, r.Doc.FollowUp)
		}
	}
	return nil
}

// rows writes the peer rows of the one table (metric, value, aim, met).
func (r PeerReport) rows(tw io.Writer, mark func(bool) string) {
	if !r.Ran {
		return
	}
	sp, pd := r.Samenplan, r.Pouch
	reqs := "plain requests"
	if r.GzipRequests {
		reqs = "requests gzip-compressed"
	}
	fmt.Fprintf(tw, "peer workload\t%d records × 8 fields; batches and pages of %d records; %s\t\t\n", r.Records, r.Batch, reqs)
	fmt.Fprintf(tw, "  Samenplan requests\tpush %d × %d fields, pull pages of %d fields, update %d × %d fields\t\t\n",
		sp.Push.Requests, r.PushFields, r.PullLimit, sp.Update.Requests, min(r.Batch, r.Records))
	fmt.Fprintf(tw, "push, Samenplan\t%.0f records/s (%.0f fields/s)\t\t\n", sp.Push.PerSec(), sp.Push.PerSec()*peerFieldsPerRecord)
	if r.Skipped == "" {
		fmt.Fprintf(tw, "  pouchdb-server %s requests\tpush %d × _bulk_docs, pull %d × _changes, update %d × _bulk_docs\t\t\n",
			r.PouchVersion, pd.Push.Requests, pd.Pull.Requests, pd.Update.Requests)
		fmt.Fprintf(tw, "push, pouchdb-server\t%.0f records/s\t\t\n", pd.Push.PerSec())
		ratio := peerRatio(sp.Push.PerSec(), pd.Push.PerSec())
		fmt.Fprintf(tw, "ratio push Samenplan ÷ pouchdb-server\t%.2f\t≥ 3\t%s\n", ratio, mark(ratio >= 3))
	}
	fmt.Fprintf(tw, "pull (fresh client), Samenplan\t%.0f records/s\t\t\n", sp.Pull.PerSec())
	if r.Skipped == "" {
		fmt.Fprintf(tw, "pull (fresh client), pouchdb-server\t%.0f records/s\t\t\n", pd.Pull.PerSec())
		ratio := peerRatio(sp.Pull.PerSec(), pd.Pull.PerSec())
		fmt.Fprintf(tw, "ratio pull Samenplan ÷ pouchdb-server\t%.2f\t≥ 3\t%s\n", ratio, mark(ratio >= 3))
	}
	fmt.Fprintf(tw, "one-field update, Samenplan\t%.0f records/s, %s on the wire\t\t\n", sp.Update.PerSec(), wireBytes(sp.Update))
	if r.Skipped == "" {
		fmt.Fprintf(tw, "one-field update, pouchdb-server\t%.0f records/s, %s on the wire\t\t\n", pd.Update.PerSec(), wireBytes(pd.Update))
		ratio := peerRatio(sp.Update.PerSec(), pd.Update.PerSec())
		fmt.Fprintf(tw, "ratio update Samenplan ÷ pouchdb-server\t%.2f\t≥ 10\t%s\n", ratio, mark(ratio >= 10))
		bytesRatio := peerRatio(float64(sp.Update.Bytes()), float64(pd.Update.Bytes()))
		fmt.Fprintf(tw, "update bytes Samenplan ÷ pouchdb-server\t%.2f\t≤ 0.2\t%s\n", bytesRatio, mark(bytesRatio > 0 && bytesRatio <= 0.2))
	}
	fmt.Fprintf(tw, "push / pull bytes, Samenplan\t%s / %s%s\t\t\n", wireBytes(sp.Push), wireBytes(sp.Pull), gzipped(r.SamenplanGzip))
	if r.Skipped == "" {
		fmt.Fprintf(tw, "push / pull bytes, pouchdb-server\t%s / %s%s\t\t\n", wireBytes(pd.Push), wireBytes(pd.Pull), gzipped(r.PouchGzip))
	} else {
		fmt.Fprintf(tw, "peer pouchdb-server\tskipped: %s\t≥ 3 × / ≥ 10 ×\t—\n", r.Skipped)
	}
}

// Print writes the peer rows alone as a table (--peer-only).
func (r PeerReport) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tvalue\taim (DESIGN §8)\tmet?")
	r.rows(tw, func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	})
	tw.Flush()
}

func gzipped(answers bool) string {
	if answers {
		return " (answers gzip-compressed)"
	}
	return ""
}

func peerRatio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// wireBytes is "1.52 MB (1.40 up, 0.12 down)", MB = 10^6 bytes.
func wireBytes(p PeerPhase) string {
	return fmt.Sprintf("%.2f MB (%.2f up, %.2f down)", float64(p.Bytes())/1e6, float64(p.Sent)/1e6, float64(p.Received)/1e6)
}
