package auth

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	samenplan "github.com/samenplan/samenplan"
)

// MaxBodyBytes bounds the JSON body of every auth request.
const MaxBodyBytes = 64 << 10

// Routes registers the auth API on g (the server mounts it at /v1):
//
//	POST /auth/login          {username, password, device_name} → Session
//	POST /auth/refresh        {refresh_token} → Session
//	POST /auth/logout         {refresh_token, revoke_device} → 204
//	GET  /me                  → the user, with device_id
//	POST /me/password         {current_password, new_password} → 204
//	GET  /devices             own devices; admin: all, or ?user=<id|username>
//	POST /devices/:id/revoke  own device, or any for an admin → 204
//	GET  /users               admin: ?region=&role=
//	POST /users               admin: NewUser → 201 User
//	GET  /users/:id           admin
//	PATCH /users/:id          admin: UserUpdate plus {disabled}
//	POST /users/:id/password  admin: {password} → 204
//
// The /auth routes need no access token; the others get Middleware here.
func (s *Service) Routes(g *echo.Group) {
	g.POST("/auth/login", s.handleLogin)
	g.POST("/auth/refresh", s.handleRefresh)
	g.POST("/auth/logout", s.handleLogout)

	mw := s.Middleware()
	admin := Require(RoleAdmin)
	g.GET("/me", s.handleMe, mw)
	g.POST("/me/password", s.handleChangePassword, mw)
	g.GET("/devices", s.handleDevices, mw)
	g.POST("/devices/:id/revoke", s.handleRevoke, mw)
	g.GET("/users", s.handleUsers, mw, admin)
	g.POST("/users", s.handleCreateUser, mw, admin)
	g.GET("/users/:id", s.handleUser, mw, admin)
	g.PATCH("/users/:id", s.handleUpdateUser, mw, admin)
	g.POST("/users/:id/password", s.handleSetPassword, mw, admin)
}

// LoginRequest is the body of POST /auth/login.
type LoginRequest struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceName string `json:"device_name"`
}

// RefreshRequest is the body of POST /auth/refresh and POST /auth/logout.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
	RevokeDevice bool   `json:"revoke_device,omitempty"`
}

// decodeBody decodes one JSON value from r into v: malformed JSON, a value
// of the wrong shape, an unknown field (a misspelt "dispaly_name" would
// otherwise change nothing without a word) or trailing data give invalid,
// a body over MaxBodyBytes too_large.
func decodeBody(r io.Reader, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, io.NopCloser(r), MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return samenplan.Errorf(samenplan.ETOOLARGE, "Verzoek te groot (max %d bytes) / request body too large (max %d bytes)", MaxBodyBytes, MaxBodyBytes)
	}
	return samenplan.Errorf(samenplan.EINVALID, "Ongeldige JSON / malformed JSON body")
}

func bind(c echo.Context, v any) error {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes)
	return decodeBody(body, v)
}

// decodeLogin decodes and checks a login body.
func decodeLogin(r io.Reader) (LoginRequest, error) {
	var req LoginRequest
	if err := decodeBody(r, &req); err != nil {
		return LoginRequest{}, err
	}
	if req.Username == "" || req.Password == "" {
		return LoginRequest{}, samenplan.Errorf(samenplan.EINVALID, "Gebruikersnaam en wachtwoord zijn verplicht / username and password are required")
	}
	return req, nil
}

// decodeRefresh decodes and checks a refresh or logout body.
func decodeRefresh(r io.Reader) (RefreshRequest, error) {
	var req RefreshRequest
	if err := decodeBody(r, &req); err != nil {
		return RefreshRequest{}, err
	}
	if req.RefreshToken == "" {
		return RefreshRequest{}, samenplan.Errorf(samenplan.EINVALID, "refresh_token is verplicht / refresh_token is required")
	}
	return req, nil
}

func (s *Service) handleLogin(c echo.Context) error {
	req, err := decodeLogin(http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes))
	if err != nil {
		return err
	}
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	sess, err := s.Login(ctx, req.Username, req.Password, req.DeviceName, c.RealIP())
	if err != nil {
		s.retryAfter(c, err, req.Username)
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, sess)
}

func (s *Service) handleRefresh(c echo.Context) error {
	req, err := decodeRefresh(http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes))
	if err != nil {
		return err
	}
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	sess, err := s.Refresh(ctx, req.RefreshToken)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, sess)
}

