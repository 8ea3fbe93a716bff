package server

import "github.com/labstack/echo/v4"

// rulesRoutes registers the rules endpoints (being built).
func (s *Server) rulesRoutes(api *echo.Group) {}
