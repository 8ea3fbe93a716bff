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
)

// casesRoutes registers the consolidated case endpoints over the read model.
func (s *Server) casesRoutes(api *echo.Group) {
	api.GET("/families", s.handleFamilies, auth.RequireCaseReader())
	api.GET("/families/:id", s.handleFamily, auth.RequireCaseReader())
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
	return c.JSON(http.StatusOK, map[string]any{"items": items, "total": total, "limit": f.Limit, "offset": f.Offset})
}

// handleFamily returns one consolidated case and records the read in the
// audit log. A family the caller may not read is not_found.
func (s *Server) handleFamily(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c)
	cs, ok := s.cfg.View.Case(c.Param("id"))
	if !ok || !caseVisible(p, cs) {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Gezin niet gevonden / family not found.")
	}
	entry := auth.AuditEntry(c, audit.ActionCaseRead)
	entry.Region, entry.TargetKind, entry.TargetID = cs.Region(), "family", cs.ID()
	s.cfg.Audit.Record(entry)
	return c.JSON(http.StatusOK, cs)
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