func (s *Service) handleLogout(c echo.Context) error {
	req, err := decodeRefresh(http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes))
	if err != nil {
		return err
	}
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	if err := s.Logout(ctx, req.RefreshToken, req.RevokeDevice); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// retryAfter sets Retry-After (whole seconds, rounded up) on a
// rate_limited answer for username from the caller's address.
func (s *Service) retryAfter(c echo.Context, err error, username string) {
	if samenplan.ErrorCode(err) != samenplan.ERATELIMITED {
		return
	}
	left := s.limiter.lockedFor(NormalizeUsername(username), c.RealIP(), s.now())
	if left <= 0 {
		return
	}
	secs := int64((left + time.Second - 1) / time.Second)
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// noStore keeps tokens out of caches.
func noStore(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
}

// Me is the body of GET /me.
type Me struct {
	User
	DeviceID string `json:"device_id"`
}

func (s *Service) handleMe(c echo.Context) error {
	p, _ := PrincipalFrom(c)
	u, err := s.GetUser(c.Request().Context(), p.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, Me{User: u, DeviceID: p.DeviceID})
}

func (s *Service) handleDevices(c echo.Context) error {
	p, _ := PrincipalFrom(c)
	ctx := c.Request().Context()
	userID := p.UserID
	if q := c.QueryParam("user"); p.IsAdmin() {
		userID = ""
		if q != "" {
			u, err := s.GetUser(ctx, q)
			if samenplan.ErrorCode(err) == samenplan.ENOTFOUND {
				u, err = s.GetUserByUsername(ctx, q)
			}
			if err != nil {
				return err
			}
			userID = u.ID
		}
	} else if q != "" && q != p.UserID && NormalizeUsername(q) != p.Username {
		return samenplan.Errorf(samenplan.EFORBIDDEN, "Alleen je eigen toestellen / only your own devices")
	}
	devices, err := s.ListDevices(ctx, userID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, devices)
}

func (s *Service) handleRevoke(c echo.Context) error {
	p, _ := PrincipalFrom(c)
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	if err := s.RevokeDevice(ctx, c.Param("id"), p); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Service) handleUsers(c echo.Context) error {
	role := c.QueryParam("role")
	if role != "" && !ValidRole(role) {
		return samenplan.Errorf(samenplan.EINVALID, "Onbekende rol %q / unknown role %q", role, role)
	}
	users, err := s.ListUsers(c.Request().Context(), UserFilter{Region: c.QueryParam("region"), Role: role})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, users)
}

func (s *Service) handleUser(c echo.Context) error {
	u, err := s.GetUser(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Service) handleCreateUser(c echo.Context) error {
	p, _ := PrincipalFrom(c)
	var nu NewUser
	if err := bind(c, &nu); err != nil {
		return err
	}
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	u, err := s.CreateUser(ctx, nu, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, u)
}

type userPatch struct {
	UserUpdate
	Disabled *bool `json:"disabled"`
}

func (s *Service) handleUpdateUser(c echo.Context) error {
	p, _ := PrincipalFrom(c)
	var up userPatch
	if err := bind(c, &up); err != nil {
		return err
	}
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	id := c.Param("id")
	if up.Disabled != nil {
		if *up.Disabled && id == p.UserID {
			return samenplan.Errorf(samenplan.EINVALID, "Je kan jezelf niet uitschakelen / you cannot disable yourself")
		}
		if err := s.SetDisabled(ctx, id, *up.Disabled, p); err != nil {
			return err
		}
	}
	var u User
	var err error
	if up.UserUpdate == (UserUpdate{}) {
		u, err = s.GetUser(ctx, id)
	} else {
		u, err = s.UpdateUser(ctx, id, up.UserUpdate, p)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Service) handleSetPassword(c echo.Context) error {
	p, _ := PrincipalFrom(c)
	var body struct {
		Password string `json:"password"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	if err := s.SetPassword(ctx, c.Param("id"), body.Password, p); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Service) handleChangePassword(c echo.Context) error {
	p, _ := PrincipalFrom(c)
	var body struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	ctx := WithRequest(c.Request().Context(), c.RealIP(), requestID(c))
	if err := s.ChangePassword(ctx, p, body.Current, body.New); err != nil {
		s.retryAfter(c, err, p.Username)
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
