package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// casesRoutes registers the consolidated case endpoints over the read model.
func (s *Server) casesRoutes(api *echo.Group) {
	api.GET("/families", s.handleFamilies, auth.RequireCaseReader())
	api.GET("/families/:id", s.handleFamily, auth.RequireCaseReader())
	api.GET("/families/:id/history", s.handleFamilyHistory, auth.RequireCaseReader())
	api.GET("/events", s.handleEvents, auth.RequireCaseReader())
}

// maxPage bounds one page of a list.
const maxPage = 200

// caseVisible reports whether p may read case c: her region, and for a
// coach only the families she holds.
func caseVisible(p auth.Principal, c *view.Case) bool {
	if !p.CanReadRegion(c.Region()) {
		return false
	}
	return p.Role != auth.RoleCoach || slices.Contains(c.Coaches, p.UserID)
}

// handleFamilies lists cases: ?region=&coach=&status=&q=&signal=&limit=&offset=.
// A coach sees her own families only; another region is not_found.
func (s *Server) handleFamilies(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	q := c.QueryParams()
	f := view.Filter{Region: q.Get("region"), Coach: q.Get("coach"), Status: q.Get("status"), Q: q.Get("q"), Signal: q.Get("signal")}
	if f.Region == "" && len(p.Regions) > 0 {
		f.Region = p.Regions[0]
	}
	if !p.CanReadRegion(f.Region) {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Onbekende regio / unknown region %q.", f.Region)
	}
	if p.Role == auth.RoleCoach {
		if f.Coach != "" && f.Coach != p.UserID {
			return samenplan.Errorf(samenplan.EFORBIDDEN, "Een coach ziet enkel haar eigen gezinnen / a coach sees her own families only.")
		}
		f.Coach = p.UserID
	}
	var err error
	if f.Limit, err = intParam(q.Get("limit"), 50, 1, maxPage); err != nil {
		return err
	}
	if f.Offset, err = intParam(q.Get("offset"), 0, 0, 1<<30); err != nil {
		return err
	}
	items, total := s.cfg.View.Cases(f)
	if items == nil {
		items = []view.CaseSummary{}
	}
	fams := make([]string, len(items))
	for i := range items {
		fams[i] = items[i].FamilyID
	}
	s.auditList(c, f.Region, "families", len(items), fams, nil)
	return c.JSON(http.StatusOK, map[string]any{"items": items, "total": total, "limit": f.Limit, "offset": f.Offset})
}

// CaseFile is the whole consolidated case as GET /v1/families/{id} answers
// it: the read model's case (whose conflicts and quarantined fields are
// counts) and, beside it, what the store keeps about the family.
type CaseFile struct {
	*view.Case
	// QuarantinedWrites are the family's open quarantined writes; empty for
	// a coach (they are the coordinator's to decide).
	QuarantinedWrites []QuarantineItem `json:"quarantined_writes"`
	// ConflictRecords are the recorded conflicts on the family's rows, the
	// winning and the losing write side by side.
	ConflictRecords []CaseConflict `json:"conflict_records"`
	// Evictions are the devices told to drop the family (reassignment,
	// closure) with their proofs.
	Evictions []EvictionProof `json:"evictions"`
}

// CaseConflict is a store.Conflict with the names of both writers.
type CaseConflict struct {
	ID         int64        `json:"id"`
	Collection string       `json:"collection"`
	RowID      string       `json:"row_id"`
	Field      string       `json:"field"`
	DetectedAt time.Time    `json:"detected_at"`
	Winner     ConflictSide `json:"winner"`
	Loser      ConflictSide `json:"loser"`
}

// ConflictSide is one write of a conflict and who made it.
type ConflictSide struct {
	store.ConflictSide
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// handleFamily returns one consolidated case and records the read in the
// audit log. A family the caller may not read is not_found.
func (s *Server) handleFamily(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	cs, ok := s.cfg.View.Case(c.Param("id"))
	if !ok || !caseVisible(p, cs) {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Gezin niet gevonden / family not found.")
	}
	ctx := c.Request().Context()
	r, ok := s.cfg.Stores.Region(cs.Region())
	if !ok {
		return fmt.Errorf("case %s: no store for region %s", cs.ID(), cs.Region())
	}
	out := CaseFile{Case: cs, QuarantinedWrites: []QuarantineItem{}, ConflictRecords: []CaseConflict{}}
	names := s.userNames(ctx)
	if p.Role != auth.RoleCoach {
		qs, err := r.Quarantine(ctx, store.QuarantineOpen)
		if err != nil {
			return err
		}
		scope, devices := schema.FamilyScope(cs.ID()), map[string]string{}
		for _, q := range qs {
			if q.Scope == scope {
				out.QuarantinedWrites = append(out.QuarantinedWrites, s.quarantineItem(ctx, q, names, devices))
			}
		}
	}
	conflicts, err := r.FamilyConflicts(ctx, cs.ID())
	if err != nil {
		return err
	}
	side := func(cs store.ConflictSide) ConflictSide {
		out := ConflictSide{ConflictSide: cs}
		if u := names.get(cs.UserID); u != nil {
			out.Username, out.DisplayName = u.Username, u.DisplayName
		}
		return out
	}
	for _, k := range conflicts {
		out.ConflictRecords = append(out.ConflictRecords, CaseConflict{ID: k.ID, Collection: k.Collection, RowID: k.RowID,
			Field: k.Field, DetectedAt: k.DetectedAt, Winner: side(k.Winner), Loser: side(k.Loser)})
	}
	if out.Evictions, err = s.evictionProofs(ctx, r, cs.ID()); err != nil {
		return err
	}
	entry := auth.AuditEntry(c, audit.ActionCaseRead)
	entry.Region, entry.TargetKind, entry.TargetID = cs.Region(), "family", cs.ID()
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, out)
}

