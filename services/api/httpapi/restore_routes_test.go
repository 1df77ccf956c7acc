package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
)

// restoreFixture is an API whose local backup store lists two archives:
// one with a stored summary (system and target included, chroma skipped)
// and one without (copied in by hand).
type restoreFixture struct {
	*env
	withMeta, bare string
}

func newRestoreFixture(t *testing.T) restoreFixture {
	t.Helper()
	e := newEnv(t)
	st, err := backupstore.NewLocal(e.cfg.BackupDir)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 20, 10, 15, 0, 0, time.UTC)
	f := restoreFixture{env: e,
		withMeta: backupfmt.ArchiveName(created, jobs.NewID(), backupfmt.Gzip),
		bare:     backupfmt.ArchiveName(created.Add(time.Hour), jobs.NewID(), backupfmt.Zstd),
	}
	for _, name := range []string{f.withMeta, f.bare} {
		if err := os.WriteFile(filepath.Join(e.cfg.BackupDir, name), []byte("not checked by the API"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := st.SetMeta(ctx, f.withMeta, backupstore.Meta{CreatedAt: created, Components: []string{"system", "target"},
		Skipped: map[string]string{"chroma": "CHROMA_URL is not set: the vector store is disabled"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// backupDirListing is the names in BACKUP_DIR, to show nothing was touched.
func (f restoreFixture) backupDirListing() []string {
	f.t.Helper()
	entries, err := os.ReadDir(f.cfg.BackupDir)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func restorePath(name string, confirm bool) string {
	p := "/admin/db/backup/restore/" + name
	if confirm {
		p += "?confirm=true"
	}
	return p
}

func TestRestoreRouteContract(t *testing.T) {
	t.Parallel()
	r, ok := tableIndex()["POST /admin/db/backup/restore/:name"]
	if !ok || r.MinRole != auth.Admin || !r.Confirm {
		t.Fatalf("restore route %+v (present %v): want admin and confirm", r, ok)
	}
}

func TestRestoreRouteRefusals(t *testing.T) {
	t.Parallel()
	f := newRestoreFixture(t)
	admin := f.token(auth.Admin)
	listing := f.backupDirListing()

	// Roles first: operator and viewer are forbidden, anonymous is 401.
	for role, want := range map[auth.Role]int{auth.Operator: http.StatusForbidden, auth.Viewer: http.StatusForbidden} {
		if res := f.do(req{method: http.MethodPost, path: restorePath(f.withMeta, true), token: f.token(role)}); res.status != want {
			t.Errorf("%s: %d %s, want %d", role, res.status, res.body, want)
		}
	}
	if res := f.do(req{method: http.MethodPost, path: restorePath(f.withMeta, true)}); res.status != http.StatusUnauthorized || codeOf(t, res) != CodeUnauthorized {
		t.Errorf("anonymous: %d (want CodeUnauthorized; body %s)", res.status, res.body)
	}

	// Without confirm=true: a 400 that explains.
	for _, q := range []string{"", "?confirm=false", "?confirm=1", "?confirm=TRUE"} {
		res := f.do(req{method: http.MethodPost, path: "/admin/db/backup/restore/" + f.withMeta + q, token: admin})
		code, msg := errorOf(t, res)
		if res.status != http.StatusBadRequest || code != CodeConfirmationRequired || !strings.Contains(msg, "confirm=true") {
			t.Errorf("confirm %q: %d %s", q, res.status, res.body)
		}
	}

	// Malicious or malformed names: 400, nothing touched. (A raw "/" in
	// the name does not match the route at all: 404 no such route.)
	valid := strings.TrimSuffix(f.withMeta, ".tar.gz")
	for _, name := range []string{
		"..%2F..%2Fetc%2Fpasswd",
		"..%2F" + f.withMeta,
		"%2Fetc%2Fpasswd",
		"%2F" + f.withMeta,
		f.withMeta + "%00",
		f.withMeta + "%00.tar.gz",
		"%00",
		"..",
		"...",
		"backup.tar.gz",
		strings.ToLower(f.withMeta),
		valid + ".tar.gz.sha256",
		valid + ".tar.gz.meta.json",
		valid + ".tar",
		"%20" + f.withMeta,
		"x%0A" + f.withMeta,
		strings.Repeat("a", 300),
	} {
		res := f.do(req{method: http.MethodPost, path: restorePath(name, true), token: admin})
		code, msg := errorOf(t, res)
		if res.status != http.StatusBadRequest || code != CodeBadRequest || !strings.Contains(msg, "archive name") {
			t.Errorf("name %q: %d %s, want 400", name, res.status, res.body)
		}
		if strings.ContainsRune(msg, 0) {
			t.Errorf("name %q: NUL echoed back", name)
		}
	}
	for _, path := range []string{"/admin/db/backup/restore/../../etc/passwd?confirm=true", "/admin/db/backup/restore/a/b?confirm=true"} {
		if res := f.do(req{method: http.MethodPost, path: path, token: admin}); res.status != http.StatusNotFound && res.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", path, res.status, res.body)
		}
	}

	// A well-formed name that is not listed: 404.
	unknown := backupfmt.ArchiveName(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), jobs.NewID(), backupfmt.Gzip)
	res := f.do(req{method: http.MethodPost, path: restorePath(unknown, true), token: admin})
	if code, _ := errorOf(t, res); res.status != http.StatusNotFound || code != CodeNotFound {
		t.Errorf("unknown archive: %d %s", res.status, res.body)
	}

	// Bad bodies: 400 (415 for another content type).
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"components": ["everything"]}`, http.StatusBadRequest},
		{`{"components": []}`, http.StatusBadRequest},
		{`{"components": ["chroma"]}`, http.StatusBadRequest}, // skipped in the archive
		{`{"components": "system"}`, http.StatusBadRequest},
		{`{"skip_safety_backup": "yes"}`, http.StatusBadRequest},
		{`{"archive": "other"}`, http.StatusBadRequest},
		{`[1]`, http.StatusBadRequest},
	} {
		res := f.do(req{method: http.MethodPost, path: restorePath(f.withMeta, true), token: admin, body: tc.body})
		if code, msg := errorOf(t, res); res.status != tc.want {
			t.Errorf("body %s: %d %s %s", tc.body, res.status, code, msg)
		}
	}

	if got := f.backupDirListing(); !slices.Equal(got, listing) {
		t.Errorf("BACKUP_DIR changed: %v, was %v", got, listing)
	}
	if evs, _ := f.auditEvents("audit.restore.>"); len(evs) != 0 {
		t.Errorf("%d restore events for refused requests", len(evs))
	}
}

func TestRestoreRouteLocked(t *testing.T) {
	t.Parallel()
	f := newRestoreFixture(t)
	admin := f.token(auth.Admin)
	ctx := context.Background()
	owner := jobs.NewID()
	lease, err := locks.Acquire(ctx, f.bus.Locks, locks.Target, locks.Holder{Owner: owner, Operation: jobs.KindBackupCreate}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res := f.do(req{method: http.MethodPost, path: restorePath(f.withMeta, true), token: admin})
	code, msg := errorOf(t, res)
	if res.status != http.StatusConflict || code != string(jobs.CodeLockHeld) || !strings.Contains(msg, "target is locked by backup.create "+owner) {
		t.Errorf("locked: %d %s", res.status, res.body)
	}
	// Only the stores the restore touches count: chroma is not in the
	// archive, so a chroma lease does not stand in the way of it...
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	chroma, err := locks.Acquire(ctx, f.bus.Locks, locks.Chroma, locks.Holder{Owner: owner, Operation: jobs.KindChromaTrain}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer chroma.Release(ctx)
	if res := f.do(req{method: http.MethodPost, path: restorePath(f.withMeta, true), token: admin}); res.status != http.StatusAccepted {
		t.Errorf("chroma locked, archive without chroma: %d %s", res.status, res.body)
	}
	// ...but it does for an archive without a summary (every store).
	res = f.do(req{method: http.MethodPost, path: restorePath(f.bare, true), token: admin})
	if code, msg := errorOf(t, res); res.status != http.StatusConflict || code != string(jobs.CodeLockHeld) || !strings.Contains(msg, "chroma is locked by chroma.train") {
		t.Errorf("bare archive, chroma locked: %d %s", res.status, res.body)
	}
	// Naming the components narrows the check.
	if res := f.do(req{method: http.MethodPost, path: restorePath(f.bare, true), token: admin, body: `{"components": ["system"]}`}); res.status != http.StatusAccepted {
		t.Errorf("bare archive, system only: %d %s", res.status, res.body)
	}
}

func TestRestoreRouteAccepted(t *testing.T) {
	t.Parallel()
	f := newRestoreFixture(t)
	admin := f.token(auth.Admin)
	listing := f.backupDirListing()

	res := f.do(req{method: http.MethodPost, path: restorePath(f.withMeta, true), token: admin,
		body: `{"components": ["target", "system", "target"], "skip_safety_backup": true}`})
	if res.status != http.StatusAccepted {
		t.Fatalf("restore: %d %s", res.status, res.body)
	}
	acc := decode[Accepted](t, res)
	if acc.Status != "queued" || acc.Job.Kind != jobs.KindRestore || res.header.Get("Location") != TaskURL(acc.TaskID) ||
		acc.Job.SubmittedBy != testUsers[auth.Admin] || !strings.Contains(acc.Message, "without a safety backup") {
		t.Errorf("accepted %s", res.body)
	}
	var p jobspec.RestoreArgs
	if err := json.Unmarshal(acc.Job.Params, &p); err != nil || p.Archive != f.withMeta || !slices.Equal(p.Components, []string{"system", "target"}) || !p.SkipSafetyBackup {
		t.Errorf("params %s (%v)", acc.Job.Params, err)
	}

	// No body: every component, with a safety backup.
	res = f.do(req{method: http.MethodPost, path: restorePath(f.withMeta, true), token: admin})
	if res.status != http.StatusAccepted {
		t.Fatalf("restore without body: %d %s", res.status, res.body)
	}
	acc = decode[Accepted](t, res)
	if string(acc.Job.Params) != `{"archive":"`+f.withMeta+`"}` || !strings.Contains(acc.Message, "with a safety backup") {
		t.Errorf("params %s message %q", acc.Job.Params, acc.Message)
	}

	// The command is on the JOBS stream, and the request is audited.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := f.bus.JS.Stream(ctx, bus.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, jobs.Subject(jobs.KindRestore))
	if err != nil {
		t.Fatal(err)
	}
	var cmd jobs.Command
	if err := json.Unmarshal(msg.Data, &cmd); err != nil || cmd.ID != acc.TaskID {
		t.Errorf("command %s (%v)", msg.Data, err)
	}
	evs, _ := f.auditEvents("audit.restore.requested")
	if len(evs) != 2 || evs[1].JobID != acc.TaskID || evs[1].Role != "admin" {
		t.Errorf("audit %+v", evs)
	}
	if got := f.backupDirListing(); !slices.Equal(got, listing) {
		t.Errorf("BACKUP_DIR changed: %v, was %v", got, listing)
	}
}
