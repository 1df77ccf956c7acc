package httpapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/vectors"
)

// The OpenAPI 3 description of the API is built in Go from routeTable (the
// paths, methods, summaries, roles and confirm flags) and from routeDocs
// below (the request and response schemas of each route). It is served at
// GET /openapi.json; GET /docs is a self-contained page that renders it.
// openapi_test.go fails when a registered route is not described, when the
// description names a route that does not exist, and when real responses
// do not match their documented schemas.

// OpenAPIVersion is the version of the OpenAPI specification used.
const OpenAPIVersion = "3.0.3"

//go:embed openapi_docs.html
var docsHTML []byte

// schema is one JSON Schema object of the description.
type schema = map[string]any

// opDoc documents the request and responses of one route.
type opDoc struct {
	// Query parameters: name → description.
	Query []param
	// Body is the component name of the JSON request body ("" for none),
	// or mediaOctets for a raw binary body.
	Body string
	// BodyRequired is true when the body may not be left out.
	BodyRequired bool
	// Responses maps a status to a component name; a name starting with
	// "text/" or "application/" other than JSON is a media type with no
	// schema (for text, HTML and event streams); "" is no body (204).
	Responses map[int]string
	// Headers are response headers of the success status: name → description.
	Headers map[string]string
}

type param struct{ Name, Desc string }

func q(name, desc string) param { return param{name, desc} }

// Media types of responses that are not JSON.
const (
	mediaText   = "text/plain"
	mediaHTML   = "text/html"
	mediaEvents = "text/event-stream"
	mediaOctets = "application/octet-stream"
)

