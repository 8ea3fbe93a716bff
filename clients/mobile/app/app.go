// Package coachapp embeds the built coach app (clients/mobile/app/dist, built
// with npm by `make build`) and serves it from the samenplan binary at
// /coach/: an installable web app that works offline on the sync SDK.
package coachapp

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed all:dist
var files embed.FS

// dist is the build output, rooted.
var dist = func() fs.FS {
	sub, err := fs.Sub(files, "dist")
	if err != nil {
		panic(err)
	}
	return sub
}()

// Prefix is where the app is served; its service worker's scope.
const Prefix = "/coach/"

// Built reports whether the binary holds a built app (dist/index.html); a
// `go build` without `make build` holds none.
func Built() bool {
	_, err := fs.Stat(dist, "index.html")
	return err == nil
}

// Register serves the app: "/coach/" the application page, "/coach/*" its
// assets (app.js, styles.css, manifest.webmanifest, icons, sw.js). Without a
// built app every path says how to build it.
func Register(e *echo.Echo) {
	e.GET("/coach", func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, Prefix)
	})
	assets := http.StripPrefix(Prefix, http.FileServer(http.FS(dist)))
	e.GET(Prefix+"*", func(c echo.Context) error {
		h := c.Response().Header()
		// Hashless file names: the browser revalidates; the service worker's
		// versioned cache is what keeps the app offline.
		h.Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(c.Request().URL.Path, Prefix)
		if name == "" || name == "index.html" {
			page, err := fs.ReadFile(dist, "index.html")
			if err != nil {
				return c.String(http.StatusServiceUnavailable,
					"De coach-app is niet mee gebouwd: gebruik `make build` / the coach app is not built into this binary: use `make build`.\n")
			}
			return c.HTMLBlob(http.StatusOK, page)
		}
		if !Built() {
			return c.String(http.StatusServiceUnavailable,
				"De coach-app is niet mee gebouwd: gebruik `make build` / the coach app is not built into this binary: use `make build`.\n")
		}
		switch name {
		case "manifest.webmanifest":
			h.Set("Content-Type", "application/manifest+json")
		case "sw.js":
			// The worker controls /coach/ only; the browser always checks it for a new build.
			h.Set("Service-Worker-Allowed", Prefix)
		}
		assets.ServeHTTP(c.Response(), c.Request())
		return nil
	})
}
