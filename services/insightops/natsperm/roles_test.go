package natsperm

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/services/backup/backupworker"
	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/services/init/initworker"
	"github.com/insightops/insightops/services/restore/restoreworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// TestEachServiceDoesItsJobAsItsOwnNATSUser runs every role on a server
// started from deploy/nats: the provisioner provisions, the API submits
// jobs and reads their records, presence and archives and runs the audit
// sink; the init, backup and restore workers run their real handlers (the
// init job auto-submits a chroma.train, the backup writes an archive to
// the BACKUPS object store, the restore of the System DB pauses the audit
// sink and re-reads AUDIT), and the real chroma worker (chromaworker.Run,
// on a real Chroma) trains: it finds the chroma lease held by a dead
// earlier attempt of that very job and takes it over, and a chroma.clear
// blocked by a restore's lease audits its lock wait, is retried and runs
// once the lease is released. No connection may see a single permissions
// violation.
func TestEachServiceDoesItsJobAsItsOwnNATSUser(t *testing.T) {
	// Not parallel: sets process environment variables (t.Setenv) the shipped nats-server.conf reads.
	addr := startFromDeployConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := testkit.Logger(t)
	data := t.TempDir()
	chromaSrv := testkit.Chroma(t)
	extra := map[string]string{
		"CHROMA_URL":       chromaSrv.URL,
		"TARGET_DB_SOURCE": repoPath(t, "assets", "databases", "vanna_db.db"),
		"TARGET_DB_PATH":   filepath.Join(data, "target", "vanna_db.db"),
		"ASSETS_DIR":       repoPath(t, "assets"),
	}

	// The provisioner (the init Job) creates streams, buckets and BACKUPS.
	prov, provV := openRole(ctx, t, roleEnv(addr, "provisioner", data, extra), log)
	if _, err := prov.Bus.JS.ObjectStore(ctx, bus.BucketBackups); err != nil {
		t.Fatalf("provisioner did not create %s: %v", bus.BucketBackups, err)
	}

	roles := map[string]app.Deps{}
	seen := map[string]*violations{"provisioner": provV}
	for _, u := range []string{"api", "init", "backup", "restore", "chroma"} {
		roles[u], seen[u] = openRole(ctx, t, roleEnv(addr, u, data, extra), log)
	}
	t.Cleanup(func() {
		for u, v := range seen {
			if errs := v.since(0); len(errs) > 0 {
				t.Errorf("%s: permissions violations while doing its job: %v", u, errs)
			}
		}
	})

	runCtx, stopAll := context.WithCancel(ctx)
	done := make(chan string, 8)
	started := 0
	run := func(name string, f func(context.Context) error) {
		started++
		go func() {
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				t.Errorf("%s: %v", name, err)
			}
			done <- name
		}()
	}
	defer func() {
		stopAll()
		for i := 0; i < started; i++ {
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("a role did not stop within 30s")
				return
			}
		}
	}()
	api := roles["api"]
	run("audit sink (api)", func(c context.Context) error { return auditsink.Run(c, api.Bus.JS, api.DB, log) })
	run("init worker", func(c context.Context) error { return initworker.Run(c, roles["init"]) })
	run("backup worker", func(c context.Context) error { return backupworker.Run(c, roles["backup"]) })
	run("restore worker", func(c context.Context) error { return restoreworker.Run(c, roles["restore"]) })
	chroma := roles["chroma"]
	// The chroma worker starts only once init's train job is queued and a
	// dead earlier attempt of it "holds" the chroma lease (below).
	startChroma := func() {
		run("chroma worker", func(c context.Context) error { return chromaworker.Run(c, chroma) })
	}

	pub := jobs.NewPublisher(api.Bus.JS, jobs.NewStore(api.Bus.Jobs), 3)
	submit := func(args jobs.Args) jobs.Record {
		t.Helper()
		kind := args.Kind()
		rec, _, err := pub.Submit(ctx, jobs.Submission{Args: args, SubmittedBy: "natsperm@example.com", IdempotencyKey: "k-" + kind})
		if err != nil {
			t.Fatalf("api submits %s: %v", kind, err)
		}
		return rec
	}

	// init: the real init job, which auto-submits chroma.train.
	initRec := waitFinal(ctx, t, api, submit(jobspec.InitArgs{}).ID)
	if initRec.State != jobs.Succeeded {
		t.Fatalf("init job %s: %+v", initRec.State, initRec.Error)
	}
	trains, err := jobs.NewStore(api.Bus.Jobs).List(ctx, jobs.Filter{Kind: jobs.KindChromaTrain})
	if err != nil {
		t.Fatalf("api lists jobs: %v", err)
	}
	if len(trains) != 1 {
		t.Fatalf("init submitted %d chroma.train jobs, want 1", len(trains))
	}
	// An earlier attempt of this train job died holding the chroma lease
	// (written as the chroma user, as its worker would have): the real
	// worker takes it over (delete and create under the chroma user's
	// LOCKS permissions) and trains, on its first attempt.
	dead, err := json.Marshal(locks.Holder{Owner: trains[0].ID, Operation: jobs.KindChromaTrain, Since: time.Now().Add(-time.Minute).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chroma.Bus.Locks.Create(ctx, locks.Chroma, dead); err != nil {
		t.Fatalf("chroma user writes the dead attempt's lease: %v", err)
	}
	startChroma()
	tr := waitFinal(ctx, t, api, trains[0].ID)
	if tr.State != jobs.Succeeded || tr.Attempt != 1 {
		t.Fatalf("chroma.train over its own dead attempt's lease: %s attempt %d %+v", tr.State, tr.Attempt, tr.Error)
	}
	var trained jobspec.ChromaTrainResult
	if err := json.Unmarshal(tr.Result, &trained); err != nil || trained.Written == 0 {
		t.Fatalf("chroma.train result %s (%v): want records written to Chroma", tr.Result, err)
	}
	waitLeaseFree(ctx, t, api, locks.Chroma)

	// A restore (as the restore user) holds the chroma lease: a
	// chroma.clear fails its attempts with lock_held, audits the wait as
	// the chroma user, and runs once the lease is released.
	restoreLease, err := locks.Acquire(ctx, roles["restore"].Bus.Locks, locks.Chroma, locks.Holder{Owner: "01JDRESTOREHOLDER000000000", Operation: jobs.KindRestore, Since: time.Now().UTC()}, time.Second)
	if err != nil {
		t.Fatalf("restore user takes the chroma lease: %v", err)
	}
	clearRec := submit(jobspec.ChromaClearArgs{})
	waitAudit(ctx, t, api, jobs.AuditAction(jobs.KindChromaClear, "lock_wait"), clearRec.ID)
	if err := restoreLease.Release(ctx); err != nil {
		t.Fatalf("restore user releases the chroma lease: %v", err)
	}
	cl := waitFinal(ctx, t, api, clearRec.ID)
	if cl.State != jobs.Succeeded || cl.Attempt < 2 {
		t.Fatalf("chroma.clear behind a restore's lease: %s attempt %d %+v (want succeeded after a lock_held attempt)", cl.State, cl.Attempt, cl.Error)
	}
	waitLeaseFree(ctx, t, api, locks.Chroma)

	// backup: a real archive of the System DB and target into BACKUPS.
	bk := waitFinal(ctx, t, api, submit(jobspec.BackupCreateArgs{Components: []string{"system", "target"}}).ID)
	if bk.State != jobs.Succeeded {
		t.Fatalf("backup.create %s: %+v", bk.State, bk.Error)
	}
	var res struct {
		Archive string `json:"archive"`
	}
	if err := json.Unmarshal(bk.Result, &res); err != nil || res.Archive == "" {
		t.Fatalf("backup result %s: %v", bk.Result, err)
	}
	st, err := backupstore.FromConfig(ctx, api.Config, api.Bus.JS)
	if err != nil {
		t.Fatalf("api opens the backup store: %v", err)
	}
	if _, err := st.Meta(ctx, res.Archive); err != nil {
		t.Fatalf("api reads the archive's meta: %v", err)
	}
	list, err := st.List(ctx)
	if err != nil || len(list) == 0 {
		t.Fatalf("api lists archives: %d, %v", len(list), err)
	}

	// restore: the System DB from that archive (audit sink paused, AUDIT re-read).
	rs := waitFinal(ctx, t, api, submit(jobspec.RestoreArgs{Archive: res.Archive, Components: []string{"system"}}).ID)
	if rs.State != jobs.Succeeded {
		t.Fatalf("restore %s: %+v", rs.State, rs.Error)
	}
	t.Logf("as their own users: init %s (worker %s), chroma.train %s, backup %s → %s (%d archives listed by the api), restore %s: %s",
		initRec.State, initRec.Worker, trains[0].Kind, bk.State, res.Archive, len(list), rs.State, rs.Result)

	// The API's read paths: presence of every kind, leases, queue depth.
	live, err := presence.List(ctx, api.Bus.Workers)
	if err != nil {
		t.Fatalf("api reads WORKERS: %v", err)
	}
	for _, k := range jobs.WorkerKinds {
		if len(live[k]) == 0 {
			t.Errorf("api sees no live %s worker (got %v)", k, live)
		}
	}
	if _, err := locks.Holders(ctx, api.Bus.Locks, locks.Order...); err != nil {
		t.Errorf("api reads LOCKS: %v", err)
	}
	for _, k := range jobs.WorkerKinds {
		if _, err := api.Bus.JS.Consumer(ctx, bus.StreamJobs, k); err != nil {
			t.Errorf("api reads consumer %s: %v", k, err)
		}
	}

	// The audit sink (as api) stored the workers' events in audit_logs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := api.DB.SQL.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_logs WHERE action = 'backup.succeeded'").Scan(&n); err != nil {
			t.Fatalf("read audit_logs: %v", err)
		}
		if n >= 1 {
			t.Logf("audit sink (api user) stored %d backup.succeeded event(s)", n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the audit sink stored no backup.succeeded event within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLeaseFree waits (as the API reads LOCKS) until nobody holds lease name.
func waitLeaseFree(ctx context.Context, t *testing.T, api app.Deps, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hs, err := locks.Holders(ctx, api.Bus.Locks, name)
		if err != nil {
			t.Fatalf("api reads LOCKS: %v", err)
		}
		if len(hs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %s still held after 30s: %+v", name, hs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAudit waits until the audit sink (as the api user) has stored an
// event action of job id in audit_logs.
func waitAudit(ctx context.Context, t *testing.T, api app.Deps, action, id string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows, err := api.DB.AuditLogs(ctx, store.AuditFilter{Action: action, JobID: id})
		if err != nil {
			t.Fatalf("read audit_logs: %v", err)
		}
		if len(rows) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event of job %s in audit_logs within 60s", action, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFinal follows the job record as the API's SSE route does until it is final.
func waitFinal(ctx context.Context, t *testing.T, api app.Deps, id string) jobs.Record {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ch, err := jobs.NewStore(api.Bus.Jobs).Watch(wctx, id)
	if err != nil {
		t.Fatalf("api watches job %s: %v", id, err)
	}
	var last jobs.Record
	for r := range ch {
		last = r
		if r.State.Final() {
			return r
		}
	}
	t.Fatalf("job %s not final within 2m (last %s %q)", id, last.State, last.Step)
	return last
}

// TestAServiceCannotDoAnothersJob tries, through the client APIs the code
// uses, what each role must not do; each attempt must fail.
func TestAServiceCannotDoAnothersJob(t *testing.T) {
	// Not parallel: sets process environment variables (t.Setenv) the shipped nats-server.conf reads.
	addr := startFromDeployConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := testkit.Logger(t)
	openRole(ctx, t, roleEnv(addr, "provisioner", t.TempDir(), nil), log)
	js := func(user string) jetstream.JetStream {
		nc, _ := connectRaw(t, addr, user)
		j, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	// Workers create their own consumers (as worker.Run does) first.
	for _, k := range jobs.WorkerKinds {
		if _, err := js(k).CreateOrUpdateConsumer(ctx, bus.StreamJobs, worker.ConsumerConfig(k, 30*time.Second)); err != nil {
			t.Fatalf("%s creates its consumer: %v", k, err)
		}
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 3*time.Second) }
	cases := []struct {
		name string
		user string
		try  func(context.Context, jetstream.JetStream) error
	}{
		{"chroma worker cannot publish jobs.restore.run", "chroma", func(c context.Context, j jetstream.JetStream) error {
			_, err := j.Publish(c, jobs.Subject(jobs.KindRestore), []byte(`{}`))
			return err
		}},
		{"init worker cannot submit a backup", "init", func(c context.Context, j jetstream.JetStream) error {
			_, err := j.Publish(c, jobs.Subject(jobs.KindBackupCreate), []byte(`{}`))
			return err
		}},
		{"backup worker cannot pull from the restore consumer", "backup", func(c context.Context, j jetstream.JetStream) error {
			cons, err := j.Consumer(c, bus.StreamJobs, "restore")
			if err != nil {
				return err
			}
			_, err = cons.Next(jetstream.FetchMaxWait(time.Second))
			return err
		}},
		{"backup worker cannot refilter its consumer onto restore jobs", "backup", func(c context.Context, j jetstream.JetStream) error {
			cc := worker.ConsumerConfig("backup", 30*time.Second)
			cc.FilterSubject = "jobs.restore.>"
			_, err := j.CreateOrUpdateConsumer(c, bus.StreamJobs, cc)
			return err
		}},
		{"api cannot delete a stream", "api", func(c context.Context, j jetstream.JetStream) error {
			return j.DeleteStream(c, bus.StreamJobs)
		}},
		{"api cannot pull jobs", "api", func(c context.Context, j jetstream.JetStream) error {
			cons, err := j.Consumer(c, bus.StreamJobs, "backup")
			if err != nil {
				return err
			}
			_, err = cons.Next(jetstream.FetchMaxWait(time.Second))
			return err
		}},
		{"api cannot write a lease", "api", func(c context.Context, j jetstream.JetStream) error {
			kv, err := j.KeyValue(c, bus.BucketLocks)
			if err != nil {
				return err
			}
			_, err = kv.Create(c, "system", []byte(`{}`))
			return err
		}},
		{"chroma worker cannot take the System DB lease", "chroma", func(c context.Context, j jetstream.JetStream) error {
			kv, err := j.KeyValue(c, bus.BucketLocks)
			if err != nil {
				return err
			}
			_, err = kv.Create(c, locks.System, []byte(`{}`))
			return err
		}},
		{"init worker cannot take a lease", "init", func(c context.Context, j jetstream.JetStream) error {
			kv, err := j.KeyValue(c, bus.BucketLocks)
			if err != nil {
				return err
			}
			_, err = kv.Create(c, locks.Chroma, []byte(`{}`))
			return err
		}},
		{"restore worker cannot purge archives", "restore", func(c context.Context, j jetstream.JetStream) error {
			s, err := j.Stream(c, "OBJ_"+bus.BucketBackups)
			if err != nil {
				return err
			}
			return s.Purge(c, jetstream.WithPurgeSubject("$O."+bus.BucketBackups+".C.>"))
		}},
		{"restore worker cannot redefine the audit sink", "restore", func(c context.Context, j jetstream.JetStream) error {
			_, err := j.CreateOrUpdateConsumer(c, bus.StreamAudit, auditsink.ConsumerConfig())
			return err
		}},
		{"chroma worker cannot read the archives", "chroma", func(c context.Context, j jetstream.JetStream) error {
			_, err := j.ObjectStore(c, bus.BucketBackups)
			return err
		}},
		{"backup worker cannot announce itself as a restore worker", "backup", func(c context.Context, j jetstream.JetStream) error {
			kv, err := j.KeyValue(c, bus.BucketWorkers)
			if err != nil {
				return err
			}
			_, err = kv.Put(c, presence.Key("restore", "impostor"), []byte(`{}`))
			return err
		}},
		{"chroma worker cannot forge a backup audit event", "chroma", func(c context.Context, j jetstream.JetStream) error {
			_, err := j.Publish(c, "audit.backup.succeeded", []byte(`{}`))
			return err
		}},
		{"provisioner cannot purge the audit trail", "provisioner", func(c context.Context, j jetstream.JetStream) error {
			s, err := j.Stream(c, bus.StreamAudit)
			if err != nil {
				return err
			}
			return s.Purge(c)
		}},
		{"a worker cannot create a stream", "backup", func(c context.Context, j jetstream.JetStream) error {
			_, err := j.CreateStream(c, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, v := connectRaw(t, addr, tc.user)
			j, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			c, cancel := short()
			defer cancel()
			err = tc.try(c, j)
			_ = nc.Flush()
			if err == nil {
				t.Fatalf("%s succeeded; the permissions allow it", tc.user)
			}
			if v.count() == 0 && !isDenied(err) {
				t.Fatalf("failed without a permissions violation: %v", err)
			}
		})
	}
}

// isDenied reports an error that is a permissions violation (sync or as a
// timeout of a request the server refused to route).
func isDenied(err error) bool {
	return errors.Is(err, nats.ErrPermissionViolation) || errors.Is(err, nats.ErrNoResponders) ||
		slices.ContainsFunc([]string{"ermissions", "permission"}, func(s string) bool { return containsFold(err.Error(), s) })
}
