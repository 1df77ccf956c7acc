package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/reliability"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

// Test timings of the worker processes: a killed worker's job comes back
// after JOB_ACK_WAIT; enough attempts that a job killed several times in
// a row still finishes.
const (
	chaosAckWait     = "5s"
	chaosMaxAttempts = 12
)

// EnvMinMidJobKills names the variable that sets how many SIGKILLs must hit
// a process while it runs a job (confirmed from the job record after the
// kill) for the worker-kill fault to pass; unset, 3 (6 in the full run).
const EnvMinMidJobKills = "CHAOS_MIN_MID_JOB_KILLS"

// minMidJobKills is the configured minimum of confirmed mid-job kills.
func minMidJobKills(t *testing.T) int {
	t.Helper()
	if v := os.Getenv(EnvMinMidJobKills); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", EnvMinMidJobKills, v)
		}
		return n
	}
	if reliability.Full() {
		return 6
	}
	return 3
}

// TestFaultWorkerProcessKill runs two OS processes of each worker kind
// (init, backup, chroma) on one embedded NATS server, PostgreSQL and a
// Chroma server, submits a mixed run of init, backup.create, backup.verify
// and chroma.train jobs, and SIGKILLs worker processes at random moments
// (mostly ones running a job; a replacement is started each time) until
// every job is submitted. Then it checks: every job succeeded, exactly one
// archive per succeeded backup.create and none of any other job, every
// archive verifies, Chroma holds exactly what a clean train writes, the
// System DB has no doubled rows, and each job's requested and succeeded
// audit events are there once. It runs once per backup store.
func TestFaultWorkerProcessKill(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"local", "nats"} {
		t.Run("store="+store, func(t *testing.T) { runWorkerKill(t, store) })
	}
}

// killStats are the measured facts of the kill loop.
type killStats struct {
	mu    sync.Mutex
	kills int
	// midJob counts the kills confirmed to have hit a running job: the
	// job's record, read after the process was gone, still says running
	// on that process at the same attempt (so the job had not finished).
	midJob int
	// killedAt is the attempt each such job was killed at, by job id.
	killedAt map[string]int
	byKind   map[string]int
}

