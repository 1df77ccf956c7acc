package httpapi

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/jobs"
)

// maxListOffset bounds GET /admin/db/tasks?offset= (the store keeps
// offset+limit records in memory while it scans).
const maxListOffset = 100000

// maxSubmitterLen bounds GET /admin/db/tasks?submitted_by=.
const maxSubmitterLen = 254

// taskFilterExtras reads the submitted_by, since, until and offset
// parameters of GET /admin/db/tasks into f; a bad one is a 400.
func taskFilterExtras(c echo.Context, f *jobs.Filter) error {
	if v := c.QueryParam("submitted_by"); v != "" {
		if len(v) > maxSubmitterLen {
			return badRequest("submitted_by is longer than %d characters", maxSubmitterLen)
		}
		f.SubmittedBy = v
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		v := c.QueryParam(name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return badRequest("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
		}
		*dst = t
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxListOffset {
			return badRequest("offset must be an integer from 0 to %d", maxListOffset)
		}
		f.Offset = n
	}
	return nil
}
