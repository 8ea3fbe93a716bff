package server

import (
	"compress/gzip"
	"io"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/samenplan/samenplan"
)

// Compression on the wire (docs/protocol.md, "Compression"). Coaches sync
// over mobile networks: a pull page of 4,000 changes is about 1 MB of JSON
// and a tenth of that gzipped, and a push of one-field changes repeats the
// same collection, field and stamp prefixes in every change.

// compressMinLength is the smallest answer that is gzipped: below it the
// header and the CPU cost more than they save.
const compressMinLength = 1024

// compressAnswers gzips answers of at least compressMinLength bytes for a
// client that accepts gzip, at the fastest level (JSON compresses about
// tenfold even there, and the CPU is the server's). The event stream is
// left alone: its events must leave as they are written.
func compressAnswers() echo.MiddlewareFunc {
	return middleware.GzipWithConfig(middleware.GzipConfig{
		Level:     gzip.BestSpeed,
		MinLength: compressMinLength,
		Skipper: func(c echo.Context) bool {
			return c.Request().URL.Path == "/v1/events"
		},
	})
}

var gzipReaders sync.Pool

// decompressRequests accepts request bodies sent with Content-Encoding
// gzip. It must run before bodyLimit, which then limits the bytes the
// handler reads after decompression, so a small compressed body cannot
// unpack past the limit. Another encoding is invalid, as is a body that is
// not gzip.
func decompressRequests() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			enc := strings.ToLower(strings.TrimSpace(req.Header.Get(echo.HeaderContentEncoding)))
			switch enc {
			case "", "identity":
				return next(c)
			case "gzip", "x-gzip":
			default:
				return samenplan.Errorf(samenplan.EINVALID,
					"Content-Encoding %q wordt niet ondersteund, enkel gzip / not supported: send gzip or no encoding", cut(enc, 32))
			}
			var zr *gzip.Reader
			if v := gzipReaders.Get(); v != nil {
				zr = v.(*gzip.Reader)
				if err := zr.Reset(req.Body); err != nil {
					gzipReaders.Put(zr)
					return errNotGzip()
				}
			} else {
				var err error
				if zr, err = gzip.NewReader(req.Body); err != nil {
					return errNotGzip()
				}
			}
			raw := req.Body
			req.Body = gzipBody{Reader: zr, raw: raw}
			req.Header.Del(echo.HeaderContentEncoding)
			req.Header.Del(echo.HeaderContentLength)
			req.ContentLength = -1
			defer func() {
				req.Body = raw
				gzipReaders.Put(zr)
			}()
			return next(c)
		}
	}
}

func errNotGzip() error {
	return samenplan.Errorf(samenplan.EINVALID, "De aanvraag is geen geldige gzip / the body is not valid gzip")
}

// gzipBody reads the decompressed body and closes the raw one.
type gzipBody struct {
	*gzip.Reader
	raw io.ReadCloser
}

func (b gzipBody) Close() error { return b.raw.Close() }

// cut keeps at most the first n bytes of s, for what a message or an audit
// entry repeats of a client's input.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
