package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/insightops/insightops/shared/client"
)

// Exit codes of insightctl. ExitCodes is the one table of them: the
// README's exit-code table and the tests are checked against it.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitJobFailed   = 3
	ExitAuth        = 4
	ExitNotFound    = 5
	ExitConflict    = 6
	ExitUnreachable = 7
	ExitDigest      = 8
)

// ExitCode is one row of the exit-code table.
type ExitCode struct {
	Code    int
	Name    string
	Meaning string
}

// ExitCodes documents every exit code, in order.
var ExitCodes = []ExitCode{
	{ExitOK, "ok", "success; a waited-for job succeeded"},
	{ExitError, "error", "any other failure: a server error, an invalid archive (422), a deployment whose health is down"},
	{ExitUsage, "usage", "bad command line, or a request the API refused as bad input (400, 413, 415, 422 but archive_invalid)"},
	{ExitJobFailed, "job_failed", "the job waited for ended failed or cancelled (its error code is printed)"},
	{ExitAuth, "auth", "not logged in, a bad, expired or revoked token, or a role too low (401, 403)"},
	{ExitNotFound, "not_found", "no such archive, job, user or token (404)"},
	{ExitConflict, "conflict", "a held lock (409 lock_held), an existing name, a job already final, the last admin (409)"},
	{ExitUnreachable, "unreachable", "the API did not answer: connection refused, unknown host, timeout, 502/504 from a proxy"},
	{ExitDigest, "integrity", "a downloaded archive's SHA-256 or size differs from the stored digest, or the API finds its signature invalid"},
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// jobError is a job that ended failed or cancelled.
type jobError struct {
	id, state, code, message string
}

func (e *jobError) Error() string {
	if e.code == "" {
		return fmt.Sprintf("job %s %s", e.id, e.state)
	}
	return fmt.Sprintf("job %s %s: %s: %s", e.id, e.state, e.code, e.message)
}

// notLoggedIn is a command that needs a token run without one.
var errNotLoggedIn = errors.New("not logged in: run `insightctl login` or set INSIGHTOPS_TOKEN")

// exitCode maps an error to its exit code (ExitCodes).
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	var je *jobError
	var ae *client.Error
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &je):
		return ExitJobFailed
	case errors.Is(err, errNotLoggedIn):
		return ExitAuth
	case errors.Is(err, client.ErrDigestMismatch), errors.Is(err, errSignatureInvalid):
		return ExitDigest
	case errors.Is(err, client.ErrUnreachable):
		return ExitUnreachable
	case errors.As(err, &ae):
		return statusExit(ae)
	case errors.Is(err, context.DeadlineExceeded):
		return ExitUnreachable
	}
	return ExitError
}

// statusExit maps an API answer to its exit code.
func statusExit(e *client.Error) int {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ExitAuth
	case http.StatusNotFound:
		return ExitNotFound
	case http.StatusConflict:
		return ExitConflict
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return ExitUnreachable
	case http.StatusUnprocessableEntity:
		if e.Code == "archive_invalid" {
			return ExitError
		}
		return ExitUsage
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return ExitUsage
	}
	return ExitError
}
