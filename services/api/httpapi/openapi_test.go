package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/api/httpapi/openapicheck"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
)

// spec is the served description, decoded.
type spec struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
	Comp    struct {
		Schemas map[string]any `json:"schemas"`
	} `json:"components"`
	raw map[string]any
}

type specOp struct {
	Summary    string `json:"summary"`
	MinRole    string `json:"x-min-role"`
	Confirm    bool   `json:"x-confirm"`
	Parameters []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
	Security []map[string][]string `json:"security"`
}

func fetchSpec(t *testing.T, e *env) spec {
	t.Helper()
	r := e.do(req{method: http.MethodGet, path: "/openapi.json"})
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json = %d %q", r.status, r.header.Get("Content-Type"))
	}
	s := decode[spec](t, r)
	s.raw = decode[map[string]any](t, r)
	if s.OpenAPI != OpenAPIVersion {
		t.Fatalf("openapi = %q", s.OpenAPI)
	}
	return s
}

func (s spec) op(t *testing.T, path, method string) (specOp, bool) {
	t.Helper()
	raw, ok := s.Paths[path][strings.ToLower(method)]
	if !ok {
		return specOp{}, false
	}
	var op specOp
	if err := json.Unmarshal(raw, &op); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return op, true
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// TestOpenAPIDescribesExactlyTheRegisteredRoutes compares echo's
// registered routes (not the route table) with the served description,
// both ways, and checks each operation's role, confirm flag, path
// parameters and that every $ref resolves.
func TestOpenAPIDescribesExactlyTheRegisteredRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := fetchSpec(t, e)

	want := map[string]bool{}
	for _, r := range registered(e.srv.Echo()) {
		p, _ := openAPIPath(r.Path)
		want[r.Method+" "+p] = true
	}
	got := map[string]bool{}
	for p, ops := range s.Paths {
		for m := range ops {
			if !httpMethods[m] {
				continue // e.g. a path-level "parameters"
			}
			got[strings.ToUpper(m)+" "+p] = true
		}
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("registered routes missing from /openapi.json:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("/openapi.json describes routes that are not registered:\n  %s", strings.Join(extra, "\n  "))
	}

	// Every route has its request/response documentation, and no stale
	// documentation is left for a removed route.
	idx := tableIndex()
	for _, r := range Routes() {
		if _, ok := routeDocs[r.Method+" "+r.Path]; !ok {
			t.Errorf("routeDocs has no entry for %s %s", r.Method, r.Path)
		}
	}
	for k := range routeDocs {
		if _, ok := idx[k]; !ok {
			t.Errorf("routeDocs documents %s, which is not in the route table", k)
		}
	}

	for _, r := range Routes() {
		p, names := openAPIPath(r.Path)
		op, ok := s.op(t, p, r.Method)
		if !ok {
			continue // reported above
		}
		key := r.Method + " " + p
		if op.Summary != r.Summary {
			t.Errorf("%s: summary %q, want %q", key, op.Summary, r.Summary)
		}
		if op.MinRole != string(r.MinRole) {
			t.Errorf("%s: x-min-role %q, want %q", key, op.MinRole, r.MinRole)
		}
		if op.Confirm != r.Confirm {
			t.Errorf("%s: x-confirm %v, want %v", key, op.Confirm, r.Confirm)
		}
		signedIn := r.MinRole != ""
		if hasBearer := len(op.Security) == 1 && op.Security[0]["bearerAuth"] != nil; hasBearer != signedIn {
			t.Errorf("%s: security %v, signed-in route %v", key, op.Security, signedIn)
		}
		declared := map[string]bool{}
		for _, pa := range op.Parameters {
			if pa.In == "path" {
				declared[pa.Name] = pa.Required
			}
		}
		for _, n := range names {
			if !declared[n] {
				t.Errorf("%s: path parameter %s not declared as required", key, n)
			}
		}
		if len(declared) != len(names) {
			t.Errorf("%s: declares path parameters %v, the path has %v", key, declared, names)
		}
		if len(op.Responses) < 2 {
			t.Errorf("%s: only %d responses documented", key, len(op.Responses))
		}
	}

	// Every $ref in the document resolves.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				name, found := strings.CutPrefix(r, "#/components/schemas/")
				if _, exists := s.Comp.Schemas[name]; !found || !exists {
					t.Errorf("%s: unresolved $ref %q", at, r)
				}
			}
			for k, c := range v {
				walk(c, at+"/"+k)
			}
		case []any:
			for i, c := range v {
				walk(c, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(s.raw, "#")
}

// TestOpenAPIResponsesMatchTheirSchemas sends real requests and checks
// each JSON body against the schema documented for its status.
func TestOpenAPIResponsesMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = auditsink.Run(ctx, e.bus.JS, e.db, e.srv.log) }()
	s := fetchSpec(t, e)
	admin, viewer := e.token(auth.Admin), e.token(auth.Viewer)

	// check sends r, wants status, and validates the exchange with
	// kin-openapi: the request's parameters and body against the
	// operation's documentation, the response body against the schema
	// documented for its status. It returns the response.
	chk := loadChecker(t, e)
	checked := map[string]bool{}
	check := func(route string, r req, status int) resp {
		t.Helper()
		res := e.do(r)
		if res.status != status {
			t.Fatalf("%s %s = %d, want %d: %s", r.method, r.path, res.status, status, res.body)
		}
		if _, ok := s.op(t, route, r.method); !ok {
			t.Fatalf("%s %s is not described", r.method, route)
		}
		if err := chk.Check(context.Background(), exchangeOf(t, r, res)); err != nil {
			t.Errorf("%v\nbody: %s", err, res.body)
		}
		checked[fmt.Sprintf("%s %s %d", r.method, route, status)] = true
		return res
	}

	check("/auth/login", req{method: "POST", path: "/auth/login", body: map[string]string{"email": testUsers[auth.Admin], "password": testPassword}}, 200)
	check("/auth/login", req{method: "POST", path: "/auth/login", body: map[string]string{"email": testUsers[auth.Admin], "password": "wrong-password"}}, 401)
	check("/auth/login", req{method: "POST", path: "/auth/login", body: map[string]string{"email": ""}}, 400)
	check("/health", req{method: "GET", path: "/health"}, 200)
	check("/ready", req{method: "GET", path: "/ready"}, 200)

	acc := decode[Accepted](t, check("/admin/db/init", req{method: "POST", path: "/admin/db/init", token: admin}, 202))
	check("/admin/db/init", req{method: "POST", path: "/admin/db/init", token: viewer}, 403)
	check("/admin/db/init", req{method: "POST", path: "/admin/db/init"}, 401)
	check("/admin/db/tasks", req{method: "GET", path: "/admin/db/tasks", token: viewer}, 200)
	check("/admin/db/tasks", req{method: "GET", path: "/admin/db/tasks?limit=0", token: viewer}, 400)
	check("/admin/db/tasks/{id}", req{method: "GET", path: "/admin/db/tasks/" + acc.TaskID, token: viewer}, 200)
	check("/admin/db/backup/status/{id}", req{method: "GET", path: "/admin/db/backup/status/" + acc.TaskID, token: viewer}, 200)
	check("/admin/db/tasks/{id}", req{method: "GET", path: "/admin/db/tasks/" + jobs.NewID(), token: viewer}, 404)
	check("/admin/db/tasks/{id}", req{method: "GET", path: "/admin/db/tasks/not-a-ulid", token: viewer}, 404)
	check("/admin/db/stats", req{method: "GET", path: "/admin/db/stats", token: viewer}, 200)
	check("/admin/db/target/health", req{method: "GET", path: "/admin/db/target/health", token: viewer}, 200)
	check("/admin/db/chroma/clear", req{method: "DELETE", path: "/admin/db/chroma/clear", token: admin}, 400)
	check("/admin/db/backup/list", req{method: "GET", path: "/admin/db/backup/list", token: viewer}, 200)
	check("/admin/db/chroma/knowledge-base", req{method: "GET", path: "/admin/db/chroma/knowledge-base", token: viewer}, 503)
	check("/admin/db/target/test", req{method: "POST", path: "/admin/db/target/test", token: admin, body: map[string]string{"url": "/nonexistent/target.db"}}, 403)
	check("/admin/db/audit/verify", req{method: "GET", path: "/admin/db/audit/verify", token: admin}, 200)
	if res := e.do(req{method: "GET", path: "/admin/db/health", token: viewer}); res.status == 200 || res.status == 503 {
		check("/admin/db/health", req{method: "GET", path: "/admin/db/health", token: viewer}, res.status)
	} else {
		t.Errorf("GET /admin/db/health = %d", res.status)
	}

	// Backups: list items (one verified, one failed verification, one
	// plain), and the submissions with their real request bodies.
	op := e.token(auth.Operator)
	now := time.Now().UTC().Truncate(time.Second)
	verified, st := putArchive(t, e, now.Add(-3*time.Hour))
	failed, _ := putArchive(t, e, now.Add(-2*time.Hour))
	plain, _ := putArchive(t, e, now.Add(-time.Hour))
	for name, v := range map[string]*backupstore.Verification{
		verified: {VerifiedAt: now, Outcome: backupstore.OutcomePassed, JobID: jobs.NewID()},
		failed:   {VerifiedAt: now, Outcome: backupstore.OutcomeFailed, JobID: jobs.NewID(), Error: "sha256 mismatch"},
	} {
		meta, err := st.Meta(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		meta.Verification = v
		if err := st.SetMeta(ctx, name, meta); err != nil {
			t.Fatal(err)
		}
	}
	if l := decode[backupList](t, check("/admin/db/backup/list", req{method: "GET", path: "/admin/db/backup/list", token: viewer}, 200)); l.TotalBackups != 3 {
		t.Errorf("%d backups listed, want 3", l.TotalBackups)
	}
	check("/admin/db/backup", req{method: "POST", path: "/admin/db/backup", token: op, body: map[string]any{"components": []string{"system", "target"}, "note": "before the upgrade"}}, 202)
	check("/admin/db/backup", req{method: "POST", path: "/admin/db/backup", token: op, body: `{"components":["everything"]}`}, 400)
	check("/admin/db/backup/{name}/verify", req{method: "POST", path: "/admin/db/backup/" + plain + "/verify", token: op, body: map[string]any{}}, 202)
	check("/admin/db/backup/prune", req{method: "POST", path: "/admin/db/backup/prune", token: op, body: map[string]any{"dry_run": true}}, 202)
	check("/admin/db/backup/restore/{name}", req{method: "POST", path: "/admin/db/backup/restore/" + verified + "?confirm=true", token: admin,
		body: map[string]any{"components": []string{"chroma"}, "skip_safety_backup": true}}, 202)
	check("/admin/db/backup/restore/{name}", req{method: "POST", path: "/admin/db/backup/restore/" + verified, token: admin}, 400)
	imported, raw := archiveBytes(t, now.Add(-3*time.Hour).Truncate(time.Second))
	check("/admin/db/backup/import", req{method: "POST", path: ArchiveImportPath + "?confirm=true", token: admin, body: raw, headers: octets()}, 201)
	check("/admin/db/backup/import", req{method: "POST", path: ArchiveImportPath + "?confirm=true", token: admin, body: raw[:100], headers: octets()}, 422)
	check("/admin/db/backup/{name}/download", req{method: "GET", path: "/admin/db/backup/" + imported + "/download", token: admin}, 200)
	check("/admin/db/backup/{name}/download", req{method: "GET", path: "/admin/db/backup/" + plain + ".x/download", token: admin}, 404)
	check("/admin/db/tasks", req{method: "GET", path: "/admin/db/tasks?kind=backup.create&state=queued&limit=5", token: viewer}, 200)
	check("/admin/db/tasks/{id}", req{method: "DELETE", path: "/admin/db/tasks/" + acc.TaskID, token: op}, 200)

	// The target DB once a runtime copy exists: healthy, with its tables.
	syncDemo(t, e.cfg.TargetDBPath)
	if th := decode[TargetHealth](t, check("/admin/db/target/health", req{method: "GET", path: "/admin/db/target/health", token: viewer}, 200)); th.Status != TargetHealthy {
		t.Errorf("target health %+v, want healthy", th)
	}
	check("/admin/db/target/test", req{method: "POST", path: "/admin/db/target/test", token: admin, body: map[string]string{"url": e.cfg.TargetDBPath}}, 200)

	// Accounts: users, service tokens, password and logout.
	created := decode[createUserResponse](t, check("/admin/users", req{method: "POST", path: "/admin/users", token: admin, body: map[string]any{"email": "schema@example.com", "role": "viewer"}}, 201))
	check("/admin/users", req{method: "POST", path: "/admin/users", token: admin, body: map[string]any{"email": "weak@example.com", "role": "viewer", "password": "short"}}, 422)
	check("/admin/users", req{method: "GET", path: "/admin/users", token: admin}, 200)
	userPath := fmt.Sprintf("/admin/users/%d", created.User.ID)
	check("/admin/users/{id}", req{method: "GET", path: userPath, token: admin}, 200)
	check("/admin/users/{id}", req{method: "PATCH", path: userPath, token: admin, body: map[string]any{"role": "operator", "active": true}}, 200)
	check("/admin/users/{id}", req{method: "PATCH", path: fmt.Sprintf("/admin/users/%d", e.adminUser().ID), token: admin, body: map[string]any{"active": false}}, 409)
	check("/admin/users/{id}", req{method: "DELETE", path: userPath, token: admin}, 204)
	tok := decode[createTokenResponse](t, check("/admin/tokens", req{method: "POST", path: "/admin/tokens", token: admin, body: map[string]any{"name": "schema-ci", "role": "viewer"}}, 201))
	if id := decode[Identity](t, check("/auth/whoami", req{method: "GET", path: "/auth/whoami", token: tok.Token}, 200)); id.Kind != TokenKindService || id.Subject != "token:schema-ci" || id.Role != "viewer" || id.Service != "schema-ci" {
		t.Errorf("whoami of a service token: %+v", id)
	}
	if id := decode[Identity](t, check("/auth/whoami", req{method: "GET", path: "/auth/whoami", token: admin}, 200)); id.Kind != TokenKindLogin || id.Role != "admin" || id.ExpiresAt == nil {
		t.Errorf("whoami of a login token: %+v", id)
	}
	check("/admin/tokens", req{method: "GET", path: "/admin/tokens", token: tok.Token}, 403)
	check("/admin/tokens", req{method: "GET", path: "/admin/tokens", token: admin}, 200)
	check("/admin/tokens/{id}", req{method: "DELETE", path: fmt.Sprintf("/admin/tokens/%d", tok.ID), token: admin}, 204)
	_, own := e.newUser(auth.Viewer, false)
	check("/auth/password", req{method: "POST", path: "/auth/password", token: own, body: changePasswordRequest{CurrentPassword: testPassword, NewPassword: "violet-harbour-42-lamps"}}, 200)
	_, own = e.newUser(auth.Viewer, false)
	check("/auth/logout", req{method: "POST", path: "/auth/logout", token: own}, 204)

	// The audit page, once the sink has written rows, so entries are checked too.
	eventually(t, 10*time.Second, "audit rows", func() bool {
		r := e.do(req{method: "GET", path: "/admin/db/audit", token: admin})
		return r.status == http.StatusOK && decode[AuditPage](t, r).Count >= 2
	})
	check("/admin/db/audit", req{method: "GET", path: "/admin/db/audit", token: admin}, 200)
	t.Logf("validated %d (route, status) pairs", len(checked))
}

// TestSchemaCheckerCatchesMismatches: the checker (kin-openapi on the
// served description) is not vacuous: each kind of mismatch is reported.
func TestSchemaCheckerCatchesMismatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	chk := loadChecker(t, e)
	okBody := `{"tasks":[{"id":"01J","kind":"init.run","state":"queued","progress":0,"attempt":0,"max_attempts":3,"created_at":"2026-11-27T10:00:00Z","updated_at":"2026-11-27T10:00:00Z"}],"count":1}`
	for _, c := range []struct {
		body string
		want string // "" when valid
	}{
		{okBody, ""},
		{`{"tasks":[]}`, `property "count" is missing`},
		{`{"tasks":{},"count":0}`, "must be an array"},
		{`{"tasks":[],"count":1.5}`, "must be an integer"},
		{`{"tasks":[],"count":0,"extra":1}`, `property "extra" is unsupported`},
		{strings.Replace(okBody, `"queued"`, `"sleeping"`, 1), "not one of the allowed values"},
		{strings.Replace(okBody, `"2026-11-27T10:00:00Z"`, `"yesterday"`, 1), "date-time"},
		{strings.Replace(okBody, `"progress":0`, `"progress":"0"`, 1), "must be an integer"},
		{strings.Replace(okBody, `"progress":0`, `"progress":101`, 1), "must be at most 100"},
	} {
		var v any
		if err := json.Unmarshal([]byte(c.body), &v); err != nil {
			t.Fatal(err)
		}
		err := chk.CheckValue("TaskList", v)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: unexpected %v", c.body, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.body, err, c.want)
		}
	}
	// Job results are checked against their kind's schema.
	for _, c := range []struct{ schema, body, want string }{
		{"ChromaClearResult", `{"chroma":"http://c","collections":[{"name":"sql","removed":1,"count":0,"metadata":null}]}`, ""},
		{"ChromaClearResult", `{"chroma":"http://c","collections":[{"name":"sql"}]}`, `property "removed" is missing`},
		{"BackupPruneResult", `{"dry_run":true,"retention_count":7,"kept":[],"deleted":[],"surprise":1}`, `property "surprise" is unsupported`},
	} {
		var v any
		if err := json.Unmarshal([]byte(c.body), &v); err != nil {
			t.Fatal(err)
		}
		err := chk.CheckValue(c.schema, v)
		if (c.want == "" && err != nil) || (c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want))) {
			t.Errorf("%s %s: error %v, want %q", c.schema, c.body, err, c.want)
		}
	}
	// A request body off its documented schema is reported too.
	x := openapicheck.Exchange{Method: "POST", Target: "/admin/db/backup", Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"components":["everything"]}`), Status: 202, RespHeader: http.Header{"Content-Type": {"application/json"}}, RespBody: []byte(`{}`)}
	if err := chk.Check(context.Background(), x); err == nil || !strings.Contains(err.Error(), "request") {
		t.Errorf("bad request body: %v", err)
	}
	// An undocumented status is reported.
	x = openapicheck.Exchange{Method: "GET", Target: "/health", Status: 418, RespHeader: http.Header{"Content-Type": {"application/json"}}, RespBody: []byte(`{}`)}
	if err := chk.Check(context.Background(), x); err == nil || !strings.Contains(err.Error(), "418") {
		t.Errorf("an undocumented status: %v, want an error naming status 418", err)
	}
}

// TestDocsPageIsSelfContained: GET /docs is HTML that loads /openapi.json
// and nothing from another origin.
func TestDocsPageIsSelfContained(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(req{method: http.MethodGet, path: "/docs"})
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs = %d %q", r.status, r.header.Get("Content-Type"))
	}
	body := string(r.body)
	if !strings.Contains(body, `fetch("/openapi.json")`) || !strings.Contains(body, "<html") {
		t.Errorf("/docs does not fetch /openapi.json")
	}
	for _, ext := range []string{"http://", "https://", "<script src", "<link "} {
		if strings.Contains(body, ext) {
			t.Errorf("/docs references an external asset (%q): it must work offline", ext)
		}
	}
}

// loadChecker loads the description e serves into a kin-openapi checker;
// a document that is not valid OpenAPI 3.0 fails the test.
func loadChecker(t *testing.T, e *env) *openapicheck.Checker {
	t.Helper()
	r := e.do(req{method: http.MethodGet, path: "/openapi.json"})
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d", r.status)
	}
	chk, err := openapicheck.Load(context.Background(), r.body)
	if err != nil {
		t.Fatal(err)
	}
	return chk
}

// exchangeOf is r and its response res as the checker takes them: the
// very body bytes and headers e.do sent.
func exchangeOf(t *testing.T, r req, res resp) openapicheck.Exchange {
	t.Helper()
	x := openapicheck.Exchange{Method: r.method, Target: r.path, Header: http.Header{}, Status: res.status, RespHeader: res.header, RespBody: res.body}
	switch b := r.body.(type) {
	case nil:
	case string:
		x.Body = []byte(b)
	case []byte:
		x.Body = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		x.Body = raw
	}
	if x.Body != nil {
		x.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		x.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		x.Header.Set(k, v)
	}
	return x
}

// TestOpenAPIChromaResponsesMatchTheirSchemas: against a real Chroma, the
// knowledge base's 200 bodies (all collections, one page of one, a
// similarity query) and the train and clear submissions match the
// description.
func TestOpenAPIChromaResponsesMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	e := newChromaEnv(t, chroma.URL)
	seedKnowledgeBase(t, chroma.URL)
	chk := loadChecker(t, e)
	viewer, op, admin := e.token(auth.Viewer), e.token(auth.Operator), e.token(auth.Admin)
	for _, c := range []struct {
		r      req
		status int
	}{
		{req{method: "GET", path: "/admin/db/chroma/knowledge-base", token: viewer}, 200},
		{req{method: "GET", path: "/admin/db/chroma/knowledge-base?collection=ddl&limit=2&offset=1", token: viewer}, 200},
		{req{method: "GET", path: "/admin/db/chroma/knowledge-base?q=customers+per+country&limit=3", token: viewer}, 200},
		{req{method: "GET", path: "/admin/db/chroma/knowledge-base?collection=nope", token: viewer}, 400},
		{req{method: "POST", path: "/admin/db/chroma/train", token: op, body: map[string]any{}}, 202},
		{req{method: "DELETE", path: "/admin/db/chroma/clear?confirm=true&collection_name=sql", token: admin}, 202},
		{req{method: "GET", path: "/admin/db/health", token: viewer}, 200},
	} {
		res := e.do(c.r)
		if res.status != c.status {
			t.Errorf("%s %s = %d, want %d: %s", c.r.method, c.r.path, res.status, c.status, res.body)
			continue
		}
		if err := chk.Check(context.Background(), exchangeOf(t, c.r, res)); err != nil {
			t.Errorf("%v\nbody: %s", err, res.body)
		}
	}
}
