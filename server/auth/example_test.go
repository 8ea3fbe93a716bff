package auth_test

import (
	"context"
	"log"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/store"
)

// How the server wires auth and audit: one main database, one audit Logger
// shared with the other packages, the auth routes under /v1, and every other
// route behind Middleware and the guards.
func ExampleService_Routes() {
	ctx := context.Background()
	db, err := store.OpenDB("data/main.db")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	al, err := audit.Open(ctx, db, audit.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer al.Close() // after the Service and the HTTP server: drains the queue
	svc, err := auth.Open(ctx, db, auth.Config{Audit: al})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	e := echo.New()
	e.IPExtractor = echo.ExtractIPDirect() // or ExtractIPFromXFFHeader with trusted proxies
	v1 := e.Group("/v1")
	svc.Routes(v1) // /auth/*, /me, /devices, /users

	api := v1.Group("", svc.Middleware())
	api.POST("/sync/push", func(c echo.Context) error {
		p, _ := auth.PrincipalFrom(c)
		_ = p.DeviceID // must equal the body's device_id
		al.Record(auth.AuditEntry(c, audit.ActionPush))
		return nil
	}, auth.RequireCaseReader())
	api.GET("/regions/:region/intake", func(c echo.Context) error { return nil },
		auth.Require(auth.RoleCoordinator), auth.RequireRegion("region"))
}
