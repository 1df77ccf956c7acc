package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
)

// deadLetterRoutes list the JOBS_DLQ stream (re-submission is a new
// submission on the kind's own route, with the dead letter's params).
var deadLetterRoutes = []routeDef{
	{Route{http.MethodGet, "/admin/db/dead-letters", auth.Viewer, false,
		"jobs that failed after their last delivery (JOBS_DLQ), newest first: ?limit=&offset= → {dead_letters, total}"},
		(*Server).listDeadLetters},
}

// Bounds of GET /admin/db/dead-letters.
const (
	defaultDeadLetterLimit = 50
	maxDeadLetterLimit     = 200
	maxDeadLetterOffset    = 100000
)

// DeadLetter is one command of JOBS_DLQ with what the worker runtime
// recorded about it.
type DeadLetter struct {
	// Seq is the message's sequence in JOBS_DLQ.
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	JobID string    `json:"job_id"`
	Kind  string    `json:"kind"`
	// Params are the job's params as submitted (what a re-submission sends).
	Params json.RawMessage `json:"params,omitempty"`
	// Error is the last attempt's error message; Deliveries how often the
	// command was delivered.
	Error      string `json:"error"`
	Deliveries int    `json:"deliveries"`
}

// DeadLetterList is the body of GET /admin/db/dead-letters.
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
	// Total is the number of messages in JOBS_DLQ.
	Total  uint64 `json:"total"`
	Limit  int    `json:"limit"`
	Offset int    `json:"offset"`
}

// listDeadLetters answers GET /admin/db/dead-letters: a page of JOBS_DLQ,
// newest first, read message by message from the stream's last sequence
// (so a page costs limit+offset reads at most, not the whole stream).
func (s *Server) listDeadLetters(c echo.Context) error {
	limit, err := intParam(c, "limit", defaultDeadLetterLimit, 1, maxDeadLetterLimit)
	if err != nil {
		return err
	}
	offset, err := intParam(c, "offset", 0, 0, maxDeadLetterOffset)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	st, err := s.bus.JS.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return unavailable("the JOBS_DLQ stream", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return unavailable("the JOBS_DLQ stream", err)
	}
	out := DeadLetterList{DeadLetters: []DeadLetter{}, Total: info.State.Msgs, Limit: limit, Offset: offset}
	skipped := 0
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out.DeadLetters) < limit; seq-- {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted or purged
		}
		if err != nil {
			return unavailable("the JOBS_DLQ stream", err)
		}
		if skipped < offset {
			skipped++
			continue
		}
		out.DeadLetters = append(out.DeadLetters, deadLetterOf(m))
	}
	return c.JSON(http.StatusOK, out)
}

// deadLetterOf reads a JOBS_DLQ message: the job's command as it was
// published and the worker runtime's headers.
func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{Seq: m.Sequence, At: m.Time.UTC(), Kind: strings.TrimPrefix(m.Subject, "dlq.jobs.")}
	var cmd jobs.Command
	if json.Unmarshal(m.Data, &cmd) == nil {
		d.JobID, d.Params = cmd.ID, cmd.Params
		if cmd.Kind != "" {
			d.Kind = cmd.Kind
		}
	}
	if id := m.Header.Get("Insightops-Job-Id"); id != "" {
		d.JobID = id
	}
	d.Error = m.Header.Get("Insightops-Error")
	d.Deliveries, _ = strconv.Atoi(m.Header.Get("Insightops-Deliveries"))
	return d
}
