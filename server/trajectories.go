package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// Trajectory statuses (schema.TrajectoryStatuses).
const (
	statusActive = "active"
	statusPaused = "paused"
	statusClosed = "closed"
)

// trajectoryRoutes registers a trajectory's detail (with the eviction
// proofs of its family), its status actions (pause, resume, close, RTJ
// request), the reassignment of its coaches, and the region's quarantine
// (quarantine.go). Every change is a server write through the merge path,
// stamped by the server and logged under the acting user and device, so
// devices learn it by pulling.
func (s *Server) trajectoryRoutes(api *echo.Group) {
	reader := auth.RequireCaseReader()
	api.GET("/trajectories/:id", s.handleTrajectory, reader)
	api.POST("/trajectories/:id/pause", s.handleTrajectoryPause, reader)
	api.POST("/trajectories/:id/resume", s.handleTrajectoryResume, reader)
	api.POST("/trajectories/:id/close", s.handleTrajectoryClose, reader)
	api.POST("/trajectories/:id/rtj", s.handleTrajectoryRTJ, reader)
	api.PUT("/trajectories/:id/assignment", s.handleAssignment, reader)
	s.quarantineRoutes(api)
}

// trajectoryMu serialises the trajectory actions of this process, so that
// two actions never both decide on the same state (two closes, a pause
// racing a close). A coordinator's device can still write the same fields
// by push; that is an ordinary concurrent edit, settled by LWW.
var trajectoryMu sync.Mutex

// trajectoryAt is a trajectory with the case and the region store it is in.
type trajectoryAt struct {
	region *store.Region
	cs     *view.Case
	t      *view.Trajectory
}

func errTrajectoryNotFound() error {
	return samenplan.Errorf(samenplan.ENOTFOUND, "Traject niet gevonden / trajectory not found.")
}

// lookupTrajectory finds trajectory id in the caller's regions. A
// trajectory the caller may not see (another region, for a coach one she is
// not lead or co-coach of, or one that is closed) is not_found.
func (s *Server) lookupTrajectory(ctx context.Context, p auth.Principal, id string) (trajectoryAt, error) {
	if !schema.ValidID(id) {
		return trajectoryAt{}, errTrajectoryNotFound()
	}
	for _, name := range p.Regions {
		ta, ok, err := s.findTrajectory(ctx, name, id)
		if err != nil {
			return trajectoryAt{}, err
		}
		if !ok {
			continue
		}
		if !trajectoryVisible(p, ta) {
			return trajectoryAt{}, errTrajectoryNotFound()
		}
		return ta, nil
	}
	return trajectoryAt{}, errTrajectoryNotFound()
}

// findTrajectory returns trajectory id of region from the read model; the
// store names its family (family_id is fixed once written).
func (s *Server) findTrajectory(ctx context.Context, region, id string) (trajectoryAt, bool, error) {
	r, ok := s.cfg.Stores.Region(region)
	if !ok {
		return trajectoryAt{}, false, nil
	}
	hist, err := r.History(ctx, "trajectories", id)
	if err != nil {
		return trajectoryAt{}, false, err
	}
	var family string
	for _, h := range hist {
		if h.Field == "family_id" && h.Outcome == store.OutcomeApplied {
			family = stringOf(h.Value)
		}
	}
	if family == "" {
		return trajectoryAt{}, false, nil
	}
	cs, ok := s.cfg.View.Case(family)
	if !ok {
		return trajectoryAt{}, false, nil
	}
	t := caseTrajectory(cs, id)
	if t == nil {
		return trajectoryAt{}, false, nil
	}
	return trajectoryAt{region: r, cs: cs, t: t}, true, nil
}

