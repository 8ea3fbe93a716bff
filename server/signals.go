package server

import (
	"net/http"
	"slices"
	"sort"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/protocol"
)

// signalsRoutes registers the fired signals of the region's signal rules
// (signals.yaml) over the read model, which re-evaluates them on every
// change and daily:
//
//	GET /regions/:region/signals   coordinator, reviewer: the region; coach: the families she holds
//	GET /families/:id/signals      whoever may read the case
//
// A coach's devices receive her families' signals with the last page of a
// pull (handlePull, coachSignals).
func (s *Server) signalsRoutes(api *echo.Group) {
	api.GET("/regions/:region/signals", s.handleRegionSignals, auth.RequireRegion("region"),
		auth.Require(auth.RoleCoach, auth.RoleCoordinator, auth.RoleReviewer))
	api.GET("/families/:id/signals", s.handleFamilySignals, auth.RequireCaseReader())
}

// SignalItem is one fired signal as the API shows it.
type SignalItem struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	LabelEN  string `json:"label_en,omitempty"`
	Severity string `json:"severity"`
	// About is "trajectory" or "referral"; SubjectID that row's id.
	About     string `json:"about"`
	SubjectID string `json:"subject_id"`
	// FamilyID and FamilyLabel are empty for a referral without a family.
	FamilyID    string `json:"family_id"`
	FamilyLabel string `json:"family_label"`
	Region      string `json:"region"`
	// RulesVersion is the hash of the signals.yaml that fired it.
	RulesVersion string `json:"rules_version"`
}

// SignalList is the body of both signal endpoints.
type SignalList struct {
	Region string `json:"region"`
	// Scope is "region" (coordinator, reviewer), "coach" (the families the
	// caller holds) or "family".
	Scope    string `json:"scope"`
	FamilyID string `json:"family_id,omitempty"`
	// RulesVersion is the region version of the rules the read model last
	// evaluated the region with ("" without active rules).
	RulesVersion string `json:"rules_version"`
	// Total and BySeverity count every matching signal; Items is the page
	// from Offset, at most Limit long (the region list pages, a family's
	// does not).
	Total      int            `json:"total"`
	BySeverity map[string]int `json:"by_severity"`
	Limit      int            `json:"limit,omitempty"`
	Offset     int            `json:"offset"`
	Items      []SignalItem   `json:"items"`
}

var signalSeverities = []string{"info", "warning", "critical"}

// Signal pages: a region of 10,000 families fires thousands of signals.
const (
	defaultSignalPage = 200
	maxSignalPage     = 1000
)

// handleRegionSignals lists the region's fired signals, most severe first:
// ?severity=info|warning|critical and ?signal=<id> narrow the list,
// ?limit= (1..1000, default 200) and ?offset= page it.
func (s *Server) handleRegionSignals(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	region := c.Param("region")
	q := c.QueryParams()
	severity, signal := q.Get("severity"), q.Get("signal")
	if severity != "" && !slices.Contains(signalSeverities, severity) {
		return samenplan.Errorf(samenplan.EINVALID, "Onbekende ernst / unknown severity %q (want info, warning or critical).", severity)
	}
	if len(signal) > 64 {
		return samenplan.Errorf(samenplan.EINVALID, "Ongeldig signaal / invalid signal id.")
	}
	limit, err := intParam(q.Get("limit"), defaultSignalPage, 1, maxSignalPage)
	if err != nil {
		return err
	}
	offset, err := intParam(q.Get("offset"), 0, 0, 1<<30)
	if err != nil {
		return err
	}
	list := SignalList{Region: region, Scope: "region", BySeverity: map[string]int{}, Items: []SignalItem{}, Limit: limit, Offset: offset}
	if in, ok := s.cfg.View.Info(region); ok {
		list.RulesVersion = in.RulesVersion
	}
	var held map[string]bool
	if p.Role == auth.RoleCoach {
		list.Scope = "coach"
		held = map[string]bool{}
		for _, cs := range s.heldCases(p.UserID, region) {
			held[cs.ID()] = true
		}
	}
	labels := map[string]string{}
	for _, sg := range s.cfg.View.Signals(region) {
		if held != nil && !held[sg.FamilyID] {
			continue
		}
		if (severity != "" && sg.Severity != severity) || (signal != "" && sg.ID != signal) {
			continue
		}
		if list.Total < offset || len(list.Items) >= limit {
			list.Total++
			list.BySeverity[sg.Severity]++
			continue
		}
		label, ok := labels[sg.FamilyID]
		if !ok && sg.FamilyID != "" {
			if cs, found := s.cfg.View.Case(sg.FamilyID); found {
				label = cs.Family.Label
			}
			labels[sg.FamilyID] = label
		}
		list.add(sg, label)
	}
	var fams, refs []string
	for _, it := range list.Items {
		fams = append(fams, it.FamilyID)
		if it.About == "referral" {
			refs = append(refs, it.SubjectID)
		}
	}
	s.auditList(c, region, "signals", len(list.Items), fams, refs)
	return c.JSON(http.StatusOK, list)
}

