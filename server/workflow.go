package server

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/labstack/echo/v4"

	"github.com/samenplan/samenplan/sync/store"
)

// The workflow_* migrations create the server-owned tables that live in
// each region's database (intake decisions), beside the case rows they
// decide about.
//
//go:embed migrations/workflow_*.sql
var workflowMigrations embed.FS

// Migrate creates or updates the server-owned tables of every region
// database. Call it once after store.Open, before serving.
func Migrate(ctx context.Context, stores *store.Stores) error {
	sub, err := fs.Sub(workflowMigrations, "migrations")
	if err != nil {
		return fmt.Errorf("workflow migrations: %w", err)
	}
	for _, name := range stores.Regions() {
		r, _ := stores.Region(name)
		if err := r.DB().Migrate(ctx, "workflow", sub); err != nil {
			return fmt.Errorf("region %s: %w", name, err)
		}
	}
	return nil
}

// workflowRoutes registers the coaching work over the read model: the
// intake board and decisions (intake.go), trajectories, reassignment and
// quarantine (trajectories.go, quarantine.go), permanence, signals and
// reports (permanence.go, signals.go, report.go).
func (s *Server) workflowRoutes(api *echo.Group) {
	s.intakeRoutes(api)
	s.trajectoryRoutes(api)
	s.regionRoutes(api)
	s.coachRoutes(api)
}
