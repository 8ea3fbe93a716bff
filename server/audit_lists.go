package server

import (
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
)

// auditList records a read of a list that shows case content (DESIGN §7:
// every case read in the web client is accounted for). The entry names the
// view, the query that chose the list, how many items it showed, and the ids
// of the families and referrals on it, so that the audit's family filter
// finds who saw a family on a list as well as in its case file. Ids only:
// no label, name or text of the case.
func (s *Server) auditList(c echo.Context, region, view string, items int, families, referrals []string) {
	entry := auth.AuditEntry(c, audit.ActionCaseList)
	entry.Region, entry.TargetKind, entry.TargetID = region, "list", region
	d := map[string]any{"view": view, "items": items, "families": ids(families)}
	if len(referrals) > 0 {
		d["referrals"] = ids(referrals)
	}
	if q := listQuery(c); len(q) > 0 {
		d["query"] = q
	}
	entry.Detail = audit.Detail(d)
	s.cfg.Audit.Record(entry)
}

// listQuery is the query that chose a list, for the audit: its parameters
// but the free-text search (which may hold a name), which is only noted as
// given; values are cut at 64 bytes.
func listQuery(c echo.Context) map[string]string {
	out := map[string]string{}
	for k, vs := range c.QueryParams() {
		if len(vs) == 0 || len(out) >= 16 {
			continue
		}
		v := vs[0]
		if k == "q" {
			v = "(given)"
		}
		out[cut(k, 32)] = cut(v, 64)
	}
	return out
}

// ids is the sorted set of the non-empty ids of list.
func ids(list []string) []string {
	out := slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
