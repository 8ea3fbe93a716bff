package view

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/store"
)

// The push path and the read model. Apply rebuilds every family a commit
// touches; run inside the store's OnCommit it held the region's writer and
// the device's answer for as long as that took (as long as the store's own
// work for a push of 1,000 fields, docs/benchmarks.md). Enqueue instead
// hands the commit to a queue and returns: RunApplier applies what waits,
// merged into one Apply per region (a family touched by ten pushes in a row
// is rebuilt once), and every read first applies what was enqueued before
// it, so a read after a write (the device's push answered, then the web
// page) still sees the write.

// applyQueue holds the commits not yet applied.
type applyQueue struct {
	n       atomic.Int64 // enqueued and not yet applied
	mu      sync.Mutex   // guards pending and devices
	pending []store.Commit
	devices map[string]int // commits pending per pushing device
	drainMu sync.Mutex     // one drain at a time, so commits are applied in order
	wake    chan struct{}  // made by New, one token: there is something to drain
}

// Enqueue hands a commit to the model; wire it as the stores'
// Options.OnCommit with RunApplier running. It does not wait for Apply.
func (m *Model) Enqueue(c store.Commit) {
	m.q.n.Add(1) // before the append: a read that sees 0 has nothing to wait for
	m.q.mu.Lock()
	m.q.pending = append(m.q.pending, c)
	if c.Device != "" {
		m.q.devices[c.Device]++
	}
	m.q.mu.Unlock()
	select {
	case m.q.wake <- struct{}{}:
	default:
	}
}

// RunApplier applies enqueued commits until ctx ends, then applies what is
// left and returns.
func (m *Model) RunApplier(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			m.drain()
			return
		case <-m.q.wake:
			m.drain()
		}
	}
}

// SettleFor is Settle when a push of device is still queued, and nothing
// otherwise: a device's pull sees its own writes in what the model answers
// (the signals of its families) without waiting behind everyone else's.
func (m *Model) SettleFor(device string) {
	m.q.mu.Lock()
	mine := m.q.devices[device] > 0
	m.q.mu.Unlock()
	if mine {
		m.Settle()
	}
}

// Pending returns how many enqueued commits are not applied yet.
func (m *Model) Pending() int64 { return m.q.n.Load() }

// Settle applies every commit enqueued before it was called. Each read
// calls it first.
func (m *Model) Settle() {
	if m.q.n.Load() > 0 {
		m.drain()
	}
}

// drain applies the pending commits, merged per region in commit order.
func (m *Model) drain() {
	m.q.drainMu.Lock()
	defer m.q.drainMu.Unlock()
	m.q.mu.Lock()
	batch := m.q.pending
	m.q.pending = nil
	m.q.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	for _, c := range mergeCommits(batch) {
		m.Apply(c)
	}
	m.q.mu.Lock()
	for _, c := range batch {
		if c.Device == "" {
			continue
		}
		if m.q.devices[c.Device]--; m.q.devices[c.Device] <= 0 {
			delete(m.q.devices, c.Device)
		}
	}
	m.q.mu.Unlock()
	m.q.n.Add(-int64(len(batch)))
}

// mergeCommits joins the commits of each region into one, in order: their
// changes one after another (Apply merges them by LWW), the highest MaxSeq.
func mergeCommits(batch []store.Commit) []store.Commit {
	if len(batch) == 1 {
		return batch
	}
	var out []store.Commit
	at := map[string]int{}
	for _, c := range batch {
		i, ok := at[c.Region]
		if !ok {
			at[c.Region] = len(out)
			out = append(out, store.Commit{Region: c.Region, MaxSeq: c.MaxSeq, Changes: append([]protocol.Change(nil), c.Changes...)})
			continue
		}
		out[i].Changes = append(out[i].Changes, c.Changes...)
		out[i].MaxSeq = max(out[i].MaxSeq, c.MaxSeq)
	}
	return out
}
