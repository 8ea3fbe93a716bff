package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

func (s *Server) routes() {
	e := s.echo
	e.IPExtractor = echo.ExtractIPDirect() // no proxy is trusted unless configured
	e.GET("/healthz", s.handleHealth)
	e.GET("/readyz", s.handleReady)
	e.GET("/metrics", s.metrics.handler())

	v1 := e.Group("/v1")
	v1.GET("/schema", s.handleSchema)
	s.cfg.Auth.Routes(v1)

	api := v1.Group("", s.cfg.Auth.Middleware())
	api.POST("/sync/push", s.handlePush, auth.RequireCaseReader())
	api.POST("/sync/pull", s.handlePull, auth.RequireCaseReader())
	if s.cfg.Rules != nil {
		s.rulesRoutes(api)
	}
	if s.cfg.View != nil {
		s.casesRoutes(api)
		if s.cfg.Rules != nil {
			s.workflowRoutes(api)
		}
	}
	s.auditRoutes(api)

	if s.cfg.Static != nil {
		s.cfg.Static(e)
	}
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}

// handleReady answers 200 when every database answers a query.
func (s *Server) handleReady(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Stores.Ping(ctx); err != nil {
		s.logger.Warn("not ready", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleSchema(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, schema.CaseFile.JSON())
}

// syncRegion checks that the body's device is the token's and returns the
// region the device syncs: its user's first region. A device is bound to one
// region's database (docs/protocol.md).
func (s *Server) syncRegion(p auth.Principal, deviceID string) (*store.Region, error) {
	if deviceID != p.DeviceID {
		return nil, samenplan.Errorf(samenplan.EFORBIDDEN, "device_id does not match the device of the token")
	}
	if len(p.Regions) == 0 {
		return nil, samenplan.Errorf(samenplan.EFORBIDDEN, "Geen regio toegewezen / no region assigned to this account.")
	}
	r, ok := s.cfg.Stores.Region(p.Regions[0])
	if !ok {
		return nil, samenplan.Errorf(samenplan.ENOTFOUND, "Onbekende regio / unknown region %q.", p.Regions[0])
	}
	return r, nil
}

func actor(p auth.Principal) store.Actor {
	return store.Actor{UserID: p.UserID, DeviceID: p.DeviceID, Role: p.Role}
}

func (s *Server) handlePush(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	req, err := protocol.DecodePush(c.Request().Body)
	if err != nil {
		return err
	}
	region, err := s.syncRegion(p, req.DeviceID)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := region.Push(c.Request().Context(), actor(p), req)
	if err != nil {
		return err
	}
	if s.cfg.View != nil && mayHaveConflictOrQuarantine(req, resp) {
		// The commit hook carries applied changes only; conflicts and
		// quarantined writes are counted from the store.
		if err := s.cfg.View.SyncCounts(c.Request().Context(), region.Name()); err != nil {
			s.logger.Error("refresh conflict and quarantine counts", "region", region.Name(), "err", err)
		}
	}
	s.metrics.pushDur.Observe(time.Since(start).Seconds())
	s.metrics.pushes.Inc()
	s.metrics.changes.WithLabelValues("applied").Add(float64(resp.Applied))
	s.metrics.changes.WithLabelValues("ignored").Add(float64(resp.Ignored))
	s.metrics.changes.WithLabelValues("rejected").Add(float64(len(resp.Rejected)))
	s.metrics.changes.WithLabelValues("quarantined").Add(float64(len(resp.Quarantined)))
	entry := auth.AuditEntry(c, audit.ActionPush)
	entry.Region = region.Name()
	entry.TargetKind, entry.TargetID = "batch", req.BatchID
	entry.Detail, _ = json.Marshal(map[string]int{
		"changes": len(req.Changes), "applied": resp.Applied, "ignored": resp.Ignored,
		"rejected": len(resp.Rejected), "quarantined": len(resp.Quarantined),
	})
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, resp)
}

func (s *Server) handlePull(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	req, err := protocol.DecodePull(c.Request().Body)
	if err != nil {
		return err
	}
	region, err := s.syncRegion(p, req.DeviceID)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := region.Pull(c.Request().Context(), actor(p), req)
	if err != nil {
		return err
	}
	if !resp.More && p.Role == auth.RoleCoach {
		resp.Signals = s.coachSignals(p.UserID, p.DeviceID, region.Name()) // docs/protocol.md: signals
	}
	s.metrics.pullDur.Observe(time.Since(start).Seconds())
	s.metrics.pulls.Inc()
	entry := auth.AuditEntry(c, audit.ActionPull)
	entry.Region = region.Name()
	entry.Detail, _ = json.Marshal(map[string]any{"changes": len(resp.Changes), "more": resp.More, "evict": len(resp.Evict)})
	s.cfg.Audit.Record(entry)
	if _, pretty := c.QueryParams()["pretty"]; pretty {
		return c.JSON(http.StatusOK, resp)
	}
	// The bytes c.JSON would send, without reflection (docs/benchmarks.md § Pull).
	body, release, err := protocol.MarshalPullResponse(&resp)
	if err != nil {
		return fmt.Errorf("encode pull: %w", err)
	}
	defer release()
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

// mayHaveConflictOrQuarantine reports whether a push may have recorded a
// conflict (a losing write, or one that states the stamp it replaced) or a
// quarantined write.
func mayHaveConflictOrQuarantine(req protocol.PushRequest, resp protocol.PushResponse) bool {
	if len(resp.Quarantined) > 0 || resp.Ignored > 0 {
		return true
	}
	for i := range req.Changes {
		if req.Changes[i].Base != "" {
			return true
		}
	}
	return false
}
