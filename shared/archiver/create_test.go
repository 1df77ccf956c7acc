package archiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

// TestCreateAllComponentsOnSQLite backs up a SQLite System DB, the target
// copy and three Chroma collections into one archive, checks it is listed
// once with the right counts, opens it with the standard tools, verifies
// it, then flips one byte and sees verification fail naming the part.
func TestCreateAllComponentsOnSQLite(t *testing.T) {
	t.Parallel()
	ch := testkit.Chroma(t)
	e := newEnv(t, envOpts{Chroma: ch.URL})
	seedChroma(t, ch.URL, map[string]int{vectors.CollectionSQL: 30, vectors.CollectionDDL: 7})
	// "documentation" does not exist: it is archived as an empty file.

	res := e.create(jobspec.BackupCreateArgs{Note: "before the upgrade"})
	infos := e.listed()
	if len(infos) != 1 || infos[0].Name != res.Archive {
		t.Fatalf("listed %+v, want exactly %s", infos, res.Archive)
	}
	info := infos[0]
	if info.SHA256 != res.SHA256 || info.Size != res.Bytes {
		t.Errorf("listed sha %s size %d, result %s %d", info.SHA256, info.Size, res.SHA256, res.Bytes)
	}
	if !slices.Equal(info.Meta.Components, []string{"system", "target", "chroma"}) || info.Meta.Note != "before the upgrade" ||
		!info.Meta.CreatedAt.Equal(res.Manifest.CreatedAt) {
		t.Errorf("meta %+v", info.Meta)
	}
	n, err := backupfmt.ParseArchiveName(res.Archive)
	if err != nil || n.Compression != backupfmt.Gzip {
		t.Fatalf("archive name %s: %v", res.Archive, err)
	}

	// Counts: the manifest against the stores themselves.
	if got, want := res.Components["system"].Count, systemRows(t, e.db); got != want || want == 0 {
		t.Errorf("system rows %d, database has %d", got, want)
	}
	if got, want := res.Components["target"].Count, sqliteRows(t, e.cfg.TargetDBPath); got != want || want == 0 {
		t.Errorf("target rows %d, file has %d", got, want)
	}
	if c := res.Components["chroma"].Counts; c["sql"] != 30 || c["ddl"] != 7 || c["documentation"] != 0 {
		t.Errorf("chroma counts %v", c)
	}
	cm := res.Manifest.Components["chroma"]
	if !strings.Contains(cm.Source, ch.URL) {
		t.Errorf("chroma source %q", cm.Source)
	}
	colls := cm.Meta["collections"].(map[string]CollectionMeta)
	if !colls["sql"].Exists || colls["documentation"].Exists || colls["sql"].Metadata[vectors.MetaDimension] == nil {
		t.Errorf("collections meta %+v", colls)
	}

	// The standard tools.
	path := e.archivePath(res.Archive)
	run(t, "", "gzip", "-t", path)
	sum := sha256.New()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum.Write(data)
	if hex.EncodeToString(sum.Sum(nil)) != res.SHA256 {
		t.Errorf("sha256 of the file differs from the result")
	}
	listing := run(t, "", "tar", "-tzf", path)
	if !strings.HasSuffix(strings.TrimSpace(listing), backupfmt.ManifestName) {
		t.Errorf("manifest.json is not the last entry:\n%s", listing)
	}
	dir := extract(t, path, false)
	m := readManifestFile(t, dir)
	if m.JobID != res.Manifest.JobID || len(m.Files()) != len(res.Manifest.Files()) {
		t.Errorf("manifest.json %+v differs from the result's", m)
	}
	for _, f := range m.Files() {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		if hex.EncodeToString(s[:]) != f.SHA256 || int64(len(b)) != f.Size {
			t.Errorf("%s: extracted file does not match its manifest entry", f.Path)
		}
	}
	for _, p := range []string{"system/system.db", targetEntry(e.cfg.TargetDBPath)} {
		if out := strings.TrimSpace(run(t, "", "sqlite3", filepath.Join(dir, p), "PRAGMA integrity_check")); out != "ok" {
			t.Errorf("%s: integrity_check %q", p, out)
		}
	}
	if got, want := sqliteRows(t, filepath.Join(dir, targetEntry(e.cfg.TargetDBPath))), res.Components["target"].Count; got != want {
		t.Errorf("extracted target has %d rows, manifest %d", got, want)
	}
	recs := jsonlRecords(t, filepath.Join(dir, "chroma/sql.jsonl"))
	if len(recs) != 30 {
		t.Fatalf("sql.jsonl: %d records", len(recs))
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r["id"].(string))
		if emb, _ := r["embedding"].([]any); len(emb) != vectors.LocalDimension || r["document"] == "" || r["metadata"] == nil {
			t.Fatalf("record %v lacks its embedding, document or metadata", r["id"])
		}
	}
	if !sort.StringsAreSorted(ids) {
		t.Errorf("records are not in id order")
	}
	if fi, err := os.Stat(filepath.Join(dir, "chroma/documentation.jsonl")); err != nil || fi.Size() != 0 {
		t.Errorf("documentation.jsonl: %v %v", fi, err)
	}

	// Verify passes and is recorded.
	ctx := context.Background()
	vid := jobs.NewID()
	vr, err := e.a.Verify(ctx, res.Archive, Run{JobID: vid, Log: e.deps.Log})
	if err != nil || vr.Outcome != backupstore.OutcomePassed {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	checks := map[string]string{}
	for _, f := range vr.Files {
		checks[f.Path] = f.Check
	}
	if checks["system/system.db"] != jobspec.CheckSQLite || checks["chroma/sql.jsonl"] != jobspec.CheckJSONL || checks[targetEntry(e.cfg.TargetDBPath)] != jobspec.CheckSQLite {
		t.Errorf("checks %v", checks)
	}
	meta, err := e.st.Meta(ctx, res.Archive)
	if err != nil || !meta.Verified() || meta.Verification.JobID != vid || len(meta.Components) != 3 {
		t.Fatalf("meta after verify %+v %v", meta, err)
	}

	// One flipped byte: the bytes are not the signed ones; verification
	// fails before any checker runs, and says so in the Meta.
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	vr, err = e.a.Verify(ctx, res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	var ce *jobs.CodedError
	if !errors.As(err, &ce) || ce.Code != jobs.CodeArchiveSignatureInvalid || !ce.Permanent || vr.Outcome != backupstore.OutcomeFailed {
		t.Fatalf("verify of a corrupt archive: %v, %+v", err, vr)
	}
	meta, _ = e.st.Meta(ctx, res.Archive)
	if meta.Verified() || meta.Verification.Outcome != backupstore.OutcomeFailed || !strings.Contains(meta.Verification.Error, "changed since it was signed") {
		t.Errorf("meta after a verify of changed bytes %+v", meta.Verification)
	}

	// The archive's own checksums still name the part the flip is in.
	rep, verr := backupfmt.Verify(ctx, bytes.NewReader(data), backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: res.Archive}})
	if verr == nil || len(rep.Problems) == 0 {
		t.Fatalf("structural verify of a corrupt archive: %v", verr)
	}
	first := rep.Problems[0].Error()
	t.Logf("structural verify of the corrupt archive: %v", verr)
	named := false
	for _, f := range res.Manifest.Files() {
		if strings.HasPrefix(first, f.Path) {
			named = true
		}
	}
	if !named {
		t.Errorf("first problem %q does not name a part of the archive", first)
	}
}

