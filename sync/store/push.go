package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// Push applies a device's batch in one write transaction (DESIGN §4). A
// whole-request problem is an *samenplan.Error (upgrade_required,
// forbidden, invalid); problems of single changes are reported by index in
// the response while the other changes apply. A replayed (device, batch)
// returns the first response and changes nothing.
func (r *Region) Push(ctx context.Context, a Actor, req protocol.PushRequest) (protocol.PushResponse, error) {
	switch {
	case !schema.Supported(req.SchemaVersion):
		return protocol.PushResponse{}, samenplan.Errorf(samenplan.EUPGRADEREQUIRED,
			"Werk de app bij / schema version %d is not supported; the server speaks %d", req.SchemaVersion, schema.Version)
	case a.Role != RoleCoach && a.Role != RoleCoordinator:
		return protocol.PushResponse{}, samenplan.Errorf(samenplan.EFORBIDDEN, "Role %q writes no case data.", a.Role)
	case req.DeviceID == "" || req.DeviceID != a.DeviceID:
		return protocol.PushResponse{}, samenplan.Errorf(samenplan.EFORBIDDEN, "device_id does not match the device of the session")
	case req.BatchID == "" || len(req.BatchID) > protocol.MaxBatchIDLen:
		return protocol.PushResponse{}, samenplan.Errorf(samenplan.EINVALID, "batch_id must be 1..%d characters", protocol.MaxBatchIDLen)
	case len(req.Changes) > protocol.MaxBatch:
		return protocol.PushResponse{}, samenplan.Errorf(samenplan.EINVALID, "a batch holds at most %d changes", protocol.MaxBatch)
	}

	// A push, once begun, runs to its commit even if the caller goes away:
	// its answer is kept for the replay of the batch, and a context that
	// cannot be cancelled spares database/sql and go-sqlite3 a goroutine
	// per transaction and per statement watching for the cancellation.
	ctx = context.WithoutCancel(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	tx, err := r.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return protocol.PushResponse{}, fmt.Errorf("push %s: %w", req.BatchID, err)
	}
	defer tx.Rollback()

	var first string
	get, err := r.stmt(ctx, tx, qBatchGet)
	if err != nil {
		return protocol.PushResponse{}, fmt.Errorf("push %s: %w", req.BatchID, err)
	}
	err = get.QueryRowContext(ctx, req.DeviceID, req.BatchID).Scan(&first)
	if err == nil {
		var resp protocol.PushResponse
		if err := json.Unmarshal([]byte(first), &resp); err != nil {
			return protocol.PushResponse{}, fmt.Errorf("push %s: stored response: %w", req.BatchID, err)
		}
		return resp, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return protocol.PushResponse{}, fmt.Errorf("push %s: %w", req.BatchID, err)
	}

	ap := newApplier(r, tx, a, req.BatchID, len(req.Changes))
	if err := ap.run(ctx, req.Changes); err != nil {
		return protocol.PushResponse{}, fmt.Errorf("push %s: %w", req.BatchID, err)
	}
	if !ap.maxStamp.IsZero() {
		_ = r.opts.Clock.Observe(ap.maxStamp, 0) // skew was checked per change
	}
	resp := protocol.PushResponse{
		BatchID: req.BatchID, Applied: ap.applied, Ignored: ap.ignored,
		Rejected: ap.rejected, Quarantined: ap.quarantined,
		ServerHLC: r.opts.Clock.Now().String(),
	}
	buf, err := json.Marshal(resp)
	if err != nil {
		return protocol.PushResponse{}, fmt.Errorf("push %s: %w", req.BatchID, err)
	}
	put, err := r.stmt(ctx, tx, qBatchPut)
	if err != nil {
		return protocol.PushResponse{}, fmt.Errorf("push %s: %w", req.BatchID, err)
	}
	if _, err := put.ExecContext(ctx,
		req.DeviceID, req.BatchID, string(buf), ap.now); err != nil {
		return protocol.PushResponse{}, fmt.Errorf("push %s: remember batch: %w", req.BatchID, err)
	}
	if err := tx.Commit(); err != nil {
		return protocol.PushResponse{}, fmt.Errorf("push %s: commit: %w", req.BatchID, err)
	}
	r.notify(ap)
	return resp, nil
}