func runWorkerKill(t *testing.T, backupStore string) {
	bins := binaries(t)
	pgURL := testkit.Postgres(t)
	chroma := testkit.Chroma(t)
	b, ns := testkit.Bus(t)
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sharedDir := t.TempDir() // what the pods share: the target copy, BACKUP_DIR
	backupDir := filepath.Join(sharedDir, "backups")
	env := []string{
		"APP_ENV=development", "NATS_URL=" + ns.ClientURL(), "DATABASE_URL=" + pgURL, "CHROMA_URL=" + chroma.URL,
		// Verify restores the dump into a scratch database as a
		// CREATEDB-only role, as a production deployment does (and its
		// jobs last long enough to be killed while running).
		"VERIFY_DATABASE_URL=" + testkit.PostgresCreateDBRole(t),
		"TARGET_DB_SOURCE=" + testkit.DemoDBCopy(t, "vanna_db.db"),
		"TARGET_DB_PATH=" + filepath.Join(sharedDir, "target", "vanna_db.db"),
		"ASSETS_DIR=" + filepath.Join(root, "assets"),
		"BACKUP_STORE=" + backupStore, "BACKUP_DIR=" + backupDir, "BACKUP_RETENTION_COUNT=10000",
		"JWT_SECRET=chaos-test-secret-0123456789abcdef0123",
		// One archive signing key for every process (each has its own
		// DATA_DIR, where a development key would differ).
		"BACKUP_SIGNING_KEY=" + signingKey(t),
		"WORKER_CONCURRENCY=2", "JOB_MAX_ATTEMPTS=" + strconv.Itoa(chaosMaxAttempts),
		"JOB_ACK_WAIT=" + chaosAckWait, "SHUTDOWN_TIMEOUT=5s", "LOG_LEVEL=info",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	began := time.Now()

	c := newCluster(t, bins, env)
	for _, k := range workerKinds {
		c.start(k)
		c.start(k)
	}
	sub := newSubmitter(b, chaosMaxAttempts, testkit.Logger(t))
	var all []string // every job id, for the final and audit checks

	// Setup, without kills: init, a clean train (its counts are the
	// reference), a clear, and one archive for the verify jobs.
	id := sub.submit(ctx, t, jobspec.InitArgs{})
	all = append(all, id)
	sub.mustSucceed(ctx, t, id, 5*time.Minute)
	rowsBefore := systemRows(ctx, t, pgURL)

	id = sub.submit(ctx, t, jobspec.ChromaTrainArgs{})
	all = append(all, id)
	sub.mustSucceed(ctx, t, id, 5*time.Minute)
	clean := chromaCounts(ctx, t, chroma.URL)
	if clean[vectors.CollectionDDL] == 0 || clean[vectors.CollectionDocumentation] == 0 {
		t.Fatalf("a clean train wrote %v: nothing to compare with", clean)
	}
	id = sub.submit(ctx, t, jobspec.ChromaClearArgs{})
	all = append(all, id)
	sub.mustSucceed(ctx, t, id, 5*time.Minute)
	if got := chromaCounts(ctx, t, chroma.URL); got[vectors.CollectionDDL] != 0 {
		t.Fatalf("after clear: %v", got)
	}
	id = sub.submit(ctx, t, jobspec.BackupCreateArgs{})
	all = append(all, id)
	seed := archiveOf(t, sub.mustSucceed(ctx, t, id, 5*time.Minute))

	// The run: jobs submitted at random intervals while workers are killed.
	n := 32
	if reliability.Full() {
		n = 120
	}
	mix := []jobs.Args{jobspec.BackupCreateArgs{}, jobspec.ChromaTrainArgs{}, jobspec.BackupVerifyArgs{Name: seed}, jobspec.InitArgs{}}
	var runIDs []string
	stats := &killStats{byKind: map[string]int{}, killedAt: map[string]int{}}
	minMid := minMidJobKills(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		killLoop(ctx, t, c, sub, &runIDs, stats, minMid, stop, func() {
			id, err := sub.trySubmit(ctx, mix[rand.IntN(len(mix))])
			if err != nil {
				t.Error(err)
			}
			if id != "" {
				c.mu.Lock()
				runIDs = append(runIDs, id)
				c.mu.Unlock()
			}
		})
	}()
	for i := range n {
		id := sub.submit(ctx, t, mix[i%len(mix)])
		c.mu.Lock()
		runIDs = append(runIDs, id)
		c.mu.Unlock()
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	all = append(all, runIDs...)
	submittedAt := time.Since(began)

	wctx, wcancel := context.WithTimeout(ctx, 20*time.Minute)
	final := sub.waitFinal(wctx, runIDs)
	wcancel()

	f := &reliability.Fault{
		Name:  reliability.FaultWorkerSigkill,
		Fault: "SIGKILL of worker processes while jobs were submitted: each kill waits for a job observed running and kills its process (any process when none runs for 3s); a replacement started each time",
		Setup: fmt.Sprintf("embedded NATS, PostgreSQL System DB, Chroma, BACKUP_STORE=%s; 2 OS processes each of the init, backup and chroma worker binaries, WORKER_CONCURRENCY=2, JOB_ACK_WAIT=%s, JOB_MAX_ATTEMPTS=%d", backupStore, chaosAckWait, chaosMaxAttempts),
	}
	if backupStore == "nats" {
		f.Name = reliability.FaultWorkerSigkillNATS
	}
	f.Submitted = len(runIDs)
	redelivered, redeliveredDone := 0, 0
	var succeededCreates []jobs.Record
	for _, id := range runIDs {
		rec, ok := final[id]
		switch {
		case !ok || !rec.State.Final():
			f.Lost++
			t.Errorf("job %s %s never finished: state %s, step %q, attempt %d", rec.Kind, id, rec.State, rec.Step, rec.Attempt)
			continue
		case rec.State == jobs.Succeeded:
			f.Succeeded++
		case rec.State == jobs.Failed:
			f.Failed++
			t.Errorf("job %s %s failed after %d attempts: %+v", rec.Kind, id, rec.Attempt, rec.Error)
		case rec.State == jobs.Cancelled:
			f.Cancelled++
			t.Errorf("job %s %s was cancelled", rec.Kind, id)
		}
		if rec.Attempt > 1 {
			redelivered++
		}
		stats.mu.Lock()
		if at, ok := stats.killedAt[id]; ok && rec.State == jobs.Succeeded && rec.Attempt > at {
			redeliveredDone++
		}
		stats.mu.Unlock()
		if rec.Kind == jobs.KindBackupCreate && rec.State == jobs.Succeeded {
			succeededCreates = append(succeededCreates, rec)
		}
	}
	if f.Lost > 0 {
		f.Duration = time.Since(began)
		reliability.Write(t, reliability.Result{Fault: f})
		t.FailNow()
	}

	// Archives: one per succeeded backup.create (setup's included), none
	// of anything else, each complete.
	st := openStore(ctx, t, backupStore, backupDir, b)
	infos, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perJob := map[string][]string{}
	for _, in := range infos {
		nm, err := backupfmt.ParseArchiveName(in.Name)
		if err != nil {
			t.Fatalf("listed %s: %v", in.Name, err)
		}
		perJob[nm.JobID] = append(perJob[nm.JobID], in.Name)
	}
	want := map[string]string{all[3]: seed}
	for _, rec := range succeededCreates {
		want[rec.ID] = archiveOf(t, rec)
	}
	for jobID, names := range perJob {
		w, ok := want[jobID]
		switch {
		case !ok:
			f.Duplicated += len(names)
			t.Errorf("archives %v belong to job %s, which is not a succeeded backup.create", names, jobID)
		case len(names) != 1 || names[0] != w:
			f.Duplicated += len(names) - 1
			t.Errorf("job %s left archives %v, its result names %s", jobID, names, w)
		}
	}
	for jobID, w := range want {
		if len(perJob[jobID]) == 0 {
			f.Lost++
			t.Errorf("job %s succeeded with archive %s, which is not in the store", jobID, w)
		}
	}
	for _, in := range infos {
		verifyInStore(ctx, t, st, in)
	}
	// What killed writers left behind, unlisted: temp files (local) or
	// chunks of objects whose meta message never came (nats).
	leftover := ""
	if backupStore == "local" {
		tmpLeft := 0
		entries, _ := os.ReadDir(backupDir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				tmpLeft++
			}
		}
		leftover = fmt.Sprintf("%d .tmp- files of killed writers left in BACKUP_DIR (not listed; NewLocal removes them after %s)", tmpLeft, backupstore.StaleAfter)
	} else if s, err := b.JS.Stream(ctx, "OBJ_"+bus.BucketBackups); err == nil {
		if si, err := s.Info(ctx); err == nil {
			var listed uint64
			for _, in := range infos {
				listed += uint64(in.Size)
			}
			leftover = fmt.Sprintf("stream OBJ_%s holds %d bytes, the listed archives %d (the difference is metadata and the chunks of killed writers' unfinished objects, never listed)", bus.BucketBackups, si.State.Bytes, listed)
		}
	}
	// And through the verify job's own path (pg_restore into a scratch DB,
	// SQLite integrity_check, JSONL), now without kills.
	var verifyIDs []string
	for _, in := range infos {
		verifyIDs = append(verifyIDs, sub.submit(ctx, t, jobspec.BackupVerifyArgs{Name: in.Name}))
	}
	all = append(all, verifyIDs...)
	vctx, vcancel := context.WithTimeout(ctx, 10*time.Minute)
	for id, rec := range sub.waitFinal(vctx, verifyIDs) {
		if rec.State != jobs.Succeeded {
			t.Errorf("verify job %s: %s %+v", id, rec.State, rec.Error)
		}
	}
	vcancel()

	// Chroma: exactly a clean train's records, however often a train was
	// killed mid-upsert.
	if got := chromaCounts(ctx, t, chroma.URL); fmt.Sprint(got) != fmt.Sprint(clean) {
		f.Duplicated++
		t.Errorf("chroma counts after the run %v, a clean train wrote %v", got, clean)
	}
	// System DB: re-run (and killed) inits doubled nothing.
	if got := systemRows(ctx, t, pgURL); fmt.Sprint(got) != fmt.Sprint(rowsBefore) {
		f.Duplicated++
		t.Errorf("system DB rows after the run %v, after the first init %v", got, rowsBefore)
	}

	// Audit: the final event once per job. The requested events are the
	// submitter's own (it stands in for the API), so they are checked to be
	// there once but left out of the audit figures, which count only what
	// the workers wrote.
	counts, events, err := auditCounts(ctx, b.JS)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := sub.records(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, id := range all {
		rec := recs[id]
		if got := counts[id][jobs.AuditAction(rec.Kind, "requested")]; got != 1 {
			t.Errorf("audit: %d requested events (the submitter's) for job %s, want 1", got, id)
		}
		action := jobs.AuditAction(rec.Kind, string(rec.State))
		f.AuditExpected++
		switch got := counts[id][action]; {
		case got == 0:
			t.Errorf("audit: no %s event for job %s", action, id)
		default:
			f.AuditFound++
			if got > 1 {
				f.AuditDuplicated += got - 1
				t.Errorf("audit: %d %s events for job %s", got, action, id)
			}
		}
		started += counts[id][jobs.AuditAction(rec.Kind, "started")]
	}

	stats.mu.Lock()
	f.Counts = map[string]int{"kills": stats.kills, "kills_mid_job": stats.midJob, "killed_jobs_redelivered_and_succeeded": redeliveredDone}
	f.Minimums = map[string]int{"kills_mid_job": minMid, "killed_jobs_redelivered_and_succeeded": 1}
	f.Notes = append(f.Notes,
		fmt.Sprintf("%d SIGKILLs (%d confirmed mid-job: the record still said running on the killed process after it was gone; required %d (%s); by kind %v), %d processes started in all", stats.kills, stats.midJob, minMid, EnvMinMidJobKills, stats.byKind, c.started),
		fmt.Sprintf("%d of the %d jobs killed mid-job were redelivered and succeeded on a later attempt", redeliveredDone, len(stats.killedAt)),
		"audit figures count the workers' final events only; the requested events, which the test's submitter publishes in place of the API, are checked to be there once but not counted",
		fmt.Sprintf("%d of %d jobs of the run took more than one delivery (redelivered after a kill, or retried after lock_held behind a killed holder's lease); %d started events for %d jobs in all", redelivered, len(runIDs), started, len(all)),
		fmt.Sprintf("%d archives in the store, each verified (backupfmt.Verify + stored SHA-256, then a backup.verify job); %s", len(infos), leftover),
		fmt.Sprintf("chroma records %v = a clean train's; %d audit events read", clean, events),
		fmt.Sprintf("all %d jobs submitted after %s; setup jobs (init, train, clear, backup) and the %d post-run verify jobs checked too", len(runIDs), submittedAt.Round(time.Second), len(verifyIDs)),
	)
	stats.mu.Unlock()
	f.Duration = time.Since(began)
	reliability.Write(t, reliability.Result{Fault: f})
	if f.Lost != 0 || f.Duplicated != 0 {
		t.Errorf("lost %d, duplicated %d: want 0 and 0", f.Lost, f.Duplicated)
	}
	for _, p := range f.Problems() {
		t.Error(p)
	}
}

// killLoop SIGKILLs a worker every 1.5–4.5 s: after each pause it polls the
// records of ids every 10 ms for up to 3 s until one is running, and kills
// the process running it (if none runs by then, any live process); a
// replacement of the same kind is started at once. A kill counts as
// mid-job only when the record, read after the process is gone, still says
// running on that process at the attempt seen before the kill. Once stop
// is closed it goes on until at least minMid mid-job kills were made: when
// every job of ids is final it submits one more (more, which adds it to
// ids) to have something running to kill, at most maxTopUps times (or
// until ctx ends).
func killLoop(ctx context.Context, t *testing.T, c *cluster, sub *submitter, ids *[]string, stats *killStats, minMid int, stop <-chan struct{}, more func()) {
	topUps := 0
	stopped := false
	for {
		pause := time.After(time.Duration(1500+rand.IntN(3000)) * time.Millisecond)
		select {
		case <-stop:
			stopped = true
		case <-ctx.Done():
			return
		case <-pause:
		}
		if stopped {
			stats.mu.Lock()
			enough := stats.midJob >= minMid
			stats.mu.Unlock()
			if enough {
				return
			}
		}
		c.mu.Lock()
		snapshot := append([]string(nil), *ids...)
		c.mu.Unlock()
		victim, job, unfinished := runningJob(ctx, c, sub, snapshot, 3*time.Second)
		if stopped && victim == nil && !unfinished {
			if topUps >= maxTopUps {
				return // the minimum was not reached: checked by the test
			}
			topUps++
			more() // something to kill while it runs
			continue
		}
		if victim == nil {
			if live := c.live(); len(live) > 0 {
				victim = live[rand.IntN(len(live))]
			}
		}
		if victim == nil {
			continue
		}
		c.kill(victim)
		c.start(victim.kind)
		midJob := false
		if job.ID != "" {
			if rec, _, err := sub.store.Get(ctx, job.ID); err == nil {
				midJob = rec.State == jobs.Running && rec.Worker == job.Worker && rec.Attempt == job.Attempt
			}
		}
		stats.mu.Lock()
		stats.kills++
		stats.byKind[victim.kind]++
		if midJob {
			stats.midJob++
			stats.killedAt[job.ID] = job.Attempt
		}
		stats.mu.Unlock()
		t.Logf("SIGKILL %s (mid-job %v, job %s attempt %d)", victim.workerName(), midJob, job.ID, job.Attempt)
	}
}

// maxTopUps bounds the jobs killLoop submits after the run to reach its
// minimum of mid-job kills.
const maxTopUps = 40

// runningJob polls the records of ids every 10 ms (jobs of the mix can
// finish within 100 ms) for up to wait and
// returns a live process running one of them with that job's record, or
// nil when none ran; unfinished says whether any job of ids was not final
// at the last poll.
func runningJob(ctx context.Context, c *cluster, sub *submitter, ids []string, wait time.Duration) (*proc, jobs.Record, bool) {
	deadline := time.Now().Add(wait)
	unfinished := false
	for {
		if recs, err := sub.records(ctx, ids); err == nil {
			unfinished = false
			var busy []jobs.Record
			for _, r := range recs {
				if !r.State.Final() {
					unfinished = true
				}
				if r.State == jobs.Running && c.byWorker(r.Worker) != nil {
					busy = append(busy, r)
				}
			}
			if len(busy) > 0 {
				r := busy[rand.IntN(len(busy))]
				if p := c.byWorker(r.Worker); p != nil {
					return p, r, true
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, jobs.Record{}, unfinished
		}
		select {
		case <-ctx.Done():
			return nil, jobs.Record{}, unfinished
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// archiveOf returns the archive a succeeded backup.create names.
func archiveOf(t *testing.T, rec jobs.Record) string {
	t.Helper()
	var res struct {
		Archive string `json:"archive"`
	}
	if err := json.Unmarshal(rec.Result, &res); err != nil || res.Archive == "" {
		t.Fatalf("backup job %s result %s: %v", rec.ID, rec.Result, err)
	}
	return res.Archive
}

// openStore opens the backup store the workers use.
func openStore(ctx context.Context, t *testing.T, kind, dir string, b *bus.Bus) backupstore.Store {
	t.Helper()
	var (
		st  backupstore.Store
		err error
	)
	if kind == "nats" {
		st, err = backupstore.NewNATS(ctx, b.JS, 1)
	} else {
		st, err = backupstore.NewLocal(dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// verifyInStore reads an archive back and checks it with backupfmt.Verify
// and against the SHA-256 stored with it.
func verifyInStore(ctx context.Context, t *testing.T, st backupstore.Store, in backupstore.Info) {
	t.Helper()
	rc, info, err := st.Open(ctx, in.Name)
	if err != nil {
		t.Errorf("open %s: %v", in.Name, err)
		return
	}
	defer rc.Close()
	rep, err := backupfmt.Verify(ctx, rc, backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: in.Name}})
	switch {
	case err != nil:
		t.Errorf("archive %s does not verify: %v", in.Name, err)
	case !rep.OK():
		t.Errorf("archive %s: problems %v", in.Name, rep.Problems)
	case info.SHA256 == "" || rep.ArchiveSHA256 != info.SHA256:
		t.Errorf("archive %s: content sha256 %s, stored %q", in.Name, rep.ArchiveSHA256, info.SHA256)
	}
}

// chromaCounts returns the records per training collection (0 when absent).
func chromaCounts(ctx context.Context, t *testing.T, url string) map[string]int {
	t.Helper()
	cl, err := vectors.New(url, vectors.NewLocal(0), vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]int{}
	for _, name := range vectors.Collections {
		n, err := cl.Count(ctx, name)
		if errors.Is(err, vectors.ErrNotFound) {
			n, err = 0, nil
		}
		if err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
		out[name] = n
	}
	return out
}

// systemRows counts the rows init writes (users, glossary, demo data).
func systemRows(ctx context.Context, t *testing.T, url string) map[string]int64 {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := map[string]int64{}
	for _, table := range []string{"users", "business_ontologies", "accounting_transactions", "configurations"} {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM "`+table+`"`).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		out[table] = n
	}
	return out
}
