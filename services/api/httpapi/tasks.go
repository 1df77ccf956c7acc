package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
)

// Bounds of GET /admin/db/tasks.
const (
	defaultListLimit = 50
	maxListLimit     = 500
)

// taskID returns the :id path parameter when it has the shape of a job id
// (a ULID); anything else ("../x", "not-a-ulid") is a 404.
func taskID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !jobs.ValidID(id) {
		return "", notFound("no task %q: task ids are 26-character ULIDs", truncate(id, 64))
	}
	return id, nil
}

// jobStoreError maps a jobs.Store error to the API's answer.
func jobStoreError(id string, err error) error {
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return notFound("no task %s", id)
	case errors.Is(err, jobs.ErrTransition):
		return &APIError{Status: http.StatusConflict, Code: CodeConflict, Message: "the task is already final", Err: err}
	}
	return unavailable("the job store", err)
}

// getTask answers GET /admin/db/tasks/:id (and its compatibility aliases)
// with the job record.
func (s *Server) getTask(c echo.Context) error {
	id, err := taskID(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	rec, _, err := s.jobs.Get(ctx, id)
	if err != nil {
		return jobStoreError(id, err)
	}
	return c.JSON(http.StatusOK, rec)
}

// TaskList is the body of GET /admin/db/tasks.
type TaskList struct {
	Tasks []jobs.Record `json:"tasks"`
	Count int           `json:"count"`
}

// listTasks answers GET /admin/db/tasks?kind=&state=&submitted_by=&since=&until=&limit=&offset=:
// the newest records first. kind must be one of jobs.Kinds, state one of
// the five states, since and until RFC 3339 times (creation time, since
// inclusive, until exclusive), limit 1–500 (default 50), offset 0–100000.
func (s *Server) listTasks(c echo.Context) error {
	f := jobs.Filter{Limit: defaultListLimit}
	if k := c.QueryParam("kind"); k != "" {
		if !slices.Contains(jobs.Kinds, k) {
			return badRequest("unknown kind %q; accepted: %s", truncate(k, 64), strings.Join(jobs.Kinds, ", "))
		}
		f.Kind = k
	}
	if st := c.QueryParam("state"); st != "" {
		if !jobs.State(st).Valid() {
			return badRequest("unknown state %q; accepted: queued, running, succeeded, failed, cancelled", truncate(st, 64))
		}
		f.State = jobs.State(st)
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxListLimit {
			return badRequest("limit must be an integer from 1 to %d", maxListLimit)
		}
		f.Limit = n
	}
	if err := taskFilterExtras(c, &f); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	recs, err := s.jobs.List(ctx, f)
	if err != nil {
		return unavailable("the job store", err)
	}
	if recs == nil {
		recs = []jobs.Record{}
	}
	return c.JSON(http.StatusOK, TaskList{Tasks: recs, Count: len(recs)})
}

// cancelTask answers DELETE /admin/db/tasks/:id. A queued job is cancelled
// at once (200 with the record); a running one gets its cancel flag, which
// its worker checks between steps (202 with the record: the cancellation
// is pending). 404 for an unknown job, 409 for a final one.
func (s *Server) cancelTask(c echo.Context) error {
	id, err := taskID(c)
	if err != nil {
		return err
	}
	cl, _ := claimsOf(c)
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	rec, err := s.jobs.Cancel(ctx, id)
	if err != nil {
		if errors.Is(err, jobs.ErrTransition) {
			s.recordAudit(c, audit.Event{
				Actor: cl.Subject, Role: string(cl.Role), Action: jobs.AuditAction(rec.Kind, "cancel.requested"), Resource: jobs.WorkerKind(rec.Kind),
				JobID: id, Outcome: audit.Failure, Detail: map[string]any{"reason": "already_final", "state": string(rec.State)},
			})
			return &APIError{Status: http.StatusConflict, Code: CodeConflict, Message: fmt.Sprintf("task %s is already %s", id, rec.State), Err: err}
		}
		return jobStoreError(id, err)
	}
	s.recordAudit(c, audit.Event{
		Actor: cl.Subject, Role: string(cl.Role), Action: jobs.AuditAction(rec.Kind, "cancel.requested"), Resource: jobs.WorkerKind(rec.Kind),
		JobID: id, Outcome: audit.Success, Detail: map[string]any{"state": string(rec.State)},
	})
	status := http.StatusOK
	if !rec.State.Final() {
		status = http.StatusAccepted
	}
	return c.JSON(status, rec)
}

// taskEvents answers GET /admin/db/tasks/:id/events with Server-Sent
// Events: one "event: job" with the record as data for its current value
// and each change after it; the stream ends after the final state. A
// comment line is sent every SSEKeepAlive so proxies keep the connection;
// the stream stops when the client goes away or the server shuts down.
func (s *Server) taskEvents(c echo.Context) error {
	id, err := taskID(c)
	if err != nil {
		return err
	}
	rctx, rcancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	_, _, err = s.jobs.Get(rctx, id)
	rcancel()
	if err != nil {
		return jobStoreError(id, err)
	}

	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	updates, err := s.jobs.Watch(ctx, id)
	if err != nil {
		return jobStoreError(id, err)
	}
	s.liveStreams.Add(1)
	defer s.liveStreams.Add(-1)

	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": stream of task "+id+"\n\n"); err != nil {
		return nil
	}
	w.Flush()

	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // client went away
		case <-s.closing:
			return nil // server shutting down
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case rec, ok := <-updates:
			if !ok {
				return nil // final state sent, or the watch ended
			}
			data, err := json.Marshal(rec)
			if err != nil {
				s.log.Error("encode job record", "job_id", id, "err", err)
				return nil
			}
			if _, err := fmt.Fprintf(w, "event: job\ndata: %s\n\n", data); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}