func (ap *applier) run(ctx context.Context, changes []protocol.Change) error {
	ap.check(changes)
	if err := ap.lookup(ctx); err != nil {
		return err
	}
	if err := ap.decideRows(ctx); err != nil {
		return err
	}
	if err := ap.merge(ctx); err != nil {
		return err
	}
	return ap.save(ctx)
}

func (r *Region) notify(ap *applier) {
	if r.opts.OnCommit == nil || len(ap.committed) == 0 {
		return
	}
	r.opts.OnCommit(Commit{Region: r.name, Changes: ap.committed, MaxSeq: ap.nextSeq, Device: ap.device})
}

// FieldWrite is one field written by the server.
type FieldWrite struct {
	Collection string
	ID         string
	Field      string
	Value      json.RawMessage
}

// ServerWrite applies writes stamped with the server's clock, in one
// transaction, through the same checks, merge and log as a push (the log
// names a's user and device, "server" when a has none). Any change that
// would be rejected fails the whole call with that change's *samenplan.Error
// and writes nothing. It returns the highest log seq after the write.
func (r *Region) ServerWrite(ctx context.Context, a Actor, changes []FieldWrite) (int64, error) {
	return r.ServerWriteWith(ctx, a, changes, nil)
}

// ServerWriteWith is ServerWrite that also runs with, when not nil, inside
// the same transaction after the writes are applied: a server-owned record
// of the same region (an intake decision, an assignment) commits together
// with the fields it wrote, or neither does. with gets the log seq after the
// write; an error from it rolls everything back and is returned as is.
func (r *Region) ServerWriteWith(ctx context.Context, a Actor, changes []FieldWrite, with func(ctx context.Context, tx *sql.Tx, seq int64) error) (int64, error) {
	if len(changes) == 0 {
		return 0, samenplan.Errorf(samenplan.EINVALID, "nothing to write")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tx, err := r.db.Writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("server write: %w", err)
	}
	defer tx.Rollback()
	seq, ap, err := r.serverWrite(ctx, tx, a, changes, "")
	if err != nil {
		return 0, err
	}
	if with != nil {
		if err := with(ctx, tx, seq); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("server write: commit: %w", err)
	}
	r.notify(ap)
	return seq, nil
}

// serverWrite runs a server write inside tx. The caller holds r.mu.
func (r *Region) serverWrite(ctx context.Context, tx *sql.Tx, a Actor, changes []FieldWrite, batchID string) (int64, *applier, error) {
	a.Role = RoleServer
	if a.DeviceID == "" {
		a.DeviceID = r.opts.Clock.Node()
	}
	if a.UserID == "" {
		a.UserID = RoleServer
	}
	if batchID == "" {
		batchID = "server:" + r.opts.Clock.Now().String()
	}
	pcs := make([]protocol.Change, len(changes))
	for i, c := range changes {
		pcs[i] = protocol.Change{Collection: c.Collection, ID: c.ID, Field: c.Field, Value: c.Value, HLC: r.opts.Clock.Now().String()}
	}
	ap := newApplier(r, tx, a, batchID, len(pcs))
	ap.server = true
	if err := ap.run(ctx, pcs); err != nil {
		return 0, nil, fmt.Errorf("server write: %w", err)
	}
	if len(ap.rejected) > 0 {
		p := ap.rejected[0]
		c := changes[p.Index]
		return 0, nil, samenplan.Errorf(p.Code, "%s/%s/%s: %s", c.Collection, c.ID, c.Field, p.Message)
	}
	return ap.nextSeq, ap, nil
}