// FamilyHistoryAnswer is the answer of GET /v1/families/{id}/history.
type FamilyHistoryAnswer struct {
	FamilyID string `json:"family_id"`
	Region   string `json:"region"`
	// Fields are the histories of every field of the family's rows (the
	// family, persons, referrals, trajectories, plan goals, network
	// members, contacts), by collection, row and field; entries in log
	// order, winners and losers (outcome stale) alike.
	Fields []store.FieldHistory `json:"fields"`
	// Users names the authors of the entries (user id → name); the server's
	// own writes are by "server".
	Users map[string]UserName `json:"users"`
}

// UserName is how an author is shown.
type UserName struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// handleFamilyHistory returns every field's history of a family from the
// change log, optionally only of ?collection=, ?row= and ?field=. Readers
// are those of the case; every read is audited as a case read.
func (s *Server) handleFamilyHistory(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	cs, ok := s.cfg.View.Case(c.Param("id"))
	if !ok || !caseVisible(p, cs) {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Gezin niet gevonden / family not found.")
	}
	q := c.QueryParams()
	collection, row, field := q.Get("collection"), q.Get("row"), q.Get("field")
	if collection != "" && schema.CaseFile.Collection(collection) == nil {
		return samenplan.Errorf(samenplan.EINVALID, "collection: onbekende collectie %q / unknown collection %q.", collection, collection)
	}
	ctx := c.Request().Context()
	r, ok := s.cfg.Stores.Region(cs.Region())
	if !ok {
		return fmt.Errorf("case %s: no store for region %s", cs.ID(), cs.Region())
	}
	all, err := r.FamilyHistory(ctx, cs.ID())
	if err != nil {
		return err
	}
	out := FamilyHistoryAnswer{FamilyID: cs.ID(), Region: cs.Region(), Fields: []store.FieldHistory{}, Users: map[string]UserName{}}
	names := s.userNames(ctx)
	for _, h := range all {
		if (collection != "" && h.Collection != collection) || (row != "" && h.ID != row) || (field != "" && h.Field != field) {
			continue
		}
		out.Fields = append(out.Fields, h)
		for _, e := range h.Entries {
			if _, ok := out.Users[e.UserID]; ok {
				continue
			}
			un := UserName{Username: e.UserID}
			if u := names.get(e.UserID); u != nil {
				un = UserName{Username: u.Username, DisplayName: u.DisplayName}
			}
			out.Users[e.UserID] = un
		}
	}
	entry := auth.AuditEntry(c, audit.ActionCaseRead)
	entry.Region, entry.TargetKind, entry.TargetID = cs.Region(), "family", cs.ID()
	entry.Detail = audit.Detail(map[string]string{"view": "history", "collection": collection, "row": row, "field": field})
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, out)
}

// handleEvents streams server-sent events "family X changed" for the cases
// the caller may read, until the client goes away or the server stops.
// Events carry ids only; the client fetches what changed.
func (s *Server) handleEvents(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	ctx := c.Request().Context()
	events := s.cfg.View.Subscribe(ctx)
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": samenplan events\n\n")
	w.Flush()
	keepAlive := time.NewTicker(25 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			w.Flush()
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if !s.eventVisible(p, ev) {
				continue
			}
			buf, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, buf)
			w.Flush()
		}
	}
}

func (s *Server) eventVisible(p auth.Principal, ev view.Event) bool {
	switch {
	case !p.CanReadRegion(ev.Region):
		return false
	case p.Role != auth.RoleCoach || ev.FamilyID == "":
		return true // the whole region, or the intake scope every coach holds
	}
	cs, ok := s.cfg.View.Case(ev.FamilyID)
	return ok && caseVisible(p, cs)
}

func intParam(v string, def, min, max int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, samenplan.Errorf(samenplan.EINVALID, "Ongeldige waarde / invalid number %q (want %d..%d).", v, min, max)
	}
	return n, nil
}
