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

	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
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
		admin := isAdminPath(r.Path)
		if hasBearer := len(op.Security) == 1 && op.Security[0]["bearerAuth"] != nil; hasBearer != admin {
			t.Errorf("%s: security %v, admin route %v", key, op.Security, admin)
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
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = auditsink.Run(ctx, e.bus.JS, e.db, e.srv.log) }()
	s := fetchSpec(t, e)
	admin, viewer := e.token(auth.Admin), e.token(auth.Viewer)

	// check sends r, wants status, and validates the body against the
	// schema documented for (route, status). It returns the response.
	checked := map[string]bool{}
	check := func(route string, r req, status int) resp {
		t.Helper()
		res := e.do(r)
		if res.status != status {
			t.Fatalf("%s %s = %d, want %d: %s", r.method, r.path, res.status, status, res.body)
		}
		op, ok := s.op(t, route, r.method)
		if !ok {
			t.Fatalf("%s %s is not described", r.method, route)
		}
		doc, ok := op.Responses[strconv.Itoa(status)]
		if !ok {
			t.Fatalf("%s %s: status %d is not documented (have %v)", r.method, route, status, keys(op.Responses))
		}
		media, ok := doc.Content["application/json"]
		if !ok {
			t.Fatalf("%s %s %d: no application/json schema", r.method, route, status)
		}
		var body any
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v", r.method, r.path, err)
		}
		if errs := validate(s.Comp.Schemas, media.Schema, body, "$"); len(errs) > 0 {
			t.Errorf("%s %s %d does not match its schema:\n  %s\nbody: %s", r.method, r.path, status, strings.Join(errs, "\n  "), res.body)
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
	check("/admin/db/target/test", req{method: "POST", path: "/admin/db/target/test", token: admin, body: map[string]string{"url": "/nonexistent/target.db"}}, 200)
	check("/admin/db/audit/verify", req{method: "GET", path: "/admin/db/audit/verify", token: admin}, 200)
	if res := e.do(req{method: "GET", path: "/admin/db/health", token: viewer}); res.status == 200 || res.status == 503 {
		check("/admin/db/health", req{method: "GET", path: "/admin/db/health", token: viewer}, res.status)
	} else {
		t.Errorf("GET /admin/db/health = %d", res.status)
	}

	// The audit page, once the sink has written rows, so entries are checked too.
	eventually(t, 10*time.Second, "audit rows", func() bool {
		r := e.do(req{method: "GET", path: "/admin/db/audit", token: admin})
		return r.status == http.StatusOK && decode[AuditPage](t, r).Count >= 2
	})
	check("/admin/db/audit", req{method: "GET", path: "/admin/db/audit", token: admin}, 200)
	t.Logf("validated %d (route, status) pairs", len(checked))
}

// TestSchemaCheckerCatchesMismatches: the checker is not vacuous.
func TestSchemaCheckerCatchesMismatches(t *testing.T) {
	comps := map[string]any{}
	raw, _ := json.Marshal(componentSchemas())
	if err := json.Unmarshal(raw, &comps); err != nil {
		t.Fatal(err)
	}
	ref := map[string]any{"$ref": "#/components/schemas/TaskList"}
	okBody := `{"tasks":[{"id":"01J","kind":"init.run","state":"queued","progress":0,"attempt":0,"max_attempts":3,"created_at":"2026-11-27T10:00:00Z","updated_at":"2026-11-27T10:00:00Z"}],"count":1}`
	for _, c := range []struct {
		body string
		want string // "" when valid
	}{
		{okBody, ""},
		{`{"tasks":[]}`, "missing required property count"},
		{`{"tasks":{},"count":0}`, "want array"},
		{`{"tasks":[],"count":1.5}`, "want integer"},
		{`{"tasks":[],"count":0,"extra":1}`, "undocumented property extra"},
		{strings.Replace(okBody, `"queued"`, `"sleeping"`, 1), "not one of"},
		{strings.Replace(okBody, `"2026-11-27T10:00:00Z"`, `"yesterday"`, 1), "date-time"},
		{strings.Replace(okBody, `"progress":0`, `"progress":"0"`, 1), "want integer"},
	} {
		var v any
		if err := json.Unmarshal([]byte(c.body), &v); err != nil {
			t.Fatal(err)
		}
		errs := validate(comps, ref, v, "$")
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: unexpected %v", c.body, errs)
		case c.want != "" && !strings.Contains(strings.Join(errs, "; "), c.want):
			t.Errorf("%s: errors %v, want one containing %q", c.body, errs, c.want)
		}
	}
}

// TestDocsPageIsSelfContained: GET /docs is HTML that loads /openapi.json
// and nothing from another origin.
func TestDocsPageIsSelfContained(t *testing.T) {
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

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validate checks v (decoded JSON) against schema s, resolving $ref in
// comps. It knows what the description uses: $ref, type (object, array,
// string, integer, number, boolean), nullable, enum, format date-time,
// required, properties, additionalProperties (bool or schema), items,
// minimum/maximum, maxLength.
func validate(comps map[string]any, s map[string]any, v any, at string) []string {
	if r, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(r, "#/components/schemas/")
		target, ok := comps[name].(map[string]any)
		if !ok {
			return []string{at + ": unresolved $ref " + r}
		}
		return validate(comps, target, v, at)
	}
	typ, _ := s["type"].(string)
	if v == nil {
		if typ == "" || s["nullable"] == true {
			return nil
		}
		return []string{at + ": null, want " + typ}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	switch typ {
	case "":
		return nil // any value
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("%T, want object", v)
			return errs
		}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, n := range req {
			if _, ok := obj[n.(string)]; !ok {
				fail("missing required property %s", n)
			}
		}
		for _, k := range keys(obj) {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(comps, ps, obj[k], at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("undocumented property %s", k)
				}
			case map[string]any:
				errs = append(errs, validate(comps, ap, obj[k], at+"."+k)...)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("%T, want array", v)
			return errs
		}
		items, _ := s["items"].(map[string]any)
		for i, it := range arr {
			errs = append(errs, validate(comps, items, it, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("%T, want string", v)
			return errs
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not a date-time", str)
			}
		}
		if ml, ok := s["maxLength"].(float64); ok && float64(len([]rune(str))) > ml {
			fail("longer than %v", ml)
		}
	case "integer", "number":
		n, ok := v.(float64)
		if !ok {
			fail("%T, want %s", v, typ)
			return errs
		}
		if typ == "integer" && n != float64(int64(n)) {
			fail("%v, want integer", n)
		}
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			fail("%v below minimum %v", n, lo)
		}
		if hi, ok := s["maximum"].(float64); ok && n > hi {
			fail("%v above maximum %v", n, hi)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("%T, want boolean", v)
		}
	default:
		fail("schema type %q unknown to the checker", typ)
	}
	if en, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range en {
			if x == v {
				found = true
			}
		}
		if !found {
			fail("%v is not one of %v", v, en)
		}
	}
	return errs
}
