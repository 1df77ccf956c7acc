package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Error is an answer of the API outside 2xx: its HTTP status and the
// {"error": {"code", "message"}} of the body. Code is the API's error code
// (not_found, lock_held, unauthorized, archive_exists, …; see the error
// codes of docs/ARCHITECTURE.md), or "http_<status>" when the body was not
// the API's error shape.
type Error struct {
	Status  int
	Code    string
	Message string
	// Method and Path name the request that failed.
	Method, Path string
	// RetryAfter is the Retry-After header of a 429 or 503, if any.
	RetryAfter string

	raw []byte // the body, for answers that carry a report (health's 503)
}

// Error describes the failure: "GET /admin/db/tasks/…: 404 not_found: no task …".
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// Is makes errors.Is(err, &client.Error{Code: "lock_held"}) or
// errors.Is(err, &client.Error{Status: 404}) hold for an Error with that
// code or status (the zero fields of target match anything).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return (t.Code == "" || t.Code == e.Code) && (t.Status == 0 || t.Status == e.Status) && (t.Code != "" || t.Status != 0)
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readError turns a non-2xx response into an *Error.
func readError(resp *http.Response, method, path string) *Error {
	e := &Error{Status: resp.StatusCode, Method: method, Path: path, RetryAfter: resp.Header.Get("Retry-After")}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e.raw = raw
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	e.Code = fmt.Sprintf("http_%d", resp.StatusCode)
	e.Message = strings.TrimSpace(string(raw))
	if e.Message == "" || len(e.Message) > 300 {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// ErrUnreachable matches (errors.Is) every failure to reach the API: a
// refused connection, an unknown host, a timeout before any answer.
var ErrUnreachable = errors.New("insightops API unreachable")

// UnreachableError is a request that got no HTTP answer.
type UnreachableError struct {
	URL string
	Err error
}

// Error names the API and the cause.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the insightops API at %s: %v", e.URL, e.Err)
}

// Unwrap returns the transport's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) hold.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// StatusOf returns the HTTP status of an *Error in err's chain, 0 if none.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// CodeOf returns the API error code of an *Error in err's chain, "" if none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
