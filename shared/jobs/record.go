// Package jobs holds the insightops job record, its forward-only state
// machine, the compare-and-set store over the JOB_PROGRESS bucket, and the
// publisher that turns a request into a queued record plus a command on
// the JOBS stream.
package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// State is where a job is in its life.
type State string

// The job states. queued → running → succeeded|failed|cancelled; a retry
// stays running with attempt+1; queued may also go straight to cancelled
// (or failed, when it could not be dispatched).
const (
	Queued    State = "queued"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Final reports whether no further transition is allowed.
func (s State) Final() bool { return s == Succeeded || s == Failed || s == Cancelled }

// Valid reports whether s is one of the five states.
func (s State) Valid() bool {
	switch s {
	case Queued, Running, Succeeded, Failed, Cancelled:
		return true
	}
	return false
}

// CanTransition reports whether a record may move from one state to another.
// Staying in queued or running is allowed (progress writes, retries); a
// final state never changes.
func CanTransition(from, to State) bool {
	switch from {
	case Queued:
		return to == Queued || to == Running || to == Cancelled || to == Failed
	case Running:
		return to == Running || to.Final()
	default:
		return false
	}
}

// Error is the machine-readable failure of a job.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Record is the job record: the value in JOB_PROGRESS and the API's task JSON.
type Record struct {
	ID              string          `json:"id"`
	Kind            string          `json:"kind"`
	State           State           `json:"state"`
	Progress        int             `json:"progress"`
	Step            string          `json:"step,omitempty"`
	Params          json.RawMessage `json:"params,omitempty"`
	Attempt         int             `json:"attempt"`
	MaxAttempts     int             `json:"max_attempts"`
	SubmittedBy     string          `json:"submitted_by,omitempty"`
	IdempotencyKey  string          `json:"idempotency_key,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	StartedAt       *time.Time      `json:"started_at,omitempty"`
	UpdatedAt       time.Time       `json:"updated_at"`
	FinishedAt      *time.Time      `json:"finished_at,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           *Error          `json:"error,omitempty"`
	Worker          string          `json:"worker,omitempty"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
}

// The job kinds of the contract: "<worker kind>.<action>", subject "jobs.<kind>".
const (
	KindInit         = "init.run"
	KindBackupCreate = "backup.create"
	KindBackupVerify = "backup.verify"
	KindBackupPrune  = "backup.prune"
	KindRestore      = "restore.run"
	KindChromaTrain  = "chroma.train"
	KindChromaClear  = "chroma.clear"
)

// Kinds lists every job kind.
var Kinds = []string{KindInit, KindBackupCreate, KindBackupVerify, KindBackupPrune, KindRestore, KindChromaTrain, KindChromaClear}

// WorkerKinds lists the worker kinds, each one durable consumer on JOBS.
var WorkerKinds = []string{"init", "backup", "restore", "chroma"}

// Subject is the command subject of a job kind.
func Subject(kind string) string { return "jobs." + kind }

// DLQSubject is where a job of kind goes when it exhausted its deliveries.
func DLQSubject(kind string) string { return "dlq.jobs." + kind }

// WorkerKind is the consumer that handles a job kind ("backup.verify" → "backup").
func WorkerKind(kind string) string {
	w, _, _ := strings.Cut(kind, ".")
	return w
}

// NewID returns a new job id (a ULID: sortable by creation time).
func NewID() string { return ulid.Make().String() }

// ValidID reports whether s has the shape of a job id.
func ValidID(s string) bool {
	_, err := ulid.ParseStrict(s)
	return err == nil
}

// Args is the typed params of one job kind (package jobspec has one per
// kind): Kind names the kind it is the params of, Validate checks what
// needs nothing but the value (a failure is an Invalid error).
type Args interface {
	Kind() string
	Validate() error
}

// Command is the message body published on a job subject.
type Command struct {
	ID     string          `json:"id"`
	Kind   string          `json:"kind"`
	Params json.RawMessage `json:"params,omitempty"`
	// Queued is the record as the publisher wrote it, at revision Rev. A
	// worker's first delivery writes "running" over it with a
	// compare-and-set on Rev and so skips a read; if anything changed the
	// record meanwhile the write fails and the worker reads it afresh.
	Queued *Record `json:"queued,omitempty"`
	Rev    uint64  `json:"rev,omitempty"`
}

// CodedError carries an error code for the job record and whether retrying
// can help. Handlers return Permanent(...) for bad input so the job is
// terminated at once instead of retried. errors.As finds it through any
// number of %w wraps, and errors.Is(err, code) reports whether err carries
// code (Code is an error for that purpose).
type CodedError struct {
	Code      Code
	Permanent bool
	Err       error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// Is reports whether target is e's Code, so errors.Is(err, CodeLockHeld)
// holds for a lock_held error however it was wrapped.
func (e *CodedError) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Error makes a Code usable as the target of errors.Is (see
// CodedError.Is); it returns the code.
func (c Code) Error() string { return string(c) }

// Permanent marks err as one no retry can fix (the job is Term'ed).
func Permanent(code Code, err error) error {
	return &CodedError{Code: code, Permanent: true, Err: err}
}

// Retryable tags err with a code; the job is retried with backoff.
func Retryable(code Code, err error) error {
	return &CodedError{Code: code, Err: err}
}

// ErrCancelled is returned by a job step when cancellation was requested.
var ErrCancelled = errors.New("job cancelled")

// CodeOf returns the code the record gets for err: the outermost
// CodedError's, CodeCancelled for ErrCancelled, CodeHandlerError
// otherwise.
func CodeOf(err error) Code {
	var ce *CodedError
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, ErrCancelled):
		return CodeCancelled
	}
	return CodeHandlerError
}

// ErrorOf turns a handler error into the record's Error.
func ErrorOf(err error) *Error {
	return &Error{Code: CodeOf(err), Message: err.Error()}
}

// IsPermanent reports whether err must not be retried.
func IsPermanent(err error) bool {
	var ce *CodedError
	return errors.As(err, &ce) && ce.Permanent
}

// Invalid returns a permanent bad-input error (CodeInvalidParams).
func Invalid(format string, args ...any) error {
	return Permanent(CodeInvalidParams, fmt.Errorf(format, args...))
}

// AuditAction names the audit action of a job phase: the kind with a
// generic verb dropped ("backup.create" + "requested" → "backup.requested",
// "backup.verify" + "started" → "backup.verify.started").
func AuditAction(kind, phase string) string {
	base := kind
	for _, generic := range []string{".create", ".run"} {
		base = strings.TrimSuffix(base, generic)
	}
	return base + "." + phase
}
