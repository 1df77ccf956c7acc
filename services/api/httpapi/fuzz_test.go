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
	"github.com/insightops/insightops/shared/jobspec"
)

// fuzzArchive is the :name path parameter of every FuzzSubmitBodies
// request: a valid archive name, so that the verify and restore routes
// parse their bodies (FuzzArchiveParam fuzzes the name).
const fuzzArchive = "backup-20261127T101500Z-01JD0000000000000000000000.tar.gz"

// fuzzRoute is one submit route under FuzzSubmitBodies: its real parse
// function (what its handler runs on the request before anything touches
// the bus, the System DB or the network) and the oracle of what an
// accepted value must satisfy.
type fuzzRoute struct {
	name string
	// allowEmpty is the contract: an absent or blank body is accepted.
	allowEmpty bool
	// parse calls the route's parse function.
	parse func(s *Server, c echo.Context) (any, error)
	// asBody turns a parsed value into the request body that asks for it
	// again; nil when the value is its own body.
	asBody func(v any) any
	// check, when set, checks an accepted value v parsed from body.
	check func(t *testing.T, s *Server, body []byte, v any)
}

// parser adapts a route's parse function to fuzzRoute.parse.
func parser[T any](parse func(*Server, echo.Context) (T, error)) func(*Server, echo.Context) (any, error) {
	return func(s *Server, c echo.Context) (any, error) {
		v, err := parse(s, c)
		return v, err
	}
}

// hasControl reports a control character other than newline and tab.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' })
}

// checkComponentList checks an accepted components list: nil, or
// non-empty with known components, each once.
func checkComponentList(t *testing.T, comps []string) {
	t.Helper()
	if comps != nil && len(comps) == 0 {
		t.Fatalf("accepted an empty components list")
	}
	seen := map[string]bool{}
	for _, c := range comps {
		if !slices.Contains(backupfmt.Components, c) || seen[c] {
			t.Fatalf("accepted components %q", comps)
		}
		seen[c] = true
	}
}

