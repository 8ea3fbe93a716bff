package view

import (
	"context"
	"sync"
	"sync/atomic"
)

// Event kinds.
const (
	// EventCase: the family's case changed (or was removed: Case(id) then
	// reports false).
	EventCase = "case"
	// EventReferral: a referral without a family changed.
	EventReferral = "referral"
	// EventConsult: a consult changed.
	EventConsult = "consult"
	// EventResync: the subscriber missed events (it was too slow), or the
	// region was rebuilt; reload what is shown. An empty Region means every
	// region.
	EventResync = "resync"
)

// Event says that something of a region changed in the model. It carries no
// case content: a listener reads the model (and checks access) itself.
type Event struct {
	Region   string `json:"region"`
	FamilyID string `json:"family_id,omitempty"`
	Kind     string `json:"kind"`
	// ID is the referral's or consult's id for those kinds.
	ID string `json:"id,omitempty"`
}

// subBuffer is how many events a subscriber may fall behind before events
// are dropped for it.
const subBuffer = 256

type subscriber struct {
	ch   chan Event
	lost bool // events were dropped; a resync is owed
}

// fanout delivers events to subscribers without ever blocking the writer.
type fanout struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	dropped atomic.Int64
}

func (f *fanout) subscribe(ctx context.Context) <-chan Event {
	s := &subscriber{ch: make(chan Event, subBuffer)}
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[*subscriber]struct{}{}
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, s)
		close(s.ch)
		f.mu.Unlock()
	}()
	return s.ch
}

// publish offers events to every subscriber; a full subscriber loses them
// and gets one EventResync per region as soon as it has room again.
func (f *fanout) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if s.lost {
			select {
			case s.ch <- Event{Kind: EventResync}:
				s.lost = false
			default:
				f.dropped.Add(int64(len(evs)))
				continue
			}
		}
		for i, e := range evs {
			select {
			case s.ch <- e:
			default:
				s.lost = true
				f.dropped.Add(int64(len(evs) - i))
			}
			if s.lost {
				break
			}
		}
	}
}