// TestCreateOnPostgres: pg_dump streamed into the archive, counted in the
// same snapshot, restorable with pg_restore; verify restores it into a
// scratch database as VERIFY_DATABASE_URL's CREATEDB-only role, and falls
// back on pg_restore --list for a superuser or a role that may not create
// databases.
func TestCreateOnPostgres(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Postgres: true})
	res := e.create(jobspec.BackupCreateArgs{})
	if c := res.Components["chroma"]; c.Status != backupfmt.StatusSkipped || !strings.Contains(c.Reason, "CHROMA_URL") {
		t.Errorf("chroma %+v, want skipped for CHROMA_URL", c)
	}
	f := fileOf(t, res.Manifest, "system/system.dump")
	if want := systemRows(t, e.db); f.Count != want || f.Kind != backupfmt.KindPGDump {
		t.Errorf("system dump count %d kind %s, database has %d rows", f.Count, f.Kind, want)
	}
	if src := res.Manifest.Components["system"].Source; strings.Contains(src, "password") || src == "" {
		t.Errorf("system source %q", src)
	}
	dir := extract(t, e.archivePath(res.Archive), false)
	toc := run(t, "", "pg_restore", "--list", filepath.Join(dir, "system/system.dump"))
	if !strings.Contains(toc, "TABLE DATA public users") {
		t.Errorf("pg_restore --list:\n%s", toc)
	}

	ctx := context.Background()
	// DATABASE_URL's role is a superuser here: no scratch restore as it,
	// only the table of contents.
	vr, err := e.a.Verify(ctx, res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	if err != nil {
		t.Fatal(err)
	}
	for _, vf := range vr.Files {
		if vf.Path == "system/system.dump" && vf.Check != jobspec.CheckRestoreList {
			t.Errorf("system dump checked by %q as a superuser, want %q", vf.Check, jobspec.CheckRestoreList)
		}
	}
	// VERIFY_DATABASE_URL, a CREATEDB-only role: a scratch restore.
	vdeps := e.deps
	vdeps.Config.VerifyDatabaseURL = testkit.PostgresCreateDBRole(t)
	vr, err = New(vdeps, Options{Store: e.st}).Verify(ctx, res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	if err != nil {
		t.Fatal(err)
	}
	for _, vf := range vr.Files {
		if vf.Path == "system/system.dump" && (vf.Check != jobspec.CheckScratchRestore || vf.Count != f.Count) {
			t.Errorf("system dump checked by %q counting %d, want a scratch restore counting %d", vf.Check, vf.Count, f.Count)
		}
	}

	// A role without CREATEDB: pg_restore --list instead.
	role := "insightops_nocreatedb_" + testkit.RandomSuffix()
	if _, err := e.db.SQL.ExecContext(ctx, "CREATE ROLE "+role+" LOGIN NOCREATEDB PASSWORD 'pw'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.db.SQL.ExecContext(context.Background(), "DROP ROLE IF EXISTS "+role) })
	deps := e.deps
	deps.Config.DatabaseURL = strings.Replace(e.cfg.DatabaseURL, "postgres@", role+":pw@", 1)
	vr, err = New(deps, Options{Store: e.st}).Verify(ctx, res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	if err != nil {
		t.Fatal(err)
	}
	for _, vf := range vr.Files {
		if vf.Path == "system/system.dump" && vf.Check != jobspec.CheckRestoreList {
			t.Errorf("without CREATEDB the dump was checked by %q", vf.Check)
		}
	}
}

// TestCreateZstd: BACKUP_COMPRESSION=zstd gives a .tar.zst that zstd and
// tar read and that verifies.
func TestCreateZstd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_COMPRESSION": "zstd"}})
	res := e.create(jobspec.BackupCreateArgs{Components: []string{"system", "target"}})
	if !strings.HasSuffix(res.Archive, ".tar.zst") || res.Manifest.Compression != backupfmt.Zstd {
		t.Fatalf("archive %s compression %s", res.Archive, res.Manifest.Compression)
	}
	if c := res.Manifest.Components["chroma"]; c.Status != backupfmt.StatusSkipped || c.Reason != "not requested" {
		t.Errorf("chroma %+v", c)
	}
	path := e.archivePath(res.Archive)
	run(t, "", "zstd", "-t", "-q", path)
	dir := extract(t, path, true)
	if out := strings.TrimSpace(run(t, "", "sqlite3", filepath.Join(dir, "system/system.db"), "PRAGMA integrity_check")); out != "ok" {
		t.Errorf("integrity_check %q", out)
	}
	if _, err := e.a.Verify(context.Background(), res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log}); err != nil {
		t.Fatal(err)
	}
}

// TestCreateUsesTheConfiguredCompressionLevel: BACKUP_COMPRESSION_LEVEL
// reaches the archive writer; the same Target DB at zstd level 19 makes a
// smaller archive than at the default level, and both verify.
func TestCreateUsesTheConfiguredCompressionLevel(t *testing.T) {
	t.Parallel()
	size := map[string]int64{}
	for _, level := range []string{"", "19"} {
		e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": level}})
		res := e.create(jobspec.BackupCreateArgs{Components: []string{"target"}})
		if _, err := e.a.Verify(context.Background(), res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log}); err != nil {
			t.Fatalf("level %q: %v", level, err)
		}
		size[level] = res.Bytes
	}
	if size["19"] >= size[""] {
		t.Fatalf("archive at level 19 %d bytes, at the default level %d: the level did not reach the writer", size["19"], size[""])
	}
}

