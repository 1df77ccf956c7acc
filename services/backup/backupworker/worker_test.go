package backupworker

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// replica is one backup worker on its own NATS connection, as a pod would be.
type replica struct {
	cancel context.CancelFunc
	done   chan struct{}
	kill   func()
}

// replicaBus opens a new NATS connection to e's server for replica id, as
// one pod has, and attaches to the provisioned streams without provisioning.
func replicaBus(t *testing.T, e *env, id string) (*bus.Bus, *slog.Logger) {
	t.Helper()
	log := testkit.Logger(t).With("replica", id)
	nc, err := bus.Connect(e.ns.ClientURL(), id, "", log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Attach(context.Background(), nc, bus.Settings{Replicas: 1}, false, log)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	return b, log
}

// startReplica runs the backup handlers under the worker runtime on a new
// connection to e's server; kill closes that connection (a crashed pod).
// Its AckWait is 10 s, so a stalled machine does not redeliver a job whose
// first attempt a test asserts; tests that kill a replica and wait for the
// redelivery use startReplicaAckWait with a short one.
func startReplica(t *testing.T, e *env, id string, opts Options, hook func(context.Context, string) error) *replica {
	t.Helper()
	return startReplicaAckWait(t, e, id, opts, hook, 10*time.Second)
}

// startReplicaAckWait is startReplica with the given AckWait.
func startReplicaAckWait(t *testing.T, e *env, id string, opts Options, hook func(context.Context, string) error, ackWait time.Duration) *replica {
	t.Helper()
	b, log := replicaBus(t, e, id)
	nc := b.Conn
	ctx, cancel := context.WithCancel(context.Background())
	deps := e.deps
	deps.Bus, deps.Log = b, log
	if opts.ChunkSize == 0 {
		opts.ChunkSize = 64 << 10
	}
	w := New(deps, opts)
	w.afterComponent = hook
	r := &replica{cancel: cancel, done: make(chan struct{}), kill: func() { nc.Close() }}
	go func() {
		defer close(r.done)
		err := worker.Run(ctx, b, worker.Options{
			Kind: Kind, Handlers: w.Handlers(), WorkerID: id, Concurrency: 1,
			AckWait: ackWait, ShutdownTimeout: 200 * time.Millisecond,
			Backoff:   func(int) time.Duration { return 100 * time.Millisecond },
			FetchWait: 300 * time.Millisecond, PresenceEvery: 200 * time.Millisecond, Log: log,
		})
		if err != nil {
			t.Logf("replica %s stopped: %v", id, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("replica %s did not stop", id)
		}
		nc.Close()
	})
	return r
}

// submit queues args as the API does (jobs.RawArgs for params the
// worker must refuse).
func (e *env) submit(args jobs.Args) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub := jobs.NewPublisher(e.bus.JS, jobs.NewStore(e.bus.Jobs), e.cfg.JobMaxAttempts)
	rec, _, err := pub.Submit(ctx, jobs.Submission{Args: args, SubmittedBy: "test@example.com"})
	if err != nil {
		e.t.Fatal(err)
	}
	return rec.ID
}

func (e *env) record(id string) jobs.Record {
	e.t.Helper()
	rec, _, err := jobs.NewStore(e.bus.Jobs).Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// waitFinal waits for job id to end (testkit.WaitFinal).
func (e *env) waitFinal(id string, within time.Duration) jobs.Record {
	e.t.Helper()
	return testkit.WaitFinal(e.t, jobs.NewStore(e.bus.Jobs), id, within)
}

// TestWorkerKilledMidArchive: the replica writing an archive dies (its
// NATS connection closed, its handler context cancelled) after the first
// component; nothing partial is listed, the job is redelivered to another
// replica and exactly one archive exists at the end. With both stores.
func TestWorkerKilledMidArchive(t *testing.T) {
	t.Parallel()
	for _, storeKind := range []string{"nats", "local"} {
		t.Run(storeKind, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_STORE": storeKind}})
			reached := make(chan struct{})
			var once sync.Once
			a := startReplicaAckWait(t, e, "backup-a", Options{}, func(ctx context.Context, component string) error {
				once.Do(func() { close(reached) })
				<-ctx.Done() // stuck mid-archive until killed
				return ctx.Err()
			}, time.Second)
			id := e.submit(jobspec.BackupCreateArgs{})
			select {
			case <-reached:
			case <-time.After(20 * time.Second):
				t.Fatal("the first replica never got mid-archive")
			}
			a.kill()
			a.cancel()
			select {
			case <-a.done:
			case <-time.After(10 * time.Second):
				t.Fatal("killed replica did not stop")
			}
			if got := e.listed(); len(got) != 0 {
				t.Fatalf("after the kill %d archive(s) listed: %+v", len(got), got)
			}
			if storeKind == "local" {
				entries, _ := os.ReadDir(e.cfg.BackupDir)
				for _, de := range entries {
					if strings.HasPrefix(de.Name(), "backup-") {
						t.Errorf("left in the backup dir: %s", de.Name())
					}
				}
			}

			startReplicaAckWait(t, e, "backup-b", Options{}, nil, time.Second)
			rec := e.waitFinal(id, 30*time.Second)
			if rec.State != jobs.Succeeded || rec.Attempt < 2 {
				t.Fatalf("job %s attempt %d: %+v", rec.State, rec.Attempt, rec.Error)
			}
			var res jobspec.BackupCreateResult
			if err := json.Unmarshal(rec.Result, &res); err != nil {
				t.Fatal(err)
			}
			got := e.listed()
			if len(got) != 1 || got[0].Name != res.Archive {
				t.Fatalf("listed %+v, want exactly %s", got, res.Archive)
			}
			if n, _ := backupfmt.ParseArchiveName(res.Archive); n.JobID != id {
				t.Errorf("archive %s is not job %s's", res.Archive, id)
			}
			if _, err := archiver.ReadManifest(context.Background(), e.st, got[0]); err != nil {
				t.Errorf("the archive does not read back: %v", err)
			}
			if storeKind == "nats" {
				s, err := e.bus.JS.Stream(context.Background(), "OBJ_"+bus.BucketBackups)
				if err == nil {
					si, _ := s.Info(context.Background())
					t.Logf("OBJ_BACKUPS after the kill and the redelivery: %d messages, %d bytes (archive %d bytes)", si.State.Msgs, si.State.Bytes, got[0].Size)
				}
			}
		})
	}
}

