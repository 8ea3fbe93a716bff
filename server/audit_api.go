package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/schema"
	"github.com/samenplan/samenplan/sync/store"
)

// auditRoutes registers the audit log API (docs/api.md, "Audit log"):
//
//	GET /audit   admin: ?user=&family=&action=&region=&from=&to=&limit=&before=&format=csv
//
// Every other role is forbidden: the log says who read which family, which
// is itself nobody's business but the administrator's.
func (s *Server) auditRoutes(api *echo.Group) {
	api.GET("/audit", s.handleAudit, auth.Require(auth.RoleAdmin))
}

// Route is one endpoint the server registers: its method and its Echo path,
// with ":name" for a path parameter.
type Route struct {
	Method string
	Path   string
}

// Routes returns every endpoint the server registers, sorted by path and
// method, without the catch-all not-found routes Echo adds for groups with
// middleware. Tests use it to prove that no endpoint goes untested or
// undocumented.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.echo.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		rt := Route{Method: r.Method, Path: r.Path}
		if !slices.Contains(out, rt) {
			out = append(out, rt)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Audit API limits: a JSON page holds at most maxAuditPage entries; a CSV
// export without limit holds everything that matches, read in pages of
// auditExportPage.
const (
	defaultAuditPage = 100
	maxAuditPage     = 1000
	auditExportPage  = 1000
)

// auditQuery is a parsed GET /audit request.
type auditQuery struct {
	filter audit.Filter // Limit is the page size (JSON) or the export's cap (CSV, 0: none)
	family string
	csv    bool
}

// AuditPage is the JSON answer of GET /audit: entries newest first, and the
// id to pass as before for the next (older) page, null on the last page.
type AuditPage struct {
	Items      []audit.Entry `json:"items"`
	NextBefore *int64        `json:"next_before"`
}

var (
	auditActionRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	auditRegionRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	auditIDRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)
)

// parseAuditQuery checks the query of GET /audit. Every problem is an
// invalid *samenplan.Error naming the parameter.
func parseAuditQuery(q url.Values, loc *time.Location) (auditQuery, error) {
	var aq auditQuery
	known := []string{"user", "family", "action", "region", "from", "to", "limit", "before", "format"}
	for k, v := range q {
		if !slices.Contains(known, k) {
			return aq, samenplan.Errorf(samenplan.EINVALID, "Onbekende parameter %q / unknown parameter %q (known: %s).", k, k, strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return aq, samenplan.Errorf(samenplan.EINVALID, "Parameter %q mag maar één keer voorkomen / parameter %q may appear only once.", k, k)
		}
	}
	switch f := q.Get("format"); f {
	case "", "json":
	case "csv":
		aq.csv = true
	default:
		return aq, samenplan.Errorf(samenplan.EINVALID, "Ongeldig formaat %q (json of csv) / invalid format %q (json or csv).", f, f)
	}
	f := &aq.filter
	if f.User = auth.NormalizeUsername(q.Get("user")); f.User != "" && !auditIDRE.MatchString(f.User) {
		return aq, samenplan.Errorf(samenplan.EINVALID, "Ongeldige gebruiker / invalid user: give a user id or username.")
	}
	if aq.family = q.Get("family"); aq.family != "" && !auditIDRE.MatchString(aq.family) {
		return aq, samenplan.Errorf(samenplan.EINVALID, "Ongeldig gezin / invalid family: give a family id.")
	}
	if f.Action = q.Get("action"); f.Action != "" && !auditActionRE.MatchString(f.Action) {
		return aq, samenplan.Errorf(samenplan.EINVALID, "Ongeldige actie %q / invalid action %q (e.g. case.read, sync.push).", f.Action, f.Action)
	}
	if f.Region = q.Get("region"); f.Region != "" && !auditRegionRE.MatchString(f.Region) {
		return aq, samenplan.Errorf(samenplan.EINVALID, "Ongeldige regio %q / invalid region %q.", f.Region, f.Region)
	}
	var err error
	if f.From, err = auditTime(q.Get("from"), "from", loc, false); err != nil {
		return aq, err
	}
	if f.To, err = auditTime(q.Get("to"), "to", loc, true); err != nil {
		return aq, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return aq, samenplan.Errorf(samenplan.EINVALID, "'from' moet vóór 'to' liggen / 'from' must be before 'to'.")
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return aq, samenplan.Errorf(samenplan.EINVALID, "Ongeldige waarde voor 'before' %q (een id ≥ 1) / invalid 'before' %q (an entry id ≥ 1).", v, v)
		}
		f.Before = n
	}
	def, max := defaultAuditPage, maxAuditPage
	if aq.csv {
		def, max = 0, audit.MaxLimit
	}
	if f.Limit, err = intParam(q.Get("limit"), def, 1, max); err != nil {
		return aq, samenplan.Errorf(samenplan.EINVALID, "Ongeldige limiet %q (1..%d) / invalid limit %q (1..%d).", q.Get("limit"), max, q.Get("limit"), max)
	}
	return aq, nil
}

