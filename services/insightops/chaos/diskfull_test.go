package chaos

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/reliability"
	"github.com/insightops/insightops/shared/testkit"
)

// tmpfsSize is the backup volume of TestFaultBackupDiskFull: room for two
// archives of the demo target and the System DB (about 270 KB each), not
// for one of a target of bigTargetBytes of incompressible data.
const (
	tmpfsSize      = "1024k"
	bigTargetBytes = 4 << 20
)

// TestFaultBackupDiskFull puts BACKUP_DIR on a 1 MiB tmpfs, runs the real
// backup worker binary, makes two backups that fit, then one of a target
// database too big for what is left. That job must fail at once (one
// attempt, code backup_store_full, the message saying the store is full
// and "no space left on device"), leave no temp file and nothing listed,
// give back the space it took, and the earlier archives must still verify,
// in the test and through backup.verify jobs.
func TestFaultBackupDiskFull(t *testing.T) {
	t.Parallel()
	began := time.Now()
	backupDir := filepath.Join(t.TempDir(), "backups")
	if err := os.MkdirAll(backupDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", backupDir, "tmpfs", 0, "size="+tmpfsSize+",mode=0755"); err != nil {
		testkit.Unavailable(t, "a tmpfs for BACKUP_DIR (mount needs root or CAP_SYS_ADMIN)", err)
		return
	}
	// Registered before the workers start, so it runs after they stopped.
	t.Cleanup(func() {
		if err := syscall.Unmount(backupDir, 0); err != nil {
			t.Errorf("unmount %s: %v", backupDir, err)
		}
	})

	bins := binaries(t)
	pgURL := testkit.Postgres(t)
	b, ns := testkit.Bus(t)
	targetPath := filepath.Join(t.TempDir(), "target", "vanna_db.db")
	testkit.CopyFile(t, filepath.Join(repoRoot(t), "assets", "databases", "vanna_db.db"), targetPath)
	env := []string{
		"APP_ENV=development", "NATS_URL=" + ns.ClientURL(), "DATABASE_URL=" + pgURL,
		"TARGET_DB_PATH=" + targetPath,
		"BACKUP_STORE=local", "BACKUP_DIR=" + backupDir, "BACKUP_RETENTION_COUNT=100",
		"JWT_SECRET=chaos-test-secret-0123456789abcdef0123",
		// One archive signing key for every process (each has its own
		// DATA_DIR, where a development key would differ).
		"BACKUP_SIGNING_KEY=" + signingKey(t),
		"JOB_MAX_ATTEMPTS=5", "JOB_ACK_WAIT=10s", "SHUTDOWN_TIMEOUT=5s",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := newCluster(t, bins, env)
	c.start("backup")
	sub := newSubmitter(b, 5, testkit.Logger(t))
	var all []string

	var kept []string
	for range 2 {
		id := sub.submit(ctx, t, jobspec.BackupCreateArgs{})
		all = append(all, id)
		kept = append(kept, archiveOf(t, sub.mustSucceed(ctx, t, id, 5*time.Minute)))
	}
	freeBefore := freeBytes(t, backupDir)
	t.Logf("two archives %v; %d bytes free on the %s tmpfs", kept, freeBefore, tmpfsSize)

	// A target that cannot fit: incompressible blobs.
	writeBigSQLite(t, targetPath+".new", bigTargetBytes)
	if err := os.Rename(targetPath+".new", targetPath); err != nil {
		t.Fatal(err)
	}
	id := sub.submit(ctx, t, jobspec.BackupCreateArgs{})
	all = append(all, id)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	rec := sub.waitFinal(wctx, []string{id})[id]
	wcancel()

	f := &reliability.Fault{
		Name:  reliability.FaultBackupDiskFull,
		Fault: fmt.Sprintf("BACKUP_DIR on a %s tmpfs; two backups fit, the third (a %d MiB incompressible target) does not", tmpfsSize, bigTargetBytes>>20),
		Setup: "embedded NATS, PostgreSQL System DB, one backup worker process, BACKUP_STORE=local",
	}
	switch {
	case rec.State != jobs.Failed:
		t.Errorf("backup on a full disk: state %s (step %q, result %s), want failed", rec.State, rec.Step, rec.Result)
	case rec.Error == nil || rec.Error.Code != jobs.CodeBackupStoreFull:
		t.Errorf("backup on a full disk failed with %+v, want code backup_store_full", rec.Error)
	case !strings.Contains(rec.Error.Message, "no space left on device") || !strings.Contains(rec.Error.Message, "is full"):
		t.Errorf("error message %q does not say the store is full", rec.Error.Message)
	case rec.Attempt != 1:
		t.Errorf("the full-disk backup ran %d attempts, want 1 (permanent)", rec.Attempt)
	}
	if rec.Error != nil {
		f.Notes = append(f.Notes, fmt.Sprintf("third backup: %s after %d attempt(s), %s: %s", rec.State, rec.Attempt, rec.Error.Code, rec.Error.Message))
	}

	// Nothing partial: the store lists the two, the directory holds only
	// them and their sidecars, and the space is back.
	st, err := backupstore.NewLocal(backupDir)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, in := range infos {
		listed = append(listed, in.Name)
		verifyInStore(ctx, t, st, in)
	}
	if len(listed) != 2 || !contains(listed, kept[0]) || !contains(listed, kept[1]) {
		t.Errorf("listed %v, want exactly %v", listed, kept)
		f.Duplicated += max(0, len(listed)-2)
	}
	entries, err := os.ReadDir(backupDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
		if strings.HasPrefix(e.Name(), ".tmp-") || (!strings.HasPrefix(e.Name(), kept[0]) && !strings.HasPrefix(e.Name(), kept[1])) {
			t.Errorf("left in BACKUP_DIR after the failed backup: %s", e.Name())
		}
	}
	freeAfter := freeBytes(t, backupDir)
	if freeAfter < freeBefore-16<<10 {
		t.Errorf("%d bytes free after the failed backup, %d before: its temp file kept the space", freeAfter, freeBefore)
	}

	// The earlier archives through the verify job's whole path.
	var verifyIDs []string
	for _, name := range kept {
		verifyIDs = append(verifyIDs, sub.submit(ctx, t, jobspec.BackupVerifyArgs{Name: name}))
	}
	all = append(all, verifyIDs...)
	vctx, vcancel := context.WithTimeout(ctx, 5*time.Minute)
	for vid, r := range sub.waitFinal(vctx, verifyIDs) {
		if r.State != jobs.Succeeded {
			t.Errorf("verify %s: %s %+v", vid, r.State, r.Error)
		}
	}
	vcancel()

	recs, err := sub.records(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	f.Submitted = len(all)
	for _, r := range recs {
		switch r.State {
		case jobs.Succeeded:
			f.Succeeded++
		case jobs.Failed:
			f.Failed++
		case jobs.Cancelled:
			f.Cancelled++
		default:
			f.Lost++
		}
	}
	counts, _, err := auditCounts(ctx, b.JS)
	if err != nil {
		t.Fatal(err)
	}
	for _, jid := range all {
		r := recs[jid]
		for _, phase := range []string{"requested", string(r.State)} {
			f.AuditExpected++
			if n := counts[jid][jobs.AuditAction(r.Kind, phase)]; n > 0 {
				f.AuditFound++
				f.AuditDuplicated += n - 1
			}
		}
	}
	f.Notes = append(f.Notes,
		fmt.Sprintf("free on the tmpfs: %d bytes before the failed backup, %d after; directory afterwards: %v", freeBefore, freeAfter, files),
		"the two earlier archives verified (backupfmt.Verify + stored SHA-256, then backup.verify jobs); the failed job is the expected failure",
	)
	f.Duration = time.Since(began)
	reliability.Write(t, reliability.Result{Fault: f})
	if f.Lost != 0 || f.Duplicated != 0 || f.Failed != 1 || f.AuditFound != f.AuditExpected || f.AuditDuplicated != 0 {
		t.Errorf("lost %d, duplicated %d, failed %d (want 1), audit %d/%d found, %d duplicated", f.Lost, f.Duplicated, f.Failed, f.AuditFound, f.AuditExpected, f.AuditDuplicated)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// freeBytes is the space available on the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return int64(s.Bavail) * int64(s.Bsize)
}

// writeBigSQLite writes a SQLite database of about size bytes of random
// (incompressible) blobs.
func writeBigSQLite(t *testing.T, path string, size int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; i < size/len(chunk); i++ {
		_, _ = rand.Read(chunk)
		if _, err := db.Exec(`INSERT INTO blobs (data) VALUES (?)`, chunk); err != nil {
			t.Fatal(err)
		}
	}
}