// TestCreateRejectsBadParams: unknown or duplicate components, a disabled
// component asked for explicitly, a long note: permanent errors, nothing
// written.
func TestCreateRejectsBadParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{NoTarget: true})
	for _, p := range []jobspec.BackupCreateArgs{
		{Components: []string{"system", "vectors"}},
		{Components: []string{"system", "system"}},
		{Components: []string{"chroma"}},
		{Components: []string{"target"}},
		{Note: strings.Repeat("n", jobspec.MaxBackupNote+1)},
	} {
		_, err := e.createID(jobs.NewID(), p)
		if !jobs.IsPermanent(err) {
			t.Errorf("%+v: %v, want a permanent error", p, err)
		}
	}
	if _, err := e.createID("not-a-ulid", jobspec.BackupCreateArgs{}); !jobs.IsPermanent(err) {
		t.Errorf("bad job id: %v", err)
	}
	// Defaults: the missing target copy is skipped with its reason.
	res := e.create(jobspec.BackupCreateArgs{})
	if c := res.Components["target"]; c.Status != backupfmt.StatusSkipped || !strings.Contains(c.Reason, e.cfg.TargetDBPath) {
		t.Errorf("target %+v", c)
	}
	if len(e.listed()) != 1 {
		t.Errorf("listed %v", e.listed())
	}
}

