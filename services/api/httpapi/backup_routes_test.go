package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
)

func TestBackupContractRoutes(t *testing.T) {
	t.Parallel()
	idx := tableIndex()
	for k, want := range map[string]Route{
		"POST /admin/db/backup":              {MinRole: auth.Operator},
		"GET /admin/db/backup/list":          {MinRole: auth.Viewer},
		"POST /admin/db/backup/:name/verify": {MinRole: auth.Operator},
		"POST /admin/db/backup/prune":        {MinRole: auth.Operator},
		"GET /admin/db/backup/status/:id":    {MinRole: auth.Viewer},
	} {
		r, ok := idx[k]
		if !ok || r.MinRole != want.MinRole || r.Confirm != want.Confirm {
			t.Errorf("route %s: %+v (present %v), want role %s", k, r, ok, want.MinRole)
		}
	}
}

// putArchive writes a small real archive (one JSONL file) created at
// created into the local backup store of e, with its summary Meta.
func putArchive(t *testing.T, e *env, created time.Time) (string, backupstore.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := backupstore.NewLocal(e.cfg.BackupDir)
	if err != nil {
		t.Fatal(err)
	}
	id := jobs.NewID()
	var buf bytes.Buffer
	w, err := backupfmt.NewWriter(&buf, backupfmt.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream(ctx, "chroma", "chroma/sql.jsonl", backupfmt.KindJSONL, strings.NewReader(`{"id":"a"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(backupfmt.Manifest{CreatedAt: created, JobID: id, AppVersion: "test", Note: "n"})
	if err != nil {
		t.Fatal(err)
	}
	name := backupfmt.ArchiveName(created, id, backupfmt.Gzip)
	if _, err := st.Put(ctx, name, &buf); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMeta(ctx, name, backupstore.Summary(res.Manifest)); err != nil {
		t.Fatal(err)
	}
	return name, st
}

// TestSubmitBackup: 202 with the job for an operator, strict body
// validation (400), 403 for a viewer, 409 while a store is locked.
func TestSubmitBackup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	op := e.token(auth.Operator)

	res := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: op, body: map[string]any{"components": []string{"system"}, "note": "before v2"}})
	if res.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.status, res.body)
	}
	acc := decode[Accepted](t, res)
	if res.header.Get("Location") != TaskURL(acc.TaskID) || acc.Job.Kind != jobs.KindBackupCreate || acc.Status != "queued" {
		t.Errorf("202 %+v location %s", acc, res.header.Get("Location"))
	}
	var params map[string]any
	_ = json.Unmarshal(acc.Job.Params, &params)
	if params["note"] != "before v2" || len(params["components"].([]any)) != 1 {
		t.Errorf("params %s", acc.Job.Params)
	}
	// No body at all: every enabled component.
	if res := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: op}); res.status != http.StatusAccepted {
		t.Errorf("submit without a body: %d %s", res.status, res.body)
	}
	if res := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: e.token(auth.Viewer)}); res.status != http.StatusForbidden || codeOf(t, res) != CodeForbidden {
		t.Errorf("viewer: %d (want CodeForbidden; body %s)", res.status, res.body)
	}

	for _, body := range []string{
		`{"components": ["system", "vectors"]}`,
		`{"components": ["system", "system"]}`,
		`{"components": []}`,
		`{"components": ["chroma"]}`, // CHROMA_URL is not set
		`{"components": "system"}`,
		`{"note": "` + strings.Repeat("x", jobspec.MaxBackupNote+1) + `"}`,
		`{"note": "a\u0000b"}`,
		`{"compress": true}`,
		`[]`,
	} {
		res := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: op, body: body})
		code, msg := errorOf(t, res)
		if res.status != http.StatusBadRequest {
			t.Errorf("body %.60s: %d %s %s", body, res.status, code, msg)
		}
	}

	// A restore holds the target lease: 409 naming it.
	restoreID := jobs.NewID()
	lease, err := locks.Acquire(context.Background(), e.bus.Locks, locks.Target, locks.Holder{Owner: restoreID, Operation: jobs.KindRestore}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res = e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: op})
	code, msg := errorOf(t, res)
	if res.status != http.StatusConflict || code != string(jobs.CodeLockHeld) || !strings.Contains(msg, "target is locked by restore.run "+restoreID+" since") {
		t.Errorf("while locked: %d %s %s", res.status, code, msg)
	}
	// The refusal is audited as lock contention, naming the holder.
	contention, _ := e.auditEvents("audit.backup.lock_contention")
	if len(contention) != 1 || contention[0].Outcome != "denied" || !strings.Contains(fmt.Sprint(contention[0].Detail), restoreID) {
		t.Errorf("lock contention events %+v", contention)
	}
	// A backup of another store is not blocked.
	if res := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: op, body: `{"components":["system"]}`}); res.status != http.StatusAccepted {
		t.Errorf("system-only while target is locked: %d %s", res.status, res.body)
	}
	_ = lease.Release(context.Background())
	if res := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: op}); res.status != http.StatusAccepted {
		t.Errorf("after release: %d %s", res.status, res.body)
	}
}

// TestListBackups: the Insight Engine's shape, newest first by creation
// time, with verification shown.
func TestListBackups(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	viewer := e.token(auth.Viewer)
	empty := decode[backupList](t, e.do(req{method: http.MethodGet, path: "/admin/db/backup/list", token: viewer}))
	if empty.TotalBackups != 0 || empty.Backups == nil {
		t.Errorf("empty list %+v", empty)
	}
	now := time.Now().UTC().Truncate(time.Second)
	older, st := putArchive(t, e, now.Add(-2*time.Hour))
	newer, _ := putArchive(t, e, now.Add(-time.Hour))
	verifiedAt := now.Add(-30 * time.Minute)
	meta, _ := st.Meta(context.Background(), older)
	meta.Verification = &backupstore.Verification{VerifiedAt: verifiedAt, Outcome: backupstore.OutcomePassed, JobID: jobs.NewID()}
	if err := st.SetMeta(context.Background(), older, meta); err != nil {
		t.Fatal(err)
	}

	res := e.do(req{method: http.MethodGet, path: "/admin/db/backup/list", token: viewer})
	if res.status != http.StatusOK {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	var raw struct {
		TotalBackups int              `json:"total_backups"`
		Backups      []map[string]any `json:"backups"`
	}
	if err := json.Unmarshal(res.body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.TotalBackups != 2 || len(raw.Backups) != 2 {
		t.Fatalf("list %s", res.body)
	}
	for _, k := range []string{"filename", "size_bytes", "size_mb", "created", "components", "sha256", "verified", "verified_at"} {
		if _, ok := raw.Backups[0][k]; !ok {
			t.Errorf("item lacks %q: %v", k, raw.Backups[0])
		}
	}
	list := decode[backupList](t, res)
	a, b := list.Backups[0], list.Backups[1]
	if a.Filename != newer || b.Filename != older {
		t.Fatalf("order %s, %s; want newest first", a.Filename, b.Filename)
	}
	if a.Verified || a.VerifiedAt != nil || !b.Verified || b.VerifiedAt == nil || !b.VerifiedAt.Equal(verifiedAt) || b.VerifyOutcome != "passed" {
		t.Errorf("verification: %+v / %+v", a, b)
	}
	if len(a.SHA256) != 64 || a.SizeBytes <= 0 || !a.Created.Equal(now.Add(-time.Hour)) || len(a.Components) != 1 || a.Components[0] != "chroma" {
		t.Errorf("item %+v", a)
	}
}

// TestVerifyAndPruneRoutes: malformed names are 400 (dot-dot, slashes,
// NUL bytes, other suffixes), unknown ones 404, a listed one 202; prune
// takes {dry_run}.
func TestVerifyAndPruneRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	op := e.token(auth.Operator)
	name, _ := putArchive(t, e, time.Now().UTC().Add(-time.Minute))

	for _, p := range []string{
		"..", "..%2F..%2Fsystem.db", "%2Fetc%2Fpasswd", "backup%00.tar.gz",
		strings.Replace(name, ".tar.gz", ".tar", 1), name + "%00", "..%2F" + name,
		strings.ToLower(name), "x" + name,
	} {
		res := e.do(req{method: http.MethodPost, path: "/admin/db/backup/" + p + "/verify", token: op})
		if res.status != http.StatusBadRequest && res.status != http.StatusNotFound {
			t.Errorf("verify %q: %d %s", p, res.status, res.body)
			continue
		}
		if res.status == http.StatusNotFound {
			// Only echo's own route miss may answer 404 here (a path with
			// an extra segment); it must never reach the store.
			if code, _ := errorOf(t, res); code != CodeNotFound {
				t.Errorf("verify %q: code %s", p, code)
			}
		}
	}
	for _, p := range []string{"..%2F..%2Fsystem.db", "backup%00.tar.gz", "x" + name} {
		res := e.do(req{method: http.MethodPost, path: "/admin/db/backup/" + p + "/verify", token: op})
		if res.status != http.StatusBadRequest || codeOf(t, res) != CodeBadRequest {
			t.Errorf("verify %q: %d %s, want 400 bad_request", p, res.status, res.body)
		}
	}
	unknown := backupfmt.ArchiveName(time.Now(), jobs.NewID(), backupfmt.Gzip)
	res := e.do(req{method: http.MethodPost, path: "/admin/db/backup/" + unknown + "/verify", token: op})
	if code, _ := errorOf(t, res); res.status != http.StatusNotFound || code != CodeNotFound {
		t.Errorf("unknown archive: %d %s", res.status, res.body)
	}
	res = e.do(req{method: http.MethodPost, path: "/admin/db/backup/" + name + "/verify", token: op})
	if res.status != http.StatusAccepted {
		t.Fatalf("verify: %d %s", res.status, res.body)
	}
	acc := decode[Accepted](t, res)
	if acc.Job.Kind != jobs.KindBackupVerify || string(acc.Job.Params) != `{"name":"`+name+`"}` {
		t.Errorf("verify job %s %s", acc.Job.Kind, acc.Job.Params)
	}
	if res := e.do(req{method: http.MethodPost, path: "/admin/db/backup/" + name + "/verify", token: e.token(auth.Viewer)}); res.status != http.StatusForbidden || codeOf(t, res) != CodeForbidden {
		t.Errorf("viewer verify: %d (want CodeForbidden; body %s)", res.status, res.body)
	}

	res = e.do(req{method: http.MethodPost, path: "/admin/db/backup/prune", token: op, body: `{"dry_run": true}`})
	if res.status != http.StatusAccepted {
		t.Fatalf("prune: %d %s", res.status, res.body)
	}
	acc = decode[Accepted](t, res)
	if acc.Job.Kind != jobs.KindBackupPrune || string(acc.Job.Params) != `{"dry_run":true}` {
		t.Errorf("prune job %s %s", acc.Job.Kind, acc.Job.Params)
	}
	for _, body := range []string{`{"dry_run": "yes"}`, `{"keep": 3}`} {
		if res := e.do(req{method: http.MethodPost, path: "/admin/db/backup/prune", token: op, body: body}); res.status != http.StatusBadRequest || codeOf(t, res) != CodeInvalidJSON {
			t.Errorf("prune %s: %d %s, want 400 invalid_json", body, res.status, res.body)
		}
	}
	for _, body := range []string{`{"pin": ["../` + name + `"]}`, `{"pin": ["` + name + `"], "unpin": ["` + name + `"]}`, `{"unpin": "` + name + `"}`} {
		if res := e.do(req{method: http.MethodPost, path: "/admin/db/backup/prune", token: op, body: body}); res.status != http.StatusBadRequest || codeOf(t, res) == "" {
			t.Errorf("prune %s: %d %s, want 400 with a code", body, res.status, res.body)
		}
	}
	res = e.do(req{method: http.MethodPost, path: "/admin/db/backup/prune", token: op, body: `{"pin": ["` + unknown + `"]}`})
	if code, _ := errorOf(t, res); res.status != http.StatusNotFound || code != CodeNotFound {
		t.Errorf("pin of an unknown archive: %d %s", res.status, res.body)
	}
	res = e.do(req{method: http.MethodPost, path: "/admin/db/backup/prune", token: op, body: `{"pin": ["` + name + `"], "dry_run": true}`})
	if res.status != http.StatusAccepted {
		t.Fatalf("pin: %d %s", res.status, res.body)
	}
	if acc = decode[Accepted](t, res); string(acc.Job.Params) != `{"dry_run":true,"pin":["`+name+`"]}` {
		t.Errorf("pin job %s", acc.Job.Params)
	}
}
