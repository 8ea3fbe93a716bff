package server

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/labstack/echo/v4"
)

// requestID gives every request an id of the server's own (32 hex digits)
// in the X-Request-Id header of its answer, where the request log, the
// error log and the audit log read it. Unlike Echo's RequestID middleware
// it never takes the id a client sends: the id lands in every log line and
// in the append-only audit log, so a client must not choose what is
// written there (a token, a child's name, a megabyte).
func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var b [16]byte
			_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24)
			c.Request().Header.Del(echo.HeaderXRequestID)
			c.Response().Header().Set(echo.HeaderXRequestID, hex.EncodeToString(b[:]))
			return next(c)
		}
	}
}
