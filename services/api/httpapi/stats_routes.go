package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/auth"
)

var statsRoutes = []routeDef{
	{Route{http.MethodGet, "/admin/db/stats", auth.Viewer, false, "System DB tables with row counts and sizes"}, (*Server).dbStats},
}

// TableStats is one table of GET /admin/db/stats.
type TableStats struct {
	Name  string `json:"name"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// DBStats is the body of GET /admin/db/stats.
type DBStats struct {
	Database   string       `json:"database"`
	Tables     []TableStats `json:"tables"`
	TotalRows  int64        `json:"total_rows"`
	TotalBytes int64        `json:"total_bytes"`
}

// dbStats answers GET /admin/db/stats: every System DB table with its row
// count and on-disk size; 503 when the System DB does not answer.
func (s *Server) dbStats(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	stats, err := s.db.Stats(ctx)
	if err != nil {
		return unavailable("the System DB", err)
	}
	out := DBStats{Database: s.db.Describe(), Tables: make([]TableStats, 0, len(stats))}
	for _, st := range stats {
		out.Tables = append(out.Tables, TableStats{Name: st.Name, Rows: st.Rows, Bytes: st.Bytes})
		out.TotalRows += st.Rows
		out.TotalBytes += st.Bytes
	}
	return c.JSON(http.StatusOK, out)
}
