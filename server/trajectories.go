package server

import "github.com/labstack/echo/v4"

func (s *Server) trajectoryRoutes(api *echo.Group) {}
