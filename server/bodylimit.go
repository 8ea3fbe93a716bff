package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
)

// bodyLimit refuses a request body over limit bytes with too_large: at once
// when its Content-Length says so, and otherwise (a chunked body) when a
// handler's read passes the limit. A decoder that meets the failed read
// may call the body malformed (it cannot tell), so once the limit was
// passed, the handler's error becomes too_large whatever it said.
func bodyLimit(limit int64) echo.MiddlewareFunc {
	tooLarge := func() error {
		return samenplan.Errorf(samenplan.ETOOLARGE, "De aanvraag is te groot (max %d bytes) / request body too large (max %d bytes)", limit, limit)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return tooLarge()
			}
			if req.Body == nil || req.Body == http.NoBody {
				return next(c)
			}
			body := &limitedBody{ReadCloser: http.MaxBytesReader(c.Response().Writer, req.Body, limit)}
			req.Body = body
			err := next(c)
			if err != nil && body.exceeded {
				return tooLarge()
			}
			return err
		}
	}
}

// limitedBody notes whether a read failed for passing the limit.
type limitedBody struct {
	io.ReadCloser
	exceeded bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		b.exceeded = true
	}
	return n, err
}
