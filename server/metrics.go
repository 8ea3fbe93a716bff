package server

import (
	"errors"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/samenplan/samenplan"
)

// metrics are the server's Prometheus instruments, on a registry of its own
// so that several servers can live in one test process.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	pushes   prometheus.Counter
	pulls    prometheus.Counter
	changes  *prometheus.CounterVec
	pushDur  prometheus.Histogram
	pullDur  prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samenplan_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method", "status"}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samenplan_sync_pushes_total", Help: "Push requests handled.",
		}),
		pulls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samenplan_sync_pulls_total", Help: "Pull requests handled.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samenplan_sync_changes_total", Help: "Pushed field changes by outcome.",
		}, []string{"outcome"}),
		pushDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "samenplan_sync_push_seconds", Help: "Push latency in the store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		pullDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "samenplan_sync_pull_seconds", Help: "Pull latency in the store.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	m.reg.MustRegister(m.requests, m.pushes, m.pulls, m.changes, m.pushDur, m.pullDur,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = statusOfError(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		return err
	}
}

func (m *metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}

// statusOfError is the status the error handler will write for err.
func statusOfError(err error) int {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if e := fromEcho(he); e != nil {
			return StatusOf(e.Code)
		}
		return he.Code
	}
	return StatusOf(samenplan.ErrorCode(err))
}
