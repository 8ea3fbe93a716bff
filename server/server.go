// Package server is the HTTP adapter of Samenplan: Echo routes and handlers
// over the store, auth and rules, with one error table and the middleware
// every request passes through.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/crdt"
	"github.com/samenplan/samenplan/sync/store"
)

// DefaultBodyLimit is the largest request body accepted unless configured.
const DefaultBodyLimit = 4 << 20

// Config holds what a Server is built from. Stores, Auth and Audit are
// required.
type Config struct {
	Addr      string // listen address, e.g. ":8080" or "127.0.0.1:0"
	BodyLimit int64  // bytes; 0 means DefaultBodyLimit
	Logger    *slog.Logger
	Stores    *store.Stores
	Auth      *auth.Service
	Audit     *audit.Logger
	Clock     *crdt.Clock // the server's HLC, shared with the store
	// Rules, when set, serves the rules endpoints of every region.
	Rules *rules.Registry
	// View, when set, serves the consolidated cases and live events.
	View *view.Model
	// Now is the wall clock of the workflow (today, this week, who is on
	// duty), in the programmes' time zone; time.Now when nil.
	Now     func() time.Time
	Version string
	// Static, when set, serves the embedded clients (web and mobile).
	Static func(e *echo.Echo)
}

// Server is the HTTP server. Open listens, Close shuts down gracefully.
type Server struct {
	cfg     Config
	echo    *echo.Echo
	logger  *slog.Logger
	metrics *metrics
	ln      net.Listener
	httpSrv *http.Server
	wg      sync.WaitGroup
	serveMu sync.Mutex
	err     error
	// closing is closed when Close begins, to end long-lived streams.
	closing   chan struct{}
	closeOnce sync.Once
}

// New builds a server and its routes; it does not listen yet.
func New(cfg Config) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, echo: echo.New(), logger: cfg.Logger, metrics: newMetrics(), closing: make(chan struct{})}
	s.echo.HideBanner = true
	s.echo.HidePort = true
	s.echo.HTTPErrorHandler = s.errorHandler
	s.echo.Use(requestID()) // server/requestid.go: never the client's X-Request-Id
	s.echo.Use(s.metrics.middleware)
	s.echo.Use(s.logRequests)
	s.echo.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.logger.Error("panic in handler", "route", c.Path(), "err", err, "stack", string(stack))
			return err
		},
	}))
	s.echo.Use(compressAnswers())        // server/compress.go
	s.echo.Use(decompressRequests())     // before bodyLimit: it limits the bytes after decompression
	s.echo.Use(bodyLimit(cfg.BodyLimit)) // server/bodylimit.go
	s.routes()
	return s
}

// Handler returns the server's http.Handler (for in-process tests).
func (s *Server) Handler() http.Handler { return s.echo }

// Open starts listening on cfg.Addr and serving in the background.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.httpSrv = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveMu.Lock()
			s.err = err
			s.serveMu.Unlock()
			s.logger.Error("serve", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL returns the base URL of the server.
func (s *Server) URL() string {
	host, port, _ := net.SplitHostPort(s.Addr())
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Close stops accepting connections and waits, up to ctx's deadline, for
// running requests (and so their transactions) to finish.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	if s.httpSrv == nil {
		return nil
	}
	err := s.httpSrv.Shutdown(ctx)
	s.wg.Wait()
	return err
}

// logRequests logs one line per request: never bodies, tokens or case content.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = statusOfError(err)
		}
		attrs := []any{
			"method", c.Request().Method,
			"route", c.Path(),
			"status", status,
			"ms", float64(time.Since(start).Microseconds()) / 1000,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		}
		if p, ok := auth.PrincipalFrom(c); ok {
			attrs = append(attrs, "user", p.UserID, "device", p.DeviceID)
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		s.logger.Log(c.Request().Context(), level, "request", attrs...)
		return err
	}
}
