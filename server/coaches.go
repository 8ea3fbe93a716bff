package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/samenplan/samenplan/server/auth"
)

// coachRoutes registers the coach list of a region (docs/api.md):
//
//	GET /regions/:region/coaches   coordinator, reviewer: names and capacity; coach: names only
//
// RequireRegion runs first: another region is not_found, an admin forbidden.
func (s *Server) coachRoutes(api *echo.Group) {
	api.GET("/regions/:region/coaches", s.handleCoaches, auth.RequireRegion("region"),
		auth.Require(auth.RoleCoordinator, auth.RoleReviewer, auth.RoleCoach))
}

// CoachName is a coach as a colleague sees her: who she is, nothing about
// her caseload. It is what a coach gets from GET /regions/:region/coaches.
type CoachName struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// RegionCoach is a coach as the region's coordinators and reviewers see her
// in pickers: her name, and her room for new families exactly as the intake
// board computes it (CoachCapacity).
type RegionCoach struct {
	CoachName
	FTE            float64 `json:"fte"`
	Volunteer      bool    `json:"volunteer"`
	ActiveFamilies int     `json:"active_families"`
	Limit          float64 `json:"limit"`
	LimitError     string  `json:"limit_error,omitempty"`
	Free           int     `json:"free"`
}

// handleCoaches answers the region's enabled coaches by username. A coach
// gets the names of her colleagues only; how many families each one holds
// is the team's business.
func (s *Server) handleCoaches(c echo.Context) error {
	ctx, region := c.Request().Context(), c.Param("region")
	if p, _ := auth.PrincipalFrom(c); p.Role == auth.RoleCoach {
		users, err := s.regionCoaches(ctx, region)
		if err != nil {
			return err
		}
		out := make([]CoachName, 0, len(users))
		for _, u := range users {
			out = append(out, CoachName{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName})
		}
		return c.JSON(http.StatusOK, out)
	}
	today, _ := s.today()
	rr, _ := s.cfg.Rules.Region(region)
	caps, err := s.coachCapacity(ctx, region, rr, s.cfg.View.CoachLoad(region), today)
	if err != nil {
		return err
	}
	out := make([]RegionCoach, 0, len(caps))
	for _, cc := range caps {
		out = append(out, RegionCoach{CoachName: CoachName{ID: cc.CoachID, Username: cc.Username, DisplayName: cc.DisplayName},
			FTE: cc.FTE, Volunteer: cc.Volunteer, ActiveFamilies: cc.ActiveFamilies, Limit: cc.Limit, LimitError: cc.LimitError, Free: cc.Free})
	}
	return c.JSON(http.StatusOK, out)
}
