package httpapi

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
)

// TestTaskListFiltersAndPages: GET /admin/db/tasks filters by submitter
// and creation time and pages with offset; a bad value is a 400
// bad_request naming the parameter.
func TestTaskListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for _, role := range []auth.Role{auth.Admin, auth.Operator, auth.Admin} {
		r := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: e.token(role)})
		if r.status != http.StatusAccepted {
			t.Fatalf("backup as %s: %d %s", role, r.status, r.body)
		}
		ids = append(ids, decode[Accepted](t, r).TaskID)
	}
	viewer := e.token(auth.Viewer)
	list := func(q url.Values) []string {
		t.Helper()
		r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks?" + q.Encode(), token: viewer})
		if r.status != http.StatusOK {
			t.Fatalf("list %s: %d %s", q.Encode(), r.status, r.body)
		}
		var out []string
		for _, rec := range decode[TaskList](t, r).Tasks {
			out = append(out, rec.ID)
		}
		return out
	}
	same := func(name string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", name, got, want)
				return
			}
		}
	}
	same("by submitter", list(url.Values{"submitted_by": {testUsers[auth.Admin]}}), []string{ids[2], ids[0]})
	same("page 2", list(url.Values{"limit": {"1"}, "offset": {"1"}}), []string{ids[1]})
	same("past the end", list(url.Values{"offset": {"3"}}), nil)
	same("since an hour ago", list(url.Values{"since": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "kind": {jobs.KindBackupCreate}}), []string{ids[2], ids[1], ids[0]})
	same("until an hour ago", list(url.Values{"until": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}}), nil)

	for _, q := range []string{"offset=-1", "offset=x", "offset=100001", "since=yesterday", "until=2026-13-01T00:00:00Z"} {
		r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks?" + q, token: viewer})
		if code, _ := errorOf(t, r); r.status != http.StatusBadRequest || code != CodeBadRequest {
			t.Errorf("?%s: %d %s, want 400 bad_request", q, r.status, code)
		}
	}
}
