package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/config"
)

// fuzzRoute is one submit route's body decoding and params validation,
// exactly as its handler runs them before anything touches the bus.
type fuzzRoute struct {
	name       string
	allowEmpty bool
	// fresh returns a pointer to a new zero request value.
	fresh func() any
	// validate runs the route's params validation on a decoded value and
	// checks what an accepted value must satisfy.
	validate func(t *testing.T, s *Server, v any) error
}

var fuzzRoutes = []fuzzRoute{
	{"login", false, func() any { return new(loginRequest) }, nil},
	{"init", true, func() any { return new(initRequest) }, nil},
	{"backup", true, func() any { return new(backupRequest) }, func(t *testing.T, s *Server, v any) error {
		req := v.(*backupRequest)
		if err := s.checkBackupComponents(req.Components); err != nil {
			return err
		}
		if err := checkNote(req.Note); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, c := range req.Components {
			if !slices.Contains(backupfmt.Components, c) || seen[c] {
				t.Fatalf("accepted components %q", req.Components)
			}
			seen[c] = true
		}
		if req.Components != nil && len(req.Components) == 0 {
			t.Fatalf("accepted an empty components list")
		}
		if len(req.Note) > MaxBackupNote || !utf8.ValidString(req.Note) || strings.ContainsFunc(req.Note, func(r rune) bool {
			return unicode.IsControl(r) && r != '\n' && r != '\t'
		}) {
			t.Fatalf("accepted note %q", req.Note)
		}
		return nil
	}},
	{"verify", true, func() any { return new(struct{}) }, nil},
	{"prune", true, func() any { return new(pruneRequest) }, nil},
	{"restore", true, func() any { return new(restoreRequest) }, func(t *testing.T, s *Server, v any) error {
		req := v.(*restoreRequest)
		comps, err := normalizeComponents(req.Components)
		if err != nil {
			return err
		}
		// Normalised: known, unique, in archive order, and exactly the
		// distinct requested ones.
		want := []string{}
		for _, c := range backupfmt.Components {
			if slices.Contains(req.Components, c) {
				want = append(want, c)
			}
		}
		if req.Components != nil && !slices.Equal(comps, want) {
			t.Fatalf("components %q normalised to %q, want %q", req.Components, comps, want)
		}
		return nil
	}},
	{"train", true, func() any { return new(trainRequest) }, nil},
	{"target-test", false, func() any { return new(targetTestRequest) }, func(t *testing.T, s *Server, v any) error {
		raw := strings.TrimSpace(v.(*targetTestRequest).URL)
		if raw == "" {
			return badRequest("field \"url\" is required")
		}
		kind, path, err := classifyTarget(raw)
		if err != nil {
			return err
		}
		switch kind {
		case TargetKindPostgres:
			if path != "" {
				t.Fatalf("a postgres URL %q gave a sqlite path %q", raw, path)
			}
		case TargetKindSQLite:
			if path == "" {
				t.Fatalf("sqlite target %q without a path", raw)
			}
		default:
			t.Fatalf("accepted %q as kind %q", raw, kind)
		}
		return nil
	}},
}