// routeDocs documents every entry of routeTable, keyed "METHOD path" (echo
// syntax). Statuses every /admin route shares (401, 403, 400 for confirm,
// 500, 503) are added by buildOpenAPI.
var routeDocs = map[string]opDoc{
	"GET /health":       {Responses: map[int]string{200: "Health"}},
	"GET /ready":        {Responses: map[int]string{200: "Ready", 503: "Ready"}},
	"GET /metrics":      {Responses: map[int]string{200: mediaText}},
	"GET /openapi.json": {Responses: map[int]string{200: "OpenAPIDocument"}},
	"GET /docs":         {Responses: map[int]string{200: mediaHTML}},
	"POST /auth/login": {Body: "LoginRequest", BodyRequired: true,
		Responses: map[int]string{200: "LoginResponse", 400: "Error", 401: "Error", 415: "Error", 429: "Error", 503: "Error"}},

	"GET /admin/db/health": {Responses: map[int]string{200: "HealthReport", 503: "HealthReport"}},
	"POST /admin/db/init":  {Body: bodySchema(jobs.KindInit), Responses: map[int]string{202: "Accepted", 400: "Error", 422: "Error"}},

	"GET /admin/db/tasks": {Query: []param{
		q("kind", "job kind: "+strings.Join(jobs.Kinds, ", ")),
		q("state", "queued, running, succeeded, failed or cancelled"),
		q("submitted_by", "exact submitter (an e-mail or token:<name>)"),
		q("since", "created at or after this RFC 3339 time"),
		q("until", "created before this RFC 3339 time"),
		q("limit", "1–500, default 50"),
		q("offset", "skip this many of the newest matches (0–100000)"),
	}, Responses: map[int]string{200: "TaskList", 400: "Error"}},
	"GET /admin/db/tasks/:id":         {Responses: map[int]string{200: "JobRecord", 404: "Error"}},
	"DELETE /admin/db/tasks/:id":      {Responses: map[int]string{200: "JobRecord", 202: "JobRecord", 404: "Error", 409: "Error"}},
	"GET /admin/db/tasks/:id/events":  {Responses: map[int]string{200: mediaEvents, 404: "Error", 429: "Error"}},
	"GET /admin/db/backup/status/:id": {Responses: map[int]string{200: "JobRecord", 404: "Error"}},
	"GET /admin/db/chroma/status/:id": {Responses: map[int]string{200: "JobRecord", 404: "Error"}},

	"GET /admin/db/audit": {Query: []param{
		q("actor", "exact actor"), q("action", "exact action"), q("outcome", "success, failure or denied"),
		q("resource", "exact resource"), q("job_id", "exact job id"),
		q("since", "RFC 3339 time"), q("until", "RFC 3339 time"),
		q("limit", "1–1000, default 100"), q("offset", "0 or more"),
		q("after_id", "only rows stored after the row of this id (0 or more), oldest first instead of newest first: to follow the trail, ask again after the last id"),
	}, Responses: map[int]string{200: "AuditPage", 400: "Error"}},
	"GET /admin/db/audit/verify": {Responses: map[int]string{200: "AuditVerifyReport", 429: "Error", 503: "Error"}},

	"POST /admin/db/backup":              {Body: bodySchema(jobs.KindBackupCreate), Responses: map[int]string{202: "Accepted", 400: "Error", 409: "Error", 422: "Error"}},
	"GET /admin/db/backup/list":          {Responses: map[int]string{200: "BackupList"}},
	"POST /admin/db/backup/:name/verify": {Body: bodySchema(jobs.KindBackupVerify), Responses: map[int]string{202: "Accepted", 400: "Error", 404: "Error", 422: "Error"}},
	"POST /admin/db/backup/prune":        {Body: bodySchema(jobs.KindBackupPrune), Responses: map[int]string{202: "Accepted", 400: "Error", 404: "Error", 422: "Error"}},
	"POST /admin/db/backup/restore/:name": {Body: bodySchema(jobs.KindRestore),
		Responses: map[int]string{202: "Accepted", 400: "Error", 404: "Error", 409: "Error", 422: "Error"}},
	"GET /admin/db/backup/:name/download": {Responses: map[int]string{200: mediaOctets, 404: "Error"},
		Headers: map[string]string{
			"Content-Disposition":  `attachment; filename="<name>"`,
			HeaderArchiveSHA256:    "the archive's stored SHA-256 (hex), as the list's sha256",
			HeaderArchiveSignature: "the archive's signature (v1.<key id>.<manifest sha256>.<hmac>), when it is signed",
		}},
	"POST " + ArchiveImportPath: {Body: mediaOctets, BodyRequired: true, Query: []param{
		q("name", "archive file name to store it under; must match its manifest (default: the name its manifest implies)"),
	}, Responses: map[int]string{201: "BackupItem", 400: "Error", 409: "Error", 413: "Error", 415: "Error", 422: "Error", 507: "Error"}},

	"POST /admin/db/chroma/train": {Body: bodySchema(jobs.KindChromaTrain), Responses: map[int]string{202: "Accepted", 400: "Error", 422: "Error"}},
	"GET /admin/db/chroma/knowledge-base": {Query: []param{
		q("collection", "sql, ddl or documentation (default: all three)"),
		q("limit", "1–500, default 50"), q("offset", "0 or more"),
		q("q", "similarity query: the nearest entries, with distances; offset+limit at most 1000"),
	}, Responses: map[int]string{200: "KnowledgeBase", 400: "Error"}},
	"DELETE /admin/db/chroma/clear": {Query: []param{
		q("collection_name", "sql, ddl or documentation (default: all three)"),
	}, Responses: map[int]string{202: "Accepted", 400: "Error", 422: "Error"}},

	"GET /admin/db/target/health": {Responses: map[int]string{200: "TargetHealth"}},
	"POST /admin/db/target/test":  {Body: "TargetTestRequest", BodyRequired: true, Responses: map[int]string{200: "TargetTestResult", 400: "Error", 403: "Error", 429: "Error"}},

	"GET /admin/db/stats": {Responses: map[int]string{200: "Stats"}},

	"GET /admin/db/dead-letters": {Query: []param{
		q("limit", "1–200, default 50"), q("offset", "0–100000"),
	}, Responses: map[int]string{200: "DeadLetterList", 400: "Error"}},

	"POST /auth/password": {Body: "ChangePasswordRequest", BodyRequired: true,
		Responses: map[int]string{200: "LoginResponse", 400: "Error", 403: "Error", 415: "Error", 422: "Error", 429: "Error"}},
	"POST /auth/logout":        {Responses: map[int]string{204: "", 400: "Error"}},
	"GET /auth/whoami":         {Responses: map[int]string{200: "Identity"}},
	"GET /admin/users":         {Responses: map[int]string{200: "UserList"}},
	"POST /admin/users":        {Body: "CreateUserRequest", BodyRequired: true, Responses: map[int]string{201: "CreatedUser", 400: "Error", 409: "Error", 422: "Error"}},
	"GET /admin/users/:id":     {Responses: map[int]string{200: "User", 404: "Error"}},
	"PATCH /admin/users/:id":   {Body: "PatchUserRequest", BodyRequired: true, Responses: map[int]string{200: "User", 400: "Error", 404: "Error", 409: "Error"}},
	"DELETE /admin/users/:id":  {Responses: map[int]string{204: "", 404: "Error", 409: "Error"}},
	"GET /admin/tokens":        {Responses: map[int]string{200: "ServiceTokenList"}},
	"POST /admin/tokens":       {Body: "CreateServiceTokenRequest", BodyRequired: true, Responses: map[int]string{201: "CreatedServiceToken", 400: "Error", 409: "Error"}},
	"DELETE /admin/tokens/:id": {Responses: map[int]string{204: "", 404: "Error"}},
}

