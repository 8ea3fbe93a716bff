package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/auth"
)

// regionRoutes registers the region pages of the coaching work:
// permanence (this file), signals (signals.go) and the yearly report
// (report.go).
func (s *Server) regionRoutes(api *echo.Group) {
	readers := auth.Require(auth.RoleCoach, auth.RoleCoordinator, auth.RoleReviewer)
	api.GET("/regions/:region/permanence", s.handlePermanence, auth.RequireRegion("region"), readers)
	s.signalsRoutes(api)
	s.reportRoutes(api)
}

// PermanencePage is the body of GET /regions/:region/permanence: the
// weekly schedule from region.yaml with who is on duty, whether permanence
// is held now and by whom, the next block, and one ISO week's consults and
// referrals received (this week unless ?week=).
type PermanencePage struct {
	Region   string `json:"region"`
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
	// Now is the server's time the page was made at.
	Now     time.Time `json:"now"`
	HeldNow bool      `json:"held_now"`
	// Current are the blocks being held now (usually one); OnDutyNow who is
	// on duty in them.
	Current   []PermanenceSlot `json:"current"`
	OnDutyNow []DutyUser       `json:"on_duty_now"`
	// Next is the next block to start after now; nil without a schedule.
	Next *PermanenceSlot `json:"next"`
	// Week is the ISO week shown ("2026-W48"), Monday to Sunday.
	Week     string     `json:"week"`
	WeekFrom rules.Date `json:"week_from"`
	WeekTo   rules.Date `json:"week_to"`
	// Schedule is the weekly schedule with the dates of that week.
	Schedule []PermanenceSlot   `json:"schedule"`
	Consults PermanenceConsults `json:"consults"`
	// Referrals are the referrals received in the week (received_on).
	Referrals WeekReferrals `json:"referrals"`
	// RulesVersion is the region version the schedule was read from.
	RulesVersion string `json:"rules_version"`
}

// PermanenceSlot is one block of the schedule on a date.
type PermanenceSlot struct {
	Day      string     `json:"day"` // monday … sunday
	From     string     `json:"from"`
	To       string     `json:"to"`
	Mode     string     `json:"mode"`
	Date     rules.Date `json:"date"`
	StartsAt time.Time  `json:"starts_at"`
	EndsAt   time.Time  `json:"ends_at"`
	OnDuty   []DutyUser `json:"on_duty"`
}

// DutyUser is a username of an on_duty list, resolved to its account.
// Known is false when no account has that username; Disabled and InRegion
// tell a coordinator the list needs an edit.
type DutyUser struct {
	Username    string `json:"username"`
	Known       bool   `json:"known"`
	UserID      string `json:"user_id,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Role        string `json:"role,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
	InRegion    bool   `json:"in_region"`
}

// PermanenceConsults are the week's consults, oldest first.
type PermanenceConsults struct {
	Count   int                 `json:"count"`
	Minutes int                 `json:"minutes"`
	Items   []PermanenceConsult `json:"items"`
}

// PermanenceConsult is a consults row with the coach's display name.
type PermanenceConsult struct {
	ID         string    `json:"id"`
	At         time.Time `json:"at"`
	Referrer   string    `json:"referrer"`
	Question   string    `json:"question"`
	Advice     string    `json:"advice"`
	Minutes    int       `json:"minutes"`
	CoachID    string    `json:"coach_id"`
	CoachName  string    `json:"coach_name"`
	ReferralID string    `json:"referral_id"`
}

// WeekReferrals counts the referrals received in a week.
type WeekReferrals struct {
	Count int      `json:"count"`
	IDs   []string `json:"ids"`
}

func (s *Server) handlePermanence(c echo.Context) error {
	region := c.Param("region")
	now := s.cfg.Now().In(brussels())
	week, err := weekOfPage(c.QueryParam("week"), now)
	if err != nil {
		return err
	}
	page, err := s.permanencePage(c.Request().Context(), region, now, week)
	if err != nil {
		return err
	}
	refs := slices.Clone(page.Referrals.IDs)
	for _, k := range page.Consults.Items {
		refs = append(refs, k.ReferralID)
	}
	s.auditList(c, region, "permanence", page.Consults.Count+page.Referrals.Count, nil, refs)
	return c.JSON(http.StatusOK, page)
}

// weekOfPage is the ISO week of ?week= (parseWeek, shared with the intake
// board), or the week of now.
func weekOfPage(v string, now time.Time) (isoWeek, error) {
	if v == "" {
		return weekOf(now), nil
	}
	return parseWeek(v)
}

