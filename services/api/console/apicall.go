package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
)

// apiError is an error answer of the API: its status and the
// {"error": {code, message}} body.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Codes of the API the console reacts to.
const (
	codePasswordChangeRequired = "password_change_required"
	codeUnauthorized           = "unauthorized"
)

// apiRequest builds the in-process API request made on behalf of the
// browser's request r: same context (deadline, trace), source address,
// forwarding headers and request id, so the API logs and audits it as the
// browser's call; the session's token as the bearer token.
func apiRequest(r *http.Request, s *session, method, path string, body any) (*http.Request, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("console: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	// path is an API path served in process by c.api, never dialled.
	// gosec's taint analysis reports G704 here on some runs and not on
	// others, so nolintlint may find the directive unused: it is told too.
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd) //nolint:gosec,nolintlint // G704: no network request is made

	if err != nil {
		return nil, fmt.Errorf("console: request %s %s: %w", method, path, err)
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	req.TLS = r.TLS
	for _, h := range []string{"X-Forwarded-For", "X-Real-Ip", "User-Agent", "X-Request-Id"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if s != nil {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return req, nil
}

// call makes an API request for the browser's request r and decodes a 2xx
// JSON answer into out (when not nil). A 4xx or 5xx answer is an
// *apiError; with errBody set, a 4xx or 5xx answer whose body decodes into
// out is returned too (GET /admin/db/health answers 503 with its report).
func (c *Console) call(r *http.Request, s *session, method, path string, body, out any) error {
	req, err := apiRequest(r, s, method, path, body)
	if err != nil {
		return err
	}
	rec := httptest.NewRecorder()
	c.api.ServeHTTP(rec, req)
	res := rec.Result()
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("console: read %s %s: %w", method, path, err)
	}
	if res.StatusCode >= 400 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if out != nil && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			_ = json.Unmarshal(data, out)
		}
		return &apiError{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("console: decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// raw passes the request r through to the API path as the session's call,
// writing the API's answer (streamed: event streams work) to w.
func (c *Console) raw(w http.ResponseWriter, r *http.Request, s *session, path string) error {
	req, err := apiRequest(r, s, r.Method, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", r.Header.Get("Accept"))
	c.api.ServeHTTP(w, req)
	return nil
}

// asAPIError returns err's *apiError.
func asAPIError(err error) (*apiError, bool) {
	var ae *apiError
	ok := errors.As(err, &ae)
	return ae, ok
}