// Schema builders.

func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }

func str() schema                 { return schema{"type": "string"} }
func strDesc(d string) schema     { return schema{"type": "string", "description": d} }
func arrayOf(items schema) schema { return schema{"type": "array", "items": items} }
func enum(vals ...string) schema  { return schema{"type": "string", "enum": vals} }

// openObject is an object whose keys are not fixed.
func openObject(desc string) schema {
	return schema{"type": "object", "additionalProperties": true, "description": desc}
}

func mapOf(values schema) schema { return schema{"type": "object", "additionalProperties": values} }

// object is a closed object (the Go structs the API answers with): the
// named properties, required ones first, nothing else.
func object(required []string, props map[string]schema) schema {
	s := schema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func list(s ...string) []string { return s }

var jobStates = []string{string(jobs.Queued), string(jobs.Running), string(jobs.Succeeded), string(jobs.Failed), string(jobs.Cancelled)}

// componentSchemas are the named schemas of the description: generated
// from the Go types the API reads and answers with (apiSchemaTypes) and
// from the job contract (jobSchemas).
func componentSchemas() (map[string]schema, error) {
	out := map[string]schema{
		"Health":          object(list("status"), map[string]schema{"status": enum(StatusOK)}),
		"OpenAPIDocument": openObject("this document"),
	}
	for _, t := range apiSchemaTypes() {
		sc, err := generateSchema(t.value, nil)
		if err != nil {
			return nil, err
		}
		props, _ := sc["properties"].(map[string]any)
		for k, v := range t.props {
			if _, ok := props[k]; !ok {
				return nil, fmt.Errorf("component %s: no property %s to document", t.name, k)
			}
			props[k] = v
		}
		out[t.name] = sc
	}
	gen, err := jobSchemas()
	if err != nil {
		return nil, err
	}
	for name, sc := range gen {
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("component %s is generated twice", name)
		}
		out[name] = sc
	}
	return out, nil
}

// apiSchemaType is a component generated from a Go value's type, with the
// properties its type cannot tell (accepted values, references to other
// components) given by hand.
type apiSchemaType struct {
	name  string
	value any
	props map[string]schema
}