func (s *Server) permanencePage(ctx context.Context, region string, now time.Time, week isoWeek) (PermanencePage, error) {
	page := PermanencePage{Region: region, Name: region, TimeZone: brussels().String(), Now: now,
		Current: []PermanenceSlot{}, OnDutyNow: []DutyUser{}, Schedule: []PermanenceSlot{},
		Week: week.String(), WeekFrom: week.monday(), WeekTo: week.sunday()}
	var blocks []rules.PermanenceBlock
	if rr, ok := s.cfg.Rules.Region(region); ok {
		page.Name, page.RulesVersion, blocks = rr.Config.Name, rr.Version, rr.Config.Permanence
	}
	duty := dutyResolver{s: s, ctx: ctx, region: region, seen: map[string]DutyUser{}}
	slot := func(b rules.PermanenceBlock, day time.Time) (PermanenceSlot, error) {
		sl := PermanenceSlot{Day: b.Day, From: b.From, To: b.To, Mode: b.Mode, Date: rules.DateOf(day),
			StartsAt: atClock(day, b.From), EndsAt: atClock(day, b.To), OnDuty: []DutyUser{}}
		for _, u := range b.OnDuty {
			du, err := duty.resolve(u)
			if err != nil {
				return sl, err
			}
			sl.OnDuty = append(sl.OnDuty, du)
		}
		return sl, nil
	}

	// The week's schedule.
	monday := week.monday().Time()
	for i := 0; i < 7; i++ {
		day := time.Date(monday.Year(), monday.Month(), monday.Day()+i, 0, 0, 0, 0, brussels())
		for _, b := range blocks {
			if b.Day != weekdayName(day.Weekday()) {
				continue
			}
			sl, err := slot(b, day)
			if err != nil {
				return page, err
			}
			page.Schedule = append(page.Schedule, sl)
		}
	}
	sort.SliceStable(page.Schedule, func(i, j int) bool { return page.Schedule[i].StartsAt.Before(page.Schedule[j].StartsAt) })

	// Now and next: today's blocks, then the next seven days'.
	onDuty := map[string]bool{}
	for i := 0; i <= 7; i++ {
		day := time.Date(now.Year(), now.Month(), now.Day()+i, 0, 0, 0, 0, brussels())
		for _, b := range blocks {
			if b.Day != weekdayName(day.Weekday()) {
				continue
			}
			sl, err := slot(b, day)
			if err != nil {
				return page, err
			}
			if !now.Before(sl.StartsAt) && now.Before(sl.EndsAt) {
				page.HeldNow = true
				page.Current = append(page.Current, sl)
				for _, du := range sl.OnDuty {
					if !onDuty[du.Username] {
						onDuty[du.Username] = true
						page.OnDutyNow = append(page.OnDutyNow, du)
					}
				}
			}
			if sl.StartsAt.After(now) && (page.Next == nil || sl.StartsAt.Before(page.Next.StartsAt)) {
				next := sl
				page.Next = &next
			}
		}
	}

	// The week's consults and referrals.
	from := time.Date(monday.Year(), monday.Month(), monday.Day(), 0, 0, 0, 0, brussels())
	to := time.Date(monday.Year(), monday.Month(), monday.Day()+7, 0, 0, 0, 0, brussels())
	names, err := s.coachNames(ctx, region)
	if err != nil {
		return page, err
	}
	page.Consults.Items = []PermanenceConsult{}
	for _, cn := range s.cfg.View.Consults(region, from, to) {
		page.Consults.Items = append(page.Consults.Items, PermanenceConsult{ID: cn.ID, At: cn.At, Referrer: cn.Referrer,
			Question: cn.Question, Advice: cn.Advice, Minutes: cn.Minutes, CoachID: cn.CoachID,
			CoachName: names[cn.CoachID], ReferralID: cn.ReferralID})
		page.Consults.Minutes += cn.Minutes
	}
	page.Consults.Count = len(page.Consults.Items)
	page.Referrals.IDs = []string{}
	lo, hi := week.monday(), week.sunday()
	for _, r := range s.cfg.View.Referrals(region, "") {
		d := r.ReceivedOn
		if !d.IsZero() && !d.Time().Before(lo.Time()) && !d.Time().After(hi.Time()) {
			page.Referrals.IDs = append(page.Referrals.IDs, r.ID)
		}
	}
	page.Referrals.Count = len(page.Referrals.IDs)
	return page, nil
}

// dutyResolver looks up the usernames of on_duty lists once per request.
type dutyResolver struct {
	s      *Server
	ctx    context.Context
	region string
	seen   map[string]DutyUser
}

// resolve returns the account of username; an unknown username is a
// DutyUser with Known false, not an error.
func (d *dutyResolver) resolve(username string) (DutyUser, error) {
	if du, ok := d.seen[username]; ok {
		return du, nil
	}
	du := DutyUser{Username: username}
	u, err := d.s.cfg.Auth.GetUserByUsername(d.ctx, username)
	switch {
	case samenplan.ErrorCode(err) == samenplan.ENOTFOUND:
	case err != nil:
		return du, fmt.Errorf("on duty %q: %w", username, err)
	default:
		du.Known, du.UserID, du.DisplayName, du.Role, du.Disabled = true, u.ID, u.DisplayName, u.Role, u.Disabled
		for _, r := range u.Regions {
			du.InRegion = du.InRegion || r == d.region
		}
	}
	d.seen[username] = du
	return du, nil
}

// coachNames maps the user ids of the region's accounts to display names.
func (s *Server) coachNames(ctx context.Context, region string) (map[string]string, error) {
	users, err := s.cfg.Auth.ListUsers(ctx, auth.UserFilter{Region: region})
	if err != nil {
		return nil, fmt.Errorf("users of %s: %w", region, err)
	}
	names := make(map[string]string, len(users))
	for _, u := range users {
		names[u.ID] = u.DisplayName
	}
	return names, nil
}

// atClock returns the time "HH:MM" on day's date in Europe/Brussels.
func atClock(day time.Time, hm string) time.Time {
	h, _ := strconv.Atoi(hm[:2])
	m, _ := strconv.Atoi(hm[3:])
	return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, brussels())
}

func weekdayName(d time.Weekday) string { return strings.ToLower(d.String()) }
