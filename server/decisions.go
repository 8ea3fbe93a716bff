package server

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
)

// Decision is one recorded intake decision of a region's team: a row of
// intake_decisions (migrations/workflow_001_intake_decisions.sql). A
// referral is decided once; the row is never changed.
type Decision struct {
	ID             int64           `json:"id"`
	Region         string          `json:"region"`
	ReferralID     string          `json:"referral_id"`
	FamilyID       string          `json:"family_id"`
	Week           string          `json:"week"` // ISO week of the meeting, "2026-W48"
	Kind           string          `json:"kind"` // start, decline, redirect, consult
	CoachID        string          `json:"coach_id"`
	CoCoachIDs     []string        `json:"co_coach_ids"`
	TrajectoryID   string          `json:"trajectory_id"`
	Mandated       bool            `json:"mandated"`
	Reason         string          `json:"reason"`
	RedirectTo     string          `json:"redirect_to"`
	OverrideReason string          `json:"override_reason"`
	Capacity       json.RawMessage `json:"capacity"`    // the explained capacity decision of a start, null otherwise
	Eligibility    json.RawMessage `json:"eligibility"` // the explained intake decision it was made with
	RulesVersion   string          `json:"rules_version"`
	ReceivedOn     string          `json:"received_on"` // the referral's, YYYY-MM-DD
	DecidedOn      string          `json:"decided_on"`  // YYYY-MM-DD, Europe/Brussels
	DecidedAt      string          `json:"decided_at"`  // RFC 3339, UTC
	DecidedBy      string          `json:"decided_by"`  // user id
	Seq            int64           `json:"seq"`         // change_log seq of the write

	// Names for the pages, filled in when a week's decisions are answered
	// (not stored): the family's label from the read model and the
	// deciding user's and the lead coach's display names.
	FamilyLabel   string `json:"family_label,omitempty"`
	DecidedByName string `json:"decided_by_name,omitempty"`
	CoachName     string `json:"coach_name,omitempty"`
}

// Decision kinds.
const (
	DecisionStart    = "start"
	DecisionDecline  = "decline"
	DecisionRedirect = "redirect"
	DecisionConsult  = "consult"
)

const decisionColumns = `id, referral_id, family_id, week, kind, coach_id, co_coach_ids,
	trajectory_id, mandated, reason, redirect_to, override_reason, capacity, eligibility,
	rules_version, received_on, decided_on, decided_at, decided_by, seq`

func scanDecision(region string, row interface{ Scan(...any) error }) (Decision, error) {
	var d Decision
	var co, capacity, elig string
	var mandated int64
	if err := row.Scan(&d.ID, &d.ReferralID, &d.FamilyID, &d.Week, &d.Kind, &d.CoachID, &co,
		&d.TrajectoryID, &mandated, &d.Reason, &d.RedirectTo, &d.OverrideReason, &capacity, &elig,
		&d.RulesVersion, &d.ReceivedOn, &d.DecidedOn, &d.DecidedAt, &d.DecidedBy, &d.Seq); err != nil {
		return Decision{}, err
	}
	d.Region = region
	d.Mandated = mandated != 0
	d.CoCoachIDs = []string{}
	if err := json.Unmarshal([]byte(co), &d.CoCoachIDs); err != nil {
		return Decision{}, fmt.Errorf("decision %d: co_coach_ids: %w", d.ID, err)
	}
	if d.CoCoachIDs == nil {
		d.CoCoachIDs = []string{}
	}
	d.Capacity = json.RawMessage(capacity)
	d.Eligibility = json.RawMessage(elig)
	return d, nil
}

// queryDecisions runs a select over intake_decisions of region with the
// given WHERE/ORDER tail and arguments.
func (s *Server) queryDecisions(ctx context.Context, region, tail string, args ...any) ([]Decision, error) {
	r, ok := s.cfg.Stores.Region(region)
	if !ok {
		return nil, samenplan.Errorf(samenplan.ENOTFOUND, "Regio niet gevonden / region not found.")
	}
	rows, err := r.DB().Reader.QueryContext(ctx, `SELECT `+decisionColumns+` FROM intake_decisions `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("decisions of %s: %w", region, err)
	}
	defer rows.Close()
	out := []Decision{}
	for rows.Next() {
		d, err := scanDecision(region, rows)
		if err != nil {
			return nil, fmt.Errorf("decisions of %s: %w", region, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("decisions of %s: %w", region, err)
	}
	return out, nil
}

// decisionsBetween returns the intake decisions of region decided on a day
// in [from, to] (both inclusive, Europe/Brussels days), oldest first. An
// unknown region is a not_found *samenplan.Error; a zero from or to leaves
// that side open.
func (s *Server) decisionsBetween(ctx context.Context, region string, from, to rules.Date) ([]Decision, error) {
	lo, hi := from.String(), to.String()
	if to.IsZero() {
		hi = "9999-12-31"
	}
	return s.queryDecisions(ctx, region, `WHERE decided_on >= ? AND decided_on <= ? ORDER BY decided_on, id`, lo, hi)
}

// decisionsOfWeek returns the decisions recorded for week ("2026-W48") in
// region, newest first.
func (s *Server) decisionsOfWeek(ctx context.Context, region, week string) ([]Decision, error) {
	ds, err := s.queryDecisions(ctx, region, `WHERE week = ? ORDER BY id DESC`, week)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	name := func(id string) string {
		if id == "" {
			return ""
		}
		if n, ok := names[id]; ok {
			return n
		}
		n := ""
		if u, err := s.cfg.Auth.GetUser(ctx, id); err == nil {
			n = cmp.Or(u.DisplayName, u.Username)
		}
		names[id] = n
		return n
	}
	for i := range ds {
		d := &ds[i]
		if cs, ok := s.cfg.View.Case(d.FamilyID); ok && cs.Region() == region {
			d.FamilyLabel = cs.Family.Label
		}
		d.DecidedByName, d.CoachName = name(d.DecidedBy), name(d.CoachID)
	}
	return ds, nil
}

// decisionExists reports whether referral already has a decision, inside tx.
func decisionExists(ctx context.Context, tx *sql.Tx, referralID string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM intake_decisions WHERE referral_id = ?`, referralID).Scan(&n); err != nil {
		return false, fmt.Errorf("decision of %s: %w", referralID, err)
	}
	return n > 0, nil
}