// caseTrajectory returns the trajectory id of case cs, or nil.
func caseTrajectory(cs *view.Case, id string) *view.Trajectory {
	if cs.Trajectory != nil && cs.Trajectory.ID == id {
		return cs.Trajectory
	}
	for _, t := range cs.PastTrajectories {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// trajectoryVisible reports whether p may read the trajectory: coordinators
// and reviewers of its region; a coach who holds it (lead or co-coach of a
// trajectory that is not closed).
func trajectoryVisible(p auth.Principal, ta trajectoryAt) bool {
	if !p.CanReadRegion(ta.cs.Region()) {
		return false
	}
	if p.Role != auth.RoleCoach {
		return true
	}
	return ta.t.Status != statusClosed && (ta.t.LeadCoachID == p.UserID || slices.Contains(ta.t.CoCoachIDs, p.UserID))
}

// mayChange reports whether p may change the trajectory: the coordinator of
// its region, and unless coordinatorOnly its lead coach.
func mayChange(p auth.Principal, ta trajectoryAt, coordinatorOnly bool) error {
	if p.CanWriteRegion(ta.cs.Region()) {
		return nil
	}
	if !coordinatorOnly && p.Role == auth.RoleCoach && ta.t.LeadCoachID == p.UserID {
		return nil
	}
	if coordinatorOnly {
		return samenplan.Errorf(samenplan.EFORBIDDEN, "Enkel de coördinator van de regio wijst coaches toe / only the region's coordinator assigns coaches.")
	}
	return samenplan.Errorf(samenplan.EFORBIDDEN, "Enkel de coördinator of de hoofdcoach wijzigt dit traject / only the coordinator or the lead coach changes this trajectory.")
}

// TrajectoryDetail is a trajectory as GET /v1/trajectories/{id} shows it.
type TrajectoryDetail struct {
	Trajectory  *view.Trajectory `json:"trajectory"`
	FamilyID    string           `json:"family_id"`
	FamilyLabel string           `json:"family_label"`
	Region      string           `json:"region"`
	Coaches     []CoachRef       `json:"coaches"`
	// Evictions are the devices told to drop the family's scope (after a
	// reassignment, or when the trajectory closed), with their proofs.
	Evictions []EvictionProof `json:"evictions"`
}

// CoachRef is a coach of a trajectory with her name.
type CoachRef struct {
	UserID      string `json:"user_id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"` // lead or co
}

// EvictionProof is a device that was told to drop a family, and its proof.
type EvictionProof struct {
	DeviceID   string     `json:"device_id"`
	DeviceName string     `json:"device_name"`
	UserID     string     `json:"user_id"`
	Username   string     `json:"username"`
	Scope      string     `json:"scope"`
	EvictedAt  time.Time  `json:"evicted_at"`
	Proven     bool       `json:"proven"`
	Proof      string     `json:"proof,omitempty"`
	ProvenAt   *time.Time `json:"proven_at,omitempty"`
}

func (s *Server) handleTrajectory(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	ctx := c.Request().Context()
	ta, err := s.lookupTrajectory(ctx, p, c.Param("id"))
	if err != nil {
		return err
	}
	d, err := s.trajectoryDetail(ctx, ta)
	if err != nil {
		return err
	}
	// The trajectory is part of the case file: its read is a case read.
	entry := auth.AuditEntry(c, audit.ActionCaseRead)
	entry.Region, entry.TargetKind, entry.TargetID = ta.cs.Region(), "trajectory", ta.t.ID
	entry.Detail = audit.Detail(map[string]string{"view": "trajectory", "family_id": ta.cs.ID()})
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, d)
}

func (s *Server) trajectoryDetail(ctx context.Context, ta trajectoryAt) (TrajectoryDetail, error) {
	d := TrajectoryDetail{Trajectory: ta.t, FamilyID: ta.cs.ID(), FamilyLabel: ta.cs.Family.Label, Region: ta.cs.Region(), Coaches: []CoachRef{}}
	users := s.userNames(ctx)
	if ta.t.LeadCoachID != "" {
		d.Coaches = append(d.Coaches, users.coach(ta.t.LeadCoachID, "lead"))
	}
	for _, id := range ta.t.CoCoachIDs {
		d.Coaches = append(d.Coaches, users.coach(id, "co"))
	}
	var err error
	d.Evictions, err = s.evictionProofs(ctx, ta.region, ta.cs.ID())
	return d, err
}

// evictionProofs returns the evictions of a family's scope with the device
// and user of each.
func (s *Server) evictionProofs(ctx context.Context, r *store.Region, family string) ([]EvictionProof, error) {
	evs, err := r.Evictions(ctx, store.EvictionFilter{Scope: schema.FamilyScope(family)})
	if err != nil {
		return nil, err
	}
	out := make([]EvictionProof, 0, len(evs))
	for _, e := range evs {
		ep := EvictionProof{DeviceID: e.DeviceID, Scope: e.Scope, EvictedAt: e.EvictedAt, Proof: e.Proof, ProvenAt: e.ProvenAt, Proven: e.ProvenAt != nil}
		if dev, err := s.cfg.Auth.GetDevice(ctx, e.DeviceID); err == nil {
			ep.DeviceName, ep.UserID, ep.Username = dev.Name, dev.UserID, dev.Username
		} else if samenplan.ErrorCode(err) != samenplan.ENOTFOUND {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

// userNames looks users up once per request.
type userNames struct {
	ctx   context.Context
	auth  *auth.Service
	known map[string]*auth.User
}

func (s *Server) userNames(ctx context.Context) *userNames {
	return &userNames{ctx: ctx, auth: s.cfg.Auth, known: map[string]*auth.User{}}
}

// get returns the user with id, or nil when there is none (the server's
// own writes are logged as user "server").
func (u *userNames) get(id string) *auth.User {
	if usr, ok := u.known[id]; ok {
		return usr
	}
	var found *auth.User
	if usr, err := u.auth.GetUser(u.ctx, id); err == nil {
		found = &usr
	}
	u.known[id] = found
	return found
}

func (u *userNames) coach(id, role string) CoachRef {
	ref := CoachRef{UserID: id, Role: role}
	if usr := u.get(id); usr != nil {
		ref.Username, ref.DisplayName = usr.Username, usr.DisplayName
	}
	return ref
}

// changeTrajectory runs one trajectory action: it finds the trajectory and
// checks that the caller may change it, lets plan decide the writes from its
// current state, writes them as the caller, audits action with plan's detail
// and answers the trajectory as GET /v1/trajectories/{id} shows it (also to
// a coach who just closed hers and no longer holds it).
func (s *Server) changeTrajectory(c echo.Context, action string, coordinatorOnly bool,
	plan func(ctx context.Context, ta trajectoryAt) ([]store.FieldWrite, any, error)) error {
	p, _ := auth.PrincipalFrom(c)
	ctx := c.Request().Context()
	trajectoryMu.Lock()
	defer trajectoryMu.Unlock()
	ta, err := s.lookupTrajectory(ctx, p, c.Param("id"))
	if err != nil {
		return err
	}
	if err := mayChange(p, ta, coordinatorOnly); err != nil {
		return err
	}
	writes, detail, err := plan(ctx, ta)
	if err != nil {
		return err
	}
	if len(writes) > 0 {
		if _, err := ta.region.ServerWrite(ctx, store.Actor{UserID: p.UserID, DeviceID: p.DeviceID}, writes); err != nil {
			return fmt.Errorf("%s of trajectory %s: %w", action, ta.t.ID, err)
		}
	}
	entry := auth.AuditEntry(c, action)
	entry.Region, entry.TargetKind, entry.TargetID = ta.cs.Region(), "trajectory", ta.t.ID
	entry.Detail = audit.Detail(detail)
	s.cfg.Audit.Record(entry)

	// The read model applied the write in the store's commit hook.
	after, ok, err := s.findTrajectory(ctx, ta.cs.Region(), ta.t.ID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("trajectory %s is gone from the read model after %s", ta.t.ID, action)
	}
	d, err := s.trajectoryDetail(ctx, after)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// decodeOptional decodes an optional JSON body into v: an empty body leaves
// v as it is; anything else is decoded strictly.
func decodeOptional(c echo.Context, v any) error {
	b, err := readBody(c, 16<<10)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return decodeStrict(b, v)
}

func fieldWrite(collection, id, field string, v any) store.FieldWrite {
	return store.FieldWrite{Collection: collection, ID: id, Field: field, Value: trajectoryValue(v)}
}

// trajectoryValue returns v as JSON; v is one of the values the handlers
// write (strings, bools, lists of strings), which always encode.
func trajectoryValue(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return b
}

// stringOf returns the string a JSON value holds, or "".
func stringOf(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func errTransition(format string, args ...any) error {
	return samenplan.Errorf(samenplan.ECONFLICT, format, args...)
}

func (s *Server) handleTrajectoryPause(c echo.Context) error {
	if err := decodeOptional(c, &struct{}{}); err != nil {
		return err
	}
	return s.changeTrajectory(c, audit.ActionTrajectoryStatus, false, func(_ context.Context, ta trajectoryAt) ([]store.FieldWrite, any, error) {
		if ta.t.Status != statusActive {
			return nil, nil, errTransition("Enkel een actief traject kan gepauzeerd worden (status %s) / only an active trajectory can be paused (status %s).", ta.t.Status, ta.t.Status)
		}
		return []store.FieldWrite{fieldWrite("trajectories", ta.t.ID, "status", statusPaused)},
			map[string]string{"from": ta.t.Status, "to": statusPaused, "family_id": ta.cs.ID()}, nil
	})
}

func (s *Server) handleTrajectoryResume(c echo.Context) error {
	if err := decodeOptional(c, &struct{}{}); err != nil {
		return err
	}
	return s.changeTrajectory(c, audit.ActionTrajectoryStatus, false, func(_ context.Context, ta trajectoryAt) ([]store.FieldWrite, any, error) {
		if ta.t.Status != statusPaused {
			return nil, nil, errTransition("Enkel een gepauzeerd traject kan hervat worden (status %s) / only a paused trajectory can be resumed (status %s).", ta.t.Status, ta.t.Status)
		}
		return []store.FieldWrite{fieldWrite("trajectories", ta.t.ID, "status", statusActive)},
			map[string]string{"from": ta.t.Status, "to": statusActive, "family_id": ta.cs.ID()}, nil
	})
}

// CloseRequest is the body of POST /v1/trajectories/{id}/close.
type CloseRequest struct {
	// Reason is the id of one of the region's closure reasons (region.yaml).
	Reason string `json:"reason"`
	// ClosedOn is YYYY-MM-DD; today (the server's, Europe/Brussels) when empty.
	ClosedOn string `json:"closed_on"`
}

func (s *Server) handleTrajectoryClose(c echo.Context) error {
	b, err := readBody(c, 16<<10)
	if err != nil {
		return err
	}
	var req CloseRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	today := rules.DateOf(s.cfg.Now())
	closedOn := today
	if req.ClosedOn != "" {
		t, err := time.Parse(time.DateOnly, req.ClosedOn)
		if err != nil {
			return samenplan.Errorf(samenplan.EINVALID, "closed_on: ongeldige datum %q (JJJJ-MM-DD) / invalid date %q (YYYY-MM-DD).", req.ClosedOn, req.ClosedOn)
		}
		closedOn = rules.DateOf(t)
		if closedOn.Time().After(today.Time()) {
			return samenplan.Errorf(samenplan.EINVALID, "closed_on: %s ligt in de toekomst / %s is in the future.", req.ClosedOn, req.ClosedOn)
		}
	}
	return s.changeTrajectory(c, audit.ActionTrajectoryClose, false, func(_ context.Context, ta trajectoryAt) ([]store.FieldWrite, any, error) {
		if err := s.checkClosureReason(ta.cs.Region(), req.Reason); err != nil {
			return nil, nil, err
		}
		if !ta.t.StartedOn.IsZero() && closedOn.Time().Before(ta.t.StartedOn.Time()) {
			return nil, nil, samenplan.Errorf(samenplan.EINVALID, "closed_on: %s ligt voor de start van het traject (%s) / %s is before the trajectory started (%s).",
				closedOn, ta.t.StartedOn, closedOn, ta.t.StartedOn)
		}
		if ta.t.Status == statusClosed {
			return nil, nil, errTransition("Het traject is al afgesloten / the trajectory is already closed.")
		}
		if ta.t.Status != statusActive && ta.t.Status != statusPaused {
			return nil, nil, errTransition("Een traject met status %q kan niet afgesloten worden / a trajectory with status %q cannot be closed.", ta.t.Status, ta.t.Status)
		}
		return []store.FieldWrite{
				fieldWrite("trajectories", ta.t.ID, "status", statusClosed),
				fieldWrite("trajectories", ta.t.ID, "closed_on", closedOn.String()),
				fieldWrite("trajectories", ta.t.ID, "closure_reason", req.Reason),
			}, map[string]string{"from": ta.t.Status, "reason": req.Reason, "closed_on": closedOn.String(), "family_id": ta.cs.ID(),
				"lead_coach_id": ta.t.LeadCoachID}, nil
	})
}

// checkClosureReason returns invalid, listing the allowed ids, unless reason
// is one of the region's closure reasons under its active rules.
func (s *Server) checkClosureReason(region, reason string) error {
	var allowed []string
	if s.cfg.Rules != nil {
		if reg, ok := s.cfg.Rules.Region(region); ok {
			for _, t := range reg.Config.ClosureReasons {
				if t.ID == reason {
					return nil
				}
				allowed = append(allowed, t.ID)
			}
		}
	}
	list := strings.Join(allowed, ", ")
	if reason == "" {
		return samenplan.Errorf(samenplan.EINVALID, "reason: een reden van afsluiten is verplicht (%s) / a closure reason is required (%s).", list, list)
	}
	return samenplan.Errorf(samenplan.EINVALID, "reason: %q is geen reden van afsluiten in %s (%s) / %q is not a closure reason of %s (%s).",
		reason, region, list, reason, region, list)
}

// RTJRequest is the body of POST /v1/trajectories/{id}/rtj.
type RTJRequest struct {
	Requested *bool `json:"requested"`
}

func (s *Server) handleTrajectoryRTJ(c echo.Context) error {
	b, err := readBody(c, 16<<10)
	if err != nil {
		return err
	}
	var req RTJRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	if req.Requested == nil {
		return samenplan.Errorf(samenplan.EINVALID, "requested: true of false is verplicht / requested: true or false is required.")
	}
	return s.changeTrajectory(c, audit.ActionTrajectoryRTJ, false, func(_ context.Context, ta trajectoryAt) ([]store.FieldWrite, any, error) {
		if ta.t.Status == statusClosed {
			return nil, nil, errTransition("Het traject is afgesloten / the trajectory is closed.")
		}
		return []store.FieldWrite{fieldWrite("trajectories", ta.t.ID, "rtj_requested", *req.Requested)},
			map[string]any{"requested": *req.Requested, "was": ta.t.RTJRequested, "family_id": ta.cs.ID()}, nil
	})
}

// AssignmentRequest is the body of PUT /v1/trajectories/{id}/assignment.
type AssignmentRequest struct {
	LeadCoachID string   `json:"lead_coach_id"`
	CoCoachIDs  []string `json:"co_coach_ids"`
}

// maxCoCoaches is the schema's limit of co_coach_ids.
const maxCoCoaches = 10

func (s *Server) handleAssignment(c echo.Context) error {
	b, err := readBody(c, 16<<10)
	if err != nil {
		return err
	}
	var req AssignmentRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	if req.CoCoachIDs == nil {
		req.CoCoachIDs = []string{}
	}
	if req.LeadCoachID == "" {
		return samenplan.Errorf(samenplan.EINVALID, "lead_coach_id: een hoofdcoach is verplicht / a lead coach is required.")
	}
	if len(req.CoCoachIDs) > maxCoCoaches {
		return samenplan.Errorf(samenplan.EINVALID, "co_coach_ids: hoogstens %d co-coaches / at most %d co-coaches.", maxCoCoaches, maxCoCoaches)
	}
	seen := map[string]bool{req.LeadCoachID: true}
	for _, id := range req.CoCoachIDs {
		if id == req.LeadCoachID {
			return samenplan.Errorf(samenplan.EINVALID, "co_coach_ids: de hoofdcoach is geen co-coach / the lead coach cannot also be a co-coach.")
		}
		if seen[id] {
			return samenplan.Errorf(samenplan.EINVALID, "co_coach_ids: %q staat er twee keer in / %q is listed twice.", id, id)
		}
		seen[id] = true
	}
	return s.changeTrajectory(c, audit.ActionTrajectoryAssign, true, func(ctx context.Context, ta trajectoryAt) ([]store.FieldWrite, any, error) {
		region := ta.cs.Region()
		for _, id := range append([]string{req.LeadCoachID}, req.CoCoachIDs...) {
			if err := s.checkCoach(ctx, id, region); err != nil {
				return nil, nil, err
			}
		}
		if ta.t.Status == statusClosed {
			return nil, nil, errTransition("Een afgesloten traject krijgt geen andere coaches / a closed trajectory cannot be reassigned.")
		}
		oldCo := ta.t.CoCoachIDs
		if oldCo == nil {
			oldCo = []string{}
		}
		detail := map[string]any{
			"family_id": ta.cs.ID(),
			"from":      map[string]any{"lead_coach_id": ta.t.LeadCoachID, "co_coach_ids": oldCo},
			"to":        map[string]any{"lead_coach_id": req.LeadCoachID, "co_coach_ids": req.CoCoachIDs},
		}
		if ta.t.LeadCoachID == req.LeadCoachID && slices.Equal(oldCo, req.CoCoachIDs) {
			detail["unchanged"] = true
			return nil, detail, nil
		}
		return []store.FieldWrite{
			fieldWrite("trajectories", ta.t.ID, "lead_coach_id", req.LeadCoachID),
			fieldWrite("trajectories", ta.t.ID, "co_coach_ids", req.CoCoachIDs),
		}, detail, nil
	})
}

// checkCoach returns invalid unless id is an enabled coach of region.
func (s *Server) checkCoach(ctx context.Context, id, region string) error {
	u, err := s.cfg.Auth.GetUser(ctx, id)
	if samenplan.ErrorCode(err) == samenplan.ENOTFOUND {
		return samenplan.Errorf(samenplan.EINVALID, "Onbekende coach %q / unknown coach %q.", id, id)
	} else if err != nil {
		return err
	}
	switch {
	case u.Role != auth.RoleCoach:
		return samenplan.Errorf(samenplan.EINVALID, "%s is geen coach / %s is not a coach.", u.Username, u.Username)
	case !slices.Contains(u.Regions, region):
		return samenplan.Errorf(samenplan.EINVALID, "%s werkt niet in regio %s / %s does not work in region %s.", u.Username, region, u.Username, region)
	case u.Disabled:
		return samenplan.Errorf(samenplan.EINVALID, "De account van %s is uitgeschakeld / %s's account is disabled.", u.Username, u.Username)
	}
	return nil
}
