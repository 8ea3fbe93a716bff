package server

import "github.com/labstack/echo/v4"

// regionRoutes registers the region pages of the coaching work:
// permanence (this file), signals (signals.go) and the yearly report
// (report.go).
func (s *Server) regionRoutes(api *echo.Group) {
	s.signalsRoutes(api)
}
