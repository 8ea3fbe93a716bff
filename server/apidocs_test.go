package server

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docRouteRE matches an endpoint row of a table in docs/api.md:
// "| GET | `/v1/families/{id}?x=` | …", capturing the method and the path
// without its query.
var docRouteRE = regexp.MustCompile("^\\|\\s*(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\\s*\\|\\s*`(/[^`?\\s]*)")

// docPath writes an Echo path the way docs/api.md does: ":id" as "{id}".
func docPath(echoPath string) string {
	parts := strings.Split(echoPath, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// TestAPIDocs_ListEveryRoute fails when the server registers a route that
// docs/api.md has no table row for (method and path, {param} for :param),
// or when the page lists an endpoint the server does not have, or a row
// leaves its "who" column empty.
func TestAPIDocs_ListEveryRoute(t *testing.T) {
	we := newWorkflowEnv(t)
	srv := serveWired(t, we)
	b, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[Route]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := docRouteRE.FindStringSubmatch(line); m != nil {
			documented[Route{Method: m[1], Path: m[2]}] = true
			// | method | path | who | …: the roles are part of the row.
			if cols := strings.Split(strings.ReplaceAll(line, `\|`, ""), "|"); len(cols) < 5 || strings.TrimSpace(cols[3]) == "" {
				t.Errorf("docs/api.md: the row of %s %s says nothing in its 'who' column", m[1], m[2])
			}
		}
	}
	registered := map[Route]bool{}
	for _, r := range srv.Routes() {
		rt := Route{Method: r.Method, Path: docPath(r.Path)}
		registered[rt] = true
		if !documented[rt] {
			t.Errorf("%s %s is registered but not in docs/api.md (add a table row: | %s | `%s` | who | … |)", rt.Method, rt.Path, rt.Method, rt.Path)
		}
	}
	for rt := range documented {
		if !registered[rt] {
			t.Errorf("docs/api.md lists %s %s, which the server does not register", rt.Method, rt.Path)
		}
	}
}

func TestDocPath_WritesParamsInBraces(t *testing.T) {
	for in, want := range map[string]string{
		"/healthz":                           "/healthz",
		"/v1/families/:id":                   "/v1/families/{id}",
		"/v1/regions/:region/rules/:ruleset": "/v1/regions/{region}/rules/{ruleset}",
	} {
		if got := docPath(in); got != want {
			t.Errorf("docPath(%q) = %q, want %q", in, got, want)
		}
	}
}