// fuzzServer is the part of a Server the validation and the error handler
// read: configuration and a logger.
func fuzzServer(chroma, externalTarget bool) *Server {
	cfg := config.Config{}
	if chroma {
		cfg.ChromaURL = "http://127.0.0.1:8001"
	}
	if externalTarget {
		cfg.TargetDatabaseURL = "postgres://127.0.0.1:5432/target"
	}
	return &Server{cfg: cfg, log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
}

// fuzzContext is an echo context for a POST of body with Content-Type ct,
// the body bounded as the server's middleware bounds it.
func fuzzContext(body []byte, ct string) (echo.Context, *httptest.ResponseRecorder) {
	req := httptest.NewRequest(http.MethodPost, "/fuzz", bytes.NewReader(body))
	if ct != "" {
		req.Header.Set(echo.HeaderContentType, ct)
	}
	rec := httptest.NewRecorder()
	req.Body = http.MaxBytesReader(rec, req.Body, MaxBodyBytes)
	return echo.New().NewContext(req, rec), rec
}

// decodeAndValidate runs one route's decoding and validation on body.
func decodeAndValidate(t *testing.T, s *Server, r fuzzRoute, body []byte, ct string) (any, error) {
	v := r.fresh()
	c, _ := fuzzContext(body, ct)
	if err := decodeJSON(c, v, r.allowEmpty); err != nil {
		return v, err
	}
	if r.validate != nil {
		return v, r.validate(t, s, v)
	}
	return v, nil
}

// assertClientError checks that err is answered as a 4xx in the
// contract's JSON error shape, through the server's real error handler.
func assertClientError(t *testing.T, s *Server, err error) {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	if ae.Status < 400 || ae.Status > 499 || ae.Code == "" || ae.Message == "" {
		t.Fatalf("bad input answered %d %q %q", ae.Status, ae.Code, ae.Message)
	}
	c, rec := fuzzContext(nil, "")
	s.handleError(err, c)
	if rec.Code != ae.Status {
		t.Fatalf("error handler answered %d for %v", rec.Code, err)
	}
	var body errorBody
	if jerr := json.Unmarshal(rec.Body.Bytes(), &body); jerr != nil || body.Error.Code != ae.Code || body.Error.Message == "" {
		t.Fatalf("error body %q (%v) is not the contract's shape for %v", rec.Body.String(), jerr, err)
	}
}

// FuzzSubmitBodies feeds request bodies and Content-Types to every submit
// route's decoding and validation (and the login's decoding). Invariants:
// nothing panics; a refusal is a 4xx *APIError rendered as
// {"error":{code,message}}; a non-blank body is accepted only as
// application/json; an accepted value, encoded again, is accepted again
// and decodes to the same value.
func FuzzSubmitBodies(f *testing.F) {
	seeds := []struct {
		route uint8
		body  string
		ct    string
	}{
		{0, `{"email":"admin@example.com","password":"admin-change-me"}`, "application/json"},
		{0, `{"email":`, "application/json"},
		{0, `{"email" "a"}`, "application/json"},
		{0, `{"email":"a@x","password":"b","admin":true}`, "application/json"},
		{0, `{"email":42,"password":"b"}`, "application/json"},
		{0, `{"email":"a@x","password":["b"]}`, "application/json"},
		{0, `[]`, "application/json"},
		{0, `{"email":"a@x","password":"b"} {}`, "application/json"},
		{0, `{"email":"a@x","password":"b"}x`, "application/json"},
		{0, `null`, "application/json"},
		{0, `email=a&password=b`, "application/x-www-form-urlencoded"},
		{0, `{"email":"a@x","password":"b"}`, "application/json; charset=utf-8"},
		{1, ``, ""},
		{1, `{}`, "application/json"},
		{1, `{"force":true}`, "application/json"},
		{1, `[1]`, "application/json"},
		{1, `{}{}`, "application/json"},
		{1, `{}`, "text/xml"},
		{2, `{"components":["system","target"],"note":"nightly"}`, "application/json"},
		{2, `{"components":["chroma"]}`, "application/json"},
		{2, `{"components":[]}`, "application/json"},
		{2, `{"components":["system","system"]}`, "application/json"},
		{2, `{"components":["../etc"]}`, "application/json"},
		{2, `{"components":"system"}`, "application/json"},
		{2, `{"note":"a\u0000b"}`, "application/json"},
		{2, `{"note":"line one\nline\ttwo"}`, "application/json"},
		{2, `{"note":"` + strings.Repeat("n", MaxBackupNote+1) + `"}`, "application/json"},
		{2, `{"note":"\ud800"}`, "application/json"},
		{2, "{\"note\":\"\xff\xfe\"}", "application/json"},
		{3, `{}`, "application/json"},
		{3, `{"x":1}`, "application/json"},
		{4, `{"dry_run":true}`, "application/json"},
		{4, `{"dry_run":"yes"}`, "application/json"},
		{4, `{"dry_run":1}`, "application/json"},
		{4, ` `, "application/json"},
		{5, `{"components":["chroma","system","chroma"],"skip_safety_backup":true}`, "application/json"},
		{5, `{"components":["system\u0000"]}`, "application/json"},
		{5, `{"components":[]}`, "application/json"},
		{5, `{"components":null}`, "application/json"},
		{6, `{}`, "application/json"},
		{7, `{"url":"postgres://user:secret@127.0.0.1:5432/target?sslmode=disable"}`, "application/json"},
		{7, `{"url":"file:///data/vanna_db.db"}`, "application/json"},
		{7, `{"url":"file://evil.example.com/x.db"}`, "application/json"},
		{7, `{"url":"assets/databases/vanna_db.db"}`, "application/json"},
		{7, `{"url":"mysql://x"}`, "application/json"},
		{7, `{"url":"   "}`, "application/json"},
		{7, `{"url":"postgres://%zz"}`, "application/json"},
	}
	for _, s := range seeds {
		f.Add(s.route, []byte(s.body), s.ct, false, false)
	}
	f.Add(uint8(2), []byte(`{"components":["chroma","target"]}`), "application/json", true, true)
	f.Fuzz(func(t *testing.T, route uint8, body []byte, ct string, chroma, externalTarget bool) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		s := fuzzServer(chroma, externalTarget)
		v, err := decodeAndValidate(t, s, r, body, ct)
		if err != nil {
			assertClientError(t, s, err)
			return
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != echo.MIMEApplicationJSON {
				t.Fatalf("accepted a body with Content-Type %q", ct)
			}
		} else if !r.allowEmpty {
			t.Fatalf("route %s accepted a blank body", r.name)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("accepted value %#v does not encode: %v", v, err)
		}
		v2, err := decodeAndValidate(t, s, r, again, echo.MIMEApplicationJSON)
		if err != nil {
			t.Fatalf("route %s accepted %q but refuses its re-encoding %s: %v", r.name, body, again, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("route %s: %q decoded to %#v, its re-encoding to %#v", r.name, body, v, v2)
		}
	})
}

// FuzzArchiveParam feeds raw :name path parameters to archiveParam, the
// check of the verify and restore routes. An accepted name is exactly an
// archive name: it formats back to itself, is local, holds no separator,
// "..", NUL or space; a refused one is a 400.
func FuzzArchiveParam(f *testing.F) {
	for _, s := range []string{
		"backup-20261127T101500Z-01JD0000000000000000000000.tar.gz",
		"backup-20261127T101500Z-01JD0000000000000000000000.tar.zst",
		"backup-20261127T101500Z-01JD0000000000000000000000.tar.gz%00",
		"..%2F..%2Fetc%2Fpasswd",
		"backup-20261127T101500Z-01JD0000000000000000000000.tar.gz%2F..",
		"%",
		"backup-20261127T101500Z-01jd0000000000000000000000.tar.gz",
		"backup-20261399T101500Z-01JD0000000000000000000000.tar.gz",
		"",
	} {
		f.Add(s)
	}
	s := fuzzServer(false, false)
	f.Fuzz(func(t *testing.T, raw string) {
		c, _ := fuzzContext(nil, "")
		c.SetParamNames("name")
		c.SetParamValues(raw)
		name, err := archiveParam(c)
		if err != nil {
			assertClientError(t, s, err)
			return
		}
		n, perr := backupfmt.ParseArchiveName(name)
		if perr != nil || n.String() != name {
			t.Fatalf("accepted %q (from %q), which is not an archive name: %v", name, raw, perr)
		}
		if strings.ContainsAny(name, "/\\\x00 ") || strings.Contains(name, "..") || !filepath.IsLocal(name) {
			t.Fatalf("accepted an unsafe name %q (from %q)", name, raw)
		}
	})
}

// FuzzIdempotencyKey feeds Idempotency-Key headers to idempotencyKey: an
// accepted key is at most 200 printable ASCII characters and comes back
// unchanged; a refused one is a 400.
func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"", "retry-1", "01JD0000000000000000000000", strings.Repeat("k", 200), strings.Repeat("k", 201), "a\tb", "clé", "a\x00b", "a\x7fb"} {
		f.Add(s)
	}
	s := fuzzServer(false, false)
	f.Fuzz(func(t *testing.T, key string) {
		c, _ := fuzzContext(nil, "")
		c.Request().Header[HeaderIdempotencyKey] = []string{key}
		got, err := idempotencyKey(c)
		if err != nil {
			assertClientError(t, s, err)
			return
		}
		if got != key || len(got) > maxIdempotencyKeyLen {
			t.Fatalf("key %q accepted as %q", key, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] > 0x7e {
				t.Fatalf("accepted key %q with byte %#x", got, got[i])
			}
		}
	})
}
