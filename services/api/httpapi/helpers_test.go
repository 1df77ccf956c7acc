package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

func TestMain(m *testing.M) {
	auth.Cost = bcrypt.MinCost // fast hashing in tests
	os.Exit(m.Run())
}

// env is one API over real parts: an embedded NATS server, a SQLite System
// DB in a temp dir, and the server behind httptest.
type env struct {
	t   *testing.T
	cfg config.Config
	bus *bus.Bus
	ns  *server.Server
	db  *store.DB
	srv *Server
	ts  *httptest.Server
}

const testPassword = "s3cret-Pa55word!"

var testUsers = map[auth.Role]string{
	auth.Admin:    "admin@example.com",
	auth.Operator: "operator@example.com",
	auth.Viewer:   "viewer@example.com",
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with extra configuration variables over the
// development defaults (DATA_DIR in a temp dir).
func newEnvWith(t *testing.T, vars map[string]string) *env {
	t.Helper()
	return startEnv(t, testkit.NewEnv(t, testkit.WithVars(vars)))
}

// startEnv starts the API over te, with one user per role.
func startEnv(t *testing.T, te *testkit.Env) *env {
	t.Helper()
	ctx := context.Background()
	cfg, b, ns, db := te.Config, te.Bus, te.NATS, te.DB
	for role, email := range testUsers {
		h, err := auth.HashPassword(testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateUserIfAbsent(ctx, email, h, string(role)); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(Deps{Config: cfg, Bus: b, DB: db, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.CloseStreams(); ts.Close() })
	return &env{t: t, cfg: cfg, bus: b, ns: ns, db: db, srv: srv, ts: ts}
}

// token issues a valid token for the test user of role.
func (e *env) token(role auth.Role) string {
	e.t.Helper()
	tok, _, err := e.srv.tokens.Issue(testUsers[role], role)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type req struct {
	method, path string
	body         any // string, []byte or a value marshalled to JSON
	token        string
	headers      map[string]string
	chunked      bool // send the body without a Content-Length
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(r req) resp {
	e.t.Helper()
	var body io.Reader
	ct := ""
	switch b := r.body.(type) {
	case nil:
	case string:
		body, ct = strings.NewReader(b), "application/json"
	case []byte:
		body, ct = bytes.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body, ct = bytes.NewReader(raw), "application/json"
	}
	if r.chunked && body != nil {
		body = struct{ io.Reader }{body} // hides the length
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, r.method, e.ts.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		hr.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: raw}
}

// errorOf checks the contract's error shape and returns its code.
// jwtShape matches a serialised JWT: a base64url JSON header ("eyJ…"),
// a dot, a payload and a dot. A bare "eyJ" can occur by chance in a random
// request id; a header followed by two dot-separated segments cannot.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.`)

// holdsJWT reports whether raw contains something shaped like a JWT.
func holdsJWT(raw []byte) bool { return jwtShape.Match(raw) }

func errorOf(t *testing.T, r resp) (code, message string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json (body %s)", ct, r.body)
	}
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error == nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Errorf("body %s is not {\"error\": {\"code\", \"message\"}} (%v)", r.body, err)
		return "", ""
	}
	for _, leak := range []string{"goroutine ", ".go:", "panic"} {
		if strings.Contains(string(r.body), leak) {
			t.Errorf("error body leaks %q: %s", leak, r.body)
		}
	}
	return body.Error.Code, body.Error.Message
}

// codeOf is the API error code of r (errorOf reports a body not in the
// error shape).
func codeOf(t *testing.T, r resp) string {
	t.Helper()
	code, _ := errorOf(t, r)
	return code
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

// auditEvents returns the events on the AUDIT stream whose subject matches
// filter, with their raw bytes.
func (e *env) auditEvents(filter string) ([]audit.Event, [][]byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := e.bus.JS.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	n := int(info.NumPending)
	var evs []audit.Event
	var raws [][]byte
	for len(evs) < n {
		batch, err := cons.Fetch(n-len(evs), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var ev audit.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				e.t.Fatalf("audit message %s: %v", m.Data(), err)
			}
			evs = append(evs, ev)
			raws = append(raws, m.Data())
		}
		if got == 0 {
			break
		}
	}
	return evs, raws
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
