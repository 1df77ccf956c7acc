package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
)

// TestBadInputs: every malformed request is a 4xx answered in the
// contract's error shape; none is a 500.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	huge := bytes.Repeat([]byte("a"), MaxBodyBytes+10)
	hugeJSON := append(append([]byte(`{"email":"`), huge...), []byte(`","password":"x"}`)...)

	cases := []struct {
		name        string
		r           req
		status      int
		code        string
		msgContains string
	}{
		{"login malformed JSON", req{method: "POST", path: "/auth/login", body: `{"email":`}, 400, CodeInvalidJSON, ""},
		{"login syntax error", req{method: "POST", path: "/auth/login", body: `{"email" "a"}`}, 400, CodeInvalidJSON, "byte"},
		{"login unknown field", req{method: "POST", path: "/auth/login", body: `{"email":"a@x","password":"b","admin":true}`}, 400, CodeInvalidJSON, `"admin"`},
		{"login wrong type", req{method: "POST", path: "/auth/login", body: `{"email":42,"password":"b"}`}, 400, CodeInvalidJSON, `"email"`},
		{"login wrong type password", req{method: "POST", path: "/auth/login", body: `{"email":"a@x","password":["b"]}`}, 400, CodeInvalidJSON, `"password"`},
		{"login array body", req{method: "POST", path: "/auth/login", body: `[]`}, 400, CodeInvalidJSON, "object"},
		{"login trailing data", req{method: "POST", path: "/auth/login", body: `{"email":"a@x","password":"b"} {}`}, 400, CodeInvalidJSON, "exactly one"},
		{"login trailing garbage", req{method: "POST", path: "/auth/login", body: `{"email":"a@x","password":"b"}x`}, 400, CodeInvalidJSON, ""},
		{"login empty body", req{method: "POST", path: "/auth/login"}, 400, CodeInvalidJSON, ""},
		{"login missing fields", req{method: "POST", path: "/auth/login", body: `{}`}, 400, CodeBadRequest, "required"},
		{"login null", req{method: "POST", path: "/auth/login", body: `null`}, 400, CodeBadRequest, "required"},
		{"login huge body", req{method: "POST", path: "/auth/login", body: hugeJSON}, 413, CodePayloadTooLarge, ""},
		{"login huge chunked body", req{method: "POST", path: "/auth/login", body: hugeJSON, chunked: true}, 413, CodePayloadTooLarge, ""},
		{"login wrong content type", req{method: "POST", path: "/auth/login", body: `{"email":"a@x","password":"b"}`, headers: map[string]string{"Content-Type": "text/plain"}}, 415, CodeUnsupportedMedia, "application/json"},
		{"login form content type", req{method: "POST", path: "/auth/login", body: `email=a&password=b`, headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, CodeUnsupportedMedia, ""},
		{"login overlong email", req{method: "POST", path: "/auth/login", body: `{"email":"` + strings.Repeat("a", 300) + `@x","password":"b"}`}, 400, CodeBadRequest, "email"},

		{"init unknown field", req{method: "POST", path: "/admin/db/init", body: `{"force":true}`, token: admin}, 400, CodeInvalidJSON, `"force"`},
		{"init array", req{method: "POST", path: "/admin/db/init", body: `[1]`, token: admin}, 400, CodeInvalidJSON, ""},
		{"init malformed", req{method: "POST", path: "/admin/db/init", body: `{`, token: admin}, 400, CodeInvalidJSON, ""},
		{"init trailing", req{method: "POST", path: "/admin/db/init", body: `{}{}`, token: admin}, 400, CodeInvalidJSON, ""},
		{"init wrong content type", req{method: "POST", path: "/admin/db/init", body: `{}`, token: admin, headers: map[string]string{"Content-Type": "text/xml"}}, 415, CodeUnsupportedMedia, ""},
		{"init huge", req{method: "POST", path: "/admin/db/init", body: huge, token: admin}, 413, CodePayloadTooLarge, ""},
		{"init idempotency key too long", req{method: "POST", path: "/admin/db/init", token: admin, headers: map[string]string{HeaderIdempotencyKey: strings.Repeat("k", 201)}}, 400, CodeBadRequest, "Idempotency-Key"},
		{"init idempotency key with tab", req{method: "POST", path: "/admin/db/init", token: admin, headers: map[string]string{HeaderIdempotencyKey: "a\tb"}}, 400, CodeBadRequest, "printable"},
		{"init idempotency key non-ASCII", req{method: "POST", path: "/admin/db/init", token: admin, headers: map[string]string{HeaderIdempotencyKey: "clé"}}, 400, CodeBadRequest, "printable"},

		{"unknown task", req{method: "GET", path: "/admin/db/tasks/" + jobs.NewID(), token: admin}, 404, CodeNotFound, ""},
		{"task id not a ULID", req{method: "GET", path: "/admin/db/tasks/not-a-ulid", token: admin}, 404, CodeNotFound, ""},
		{"task id lower-case junk", req{method: "GET", path: "/admin/db/tasks/" + strings.Repeat("z", 26), token: admin}, 404, CodeNotFound, ""},
		{"task id traversal", req{method: "GET", path: "/admin/db/tasks/../x", token: admin}, 404, CodeNotFound, ""},
		{"task id encoded traversal", req{method: "GET", path: "/admin/db/tasks/..%2Fx", token: admin}, 404, CodeNotFound, ""},
		{"task id encoded traversal events", req{method: "GET", path: "/admin/db/tasks/..%2F..%2Fetc/events", token: admin}, 404, CodeNotFound, ""},
		{"cancel bad id", req{method: "DELETE", path: "/admin/db/tasks/%00", token: admin}, 404, CodeNotFound, ""},
		{"alias bad id", req{method: "GET", path: "/admin/db/backup/status/nope", token: admin}, 404, CodeNotFound, ""},
		{"bad kind filter", req{method: "GET", path: "/admin/db/tasks?kind=bogus", token: admin}, 400, CodeBadRequest, "kind"},
		{"worker kind is not a job kind", req{method: "GET", path: "/admin/db/tasks?kind=backup", token: admin}, 400, CodeBadRequest, "kind"},
		{"bad state filter", req{method: "GET", path: "/admin/db/tasks?state=done", token: admin}, 400, CodeBadRequest, "state"},
		{"bad limit", req{method: "GET", path: "/admin/db/tasks?limit=abc", token: admin}, 400, CodeBadRequest, "limit"},
		{"zero limit", req{method: "GET", path: "/admin/db/tasks?limit=0", token: admin}, 400, CodeBadRequest, "limit"},
		{"huge limit", req{method: "GET", path: "/admin/db/tasks?limit=100000", token: admin}, 400, CodeBadRequest, "limit"},

		{"unknown route", req{method: "GET", path: "/nope"}, 404, CodeNotFound, ""},
		{"wrong method", req{method: "PUT", path: "/health"}, 405, CodeMethodNotAllowed, ""},
		{"wrong method login", req{method: "GET", path: "/auth/login"}, 405, CodeMethodNotAllowed, ""},
		{"wrong method admin", req{method: "PATCH", path: "/admin/db/init", token: admin}, 405, CodeMethodNotAllowed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(c.r)
			if res.status >= 500 {
				t.Fatalf("status %d (a 500 for bad input): %s", res.status, res.body)
			}
			if res.status != c.status {
				t.Errorf("status %d, want %d: %s", res.status, c.status, res.body)
			}
			code, msg := errorOf(t, res)
			if code != c.code {
				t.Errorf("code %q, want %q (%s)", code, c.code, msg)
			}
			if c.msgContains != "" && !strings.Contains(msg, c.msgContains) {
				t.Errorf("message %q does not mention %q", msg, c.msgContains)
			}
			if res.header.Get(echo.HeaderXRequestID) == "" {
				t.Error("no X-Request-ID")
			}
		})
	}
	// Bad submissions created nothing.
	list := decode[TaskList](t, e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: admin}))
	if list.Count != 0 {
		t.Errorf("bad requests created %d jobs", list.Count)
	}
}

func TestInitAcceptsEmptyBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	for name, r := range map[string]req{
		"no body":               {method: "POST", path: "/admin/db/init", token: admin},
		"empty object":          {method: "POST", path: "/admin/db/init", token: admin, body: `{}`},
		"blank body":            {method: "POST", path: "/admin/db/init", token: admin, body: "  \n"},
		"json with charset":     {method: "POST", path: "/admin/db/init", token: admin, body: `{}`, headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}},
		"empty, no type at all": {method: "POST", path: "/admin/db/init", token: admin, headers: map[string]string{"Content-Type": ""}},
	} {
		if res := e.do(r); res.status != http.StatusAccepted {
			t.Errorf("%s: %d %s", name, res.status, res.body)
		}
	}
}

func TestWrongMethodHasAllow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.do(req{method: http.MethodPost, path: "/health"})
	if res.status != http.StatusMethodNotAllowed || !strings.Contains(res.header.Get("Allow"), "GET") {
		t.Errorf("%d Allow=%q", res.status, res.header.Get("Allow"))
	}
}