// TestCreateSameJobTwiceKeepsOneArchive: a redelivered job reuses its
// complete archive, and replaces one that does not verify.
func TestCreateSameJobTwiceKeepsOneArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	id := jobs.NewID()
	first, err := e.createID(id, jobspec.BackupCreateArgs{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.createID(id, jobspec.BackupCreateArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.Archive != first.Archive || again.SHA256 != first.SHA256 || again.Components["system"].Count != first.Components["system"].Count {
		t.Errorf("second run %+v, want the first archive reused", again)
	}
	if got := e.listed(); len(got) != 1 {
		t.Fatalf("listed %d archives", len(got))
	}
	// Corrupt it: the next run replaces it.
	path := e.archivePath(first.Archive)
	data, _ := os.ReadFile(path)
	data[len(data)/3] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(first.Manifest.CreatedAt.Truncate(time.Second).Add(time.Second))) // a new name
	third, err := e.createID(id, jobspec.BackupCreateArgs{})
	if err != nil {
		t.Fatal(err)
	}
	got := e.listed()
	if third.Reused || len(got) != 1 || got[0].Name != third.Archive {
		t.Fatalf("after corruption: %+v, listed %+v", third, got)
	}
	if _, err := e.a.Verify(context.Background(), third.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log}); err != nil {
		t.Fatal(err)
	}
}

