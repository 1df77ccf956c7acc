package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/auth"
)

// TestAuditRoutesShowTheSinkRowsAndTheChain: a failed login and a denied
// request reach audit_logs through the sink; the audit route filters
// them; verify passes, then names a row altered by hand.
func TestAuditRoutesShowTheSinkRowsAndTheChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = auditsink.Run(ctx, e.bus.JS, e.db, e.srv.log) }()

	e.do(req{method: "POST", path: "/auth/login", body: map[string]string{"email": testUsers[auth.Admin], "password": "wrong-password"}})
	e.do(req{method: "GET", path: "/admin/db/audit", token: e.token(auth.Viewer)}) // denied: 403
	admin := e.token(auth.Admin)

	var page AuditPage
	eventually(t, 10*time.Second, "failed login in audit_logs", func() bool {
		r := e.do(req{method: "GET", path: "/admin/db/audit?action=auth.login&outcome=failure", token: admin})
		page = decode[AuditPage](t, r)
		return r.status == http.StatusOK && page.Count == 1
	})
	if got := page.Entries[0]; got.Actor != testUsers[auth.Admin] || got.Hash == "" {
		t.Fatalf("entry %+v", got)
	}
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	eventually(t, 10*time.Second, "denied request in audit_logs", func() bool {
		r := e.do(req{method: "GET", path: "/admin/db/audit?outcome=denied&since=" + since, token: admin})
		return r.status == http.StatusOK && decode[AuditPage](t, r).Count > 0
	})
	for _, bad := range []string{"?since=yesterday", "?limit=0", "?limit=x", "?offset=-1"} {
		if r := e.do(req{method: "GET", path: "/admin/db/audit" + bad, token: admin}); r.status != http.StatusBadRequest || codeOf(t, r) != CodeBadRequest {
			t.Errorf("GET /admin/db/audit%s = %d %s, want 400 bad_request", bad, r.status, r.body)
		}
	}

	rep := decode[auditsink.Report](t, e.do(req{method: "GET", path: "/admin/db/audit/verify", token: admin}))
	if !rep.OK || rep.Rows < 2 {
		t.Fatalf("verify: %+v", rep)
	}
	if _, err := e.db.SQL.Exec(`UPDATE audit_logs SET outcome = 'success' WHERE action = 'auth.login'`); err != nil {
		t.Fatal(err)
	}
	rep = decode[auditsink.Report](t, e.do(req{method: "GET", path: "/admin/db/audit/verify", token: admin}))
	if rep.OK || rep.Broken == nil || rep.Broken.EventID != page.Entries[0].EventID {
		t.Fatalf("verify after tampering: %+v", rep)
	}
}