// auditTime parses from or to: RFC 3339, or a day YYYY-MM-DD in loc. A day
// as to includes that whole day (to is exclusive: the next midnight).
func auditTime(v, name string, loc *time.Location, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		return time.Time{}, samenplan.Errorf(samenplan.EINVALID,
			"Ongeldige datum voor '%s' %q (YYYY-MM-DD of RFC 3339) / invalid time for '%s' %q (YYYY-MM-DD or RFC 3339).", name, v, name, v)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// handleAudit answers GET /audit: a page of the audit log as JSON, or with
// format=csv the whole selection as a CSV attachment. The export is itself
// audited (action export, detail: the filter) before anything is sent.
func (s *Server) handleAudit(c echo.Context) error {
	aq, err := parseAuditQuery(c.QueryParams(), brussels())
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	targets, err := s.familyTargets(ctx, aq.family)
	if err != nil {
		return err
	}
	if !aq.csv {
		f := aq.filter
		page := f.Limit
		f.Limit = page + 1 // one more tells whether an older page exists
		items, err := s.queryAudit(ctx, f, targets)
		if err != nil {
			return err
		}
		out := AuditPage{Items: items}
		if len(items) > page {
			out.Items = items[:page]
			next := out.Items[page-1].ID
			out.NextBefore = &next
		}
		if out.Items == nil {
			out.Items = []audit.Entry{}
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, out)
	}

	entry := auth.AuditEntry(c, audit.ActionExport)
	entry.Region = aq.filter.Region
	entry.TargetKind = "audit"
	entry.Detail = audit.Detail(auditFilterDetail(aq))
	if err := s.cfg.Audit.Log(ctx, entry); err != nil {
		return fmt.Errorf("audit the export of the audit log: %w", err)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="samenplan-audit-%s.csv"`, s.cfg.Now().UTC().Format("20060102T150405Z")))
	h.Set("Cache-Control", "no-store")
	return s.streamAuditCSV(c, aq, targets)
}

// streamAuditCSV writes the selection of aq as CSV, newest first, one page
// of auditExportPage entries at a time, with one header row.
func (s *Server) streamAuditCSV(c echo.Context, aq auditQuery, targets *familySelection) error {
	ctx := c.Request().Context()
	w := c.Response()
	f := aq.filter
	capped, left := f.Limit > 0, f.Limit
	var buf bytes.Buffer
	for first := true; ; first = false {
		f.Limit = auditExportPage
		if capped && left < f.Limit {
			f.Limit = left
		}
		items, err := s.queryAudit(ctx, f, targets)
		if err != nil {
			if first {
				return err // nothing sent yet: a proper error answer
			}
			s.logger.Error("audit export stopped", "err", err)
			return nil
		}
		buf.Reset()
		if err := audit.WriteCSV(&buf, items); err != nil {
			return err
		}
		out := buf.Bytes()
		if first {
			w.WriteHeader(http.StatusOK)
		} else {
			// WriteCSV starts every page with the header row; keep the first.
			_, out, _ = bytes.Cut(out, []byte("\n"))
		}
		if _, err := w.Write(out); err != nil {
			return nil // the client went away
		}
		w.Flush()
		if left -= len(items); len(items) < f.Limit || (capped && left <= 0) {
			return nil
		}
		f.Before = items[len(items)-1].ID
	}
}

// auditFilterDetail is the filter of an export as its audit entry records
// it: ids, names and times only.
func auditFilterDetail(aq auditQuery) map[string]any {
	f := aq.filter
	d := map[string]any{}
	for k, v := range map[string]string{"user": f.User, "family": aq.family, "action": f.Action, "region": f.Region} {
		if v != "" {
			d[k] = v
		}
	}
	if !f.From.IsZero() {
		d["from"] = f.From.UTC().Format(time.RFC3339)
	}
	if !f.To.IsZero() {
		d["to"] = f.To.UTC().Format(time.RFC3339)
	}
	if f.Limit > 0 {
		d["limit"] = f.Limit
	}
	if f.Before > 0 {
		d["before"] = f.Before
	}
	return d
}

// familySelection is what the family filter looks up: targets whose entries
// all concern the family, and shared targets (a region's quarantine list, its
// lists of cases) whose entries concern the families and referrals their
// detail names.
type familySelection struct {
	family    string
	referrals []string // the family's referrals, as a list's detail names them
	targets   []string
	shared    []string
}

// familyTargets returns what concerns family: the family itself and, as far
// as the read model and the region's store know them, its referrals,
// trajectories and decided quarantined writes (intake decisions, trajectory
// actions and quarantine decisions name those); shared, every region's
// quarantine list. Nil when family is empty.
func (s *Server) familyTargets(ctx context.Context, family string) (*familySelection, error) {
	if family == "" {
		return nil, nil
	}
	sel := &familySelection{family: family, targets: []string{"family:" + family}}
	for _, r := range s.cfg.Stores.Regions() {
		sel.shared = append(sel.shared, "quarantine:"+r, "list:"+r)
	}
	if s.cfg.View == nil {
		return sel, nil
	}
	cs, ok := s.cfg.View.Case(family)
	if !ok {
		return sel, nil
	}
	for _, r := range cs.Referrals {
		sel.targets = append(sel.targets, "referral:"+r.ID)
		sel.referrals = append(sel.referrals, r.ID)
	}
	if cs.Trajectory != nil {
		sel.targets = append(sel.targets, "trajectory:"+cs.Trajectory.ID)
	}
	for _, t := range cs.PastTrajectories {
		sel.targets = append(sel.targets, "trajectory:"+t.ID)
	}
	if r, ok := s.cfg.Stores.Region(cs.Region()); ok {
		q, err := r.Quarantine(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("quarantine of family %s: %w", family, err)
		}
		for _, e := range q {
			if e.Scope == schema.FamilyScope(family) && e.Status != store.QuarantineOpen { // only decisions are audited
				sel.targets = append(sel.targets, "quarantine:"+strconv.FormatInt(e.ID, 10))
			}
		}
	}
	return sel, nil
}

// mentionsFamily reports whether an entry's detail names the selection's
// family, as family_id or in families, or one of its referrals.
func (sel *familySelection) mentionsFamily(detail []byte) bool {
	var d struct {
		FamilyID  string   `json:"family_id"`
		Families  []string `json:"families"`
		Referrals []string `json:"referrals"`
	}
	if json.Unmarshal(detail, &d) != nil {
		return false
	}
	return d.FamilyID == sel.family || slices.Contains(d.Families, sel.family) ||
		slices.ContainsFunc(d.Referrals, func(r string) bool { return slices.Contains(sel.referrals, r) })
}

// queryAudit returns up to f.Limit entries matching f, newest first; with a
// family selection, those of its targets, and those of its shared targets
// whose detail names the family. Each target is a query on the target
// index; the answers are merged by id.
func (s *Server) queryAudit(ctx context.Context, f audit.Filter, sel *familySelection) ([]audit.Entry, error) {
	if sel == nil {
		return s.cfg.Audit.Query(ctx, f)
	}
	var all []audit.Entry
	for _, t := range sel.targets {
		g := f
		g.Target = t
		items, err := s.cfg.Audit.Query(ctx, g)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
	}
	for _, t := range sel.shared {
		g := f
		g.Target = t
		found := 0
		for found < f.Limit {
			items, err := s.cfg.Audit.Query(ctx, g)
			if err != nil {
				return nil, err
			}
			for _, e := range items {
				if sel.mentionsFamily(e.Detail) {
					all = append(all, e)
					found++
				}
			}
			if len(items) < g.Limit {
				break
			}
			g.Before = items[len(items)-1].ID
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	all = slices.CompactFunc(all, func(a, b audit.Entry) bool { return a.ID == b.ID })
	if len(all) > f.Limit {
		all = all[:f.Limit]
	}
	return all, nil
}
