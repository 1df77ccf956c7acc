package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

// auditRoutes read the audit trail the audit sink keeps in the System DB.
var auditRoutes = []routeDef{
	{Route{http.MethodGet, "/admin/db/audit", auth.Admin, false, "audit log, newest first: ?actor=&action=&outcome=&resource=&job_id=&since=&until=&limit=&offset=; with ?after_id=N the rows stored after row N, oldest first (follow the trail by asking again after the last id)"}, (*Server).auditLog},
	{Route{http.MethodGet, "/admin/db/audit/verify", auth.Admin, false, "recompute the audit hash chain; names the first broken row (one at a time, within AUDIT_VERIFY_TIMEOUT)"}, (*Server).auditVerify},
}

// AuditEntry is one audit_logs row as the API shows it.
type AuditEntry struct {
	ID        int64           `json:"id"`
	EventID   string          `json:"event_id"`
	StreamSeq uint64          `json:"stream_seq"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Role      string          `json:"role,omitempty"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	JobID     string          `json:"job_id,omitempty"`
	Outcome   string          `json:"outcome"`
	Detail    json.RawMessage `json:"detail,omitempty"`
	SourceIP  string          `json:"source_ip,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	Hash      string          `json:"hash"`
	PrevHash  string          `json:"prev_hash"`
}

// AuditPage is the answer of GET /admin/db/audit.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Count   int          `json:"count"`
	Limit   int          `json:"limit"`
	Offset  int          `json:"offset"`
}

func (s *Server) auditLog(c echo.Context) error {
	f := store.AuditFilter{
		Actor: c.QueryParam("actor"), Action: c.QueryParam("action"), Outcome: c.QueryParam("outcome"),
		Resource: c.QueryParam("resource"), JobID: c.QueryParam("job_id"), Limit: 100,
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.QueryParam(t.name); v != "" {
			ts, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return badRequest("%s must be an RFC 3339 time such as 2026-11-27T10:00:00Z", t.name)
			}
			*t.dst = ts
		}
	}
	for _, n := range []struct {
		name   string
		dst    *int
		lo, hi int
	}{{"limit", &f.Limit, 1, 1000}, {"offset", &f.Offset, 0, 1 << 30}} {
		if v := c.QueryParam(n.name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < n.lo || i > n.hi {
				return badRequest("%s must be an integer from %d to %d", n.name, n.lo, n.hi)
			}
			*n.dst = i
		}
	}
	if v := c.QueryParam("after_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 0 {
			return badRequest("after_id must be a row id: an integer of 0 or more")
		}
		f.Follow, f.AfterID = true, id
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	rows, err := s.db.AuditLogs(ctx, f)
	if err != nil {
		return unavailable("the system database", err)
	}
	page := AuditPage{Entries: make([]AuditEntry, 0, len(rows)), Limit: f.Limit, Offset: f.Offset}
	for _, r := range rows {
		page.Entries = append(page.Entries, AuditEntry{
			ID: r.ID, EventID: r.EventID, StreamSeq: r.StreamSeq, At: r.At, Actor: r.Actor, Role: r.Role,
			Action: r.Action, Resource: r.Resource, JobID: r.JobID, Outcome: r.Outcome, Detail: r.Detail,
			SourceIP: r.SourceIP, RequestID: r.RequestID, Hash: r.Hash, PrevHash: r.PrevHash,
		})
	}
	page.Count = len(page.Entries)
	return c.JSON(http.StatusOK, page)
}

// It reads the whole audit_logs table, so one runs at a time (another
// request meanwhile is 429 audit_verify_busy) and for at most
// AUDIT_VERIFY_TIMEOUT (then 503 audit_verify_timeout, saying how many rows
// were checked).
func (s *Server) auditVerify(c echo.Context) error {
	select {
	case s.auditVerifySlot <- struct{}{}:
		defer func() { <-s.auditVerifySlot }()
	default:
		c.Response().Header().Set("Retry-After", "10")
		return apiErr(http.StatusTooManyRequests, CodeAuditVerifyBusy, "an audit chain verification is already running; retry when it is done")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.auditVerifyTimeout)
	defer cancel()
	rep, err := auditsink.Verify(ctx, s.db)
	if err != nil && ctx.Err() != nil && c.Request().Context().Err() == nil {
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeAuditVerifyTimeout, Err: err,
			Message: fmt.Sprintf("the audit chain was not verified within %s (AUDIT_VERIFY_TIMEOUT): %d rows checked, none broken so far", s.auditVerifyTimeout, rep.Rows)}
	}
	if err != nil {
		return unavailable("the system database", err)
	}
	return c.JSON(http.StatusOK, rep)
}

// RunWithAuditSink runs the API and the audit sink (AUDIT → audit_logs)
// side by side until ctx ends; the API binary and the all-in-one use it.
// Every API replica runs a sink; the sink's consumer admits one event at a
// time, so they share the work without breaking the chain.
func RunWithAuditSink(ctx context.Context, deps Deps) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sinkDone := make(chan error, 1)
	go func() {
		err := auditsink.Run(ctx, deps.Bus.JS, deps.DB, deps.Log)
		if err != nil {
			cancel()
		}
		sinkDone <- err
	}()
	err := Run(ctx, deps)
	cancel()
	return errors.Join(err, <-sinkDone)
}
