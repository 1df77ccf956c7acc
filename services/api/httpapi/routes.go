package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/auth"
)

// AdminPrefix is the path prefix of every authenticated route.
const AdminPrefix = "/admin"

// Route describes one endpoint of the API.
type Route struct {
	Method string
	// Path in echo syntax (":id" is a path parameter).
	Path string
	// MinRole is the least role allowed; empty for public routes, required
	// for every route under /admin.
	MinRole auth.Role
	// Confirm marks a destructive route: it needs the admin role and
	// ?confirm=true (see requireConfirm).
	Confirm bool
	Summary string
}

type routeDef struct {
	Route
	handler func(*Server, echo.Context) error
}

// routeTable is THE list of endpoints: coreRoutes below plus one slice per
// feature file (backupRoutes in backup_routes.go, chromaRoutes in
// chroma_routes.go), each entry with the role it needs. New refuses an /admin route without a role, a public
// route with one, and a Confirm route that is not admin-only; the route
// test walks echo's registered routes and fails on any route missing here.
var routeTable = slices.Concat(coreRoutes, auditRoutes, backupRoutes, archiveRoutes, restoreRoutes, chromaRoutes, targetRoutes, statsRoutes, accountRoutes, tokenRoutes, deadLetterRoutes)

var coreRoutes = []routeDef{
	{Route{http.MethodGet, "/health", "", false, "liveness"}, (*Server).health},
	{Route{http.MethodGet, "/ready", "", false, "readiness: NATS connected, streams and buckets present"}, (*Server).ready},
	{Route{http.MethodGet, "/metrics", "", false, "Prometheus metrics"}, (*Server).metrics},
	{Route{http.MethodPost, "/auth/login", "", false, "log in: {email, password} → {token, expires_at, role}"}, (*Server).login},
	{Route{http.MethodGet, "/openapi.json", "", false, "OpenAPI 3 description of every route"}, (*Server).openAPI}, {Route{http.MethodGet, "/docs", "", false, "API reference page rendering /openapi.json (works offline)"}, (*Server).docs},

	{Route{http.MethodGet, "/admin/db/health", auth.Viewer, false, "NATS, System DB and live workers per kind"}, (*Server).dbHealth},
	{Route{http.MethodPost, "/admin/db/init", auth.Admin, false, "queue an init job (202)"}, (*Server).submitInit},

	{Route{http.MethodGet, "/admin/db/tasks", auth.Viewer, false, "recent jobs, ?kind=&state=&submitted_by=&since=&until=&limit=&offset="}, (*Server).listTasks},
	{Route{http.MethodGet, "/admin/db/tasks/:id", auth.Viewer, false, "one job record"}, (*Server).getTask},
	{Route{http.MethodDelete, "/admin/db/tasks/:id", auth.Operator, false, "cancel a job"}, (*Server).cancelTask},
	{Route{http.MethodGet, "/admin/db/tasks/:id/events", auth.Viewer, false, "Server-Sent Events: every change of a job until it is final"}, (*Server).taskEvents},

	// Compatibility with the Insight Engine's admin API.
	{Route{http.MethodGet, "/admin/db/backup/status/:id", auth.Viewer, false, "alias of GET /admin/db/tasks/:id"}, (*Server).getTask},
	{Route{http.MethodGet, "/admin/db/chroma/status/:id", auth.Viewer, false, "alias of GET /admin/db/tasks/:id"}, (*Server).getTask},
}

// Routes returns the route table: every endpoint with its minimum role.
func Routes() []Route {
	out := make([]Route, len(routeTable))
	for i, r := range routeTable {
		out[i] = r.Route
	}
	return out
}

// validateRoutes checks the invariants of a route table.
func validateRoutes(defs []routeDef) error {
	seen := map[string]bool{}
	for _, r := range defs {
		key := r.Method + " " + r.Path
		if seen[key] {
			return fmt.Errorf("httpapi: route %s declared twice", key)
		}
		seen[key] = true
		admin := r.Path == AdminPrefix || strings.HasPrefix(r.Path, AdminPrefix+"/") || signedInRoutes[r.Path]
		switch {
		case r.handler == nil:
			return fmt.Errorf("httpapi: route %s has no handler", key)
		case admin && !r.MinRole.Valid():
			return fmt.Errorf("httpapi: route %s is under %s but has no valid role (%q)", key, AdminPrefix, r.MinRole)
		case !admin && r.MinRole != "":
			return fmt.Errorf("httpapi: route %s has role %s but is outside %s and signedInRoutes, where tokens are checked", key, r.MinRole, AdminPrefix)
		case r.Confirm && r.MinRole != auth.Admin:
			return fmt.Errorf("httpapi: destructive route %s must need the admin role", key)
		}
	}
	return nil
}

// registerRoutes adds the route table to e: public routes as they are,
// /admin routes behind authentication, their role check and, for
// destructive ones, the confirm check. The middleware is attached per
// route rather than with Group.Use, whose catch-all route would turn a
// wrong method (405) into a 404.
func (s *Server) registerRoutes(e *echo.Echo) error {
	if err := validateRoutes(routeTable); err != nil {
		return err
	}
	for _, r := range routeTable {
		h := s.bind(r.handler)
		if r.MinRole == "" {
			e.Add(r.Method, r.Path, h)
			continue
		}
		mw := []echo.MiddlewareFunc{s.authenticate, s.requireRole(r.MinRole)}
		if r.Confirm {
			mw = append(mw, confirmMiddleware)
		}
		e.Add(r.Method, r.Path, h, mw...)
	}
	return nil
}

func (s *Server) bind(h func(*Server, echo.Context) error) echo.HandlerFunc {
	return func(c echo.Context) error { return h(s, c) }
}
