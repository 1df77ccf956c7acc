package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/tracing"
)

// traceRequests gives each request a server span ("POST /admin/db/backup"),
// a child of the caller's traceparent if it sent one. The handlers' context
// carries it, so a job submitted by the request continues its trace, and
// the access log line has its trace_id. It runs outside accessLog, which
// answers errors itself, so the status it records is the one sent.
func traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx, span := tracing.StartHTTP(req)
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		tracing.EndHTTP(span, req.Method, c.Path(), c.Response().Status)
		return err
	}
}
