// Package web embeds the built web client for coordinators, reviewers and
// admins (clients/web/dist, built with npm by `make build`) and serves it
// from the samenplan binary.
package web

import (
	"embed"
	"io/fs"
	"net/http"

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

// Built reports whether the binary holds a built client (dist/index.html);
// a `go build` without `make build` holds none.
func Built() bool {
	_, err := fs.Stat(dist, "index.html")
	return err == nil
}

// Register serves the client: "/" the application page, "/app/*" its
// assets. Without a built client "/" says how to build it.
func Register(e *echo.Echo) {
	e.GET("/", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-cache")
		page, err := fs.ReadFile(dist, "index.html")
		if err != nil {
			return c.String(http.StatusServiceUnavailable,
				"De webtoepassing is niet mee gebouwd: gebruik `make build` / the web client is not built into this binary: use `make build`.\n")
		}
		return c.HTMLBlob(http.StatusOK, page)
	})
	assets := http.StripPrefix("/app/", http.FileServer(http.FS(dist)))
	e.GET("/app/*", func(c echo.Context) error {
		// Hashless file names: revalidate, but let the browser keep them.
		c.Response().Header().Set("Cache-Control", "no-cache")
		assets.ServeHTTP(c.Response(), c.Request())
		return nil
	})
}
