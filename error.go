// Package samenplan holds the vocabulary every layer shares: the error type
// with its stable codes. It imports only the standard library.
package samenplan

import (
	"errors"
	"fmt"
)

// Error codes are part of the API: add at the end, never rename.
const (
	EINVALID         = "invalid"
	EUNAUTHORIZED    = "unauthorized"
	EFORBIDDEN       = "forbidden"
	ENOTFOUND        = "not_found"
	ECONFLICT        = "conflict"
	ECLOCKSKEW       = "clock_skew"
	EOUTOFSCOPE      = "out_of_scope"
	EDEVICEREVOKED   = "device_revoked"
	EUPGRADEREQUIRED = "upgrade_required"
	EINTERNAL        = "internal"
	ETOOLARGE        = "too_large"
	ERATELIMITED     = "rate_limited"
	// ECAPACITYREFUSED: the capacity rules refuse a start (a coach's
	// caseload, the yearly quota, the mandated reserve); the coordinator may
	// override with a reason.
	ECAPACITYREFUSED = "capacity_refused"
)

// Codes lists every code in the order it was added.
var Codes = []string{
	EINVALID, EUNAUTHORIZED, EFORBIDDEN, ENOTFOUND, ECONFLICT, ECLOCKSKEW,
	EOUTOFSCOPE, EDEVICEREVOKED, EUPGRADEREQUIRED, EINTERNAL, ETOOLARGE, ERATELIMITED,
	ECAPACITYREFUSED,
}

// Error is an error meant for the caller: a stable code and a message that is
// safe to show. Anything that is not an *Error is reported as internal.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("samenplan error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil,
// and EINTERNAL for anything else.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err; internal errors get a
// generic text so that no detail leaks.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Interne fout / internal error."
}