// handleFamilySignals lists one family's fired signals. A family the caller
// may not read is not_found. The read is audited as a case read.
func (s *Server) handleFamilySignals(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	cs, ok := s.cfg.View.Case(c.Param("id"))
	if !ok || !caseVisible(p, cs) {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Gezin niet gevonden / family not found.")
	}
	list := SignalList{Region: cs.Region(), Scope: "family", FamilyID: cs.ID(), BySeverity: map[string]int{}, Items: []SignalItem{}}
	if in, ok := s.cfg.View.Info(cs.Region()); ok {
		list.RulesVersion = in.RulesVersion
	}
	for _, i := range sortedSignals(cs.Signals) {
		list.add(&cs.Signals[i], cs.Family.Label)
	}
	entry := auth.AuditEntry(c, audit.ActionCaseRead)
	entry.Region, entry.TargetKind, entry.TargetID = cs.Region(), "family", cs.ID()
	entry.Detail = audit.Detail(map[string]string{"part": "signals"})
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, list)
}

func (l *SignalList) add(sg *view.Signal, familyLabel string) {
	l.Items = append(l.Items, SignalItem{ID: sg.ID, Label: sg.Label, LabelEN: sg.LabelEN, Severity: sg.Severity,
		About: sg.About, SubjectID: sg.SubjectID, FamilyID: sg.FamilyID, FamilyLabel: familyLabel,
		Region: sg.Region, RulesVersion: sg.Version})
	l.BySeverity[sg.Severity]++
	l.Total++
}

// severityOrder ranks severities most severe first, as view.Signals does.
var severityOrder = map[string]int{"critical": 0, "warning": 1, "info": 2}

func severityRank(sev string) int {
	if r, ok := severityOrder[sev]; ok {
		return r
	}
	return len(severityOrder)
}

// sortedSignals returns the indexes of ss most severe first, then by
// subject and id.
func sortedSignals(ss []view.Signal) []int {
	idx := make([]int, len(ss))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := &ss[idx[i]], &ss[idx[j]]
		if ra, rb := severityRank(a.Severity), severityRank(b.Severity); ra != rb {
			return ra < rb
		}
		if a.SubjectID != b.SubjectID {
			return a.SubjectID < b.SubjectID
		}
		return a.ID < b.ID
	})
	return idx
}

// heldCases returns the cases of region that coach holds (lead or co-coach
// of a trajectory that is not closed), in label order.
func (s *Server) heldCases(coach, region string) []*view.Case {
	sums, _ := s.cfg.View.Cases(view.Filter{Region: region, Coach: coach})
	out := make([]*view.Case, 0, len(sums))
	for i := range sums {
		if cs, ok := s.cfg.View.Case(sums[i].FamilyID); ok && cs.Region() == region && slices.Contains(cs.Coaches, coach) {
			out = append(out, cs)
		}
	}
	return out
}

// coachSignals returns the fired signals of the families coach holds in
// region, for the last page of her pull; nil when there are none. It reads
// only her cases (an index range of the read model), so an empty pull
// stays cheap.
func (s *Server) coachSignals(coach, device, region string) []protocol.Signal {
	if s.cfg.View == nil {
		return nil
	}
	// Peek: a poll must not wait behind other devices' pushes being applied
	// to the model; only its own device's queued pushes are applied first
	// (she wrote a contact: its signal must go); what others' queued
	// commits change comes with the next pull.
	s.cfg.View.SettleFor(device)
	sums, _ := s.cfg.View.PeekCases(view.Filter{Region: region, Coach: coach})
	var out []protocol.Signal
	for i := range sums {
		if len(sums[i].Signals) == 0 {
			continue
		}
		cs, ok := s.cfg.View.PeekCase(sums[i].FamilyID)
		if !ok || cs.Region() != region || !slices.Contains(cs.Coaches, coach) {
			continue
		}
		for _, j := range sortedSignals(cs.Signals) {
			sg := &cs.Signals[j]
			out = append(out, protocol.Signal{ID: sg.ID, Label: sg.Label, LabelEN: sg.LabelEN, Severity: sg.Severity,
				About: sg.About, SubjectID: sg.SubjectID, FamilyID: cs.ID(), Version: sg.Version})
		}
	}
	return out
}
