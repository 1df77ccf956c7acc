package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
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
	// Following: after_id gives the rows stored after that one, oldest
	// first (rows stored meanwhile may come too, never an older one).
	newestFirst := decode[AuditPage](t, e.do(req{method: "GET", path: "/admin/db/audit?limit=1000", token: admin})).Entries
	if len(newestFirst) < 2 {
		t.Fatalf("%d audit rows, want at least 2", len(newestFirst))
	}
	oldest := newestFirst[len(newestFirst)-1].ID
	for _, from := range []int64{oldest, newestFirst[0].ID} {
		r := e.do(req{method: "GET", path: fmt.Sprintf("/admin/db/audit?after_id=%d&limit=1000", from), token: admin})
		var ids []int64
		for _, en := range decode[AuditPage](t, r).Entries {
			ids = append(ids, en.ID)
		}
		want := 0
		for _, en := range newestFirst {
			if en.ID > from {
				want++
			}
		}
		if r.status != http.StatusOK || len(ids) < want || !slices.IsSorted(ids) || len(ids) > 0 && ids[0] <= from {
			t.Fatalf("after_id=%d: %d, ids %v; want the %d rows above it first, ascending", from, r.status, ids, want)
		}
	}
	for _, bad := range []string{"?since=yesterday", "?limit=0", "?limit=x", "?offset=-1", "?after_id=-1", "?after_id=last"} {
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

// TestAuditVerifyBounded: the verification stops at AUDIT_VERIFY_TIMEOUT
// with 503 audit_verify_timeout, and while one runs another is 429
// audit_verify_busy.
func TestAuditVerifyBounded(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, map[string]string{"AUDIT_VERIFY_TIMEOUT": "7s"})
	if e.srv.auditVerifyTimeout != 7*time.Second {
		t.Fatalf("AUDIT_VERIFY_TIMEOUT gave %s", e.srv.auditVerifyTimeout)
	}
	admin := e.token(auth.Admin)
	if r := e.do(req{method: "GET", path: "/admin/db/audit/verify", token: admin}); r.status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	// A deadline already passed when the scan starts: the timeout answer,
	// whatever the machine's speed.
	e.srv.auditVerifyTimeout = time.Nanosecond
	r := e.do(req{method: "GET", path: "/admin/db/audit/verify", token: admin})
	if code, msg := errorOf(t, r); r.status != http.StatusServiceUnavailable || code != CodeAuditVerifyTimeout || !strings.Contains(msg, "AUDIT_VERIFY_TIMEOUT") {
		t.Errorf("verify past its timeout: %d %s", r.status, r.body)
	}
	e.srv.auditVerifyTimeout = 7 * time.Second
	// One verification holds the slot: another is refused, not queued.
	e.srv.auditVerifySlot <- struct{}{}
	r = e.do(req{method: "GET", path: "/admin/db/audit/verify", token: admin})
	<-e.srv.auditVerifySlot
	if code, _ := errorOf(t, r); r.status != http.StatusTooManyRequests || code != CodeAuditVerifyBusy {
		t.Errorf("verify while another runs: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: "GET", path: "/admin/db/audit/verify", token: admin}); r.status != http.StatusOK {
		t.Errorf("verify after: %d %s", r.status, r.body)
	}
}
