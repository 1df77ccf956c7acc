package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Error codes of the {"error": {"code": …}} body.
const (
	CodeBadRequest           = "bad_request"
	CodeInvalidJSON          = "invalid_json"
	CodeUnsupportedMedia     = "unsupported_media_type"
	CodeUnauthorized         = "unauthorized"
	CodeInvalidCredentials   = "invalid_credentials" //nolint:gosec // G101: an error code, not a credential
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodePayloadTooLarge      = "payload_too_large"
	CodeRateLimited          = "rate_limited"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
	CodeConfirmationRequired = "confirmation_required"
	CodeIdempotencyConflict  = "idempotency_conflict"
	// Accounts (users_routes.go).
	CodeLastAdmin              = "last_admin"
	CodePasswordPolicy         = "password_policy"
	CodePasswordChangeRequired = "password_change_required"
	CodeWrongPassword          = "wrong_password"
	CodeUserExists             = "user_exists"
	CodeTokenExists            = "token_exists"
	// Audit chain verification (audit_routes.go).
	CodeAuditVerifyBusy    = "audit_verify_busy"
	CodeAuditVerifyTimeout = "audit_verify_timeout"
)

// APIError is an error answered as {"error": {"code", "message"}} with
// Status. Err, when set, is logged and never shown to the client.
type APIError struct {
	Status  int
	Code    string
	Message string
	Err     error
}

// Error describes the error for logs (status, code, message and cause).
func (e *APIError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the logged cause.
func (e *APIError) Unwrap() error { return e.Err }

// errorBody is the contract's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, CodeBadRequest, format, args...)
}

func notFound(format string, args ...any) *APIError {
	return apiErr(http.StatusNotFound, CodeNotFound, format, args...)
}

// unavailable is a 503 for a dependency that did not answer; err is logged.
func unavailable(what string, err error) *APIError {
	return &APIError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: what + " is unavailable; retry later", Err: err}
}

// echoCodes maps the statuses echo produces itself to our codes and messages.
var echoCodes = map[int]errorDetail{
	http.StatusNotFound:              {CodeNotFound, "no such route"},
	http.StatusMethodNotAllowed:      {CodeMethodNotAllowed, "method not allowed on this route"},
	http.StatusRequestEntityTooLarge: {CodePayloadTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)},
	http.StatusUnsupportedMediaType:  {CodeUnsupportedMedia, "unsupported content type"},
	http.StatusUnauthorized:          {CodeUnauthorized, "authentication required"},
	http.StatusForbidden:             {CodeForbidden, "forbidden"},
	http.StatusBadRequest:            {CodeBadRequest, "bad request"},
	http.StatusTooManyRequests:       {CodeRateLimited, "too many requests"},
	http.StatusServiceUnavailable:    {CodeUnavailable, "service unavailable"},
}

// handleError is the echo HTTPErrorHandler: every error, ours or echo's
// (404, 405, 413, …), becomes the contract's JSON shape. Anything
// unexpected is logged with its request id and answered as a generic 500.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		// A stream already started: nothing can be answered any more.
		s.log.Debug("error after response started", "request_id", requestID(c), "err", err)
		return
	}
	var status int
	var body errorDetail
	var ae *APIError
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		status, body = ae.Status, errorDetail{ae.Code, ae.Message}
		if ae.Err != nil {
			lvl := s.log.Warn
			if status >= 500 && status != http.StatusServiceUnavailable {
				lvl = s.log.Error
			}
			lvl("request failed", "request_id", requestID(c), "status", status, "code", ae.Code, "err", ae.Err)
		}
	case errors.As(err, &mbe):
		status, body = http.StatusRequestEntityTooLarge, echoCodes[http.StatusRequestEntityTooLarge]
	case errors.As(err, &he):
		var inner *echo.HTTPError
		if errors.As(he.Internal, &inner) {
			he = inner
		}
		status = he.Code
		d, known := echoCodes[status]
		if !known {
			d = errorDetail{fmt.Sprintf("http_%d", status), http.StatusText(status)}
		}
		if m, ok := he.Message.(string); ok && m != "" && m != http.StatusText(status) && status < 500 {
			d.Message = m
		}
		if status >= 500 {
			s.log.Error("request failed", "request_id", requestID(c), "status", status, "err", err)
			if status != http.StatusServiceUnavailable {
				status, d = http.StatusInternalServerError, errorDetail{CodeInternal, "internal error"}
			}
		}
		body = d
	default:
		s.log.Error("request failed", "request_id", requestID(c), "err", err)
		status, body = http.StatusInternalServerError, errorDetail{CodeInternal, "internal error"}
	}
	if status == http.StatusUnauthorized && c.Response().Header().Get(echo.HeaderWWWAuthenticate) == "" && c.Path() != "/auth/login" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="insightops"`)
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(status)
	} else {
		werr = c.JSON(status, errorBody{Error: body})
	}
	if werr != nil {
		s.log.Debug("write error response", "request_id", requestID(c), "err", werr)
	}
}
