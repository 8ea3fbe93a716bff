package coachapp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func get(t *testing.T, e *echo.Echo, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// TestRegister_ServesAppOrSaysHowToBuildIt holds for a binary with and
// without the npm build: the page is the app, or a 503 naming `make build`.
func TestRegister_ServesAppOrSaysHowToBuildIt(t *testing.T) {
	e := echo.New()
	Register(e)

	if rec := get(t, e, "/coach"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/coach/" {
		t.Fatalf("GET /coach = %d %q, want 301 to /coach/", rec.Code, rec.Header().Get("Location"))
	}
	rec := get(t, e, "/coach/")
	if !Built() {
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "make build") {
			t.Fatalf("unbuilt GET /coach/ = %d %q, want 503 naming make build", rec.Code, rec.Body.String())
		}
		t.Skip("coach app not built (dist/ holds only .gitkeep): the served files are checked after `make build`")
	}
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `rel="manifest"`) {
		t.Fatalf("GET /coach/ = %d, want the app page with its manifest", rec.Code)
	}
	for path, ctype := range map[string]string{
		"/coach/app.js":               "javascript",
		"/coach/sw.js":                "javascript",
		"/coach/styles.css":           "text/css",
		"/coach/manifest.webmanifest": "application/manifest+json",
		"/coach/icon.svg":             "image/svg+xml",
	} {
		rec := get(t, e, path)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), ctype) {
			t.Errorf("GET %s = %d %q, want 200 %s", path, rec.Code, rec.Header().Get("Content-Type"), ctype)
		}
	}
	if rec := get(t, e, "/coach/nope.js"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /coach/nope.js = %d, want 404", rec.Code)
	}
}