// TestLockedJobWaitsThenSucceeds: a backup submitted while a restore holds
// the system lease waits (its step says who holds it), is retried with
// backoff, and succeeds once the lease is released.
func TestLockedJobWaitsThenSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	restoreID := jobs.NewID()
	lease, err := locks.Acquire(ctx, e.bus.Locks, locks.System, locks.Holder{Owner: restoreID, Operation: jobs.KindRestore}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	startReplica(t, e, "backup-c", Options{LockWait: 400 * time.Millisecond}, nil)
	id := e.submit(jobspec.BackupCreateArgs{Components: []string{"system"}})
	want := "system is locked by restore.run " + restoreID + " since"
	var sawRetry bool
	eventually(t, 20*time.Second, "the job to report the held lease and retry", func() bool {
		rec := e.record(id)
		if rec.Error != nil && rec.Error.Code == "lock_held" && strings.Contains(rec.Error.Message, want) {
			sawRetry = true
		}
		return sawRetry && rec.Attempt >= 2
	})
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	rec := e.waitFinal(id, 20*time.Second)
	if rec.State != jobs.Succeeded {
		t.Fatalf("job %s: %+v", rec.State, rec.Error)
	}
	if got := e.listed(); len(got) != 1 {
		t.Fatalf("listed %d archives", len(got))
	}
}

// TestVerifyAndPruneJobs run through the worker runtime: verify of a
// listed archive succeeds, of a malformed name fails at once (permanent),
// prune with dry_run deletes nothing.
func TestVerifyAndPruneJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_RETENTION_COUNT": "1"}})
	startReplica(t, e, "backup-d", Options{}, nil)
	first := e.waitFinal(e.submit(jobspec.BackupCreateArgs{}), 30*time.Second)
	if first.State != jobs.Succeeded {
		t.Fatalf("create: %+v", first.Error)
	}
	var created jobspec.BackupCreateResult
	_ = json.Unmarshal(first.Result, &created)
	if created.Retention == nil || len(created.Retention.Kept) != 1 {
		t.Errorf("retention after create: %+v %s", created.Retention, created.RetentionError)
	}
	v := e.waitFinal(e.submit(jobspec.BackupVerifyArgs{Name: created.Archive}), 30*time.Second)
	if v.State != jobs.Succeeded {
		t.Fatalf("verify: %+v", v.Error)
	}
	bad := e.waitFinal(e.submit(jobs.RawArgs{JobKind: jobs.KindBackupVerify, Params: json.RawMessage(`{"name":"../` + created.Archive + `"}`)}), 10*time.Second)
	if bad.State != jobs.Failed || bad.Attempt != 1 || bad.Error.Code != jobs.CodeInvalidParams {
		t.Errorf("verify of a bad name: %s attempt %d %+v", bad.State, bad.Attempt, bad.Error)
	}
	second := e.waitFinal(e.submit(jobspec.BackupCreateArgs{}), 30*time.Second)
	var res2 jobspec.BackupCreateResult
	_ = json.Unmarshal(second.Result, &res2)
	// Retention 1 keeps the newest, and the older one because it is the
	// newest verified.
	if res2.Retention == nil || len(res2.Retention.Kept) != 2 || len(res2.Retention.Deleted) != 0 {
		t.Errorf("retention after the second create: %+v", res2.Retention)
	}
	p := e.waitFinal(e.submit(jobspec.BackupPruneArgs{DryRun: true}), 10*time.Second)
	var pr jobspec.BackupPruneResult
	_ = json.Unmarshal(p.Result, &pr)
	if p.State != jobs.Succeeded || !pr.DryRun || len(pr.Kept) != 2 || len(pr.WouldDelete) != 0 {
		t.Errorf("prune dry run: %s %+v", p.State, pr)
	}
}