// apiSchemaTypes are the API's own request and response bodies.
func apiSchemaTypes() []apiSchemaType {
	roles := enum(string(auth.Viewer), string(auth.Operator), string(auth.Admin))
	return []apiSchemaType{
		{"Error", errorBody{}, map[string]schema{"error": ref("ErrorDetail")}},
		{"ErrorDetail", errorDetail{}, map[string]schema{"code": strDesc("machine-readable code, e.g. not_found, invalid_credentials, confirmation_required")}},
		{"Ready", readyBody{}, map[string]schema{"status": enum("ready", "not_ready"), "error": ref("ErrorDetail")}},
		{"LoginRequest", loginRequest{}, map[string]schema{"password": {"type": "string", "format": "password"}}},
		{"LoginResponse", loginResponse{}, map[string]schema{"token": strDesc("a JWT for Authorization: Bearer"), "token_type": enum("Bearer"), "role": roles}},
		{"Accepted", Accepted{}, map[string]schema{
			"status": enum(jobStates...), "job": ref("JobRecord"),
			"status_url": strDesc("where the job record is read: /admin/db/tasks/{id}"),
		}},
		{"TaskList", TaskList{}, map[string]schema{"tasks": arrayOf(ref("JobRecord"))}},
		{"DeadLetter", DeadLetter{}, map[string]schema{"params": openObject("the job's params as submitted")}},
		{"DeadLetterList", DeadLetterList{}, map[string]schema{"dead_letters": arrayOf(ref("DeadLetter"))}},
		{"AuditEntry", AuditEntry{}, map[string]schema{"detail": openObject("event details, by action")}},
		{"AuditPage", AuditPage{}, map[string]schema{"entries": arrayOf(ref("AuditEntry"))}},
		{"AuditVerifyReport", auditsink.Report{}, nil},
		{"HealthComponent", Component{}, nil},
		{"Worker", presence.Worker{}, nil},
		{"HealthReport", HealthReport{}, map[string]schema{
			"status": enum(StatusOK, StatusDegraded, StatusDown), "components": mapOf(ref("HealthComponent")),
			"workers": mapOf(arrayOf(ref("Worker"))), "error": ref("ErrorDetail"),
		}},
		{"BackupItem", backupItem{}, nil},
		{"BackupList", backupList{}, map[string]schema{"backups": arrayOf(ref("BackupItem"))}},
		{"CollectionInfo", vectors.CollectionInfo{}, nil},
		{"KnowledgeBaseEntry", vectors.Entry{}, nil},
		{"KnowledgeBase", KnowledgeBase{}, map[string]schema{
			"collections": arrayOf(ref("CollectionInfo")), "entries": arrayOf(ref("KnowledgeBaseEntry")),
		}},
		{"TargetHealth", TargetHealth{}, map[string]schema{"status": enum(TargetDisabled, TargetHealthy, TargetDown)}},
		{"TargetTestRequest", targetTestRequest{}, map[string]schema{"url": strDesc("postgres:// URL, sqlite file path or file: URL")}},
		{"TargetTestResult", TargetTestResult{}, map[string]schema{"kind": enum(TargetKindPostgres, TargetKindSQLite),
			"error_code": enum(TargetErrUnreachable, TargetErrAuthFailed, TargetErrNotFound, TargetErrRefused, TargetErrTimeout, TargetErrTLS, TargetErrNotADatabase, TargetErrFailed)}},
		{"TableStats", TableStats{}, nil},
		{"Stats", DBStats{}, map[string]schema{"tables": arrayOf(ref("TableStats"))}},
		{"ChangePasswordRequest", changePasswordRequest{}, map[string]schema{
			"current_password": {"type": "string", "format": "password"},
			"new_password": {"type": "string", "format": "password", "minLength": auth.MinPasswordChars,
				"description": "at least 12 characters, not the e-mail, not a common or documented default password (422 password_policy)"},
		}},
		{"Identity", Identity{}, map[string]schema{"role": roles, "kind": enum(TokenKindLogin, TokenKindService)}},
		{"User", userView{}, map[string]schema{"role": roles}},
		{"UserList", usersResponse{}, map[string]schema{"users": arrayOf(ref("User"))}},
		{"CreateUserRequest", createUserRequest{}, map[string]schema{"role": roles,
			"password": {"type": "string", "format": "password", "description": "initial password (policy applies); left out: one is generated and shown once"}}},
		{"CreatedUser", createUserResponse{}, map[string]schema{"user": ref("User"),
			"generated_password": strDesc("shown once, when the request gave no password; the user must change it at first login")}},
		{"PatchUserRequest", patchUserRequest{}, map[string]schema{"role": roles}},
		{"ServiceToken", tokenView{}, map[string]schema{"role": roles}},
		{"ServiceTokenList", tokensResponse{}, map[string]schema{"tokens": arrayOf(ref("ServiceToken"))}},
		{"CreateServiceTokenRequest", createTokenRequest{}, map[string]schema{"role": roles}},
		{"CreatedServiceToken", createTokenResponse{}, map[string]schema{"role": roles,
			"token": strDesc("the secret, shown once: Authorization: Bearer <token>")}},
	}
}

// openAPIPath turns echo's "/a/:id" into OpenAPI's "/a/{id}" and returns
// the parameter names.
func openAPIPath(p string) (string, []string) {
	parts := strings.Split(p, "/")
	var params []string
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			params = append(params, s[1:])
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/"), params
}

var pathParamDesc = map[string]string{
	"id":   "job id (a 26-character ULID)",
	"name": "backup archive file name, as listed by GET /admin/db/backup/list",
}

func isAdminPath(p string) bool { return p == AdminPrefix || strings.HasPrefix(p, AdminPrefix+"/") }