// TestCreateWhileLocked: a lease held by a restore is a retryable
// lock_held error saying who holds it, and nothing is written.
func TestCreateWhileLocked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	restoreID := jobs.NewID()
	lease, err := locks.Acquire(ctx, e.bus.Locks, locks.Target, locks.Holder{Owner: restoreID, Operation: jobs.KindRestore}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.createID(jobs.NewID(), jobspec.BackupCreateArgs{})
	var ce *jobs.CodedError
	if !errors.As(err, &ce) || ce.Code != "lock_held" || ce.Permanent || !strings.Contains(err.Error(), "target is locked by restore.run "+restoreID+" since") {
		t.Fatalf("create under a held lease: %v", err)
	}
	if hs, _ := locks.Holders(ctx, e.bus.Locks, locks.System); len(hs) != 0 {
		t.Errorf("the system lease taken before the held one was not released: %v", hs)
	}
	if len(e.listed()) != 0 {
		t.Errorf("something was written")
	}
	// SkipLocks: the caller holds them (the restore's safety backup).
	if _, err := e.createRun(jobspec.BackupCreateArgs{}, Run{JobID: jobs.NewID(), SkipLocks: true}); err != nil {
		t.Fatal(err)
	}
	_ = lease.Release(ctx)
	if _, err := e.createID(jobs.NewID(), jobspec.BackupCreateArgs{}); err != nil {
		t.Fatal(err)
	}
	if hs, _ := locks.Holders(ctx, e.bus.Locks, locks.Order...); len(hs) != 0 {
		t.Errorf("leases left after the backup: %v", hs)
	}
}

// TestChromaPageFailureFailsTheBackup: Chroma answering 500 to one page of
// the export (behind a proxy) fails the backup, retryable, with nothing
// listed: no silently missing batch.
func TestChromaPageFailureFailsTheBackup(t *testing.T) {
	t.Parallel()
	ch := testkit.Chroma(t)
	seedChroma(t, ch.URL, map[string]int{vectors.CollectionSQL: 40})
	target, err := url.Parse(ch.URL)
	if err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/get") && gets.Add(1) > 2 {
			http.Error(w, `{"error":"InternalError","message":"injected page failure"}`, http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	e := newEnv(t, envOpts{Chroma: srv.URL})
	e.a.opts.ExportPage = 5
	_, err = e.createID(jobs.NewID(), jobspec.BackupCreateArgs{})
	var ce *jobs.CodedError
	if !errors.As(err, &ce) || ce.Permanent || ce.Code != "chroma_unavailable" || !strings.Contains(err.Error(), "export collection sql") {
		t.Fatalf("backup with a failing page: %v", err)
	}
	if gets.Load() < 3 {
		t.Fatalf("only %d get requests: the failure was not mid-export", gets.Load())
	}
	if got := e.listed(); len(got) != 0 {
		t.Fatalf("listed after a failed export: %+v", got)
	}
}

// TestTakenOverAttemptDeletesItsArchive: an attempt whose leases were
// taken over by a later attempt of the same job (its worker was cut off,
// not dead) deletes the archive it completes, so the job never leaves two.
func TestTakenOverAttemptDeletesItsArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{NoTarget: true})
	id := jobs.NewID()
	e.a.opts.AfterComponent = func(ctx context.Context, component string) error {
		// A later attempt of the same job takes the system lease over.
		if err := e.bus.Locks.Delete(ctx, locks.System); err != nil {
			return err
		}
		_, err := locks.Acquire(ctx, e.bus.Locks, locks.System, locks.Holder{Owner: id, Operation: jobs.KindBackupCreate}, time.Hour)
		return err
	}
	_, err := e.createID(id, jobspec.BackupCreateArgs{})
	var ce *jobs.CodedError
	if !errors.As(err, &ce) || ce.Code != "lock_lost" || ce.Permanent {
		t.Fatalf("attempt whose lease was taken over: %v", err)
	}
	if got := e.listed(); len(got) != 0 {
		t.Fatalf("listed %+v", got)
	}
}
