package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// quarantineRoutes registers the region's quarantine: writes a coach pushed
// for a family she no longer holds (reassigned, closed), kept aside for the
// coordinator, who accepts them into the case or discards them.
func (s *Server) quarantineRoutes(api *echo.Group) {
	region := auth.RequireRegion("region")
	api.GET("/regions/:region/quarantine", s.handleQuarantine, region)
	api.POST("/regions/:region/quarantine/:id/accept", s.handleQuarantineAccept, region)
	api.POST("/regions/:region/quarantine/:id/discard", s.handleQuarantineDiscard, region)
}

// QuarantineItem is a quarantined write as the coordinator sees it. Value is
// case content (a note), shown to the region's coordinators and reviewers
// only.
type QuarantineItem struct {
	ID          int64           `json:"id"`
	FamilyID    string          `json:"family_id"`
	FamilyLabel string          `json:"family_label"`
	Collection  string          `json:"collection"`
	RowID       string          `json:"row_id"`
	Field       string          `json:"field"`
	Value       json.RawMessage `json:"value"`
	HLC         string          `json:"hlc"`
	// WrittenAt is when the device wrote it (its stamp's clock);
	// ReceivedAt when the server received the push.
	WrittenAt   time.Time  `json:"written_at"`
	ReceivedAt  time.Time  `json:"received_at"`
	UserID      string     `json:"user_id"`
	Username    string     `json:"username"`
	DisplayName string     `json:"display_name"`
	DeviceID    string     `json:"device_id"`
	DeviceName  string     `json:"device_name"`
	BatchID     string     `json:"batch_id"`
	Reason      string     `json:"reason"`
	ReasonText  string     `json:"reason_text"`
	Status      string     `json:"status"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
}

// QuarantineList is the answer of GET /v1/regions/{region}/quarantine.
type QuarantineList struct {
	Region string           `json:"region"`
	Status string           `json:"status"`
	Items  []QuarantineItem `json:"items"`
}

// QuarantineDecision is the answer of accept and discard: the decided write
// and, for an accept that created the row, the other writes of the same row
// and batch that were accepted with it.
type QuarantineDecision struct {
	QuarantineItem
	AcceptedWith []int64 `json:"accepted_with"`
}

func (s *Server) handleQuarantine(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	region := c.Param("region")
	if !p.HasRole(auth.RoleCoordinator, auth.RoleReviewer) {
		return samenplan.Errorf(samenplan.EFORBIDDEN, "Enkel coördinatoren en reviewers zien de quarantaine / only coordinators and reviewers see the quarantine.")
	}
	status := c.QueryParam("status")
	switch status {
	case "":
		status = store.QuarantineOpen
	case store.QuarantineOpen, store.QuarantineAccepted, store.QuarantineDiscarded:
	default:
		return samenplan.Errorf(samenplan.EINVALID, "status: %q is geen van open, accepted, discarded / %q is not one of open, accepted, discarded.", status, status)
	}
	r, err := s.quarantineRegion(region)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	qs, err := r.Quarantine(ctx, status)
	if err != nil {
		return err
	}
	out := QuarantineList{Region: region, Status: status, Items: make([]QuarantineItem, 0, len(qs))}
	names := s.userNames(ctx)
	devices := map[string]string{}
	families := []string{}
	for _, q := range qs {
		it := s.quarantineItem(ctx, q, names, devices)
		out.Items = append(out.Items, it)
		if !slices.Contains(families, it.FamilyID) {
			families = append(families, it.FamilyID)
		}
	}
	// The list shows case content (notes): a case read of those families.
	entry := auth.AuditEntry(c, audit.ActionCaseRead)
	entry.Region, entry.TargetKind, entry.TargetID = region, "quarantine", region
	entry.Detail = audit.Detail(map[string]any{"view": "quarantine", "status": status, "items": len(out.Items), "families": families})
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) quarantineRegion(region string) (*store.Region, error) {
	r, ok := s.cfg.Stores.Region(region)
	if !ok {
		return nil, samenplan.Errorf(samenplan.ENOTFOUND, "Regio niet gevonden / region not found")
	}
	return r, nil
}

// quarantineItem dresses a quarantined write with its family, author and
// device; devices caches device names by id.
func (s *Server) quarantineItem(ctx context.Context, q store.QuarantineEntry, names *userNames, devices map[string]string) QuarantineItem {
	it := QuarantineItem{
		ID: q.ID, Collection: q.Collection, RowID: q.RowID, Field: q.Field, Value: q.Value, HLC: q.HLC,
		ReceivedAt: q.ReceivedAt, UserID: q.UserID, DeviceID: q.DeviceID, BatchID: q.BatchID,
		Reason: q.Reason, Status: q.Status, DecidedBy: q.DecidedBy, DecidedAt: q.DecidedAt,
	}
	it.FamilyID, _ = strings.CutPrefix(q.Scope, schema.FamilyScopePrefix)
	if cs, ok := s.cfg.View.Case(it.FamilyID); ok {
		it.FamilyLabel = cs.Family.Label
	}
	if st, err := crdt.ParseStamp(q.HLC); err == nil {
		it.WrittenAt = st.Time()
	}
	if u := names.get(q.UserID); u != nil {
		it.Username, it.DisplayName = u.Username, u.DisplayName
	}
	name, ok := devices[q.DeviceID]
	if !ok {
		if d, err := s.cfg.Auth.GetDevice(ctx, q.DeviceID); err == nil {
			name = d.Name
		}
		devices[q.DeviceID] = name
	}
	it.DeviceName = name
	if strings.HasPrefix(q.Reason, "lost access to ") {
		it.ReasonText = "Geschreven voor een gezin dat het toestel niet meer heeft (herverdeeld of afgesloten) / written for a family the device no longer holds (reassigned or closed)"
	}
	return it
}

func (s *Server) handleQuarantineAccept(c echo.Context) error { return s.decideQuarantine(c, true) }

func (s *Server) handleQuarantineDiscard(c echo.Context) error { return s.decideQuarantine(c, false) }

// decideQuarantine accepts (applies the write to the case as a server write
// logged under the coordinator) or discards an open quarantined write, then
// refreshes the read model's quarantine counts and audits the decision.
func (s *Server) decideQuarantine(c echo.Context, accept bool) error {
	p, _ := auth.PrincipalFrom(c)
	region := c.Param("region")
	if !p.CanWriteRegion(region) {
		return samenplan.Errorf(samenplan.EFORBIDDEN, "Enkel de coördinator van de regio beslist over de quarantaine / only the region's coordinator decides on quarantined writes.")
	}
	if err := decodeOptional(c, &struct{}{}); err != nil {
		return err
	}
	r, err := s.quarantineRegion(region)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return errQuarantineNotFound()
	}
	ctx := c.Request().Context()
	before, err := r.Quarantine(ctx, "")
	if err != nil {
		return err
	}
	var q *store.QuarantineEntry
	for i := range before {
		if before[i].ID == id {
			q = &before[i]
		}
	}
	if q == nil {
		return errQuarantineNotFound()
	}
	if q.Status != store.QuarantineOpen {
		return samenplan.Errorf(samenplan.ECONFLICT, "Hierover is al beslist (%s) / this write was already decided (%s).", q.Status, q.Status)
	}
	err = r.DecideQuarantine(ctx, id, accept, store.Actor{UserID: p.UserID, DeviceID: p.DeviceID})
	switch samenplan.ErrorCode(err) {
	case "":
	case samenplan.ECONFLICT:
		return samenplan.Errorf(samenplan.ECONFLICT, "Hierover is al beslist / this write was already decided.")
	case samenplan.ENOTFOUND:
		return errQuarantineNotFound()
	case samenplan.EINTERNAL:
		return fmt.Errorf("decide quarantined write %d: %w", id, err)
	default:
		// The merge path refused the write (its parent is gone, a fixed
		// field differs): nothing was applied or decided.
		return samenplan.Errorf(samenplan.ECONFLICT, "Deze schrijfactie past niet meer in het dossier; verwerp ze / this write no longer fits the case; discard it (%s).", samenplan.ErrorMessage(err))
	}
	if err := s.cfg.View.SyncCounts(ctx, region); err != nil {
		s.logger.Error("refresh quarantine counts", "region", region, "err", err)
	}

	after, err := r.Quarantine(ctx, "")
	if err != nil {
		return err
	}
	names := s.userNames(ctx)
	devices := map[string]string{}
	out := QuarantineDecision{AcceptedWith: []int64{}}
	open := map[int64]bool{}
	for _, b := range before {
		if b.Status == store.QuarantineOpen {
			open[b.ID] = true
		}
	}
	for _, a := range after {
		switch {
		case a.ID == id:
			out.QuarantineItem = s.quarantineItem(ctx, a, names, devices)
		case open[a.ID] && a.Status == store.QuarantineAccepted && accept:
			out.AcceptedWith = append(out.AcceptedWith, a.ID)
		}
	}

	action := audit.ActionQuarantineDiscard
	if accept {
		action = audit.ActionQuarantineAccept
	}
	entry := auth.AuditEntry(c, action)
	entry.Region, entry.TargetKind, entry.TargetID = region, "quarantine", strconv.FormatInt(id, 10)
	entry.Detail = audit.Detail(map[string]any{
		"family_id": out.FamilyID, "collection": q.Collection, "row_id": q.RowID, "field": q.Field,
		"author": q.UserID, "device_id": q.DeviceID, "accepted_with": out.AcceptedWith,
	})
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, out)
}

func errQuarantineNotFound() error {
	return samenplan.Errorf(samenplan.ENOTFOUND, "Geen schrijfactie in quarantaine met dit nummer / no quarantined write with this id.")
}
