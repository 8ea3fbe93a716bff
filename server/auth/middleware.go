package auth

import (
	"strings"

	"github.com/labstack/echo/v4"
	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
)

// principalKey is where Middleware stores the Principal in an echo.Context.
const principalKey = "samenplan.auth.principal"

// Middleware authenticates every request it wraps: it reads
// "Authorization: Bearer <token>", verifies the access token, refuses a
// revoked device with device_revoked (from memory, no query) and stores the
// Principal for PrincipalFrom. Without a valid token the request gets
// unauthorized. A request already authenticated passes through, so the
// middleware may be applied twice.
//
// Do not put it on the group given to Routes: login, refresh and logout
// must stay reachable without an access token. Routes protects the routes
// that need it.
func (s *Service) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if _, ok := PrincipalFrom(c); ok {
				return next(c)
			}
			p, err := s.Authenticate(bearer(c.Request().Header.Get(echo.HeaderAuthorization)))
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// bearer returns the token of an "Authorization: Bearer" header value, or "".
func bearer(h string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// PrincipalFrom returns the principal Middleware stored in c.
func PrincipalFrom(c echo.Context) (Principal, bool) {
	p, ok := c.Get(principalKey).(Principal)
	return p, ok
}

// Require lets a request through only when its principal has one of roles:
// no principal gives unauthorized, another role forbidden. It must run after
// Middleware.
func Require(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := PrincipalFrom(c)
			if !ok {
				return errNoToken
			}
			if !p.HasRole(roles...) {
				return samenplan.Errorf(samenplan.EFORBIDDEN, "Geen toegang voor rol %s / not allowed for role %s", p.Role, p.Role)
			}
			return next(c)
		}
	}
}

// RequireRegion guards a case route whose path parameter param names a
// region: an admin gets forbidden (admins read no case content), a region
// the principal does not have gets not_found, so that other regions are
// invisible. It must run after Middleware.
func RequireRegion(param string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := PrincipalFrom(c)
			if !ok {
				return errNoToken
			}
			if !p.ReadsCaseContent() {
				return samenplan.Errorf(samenplan.EFORBIDDEN, "Beheerders zien geen dossiers / admins read no case content")
			}
			if region := c.Param(param); !p.CanReadRegion(region) {
				return samenplan.Errorf(samenplan.ENOTFOUND, "Regio niet gevonden / region not found")
			}
			return next(c)
		}
	}
}

// RequireCaseReader lets through every principal that reads case content
// (everyone but admins, who get forbidden). It must run after Middleware.
func RequireCaseReader() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := PrincipalFrom(c)
			if !ok {
				return errNoToken
			}
			if !p.ReadsCaseContent() {
				return samenplan.Errorf(samenplan.EFORBIDDEN, "Beheerders zien geen dossiers / admins read no case content")
			}
			return next(c)
		}
	}
}

// AuditEntry starts an audit entry for action by the principal of c, with
// the client address and request id filled in. Without a principal the
// user fields stay empty.
func AuditEntry(c echo.Context, action string) audit.Entry {
	p, _ := PrincipalFrom(c)
	return audit.Entry{
		UserID: p.UserID, Username: p.Username, Role: p.Role, DeviceID: p.DeviceID,
		Action: action, IP: c.RealIP(), RequestID: requestID(c),
	}
}

func requestID(c echo.Context) string {
	if id := c.Response().Header().Get(echo.HeaderXRequestID); id != "" {
		return id
	}
	id := c.Request().Header.Get(echo.HeaderXRequestID)
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}
