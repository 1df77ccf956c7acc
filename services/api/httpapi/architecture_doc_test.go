package httpapi_test

import (
	"os"
	"strings"
	"testing"

	"github.com/insightops/insightops/services/api/httpapi"
)

// architectureDoc is docs/ARCHITECTURE.md, from this package's directory.
const architectureDoc = "../../../docs/ARCHITECTURE.md"

// docRoute is the route as the document writes it: "METHOD /path/{param}".
func docRoute(r httpapi.Route) string {
	parts := strings.Split(r.Path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return r.Method + " " + strings.Join(parts, "/")
}

// docRole is the role cell the document gives a route: its least role,
// "none" for a public route, and "+ `confirm=true`" for a destructive one.
func docRole(r httpapi.Route) string {
	role := string(r.MinRole)
	if role == "" {
		role = "none"
	}
	if r.Confirm {
		role += " + `confirm=true`"
	}
	return role
}

// documentedRoutes reads the route table of the document's "## HTTP API"
// section: route → role cell, and the routes listed more than once.
func documentedRoutes(t *testing.T) (map[string]string, []string) {
	t.Helper()
	b, err := os.ReadFile(architectureDoc)
	if err != nil {
		t.Fatalf("read the architecture document: %v", err)
	}
	_, api, ok := strings.Cut(string(b), "\n## HTTP API\n")
	if !ok {
		t.Fatal(`docs/ARCHITECTURE.md has no "## HTTP API" section`)
	}
	api, _, _ = strings.Cut(api, "\n## ")
	rows := map[string]string{}
	var twice []string
	for _, line := range strings.Split(api, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Errorf("route row %q has fewer than three cells", line)
			continue
		}
		route := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, dup := rows[route]; dup {
			twice = append(twice, route)
		}
		rows[route] = strings.TrimSpace(cells[2])
	}
	return rows, twice
}

// TestArchitectureDocListsEveryRoute holds the route table of
// docs/ARCHITECTURE.md to Routes(): every route is listed once with its
// least role (and confirm=true when destructive), and every listed route
// exists.
func TestArchitectureDocListsEveryRoute(t *testing.T) {
	t.Parallel()
	rows, twice := documentedRoutes(t)
	for _, r := range twice {
		t.Errorf("docs/ARCHITECTURE.md lists %s twice", r)
	}
	known := map[string]bool{}
	for _, r := range httpapi.Routes() {
		key := docRoute(r)
		known[key] = true
		got, ok := rows[key]
		switch {
		case !ok:
			t.Errorf("docs/ARCHITECTURE.md does not list the route %s (role %s)", key, docRole(r))
		case got != docRole(r):
			t.Errorf("docs/ARCHITECTURE.md gives %s the role %q, the route table %q", key, got, docRole(r))
		}
	}
	for route := range rows {
		if !known[route] {
			t.Errorf("docs/ARCHITECTURE.md lists %s, which the API does not serve", route)
		}
	}
}
