package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[string]int{
	samenplan.EINVALID:         http.StatusBadRequest,
	samenplan.EUNAUTHORIZED:    http.StatusUnauthorized,
	samenplan.EFORBIDDEN:       http.StatusForbidden,
	samenplan.ENOTFOUND:        http.StatusNotFound,
	samenplan.ECONFLICT:        http.StatusConflict,
	samenplan.ECLOCKSKEW:       http.StatusBadRequest,
	samenplan.EOUTOFSCOPE:      http.StatusForbidden,
	samenplan.EDEVICEREVOKED:   http.StatusUnauthorized,
	samenplan.EUPGRADEREQUIRED: http.StatusUpgradeRequired,
	samenplan.EINTERNAL:        http.StatusInternalServerError,
	samenplan.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	samenplan.ERATELIMITED:     http.StatusTooManyRequests,
	samenplan.ECAPACITYREFUSED: http.StatusConflict,
}

// StatusOf returns the HTTP status for an error code; unknown codes are 500.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fromEcho turns Echo's own errors (unknown route, body limit, bad method)
// into our codes.
func fromEcho(he *echo.HTTPError) *samenplan.Error {
	switch he.Code {
	case http.StatusNotFound:
		return samenplan.Errorf(samenplan.ENOTFOUND, "Niet gevonden / not found.")
	case http.StatusRequestEntityTooLarge:
		return samenplan.Errorf(samenplan.ETOOLARGE, "De aanvraag is te groot / request body too large.")
	case http.StatusMethodNotAllowed:
		return samenplan.Errorf(samenplan.EINVALID, "Methode niet toegestaan / method not allowed.")
	case http.StatusUnauthorized:
		return samenplan.Errorf(samenplan.EUNAUTHORIZED, "Niet aangemeld / not authenticated.")
	case http.StatusForbidden:
		return samenplan.Errorf(samenplan.EFORBIDDEN, "Geen toegang / forbidden.")
	case http.StatusTooManyRequests:
		return samenplan.Errorf(samenplan.ERATELIMITED, "Te veel aanvragen / too many requests.")
	}
	if he.Code >= 400 && he.Code < 500 {
		return samenplan.Errorf(samenplan.EINVALID, "Ongeldige aanvraag / bad request.")
	}
	return nil
}

// errorHandler is the one place where an error becomes a response.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if e := fromEcho(he); e != nil {
			err = e
		}
	}
	code := samenplan.ErrorCode(err)
	if code == samenplan.EINTERNAL {
		s.logger.Error("internal error",
			"method", c.Request().Method, "route", c.Path(),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
	}
	body := ErrorBody{Code: code, Message: samenplan.ErrorMessage(err)}
	status := StatusOf(code)
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		s.logger.Warn("write error response", "err", err)
	}
}
