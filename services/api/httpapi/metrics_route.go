package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/metrics"
)

// metrics serves the Prometheus registry (public, as is usual for scrapes;
// put it behind the network policy rather than a token).
func (s *Server) metrics(c echo.Context) error {
	metrics.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}
