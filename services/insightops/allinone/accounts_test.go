package allinone_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/insightops/insightops/shared/jobs"
)

// TestServiceTokenRunsABackupUntilRevoked: on the real all-in-one an admin
// creates an operator service token; a backup submitted with it runs to
// success on the backup worker, named as the token; once revoked the token
// is refused.
func TestServiceTokenRunsABackupUntilRevoked(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir())
	admin := in.loginWhenReady(t)
	var created struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if code := in.call(t, "POST", "/admin/tokens", admin, map[string]any{"name": "ci", "role": "operator", "expires_in_days": 1}, &created); code != http.StatusCreated || created.Token == "" {
		t.Fatalf("create service token: %d", code)
	}
	var accepted struct {
		TaskID string `json:"task_id"`
	}
	if code := in.call(t, "POST", "/admin/db/backup", created.Token, map[string]any{}, &accepted); code != http.StatusAccepted {
		t.Fatalf("backup with the service token: %d", code)
	}
	rec := in.waitFinal(t, created.Token, accepted.TaskID)
	if rec.State != jobs.Succeeded || rec.SubmittedBy != "token:ci" {
		t.Fatalf("backup job: %s by %q (%+v)", rec.State, rec.SubmittedBy, rec.Error)
	}
	if code := in.call(t, "DELETE", fmt.Sprintf("/admin/tokens/%d", created.ID), admin, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if code := in.call(t, "POST", "/admin/db/backup", created.Token, map[string]any{}, nil); code != http.StatusUnauthorized {
		t.Fatalf("backup after revocation: %d, want 401", code)
	}
}
