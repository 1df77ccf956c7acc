package ctltest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/insightctl/cli"
	"github.com/insightops/insightops/shared/client"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
)

// jsonLines decodes every line of out into a T, failing on any line that
// is not one JSON object.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var items []T
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var v T
		dec := json.NewDecoder(strings.NewReader(line))
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Fatalf("line is not one JSON object: %q (%v)", line, err)
		}
		items = append(items, v)
	}
	return items
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestInsightctlEndToEnd drives two real all-in-ones (sharing one Chroma
// server) with insightctl run in-process: login, whoami, training, a backup
// waited for through the job's events, the list as JSON, a download whose
// digest matches the list, an upload into the second instance and a
// restore there, service tokens, jobs, audit tail, health, and the exit
// codes of a bad token, a missing archive and a held lock.
func TestInsightctlEndToEnd(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	a := start(t, chroma.URL)
	b := start(t, chroma.URL)
	ctl := newCtl(t, nil)

	// login: the token is saved with mode 0600 and used by whoami.
	r := ctl.login(a)
	if !strings.Contains(r.out, "logged in to "+a.url+" as "+adminEmail) {
		t.Fatalf("login output: %s", r)
	}
	st, err := os.Stat(filepath.Join(ctl.cfgDir, "credentials.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved login: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	who := jsonLines[client.Identity](t, ctl.must("", "whoami", "--output", "json").out)
	if len(who) != 1 || who[0].Subject != adminEmail || who[0].Role != "admin" || who[0].Kind != "login" {
		t.Fatalf("whoami: %+v", who)
	}

	// kb train waits for the job; search finds what it wrote.
	train := jsonLines[jobs.Record](t, ctl.must("", "kb", "train", "--output", "json").out)
	if len(train) != 1 || train[0].State != jobs.Succeeded || train[0].Kind != jobs.KindChromaTrain {
		t.Fatalf("kb train: %+v", train)
	}
	if hits := jsonLines[client.KBEntry](t, ctl.must("", "kb", "search", "customers", "--limit", "3", "--output", "json").out); len(hits) == 0 || hits[0].Distance == nil {
		t.Fatalf("kb search found %+v", hits)
	}

	// backup create waits to success and prints the final record.
	r = ctl.must("", "backup", "create", "--note", "insightctl e2e", "--output", "json")
	recs := jsonLines[jobs.Record](t, r.out)
	if len(recs) != 1 || recs[0].State != jobs.Succeeded || recs[0].Progress != 100 {
		t.Fatalf("backup create: %s", r)
	}
	var made jobspec.BackupCreateResult
	if err := json.Unmarshal(recs[0].Result, &made); err != nil || made.Archive == "" {
		t.Fatalf("backup result %s: %v", recs[0].Result, err)
	}
	if made.Components["chroma"].Status != "included" {
		t.Errorf("the backup left chroma out: %+v", made.Components["chroma"])
	}

	// backup list --output json: one object per line, the new archive among them.
	list := jsonLines[client.Backup](t, ctl.must("", "backup", "list", "--output", "json").out)
	var listed *client.Backup
	for i := range list {
		if list[i].Filename == made.Archive {
			listed = &list[i]
		}
	}
	if listed == nil || listed.SHA256 != made.SHA256 || listed.Note != "insightctl e2e" {
		t.Fatalf("backup list lacks %s with sha256 %s: %+v", made.Archive, made.SHA256, list)
	}

	// download: the file's digest is the list's.
	file := filepath.Join(t.TempDir(), made.Archive)
	dl := jsonLines[struct {
		client.Download
		File            string `json:"file"`
		SignatureStatus string `json:"signature_status"`
	}](t, ctl.must("", "backup", "download", made.Archive, "-o", file, "--output", "json").out)
	if got := fileSHA256(t, file); got != listed.SHA256 || len(dl) != 1 || dl[0].SHA256 != got || dl[0].Bytes != listed.SizeBytes {
		t.Fatalf("downloaded %s: sha256 %s, list %s, reported %+v", file, got, listed.SHA256, dl)
	}
	if dl[0].SignatureStatus != "valid" || dl[0].Signature == "" {
		t.Errorf("download of a signed archive: signature %q (%s), want a valid one", dl[0].Signature, dl[0].SignatureStatus)
	}

	// verify waits for the verification, which the list then shows.
	verified := jsonLines[jobs.Record](t, ctl.must("", "backup", "verify", made.Archive, "--output", "json").out)
	var outcome jobspec.BackupVerifyResult
	if len(verified) != 1 || verified[0].State != jobs.Succeeded || json.Unmarshal(verified[0].Result, &outcome) != nil || outcome.Outcome != "passed" {
		t.Fatalf("backup verify: %+v", verified)
	}
	// A job already final cannot be cancelled: a conflict.
	if r := ctl.run("", "jobs", "cancel", verified[0].ID); r.code != cli.ExitConflict {
		t.Errorf("cancel of a final job: want exit %d: %s", cli.ExitConflict, r)
	}
	if entries := jsonLines[client.KBEntry](t, ctl.must("", "kb", "list", "--collection", "ddl", "--limit", "2", "--output", "json").out); len(entries) != 2 || entries[0].Collection != "ddl" {
		t.Errorf("kb list --collection ddl --limit 2: %+v", entries)
	}

	// upload into the second instance (its own login through the
	// environment), then restore there.
	bCtl := newCtl(t, nil)
	bCtl.login(b)
	imported := jsonLines[client.Backup](t, bCtl.must("", "backup", "upload", file, "--source-signature", dl[0].Signature, "--output", "json").out)
	if len(imported) != 1 || imported[0].Filename != made.Archive || imported[0].SHA256 != listed.SHA256 {
		t.Fatalf("upload: %+v", imported)
	}
	bList := jsonLines[client.Backup](t, bCtl.must("", "backup", "list", "--output", "json").out)
	if len(bList) != 1 || bList[0].Filename != made.Archive {
		t.Fatalf("second instance lists %+v", bList)
	}
	if r := bCtl.run("", "backup", "upload", file); r.code != cli.ExitConflict {
		t.Errorf("a second upload of the same name: want exit %d (conflict): %s", cli.ExitConflict, r)
	}
	restored := jsonLines[jobs.Record](t, bCtl.must("", "backup", "restore", made.Archive, "--yes", "--output", "json").out)
	if len(restored) != 1 || restored[0].State != jobs.Succeeded || restored[0].Kind != jobs.KindRestore {
		t.Fatalf("restore on the second instance: %+v", restored)
	}

	t.Run("exit codes", func(t *testing.T) {
		bad := ctl.with(cli.EnvURL, a.url, cli.EnvToken, "not-a-token")
		if r := bad.run("", "backup", "list"); r.code != cli.ExitAuth || !strings.Contains(r.err, "401 unauthorized") {
			t.Errorf("bad token: want exit %d: %s", cli.ExitAuth, r)
		}
		missing := "backup-20200101T000000Z-01JD5W2Q8X7V3M4N6P9R0S1T2V.tar.gz"
		for _, args := range [][]string{
			{"backup", "download", missing, "-o", filepath.Join(t.TempDir(), "x")},
			{"backup", "verify", missing},
			{"backup", "restore", missing, "--yes"},
		} {
			if r := ctl.run("", args...); r.code != cli.ExitNotFound || !strings.Contains(r.err, "not_found") {
				t.Errorf("%v of a missing archive: want exit %d: %s", args, cli.ExitNotFound, r)
			}
		}
		if r := ctl.run("", "jobs", "get", jobs.NewID()); r.code != cli.ExitNotFound {
			t.Errorf("a missing job: want exit %d: %s", cli.ExitNotFound, r)
		}
		ctx := context.Background()
		lease, err := locks.Acquire(ctx, a.deps.Bus.Locks, locks.System, locks.Holder{Owner: jobs.NewID(), Operation: jobs.KindRestore}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r := ctl.run("", "backup", "create")
		_ = lease.Release(ctx)
		if r.code != cli.ExitConflict || !strings.Contains(r.err, "lock_held") {
			t.Errorf("backup create under a held lock: want exit %d: %s", cli.ExitConflict, r)
		}
		if r := ctl.run("", "backup", "restore", made.Archive); r.code != cli.ExitUsage {
			t.Errorf("restore without --yes: want exit %d: %s", cli.ExitUsage, r)
		}
		if r := ctl.run("", "jobs", "list", "--state", "bogus"); r.code != cli.ExitUsage {
			t.Errorf("bad flag value: want exit %d: %s", cli.ExitUsage, r)
		}
		down := ctl.with(cli.EnvURL, "http://"+testkit.FreeAddr(t), cli.EnvToken, "x")
		if r := down.run("", "health"); r.code != cli.ExitUnreachable {
			t.Errorf("no server: want exit %d: %s", cli.ExitUnreachable, r)
		}
		if r := newCtl(t, nil).run("", "backup", "list"); r.code != cli.ExitAuth {
			t.Errorf("not logged in: want exit %d: %s", cli.ExitAuth, r)
		}

		// An archive whose bytes changed in the store after it was made:
		// the download does not match the stored digest, and no file is left.
		stored := filepath.Join(a.cfg.BackupDir, made.Archive)
		raw, err := os.ReadFile(stored)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 0xff
		if err := os.WriteFile(stored, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "corrupt.tar.gz")
		if r := ctl.run("", "backup", "download", made.Archive, "-o", dst); r.code != cli.ExitDigest || !strings.Contains(r.err, "stored digest") {
			t.Errorf("download of a changed archive: want exit %d: %s", cli.ExitDigest, r)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), "*")); len(left) != 0 {
			t.Errorf("a failed download left %v", left)
		}
	})

	t.Run("service token, no-wait and watch", func(t *testing.T) {
		created := jsonLines[client.CreatedServiceToken](t, ctl.must("", "tokens", "create", "--name", "cron", "--role", "operator", "--output", "json").out)
		if len(created) != 1 || !strings.HasPrefix(created[0].Token, "iops_") {
			t.Fatalf("tokens create: %+v", created)
		}
		svc := newCtl(t, map[string]string{cli.EnvURL: a.url, cli.EnvToken: created[0].Token})
		who := jsonLines[client.Identity](t, svc.must("", "whoami", "--output", "json").out)
		if who[0].Kind != "service_token" || who[0].Subject != "token:cron" || who[0].Role != "operator" {
			t.Fatalf("whoami with a service token: %+v", who)
		}
		id := strings.TrimSpace(svc.must("", "backup", "prune", "--dry-run", "--no-wait").out)
		if !jobs.ValidID(id) {
			t.Fatalf("--no-wait printed %q, want the job id", id)
		}
		seen := jsonLines[jobs.Record](t, svc.must("", "jobs", "watch", id, "--output", "json").out)
		if last := seen[len(seen)-1]; last.ID != id || last.State != jobs.Succeeded {
			t.Fatalf("jobs watch: %+v", seen)
		}
		got := jsonLines[jobs.Record](t, svc.must("", "jobs", "get", id, "--output", "json").out)
		if got[0].SubmittedBy != "token:cron" {
			t.Errorf("jobs get: %+v", got[0])
		}
		listed := jsonLines[jobs.Record](t, svc.must("", "jobs", "list", "--kind", jobs.KindBackupPrune, "--output", "json").out)
		if len(listed) != 1 || listed[0].ID != id {
			t.Errorf("jobs list --kind backup.prune: %+v", listed)
		}
		if r := svc.run("", "tokens", "list"); r.code != cli.ExitAuth {
			t.Errorf("an operator listing tokens: want exit %d: %s", cli.ExitAuth, r)
		}
		tokens := jsonLines[client.ServiceToken](t, ctl.must("", "tokens", "list", "--output", "json").out)
		ctl.must("", "tokens", "revoke", itoa(tokens[0].ID))
		if r := svc.run("", "whoami"); r.code != cli.ExitAuth {
			t.Errorf("a revoked service token: want exit %d: %s", cli.ExitAuth, r)
		}
	})

	t.Run("audit tail follows new events", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &syncBuffer{}
		done := make(chan result, 1)
		go func() {
			done <- ctl.runCtx(ctx, out, "", "audit", "tail", "--lines", "1", "--interval", "200ms", "--action", "backup.prune.requested", "--output", "json")
		}()
		// tail prints the newest matching event (the service token's prune,
		// or this one if it is stored before tail's first page), then each
		// new one once.
		id := strings.TrimSpace(ctl.must("", "backup", "prune", "--dry-run", "--no-wait").out)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), id) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		r := <-done
		if r.code != cli.ExitOK {
			t.Fatalf("audit tail: %s", r)
		}
		events := jsonLines[client.AuditEntry](t, r.out)
		seen := map[string]bool{}
		for _, ev := range events {
			if ev.Action != "backup.prune.requested" || seen[ev.EventID] {
				t.Errorf("audit tail printed %+v (filtered on backup.prune.requested, each once)", ev)
			}
			seen[ev.EventID] = true
		}
		if len(events) == 0 || len(events) > 2 || events[len(events)-1].JobID != id {
			t.Fatalf("audit tail printed %+v, want the prune of %s last", events, id)
		}
	})

	t.Run("health, audit verify, strict client types", func(t *testing.T) {
		h := jsonLines[client.HealthReport](t, ctl.must("", "health", "--output", "json").out)
		if len(h) != 1 || (h[0].Status != "ok" && h[0].Status != "degraded") || len(h[0].Workers["backup"]) != 1 {
			t.Fatalf("health: %+v", h)
		}
		if r := ctl.must("", "audit", "verify"); !strings.Contains(r.out, "audit chain intact") {
			t.Errorf("audit verify: %s", r)
		}
		// The client's types know every field the API answers with.
		saved, _ := os.ReadFile(filepath.Join(ctl.cfgDir, "credentials.json"))
		var cred struct{ Token string }
		_ = json.Unmarshal(saved, &cred)
		c, err := client.New(a.url, client.WithToken(cred.Token), client.WithStrictDecoding())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		checks := map[string]func() error{
			"whoami":  func() error { _, err := c.Whoami(ctx); return err },
			"backups": func() error { _, err := c.Backups(ctx); return err },
			"jobs":    func() error { _, err := c.Jobs(ctx, client.JobFilter{Limit: 500}); return err },
			"health":  func() error { _, err := c.Health(ctx); return err },
			"kb":      func() error { _, err := c.KnowledgeBase(ctx, client.KBQuery{Q: "revenue", Limit: 2}); return err },
			"audit":   func() error { _, err := c.Audit(ctx, client.AuditFilter{Limit: 1000}); return err },
			"verify":  func() error { _, err := c.VerifyAudit(ctx); return err },
			"users":   func() error { _, err := c.Users(ctx); return err },
			"tokens":  func() error { _, err := c.ServiceTokens(ctx); return err },
		}
		for name, check := range checks {
			if err := check(); err != nil {
				t.Errorf("%s with strict decoding: %v", name, err)
			}
		}
	})

	t.Run("users", func(t *testing.T) {
		created := jsonLines[client.CreatedUser](t, ctl.must("", "users", "create", "--email", "ops@example.com", "--role", "operator", "--output", "json").out)
		if len(created) != 1 || created[0].GeneratedPassword == "" || !created[0].User.MustChangePassword {
			t.Fatalf("users create: %+v", created)
		}
		id := itoa(created[0].User.ID)
		ctl.must("", "users", "update", id, "--role", "viewer")
		got := jsonLines[client.User](t, ctl.must("", "users", "get", id, "--output", "json").out)
		if got[0].Role != "viewer" {
			t.Errorf("after update: %+v", got[0])
		}
		ctl.must("", "users", "delete", id)
		if r := ctl.run("", "users", "get", id); r.code != cli.ExitNotFound {
			t.Errorf("a deleted user: want exit %d: %s", cli.ExitNotFound, r)
		}
	})

	t.Run("logout", func(t *testing.T) {
		ctl.must("", "logout")
		if _, err := os.Stat(filepath.Join(ctl.cfgDir, "credentials.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the saved login is still there: %v", err)
		}
		if r := ctl.run("", "whoami"); r.code != cli.ExitAuth {
			t.Errorf("whoami after logout: want exit %d: %s", cli.ExitAuth, r)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