// buildOpenAPI returns the OpenAPI document of routes, with the schemas
// of docs.
func buildOpenAPI(routes []Route, docs map[string]opDoc) (map[string]any, error) {
	schemas, err := componentSchemas()
	if err != nil {
		return nil, err
	}
	paths := map[string]map[string]any{}
	for _, r := range routes {
		p, names := openAPIPath(r.Path)
		d := docs[r.Method+" "+r.Path]
		op := map[string]any{
			"summary":     r.Summary,
			"operationId": operationID(r.Method, r.Path),
			"tags":        []string{tagOf(r.Path)},
		}
		var params []any
		for _, n := range names {
			params = append(params, map[string]any{"name": n, "in": "path", "required": true, "schema": str(), "description": pathParamDesc[n]})
		}
		for _, qp := range d.Query {
			params = append(params, map[string]any{"name": qp.Name, "in": "query", "required": false, "schema": str(), "description": qp.Desc})
		}
		if r.Confirm {
			params = append(params, map[string]any{"name": "confirm", "in": "query", "required": true, "schema": enum("true"),
				"description": "destructive operation: must be true"})
			op["x-confirm"] = true
		}
		if d.Responses[http.StatusAccepted] == "Accepted" {
			params = append(params, map[string]any{"name": HeaderIdempotencyKey, "in": "header", "required": false, "schema": schema{"type": "string", "maxLength": maxIdempotencyKeyLen},
				"description": "a retried POST with the same key returns the first job"})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if d.Body == mediaOctets {
			op["requestBody"] = map[string]any{
				"required": d.BodyRequired,
				"content":  map[string]any{mediaOctets: map[string]any{"schema": schema{"type": "string", "format": "binary"}}},
			}
		} else if d.Body != "" {
			op["requestBody"] = map[string]any{
				"required": d.BodyRequired,
				"content":  map[string]any{"application/json": map[string]any{"schema": ref(d.Body)}},
			}
		}
		resps := map[string]any{}
		for status, name := range d.Responses {
			resps[strconv.Itoa(status)] = response(status, name)
			if status < 300 && len(d.Headers) > 0 {
				hs := map[string]any{}
				for h, desc := range d.Headers {
					hs[h] = map[string]any{"description": desc, "schema": str()}
				}
				resps[strconv.Itoa(status)].(map[string]any)["headers"] = hs
			}
		}
		if r.MinRole != "" {
			op["security"] = []any{map[string]any{"bearerAuth": []string{}}}
			op["x-min-role"] = string(r.MinRole)
			for _, st := range []int{401, 403, 503} {
				if _, ok := resps[strconv.Itoa(st)]; !ok {
					resps[strconv.Itoa(st)] = response(st, "Error")
				}
			}
			if r.Confirm {
				resps["400"] = response(400, "Error")
			}
		} else {
			op["security"] = []any{}
		}
		resps["default"] = map[string]any{"description": "error", "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
		op["responses"] = resps
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.Method)] = op
	}
	return map[string]any{
		"openapi": OpenAPIVersion,
		"info": map[string]any{
			"title":       "insightops API",
			"version":     "1",
			"description": "Admin API of insightops. Routes under /admin need a bearer token from POST /auth/login whose role is at least x-min-role (viewer < operator < admin); routes with x-confirm are destructive and need ?confirm=true. Every error is {\"error\": {\"code\", \"message\"}}.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
			},
		},
	}, nil
}

func response(status int, name string) map[string]any {
	desc := http.StatusText(status)
	if desc == "" {
		desc = "status " + strconv.Itoa(status)
	}
	var content map[string]any
	switch name {
	case "": // no body (204)
		return map[string]any{"description": desc}
	case mediaOctets:
		content = map[string]any{name: map[string]any{"schema": schema{"type": "string", "format": "binary"}}}
	case mediaText, mediaHTML, mediaEvents:
		content = map[string]any{name: map[string]any{"schema": str()}}
	default:
		content = map[string]any{"application/json": map[string]any{"schema": ref(name)}}
	}
	return map[string]any{"description": desc, "content": content}
}

// operationID is e.g. get_admin_db_tasks_id.
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, s := range strings.Split(path, "/") {
		s = strings.TrimPrefix(s, ":")
		if s == "" {
			continue
		}
		b.WriteByte('_')
		b.WriteString(strings.NewReplacer("-", "_", ".", "_").Replace(s))
	}
	return b.String()
}

// tagOf groups routes by their first segment after /admin/db.
func tagOf(path string) string {
	if !isAdminPath(path) {
		return "public"
	}
	rest := strings.TrimPrefix(path, AdminPrefix+"/db/")
	seg, _, _ := strings.Cut(rest, "/")
	return seg
}

var openAPICache struct {
	once sync.Once
	raw  []byte
	err  error
}

// documentedRoutes is Routes, set in init: the handlers are part of
// routeTable, so a direct reference would be an initialization cycle.
var documentedRoutes func() []Route

func init() { documentedRoutes = Routes }

// openAPIJSON is the document of routeTable, built once.
func openAPIJSON() ([]byte, error) {
	openAPICache.once.Do(func() {
		doc, err := buildOpenAPI(documentedRoutes(), routeDocs)
		if err != nil {
			openAPICache.err = err
			return
		}
		openAPICache.raw, openAPICache.err = json.MarshalIndent(doc, "", "  ")
	})
	return openAPICache.raw, openAPICache.err
}

// openAPI answers GET /openapi.json.
func (s *Server) openAPI(c echo.Context) error {
	raw, err := openAPIJSON()
	if err != nil {
		return &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, raw)
}

// docs answers GET /docs: a page rendering /openapi.json, with no
// external assets.
func (s *Server) docs(c echo.Context) error {
	c.Response().Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	return c.HTMLBlob(http.StatusOK, docsHTML)
}
