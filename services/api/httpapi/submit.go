package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/jobsubmit"
)

// HeaderIdempotencyKey makes a retried POST return the job of the first.
const HeaderIdempotencyKey = "Idempotency-Key"

// maxIdempotencyKeyLen bounds an Idempotency-Key header.
const maxIdempotencyKeyLen = 200

// Accepted is the 202 body of every request that queues a job: the
// Insight Engine's shape {status, task_id, message, status_url} plus the
// job record.
type Accepted struct {
	Status    string      `json:"status"`
	TaskID    string      `json:"task_id"`
	Message   string      `json:"message"`
	StatusURL string      `json:"status_url"`
	Job       jobs.Record `json:"job"`
}

// RequestedAuditTimeout bounds the publish of an accepted job's
// "<kind>.requested" event: longer than AuditTimeout, because the job is
// queued whatever happens and the event saying who asked for it must not
// be lost to a moment without an AUDIT leader (an election after a node
// went down takes seconds); the audit publisher resends until then.
const RequestedAuditTimeout = 10 * time.Second

// recordAuditWithin publishes e, stamped with the request's source IP and
// id, giving the publish up to timeout; a failure is logged, not returned.
func (s *Server) recordAuditWithin(c echo.Context, e audit.Event, timeout time.Duration) {
	e.SourceIP = c.RealIP()
	e.RequestID = requestID(c)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), timeout)
	defer cancel()
	s.audit.Record(ctx, e)
}

// TaskURL is where a job's record is read.
func TaskURL(id string) string { return AdminPrefix + "/db/tasks/" + id }

// idempotencyKey returns the request's Idempotency-Key header, which must
// be at most 200 printable ASCII characters.
func idempotencyKey(c echo.Context) (string, error) {
	k := c.Request().Header.Get(HeaderIdempotencyKey)
	if len(k) > maxIdempotencyKeyLen {
		return "", badRequest("%s is longer than %d characters", HeaderIdempotencyKey, maxIdempotencyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", badRequest("%s must be printable ASCII", HeaderIdempotencyKey)
		}
	}
	return k, nil
}

// submit queues a job with args (checked by the route: checkArgs) for the
// authenticated caller and
// answers 202 with Location: /admin/db/tasks/{id}. With an Idempotency-Key
// the same caller repeating the same kind and key gets the first job back,
// still with 202 (the body's status tells the job's state then). Every
// request is audited as <kind-base>.requested (jobsubmit.EveryCall: a
// replayed one too, marked replayed), the publish bounded by
// RequestedAuditTimeout on its own clock. The submission is bounded by
// SubmitTimeout: a bus that does not answer gives 503, not a hung request,
// and a client that is not connected to NATS at all gives 503 at once.
func (s *Server) submit(c echo.Context, args jobs.Args, message string) error {
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	cl, ok := claimsOf(c)
	if !ok {
		return apiErr(http.StatusUnauthorized, CodeUnauthorized, "authentication required")
	}
	if st := s.bus.Conn.Status(); st != nats.CONNECTED {
		// A fast answer while the client knows it is disconnected. The
		// guarantee that a submission answered 503 never reaches the bus
		// later is the API connection's (app.Options
		// FailFastWhenDisconnected: no reconnect buffer), which also
		// covers a connection lost after this check.
		return unavailable("the job bus", fmt.Errorf("nats %s", st))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.submitTimeout)
	defer cancel()
	rec, created, err := jobsubmit.Submit(ctx, s.pub, s.audit,
		jobs.Submission{Args: args, SubmittedBy: cl.Subject, IdempotencyKey: key},
		audit.Event{Actor: cl.Subject, Role: string(cl.Role), SourceIP: c.RealIP(), RequestID: requestID(c)},
		jobsubmit.Options{Policy: jobsubmit.EveryCall, AuditTimeout: RequestedAuditTimeout})
	if err != nil {
		if errors.Is(err, jobs.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return unavailable("the job bus", err)
		}
		if errors.Is(err, jobs.ErrIdempotencyConflict) {
			return apiErr(http.StatusUnprocessableEntity, CodeIdempotencyConflict, "%s was already used for job %s with a different request; use a new key", HeaderIdempotencyKey, rec.ID)
		}
		return &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
	}
	if !created {
		message = "a job with this Idempotency-Key already exists; this is that job"
	}
	c.Response().Header().Set(echo.HeaderLocation, TaskURL(rec.ID))
	return c.JSON(http.StatusAccepted, Accepted{
		Status: string(rec.State), TaskID: rec.ID, Message: message, StatusURL: TaskURL(rec.ID), Job: rec,
	})
}

// parseInit decodes the optional body of POST /admin/db/init, the job's
// jobspec.InitArgs: absent, blank or the empty object {}; anything else is
// a 4xx *APIError.
func (s *Server) parseInit(c echo.Context) (jobspec.InitArgs, error) {
	req, err := decodeArgs[jobspec.InitArgs](c, true)
	if err != nil {
		return jobspec.InitArgs{}, err
	}
	return req, s.checkArgs(req)
}

// submitInit answers POST /admin/db/init: queue an init job. The body is
// optional; when present it must be the empty object {}.
func (s *Server) submitInit(c echo.Context) error {
	args, err := s.parseInit(c)
	if err != nil {
		return err
	}
	return s.submit(c, args, "init job queued")
}
