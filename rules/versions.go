package rules

import (
	"context"
	"sync"
	"time"

	"github.com/samenplan/samenplan"
)

// Version is one activation of a region's rules: what was activated, when,
// by whom and how. The same hash may be activated more than once (a
// rollback activates an earlier hash again).
type Version struct {
	Region      string    `json:"region"`
	Hash        string    `json:"hash"`
	Files       []File    `json:"files"`
	ActivatedAt time.Time `json:"activated_at"`
	// ActivatedBy is the user who put or rolled back the files; empty when
	// they were picked up from disk.
	ActivatedBy string `json:"activated_by"`
	// Source is how the version came in: startup, watch, put or rollback.
	Source string `json:"source"`
}

// Sources of a Version.
const (
	SourceStartup  = "startup"
	SourceWatch    = "watch"
	SourcePut      = "put"
	SourceRollback = "rollback"
)

// VersionStore keeps every activated version for audit and rollback.
type VersionStore interface {
	// Record appends an activation.
	Record(ctx context.Context, v Version) error
	// List returns the activations of region, newest first.
	List(ctx context.Context, region string) ([]Version, error)
	// Get returns the latest activation of region with hash, or a
	// *samenplan.Error with code not_found.
	Get(ctx context.Context, region, hash string) (Version, error)
}

// MemoryVersions is a VersionStore in memory, for tests and the CLI. The
// zero value is ready to use.
type MemoryVersions struct {
	mu       sync.Mutex
	byRegion map[string][]Version
}

var _ VersionStore = (*MemoryVersions)(nil)

// Record appends v.
func (m *MemoryVersions) Record(_ context.Context, v Version) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byRegion == nil {
		m.byRegion = map[string][]Version{}
	}
	v.Files = append([]File(nil), v.Files...)
	m.byRegion[v.Region] = append(m.byRegion[v.Region], v)
	return nil
}

// List returns the activations of region, newest first.
func (m *MemoryVersions) List(_ context.Context, region string) ([]Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vs := m.byRegion[region]
	out := make([]Version, len(vs))
	for i, v := range vs {
		out[len(vs)-1-i] = v
	}
	return out, nil
}

// Get returns the latest activation of region with hash.
func (m *MemoryVersions) Get(_ context.Context, region, hash string) (Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vs := m.byRegion[region]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].Hash == hash {
			return vs[i], nil
		}
	}
	return Version{}, samenplan.Errorf(samenplan.ENOTFOUND, "region %s has no rules version %s", region, hash)
}