// fuzzRoutes are the submit routes; FuzzSubmitBodies seeds index them by
// position, so the order is fixed: append, never reorder.
var fuzzRoutes = []fuzzRoute{
	{name: "login", allowEmpty: false, parse: parser((*Server).parseLogin), check: func(t *testing.T, s *Server, body []byte, v any) {
		req := v.(loginRequest)
		e := req.Email
		if e == "" || req.Password == "" || len(e) > maxEmailLen || len(req.Password) > maxPasswordLen {
			t.Fatalf("accepted login %q with a password of %d bytes", e, len(req.Password))
		}
		if strings.TrimSpace(e) != e || strings.ToLower(e) != e {
			t.Fatalf("e-mail %q is not normalised", e)
		}
	}},
	{name: "init", allowEmpty: true, parse: parser((*Server).parseInit)},
	{name: "backup", allowEmpty: true, parse: parser((*Server).parseBackup), check: func(t *testing.T, s *Server, body []byte, v any) {
		req := v.(jobspec.BackupCreateArgs)
		checkComponentList(t, req.Components)
		if slices.Contains(req.Components, backupfmt.ComponentChroma) && s.cfg.ChromaURL == "" {
			t.Fatalf("accepted chroma without CHROMA_URL")
		}
		if slices.Contains(req.Components, backupfmt.ComponentTarget) && s.cfg.TargetDatabaseURL != "" {
			t.Fatalf("accepted target with an external TARGET_DATABASE_URL")
		}
		if len(req.Note) > jobspec.MaxBackupNote || !utf8.ValidString(req.Note) || hasControl(req.Note) {
			t.Fatalf("accepted note %q", req.Note)
		}
	}},
	{name: "verify", allowEmpty: true, parse: parser((*Server).parseBackupVerify),
		asBody: func(any) any { return struct{}{} },
		check: func(t *testing.T, s *Server, body []byte, v any) {
			if p := v.(jobspec.BackupVerifyArgs); p.Name != fuzzArchive {
				t.Fatalf("verify of %q parsed as %q", fuzzArchive, p.Name)
			}
		}},
	{name: "prune", allowEmpty: true, parse: parser((*Server).parseBackupPrune)},
	{name: "restore", allowEmpty: true, parse: parser((*Server).parseRestore),
		asBody: func(v any) any {
			// The body without the archive, which is the path's.
			p := v.(jobspec.RestoreArgs)
			return map[string]any{"components": p.Components, "skip_safety_backup": p.SkipSafetyBackup}
		},
		check: func(t *testing.T, s *Server, body []byte, v any) {
			p := v.(jobspec.RestoreArgs)
			if p.Archive != fuzzArchive {
				t.Fatalf("restore of %q parsed as %q", fuzzArchive, p.Archive)
			}
			checkComponentList(t, p.Components)
			// Normalised: in archive order, and exactly the distinct
			// requested ones (the accepted body read back plainly).
			var in jobspec.RestoreArgs
			if len(bytes.TrimSpace(body)) > 0 {
				if err := json.Unmarshal(body, &in); err != nil {
					t.Fatalf("accepted body %q does not unmarshal: %v", body, err)
				}
			}
			var want []string
			for _, c := range backupfmt.Components {
				if slices.Contains(in.Components, c) {
					want = append(want, c)
				}
			}
			if (in.Components == nil) != (p.Components == nil) || !slices.Equal(p.Components, want) {
				t.Fatalf("components %q normalised to %q, want %q", in.Components, p.Components, want)
			}
			if p.SkipSafetyBackup != in.SkipSafetyBackup {
				t.Fatalf("skip_safety_backup %v parsed as %v", in.SkipSafetyBackup, p.SkipSafetyBackup)
			}
		}},
	{name: "train", allowEmpty: true, parse: parser((*Server).parseChromaTrain)},
	{name: "target-test", allowEmpty: false, parse: parser((*Server).parseTargetTest),
		asBody: func(v any) any { return targetTestRequest{URL: v.(testTarget).URL} },
		check: func(t *testing.T, s *Server, body []byte, v any) {
			tt := v.(testTarget)
			if tt.URL == "" || strings.TrimSpace(tt.URL) != tt.URL {
				t.Fatalf("accepted target URL %q", tt.URL)
			}
			switch tt.Kind {
			case TargetKindPostgres:
				if tt.SQLitePath != "" {
					t.Fatalf("a postgres URL %q gave a sqlite path %q", tt.URL, tt.SQLitePath)
				}
			case TargetKindSQLite:
				if tt.SQLitePath == "" {
					t.Fatalf("sqlite target %q without a path", tt.URL)
				}
			default:
				t.Fatalf("accepted %q as kind %q", tt.URL, tt.Kind)
			}
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

// submitContext is fuzzContext for a submit route, with fuzzArchive as
// its :name path parameter.
func submitContext(body []byte, ct string) echo.Context {
	c, _ := fuzzContext(body, ct)
	c.SetParamNames("name")
	c.SetParamValues(fuzzArchive)
	return c
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

// FuzzSubmitBodies feeds request bodies and Content-Types to the parse
// function of every submit route (and of the login and the target test):
// the code each handler runs first. Invariants: nothing panics; a refusal
// is a 4xx *APIError rendered as {"error":{code,message}}; a non-blank
// body is accepted only as application/json; a blank one exactly where the
// route allows it; an accepted value, encoded again as a body, is accepted
// again and parses to the same value; and the route's check of an
// accepted value.
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
		{2, `{"note":"` + strings.Repeat("n", jobspec.MaxBackupNote+1) + `"}`, "application/json"},
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
		v, err := r.parse(s, submitContext(body, ct))
		blank := len(bytes.TrimSpace(body)) == 0
		if err != nil {
			assertClientError(t, s, err)
			if blank && r.allowEmpty && len(body) <= MaxBodyBytes {
				t.Fatalf("route %s refused a blank body: %v", r.name, err)
			}
			return
		}
		if !blank {
			if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != echo.MIMEApplicationJSON {
				t.Fatalf("accepted a body with Content-Type %q", ct)
			}
		} else if !r.allowEmpty {
			t.Fatalf("route %s accepted a blank body", r.name)
		}
		if r.check != nil {
			r.check(t, s, body, v)
		}
		reqBody := v
		if r.asBody != nil {
			reqBody = r.asBody(v)
		}
		again, err := json.Marshal(reqBody)
		if err != nil {
			t.Fatalf("accepted value %#v does not encode: %v", reqBody, err)
		}
		v2, err := r.parse(s, submitContext(again, echo.MIMEApplicationJSON))
		if err != nil {
			t.Fatalf("route %s accepted %q but refuses its re-encoding %s: %v", r.name, body, again, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("route %s: %q parsed to %#v, its re-encoding %s to %#v", r.name, body, v, again, v2)
		}
	})
}

// FuzzArchiveParam feeds raw :name path parameters to archiveParam, the
// check of the verify and restore routes, and to those routes' parse
// functions (with no body), which must answer as archiveParam does. An
// accepted name is exactly an archive name: it formats back to itself, is
// local, holds no separator, "..", NUL or space; a refused one is a 4xx.
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
	paramContext := func(raw string) echo.Context {
		c, _ := fuzzContext(nil, "")
		c.SetParamNames("name")
		c.SetParamValues(raw)
		return c
	}
	routes := []struct {
		name  string
		parse func(echo.Context) (string, error)
	}{
		{"verify", func(c echo.Context) (string, error) { p, err := s.parseBackupVerify(c); return p.Name, err }},
		{"restore", func(c echo.Context) (string, error) { p, err := s.parseRestore(c); return p.Archive, err }},
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := archiveParam(paramContext(raw))
		for _, r := range routes {
			got, rerr := r.parse(paramContext(raw))
			var ae, rae *APIError
			switch {
			case err == nil && (rerr != nil || got != name):
				t.Fatalf("%s of %q: %q, %v; archiveParam accepted %q", r.name, raw, got, rerr, name)
			case err != nil && !(errors.As(err, &ae) && errors.As(rerr, &rae) && ae.Status == rae.Status && ae.Code == rae.Code && ae.Message == rae.Message):
				t.Fatalf("%s of %q: %q, %v; archiveParam refused it: %v", r.name, raw, got, rerr, err)
			}
		}
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
