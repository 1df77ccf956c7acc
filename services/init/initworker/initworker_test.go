package initworker_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/init/initworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/golden"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// TestSecondInitIsANoOpThatSucceeds runs init twice on each dialect: the
// first run does everything, the second changes nothing (not even the admin
// password when INIT_ADMIN_PASSWORD changed in between) and still succeeds,
// and the golden source's bytes are never touched.
func TestSecondInitIsANoOpThatSucceeds(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := map[string]string{"DATABASE_URL": d.DatabaseURL(t)}
			cfg1 := newConfig(t, env)
			sourceSum := sha256File(t, cfg1.TargetDBSource)
			db := openDB(t, cfg1)
			log := testkit.Logger(t)

			res1, err := initworker.RunOnce(ctx, app.Deps{Config: cfg1, DB: db, Log: log})
			if err != nil {
				t.Fatalf("first init: %v", err)
			}
			first := wire(t, res1)
			if js, err := json.MarshalIndent(res1, "", "  "); err == nil {
				t.Logf("first run result:\n%s", js)
			}
			if !slices.Equal(first.names(), allSteps) || first.Mode != jobspec.InitModeOnce || first.Warnings != 0 {
				t.Fatalf("first run: steps %v mode %s warnings %d", first.names(), first.Mode, first.Warnings)
			}
			gs, g := step[jobspec.InitGoldenDetail](t, first, jobspec.InitStepGoldenCopy)
			if gs != jobspec.InitStatusOK || g.Action != golden.ActionCopied || g.SHA256 != sourceSum || g.Tables == 0 {
				t.Fatalf("first golden copy: %s %+v", gs, g)
			}
			if got := sha256File(t, cfg1.TargetDBPath); got != sourceSum {
				t.Fatalf("runtime copy sha256 %s, source %s", got, sourceSum)
			}
			_, m := step[jobspec.InitMigrationsDetail](t, first, jobspec.InitStepMigrations)
			if len(m.Applied) == 0 || m.SchemaVersion == 0 || m.Dialect != d.Name {
				t.Fatalf("first migrations: %+v", m)
			}
			_, o := step[jobspec.InitOntologyDetail](t, first, jobspec.InitStepOntology)
			if o.Terms == 0 || o.Inserted != o.Terms || o.Updated+o.Unchanged != 0 {
				t.Fatalf("first ontology: %+v", o)
			}
			_, a := step[jobspec.InitAdminDetail](t, first, jobspec.InitStepAdminUser)
			if !a.Created || a.Username != "admin@example.com" || a.Role != store.RoleAdmin {
				t.Fatalf("first admin: %+v", a)
			}
			_, demo := step[jobspec.InitDemoDetail](t, first, jobspec.InitStepDemoData)
			if demo.Inserted != initworker.DemoRows {
				t.Fatalf("first demo data: %+v", demo)
			}
			if s, _ := step[jobspec.InitAutoTrainDetail](t, first, jobspec.InitStepAutoTrain); s != jobspec.InitStatusSkipped {
				t.Fatalf("auto-train with AUTO_TRAIN_CHROMA=false: %s", s)
			}
			if v, err := db.GetConfig(ctx, initworker.ConfigJobID); err != nil || v != res1.JobID {
				t.Fatalf("init.job_id = %q, %v; want %s", v, err, res1.JobID)
			}
			if v, err := db.GetConfig(ctx, initworker.ConfigCompletedAt); err != nil || v != res1.CompletedAt {
				t.Fatalf("init.completed_at = %q, %v; want %s", v, err, res1.CompletedAt)
			} else if _, err := time.Parse(time.RFC3339, v); err != nil {
				t.Fatalf("init.completed_at is not RFC 3339: %v", err)
			}
			admin1, err := db.UserByEmail(ctx, "admin@example.com")
			if err != nil || !auth.CheckPassword(admin1.PasswordHash, "first-password-1") {
				t.Fatalf("admin after first run: %v (password matches: %v)", err, err == nil && auth.CheckPassword(admin1.PasswordHash, "first-password-1"))
			}
			counts1 := rowCounts(t, db)
			if counts1["accounting_transactions"] != initworker.DemoRows || counts1["users"] != 1 || counts1["business_ontologies"] != int64(o.Terms) {
				t.Fatalf("row counts after first run: %v", counts1)
			}

			env["INIT_ADMIN_PASSWORD"] = "second-password-2"
			env["TARGET_DB_SOURCE"] = cfg1.TargetDBSource
			env["DATA_DIR"] = cfg1.DataDir
			cfg2 := newConfig(t, env)
			res2, err := initworker.RunOnce(ctx, app.Deps{Config: cfg2, DB: db, Log: log})
			if err != nil {
				t.Fatalf("second init: %v", err)
			}
			second := wire(t, res2)
			if js, err := json.MarshalIndent(res2, "", "  "); err == nil {
				t.Logf("second run result:\n%s", js)
			}
			if !slices.Equal(second.names(), allSteps) || second.Warnings != 0 {
				t.Fatalf("second run: steps %v warnings %d", second.names(), second.Warnings)
			}
			_, g2 := step[jobspec.InitGoldenDetail](t, second, jobspec.InitStepGoldenCopy)
			if g2.Action != golden.ActionUnchanged || g2.SHA256 != sourceSum {
				t.Fatalf("second golden copy: %+v", g2)
			}
			_, m2 := step[jobspec.InitMigrationsDetail](t, second, jobspec.InitStepMigrations)
			if len(m2.Applied) != 0 || m2.SchemaVersion != m.SchemaVersion {
				t.Fatalf("second migrations: %+v", m2)
			}
			_, o2 := step[jobspec.InitOntologyDetail](t, second, jobspec.InitStepOntology)
			if o2.Unchanged != o.Terms || o2.Inserted+o2.Updated != 0 {
				t.Fatalf("second ontology: %+v", o2)
			}
			_, a2 := step[jobspec.InitAdminDetail](t, second, jobspec.InitStepAdminUser)
			if a2.Created {
				t.Fatalf("second admin: %+v", a2)
			}
			_, demo2 := step[jobspec.InitDemoDetail](t, second, jobspec.InitStepDemoData)
			if demo2.Inserted != 0 || demo2.Rows != initworker.DemoRows {
				t.Fatalf("second demo data: %+v", demo2)
			}
			if counts2 := rowCounts(t, db); !maps.Equal(counts1, counts2) {
				t.Fatalf("row counts changed: %v → %v", counts1, counts2)
			}
			admin2, err := db.UserByEmail(ctx, "admin@example.com")
			if err != nil || admin2.PasswordHash != admin1.PasswordHash || auth.CheckPassword(admin2.PasswordHash, "second-password-2") {
				t.Fatalf("the admin's password hash changed on the second run (err %v)", err)
			}
			if v, _ := db.GetConfig(ctx, initworker.ConfigJobID); v != res2.JobID {
				t.Fatalf("init.job_id = %q after the second run, want %s", v, res2.JobID)
			}
			if got := sha256File(t, cfg1.TargetDBSource); got != sourceSum {
				t.Fatalf("golden source changed: %s → %s", sourceSum, got)
			}
			for _, raw := range []jobspec.InitResult{res1, res2} {
				b, _ := json.Marshal(raw)
				if strings.Contains(string(b), "password-") || strings.Contains(string(b), admin1.PasswordHash) {
					t.Fatalf("result leaks the admin password or its hash: %s", b)
				}
			}
		})
	}
}

// TestInitJobThroughTheBusRecordsEveryStep submits jobs.init.run and has a
// real worker replica run it: the record ends succeeded with each step's
// result, and a second init job through the bus changes nothing.
func TestInitJobThroughTheBusRecordsEveryStep(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, nil)
	deps := busDeps(t, cfg)
	startWorker(t, deps, initworker.New(deps, initworker.Options{}).Handlers())
	sourceSum := sha256File(t, cfg.TargetDBSource)

	rec := waitFinal(t, deps.Bus, submitInit(t, deps.Bus, "ops@example.com").ID)
	if rec.State != jobs.Succeeded || rec.Attempt != 1 || rec.Progress != 100 || rec.Error != nil {
		t.Fatalf("init job: state %s attempt %d progress %d error %+v", rec.State, rec.Attempt, rec.Progress, rec.Error)
	}
	res := decodeResult(t, rec.Result)
	if !slices.Equal(res.names(), allSteps) || res.JobID != rec.ID || res.Mode != jobspec.InitModeJob {
		t.Fatalf("result: steps %v job %s mode %s", res.names(), res.JobID, res.Mode)
	}
	want := map[string]string{
		jobspec.InitStepGoldenCopy: "ok", jobspec.InitStepMigrations: "ok", jobspec.InitStepOntology: "ok",
		jobspec.InitStepAdminUser: "ok", jobspec.InitStepDemoData: "ok", jobspec.InitStepAutoTrain: "skipped",
		jobspec.InitStepMarkComplete: "ok",
	}
	if got := res.statuses(); !maps.Equal(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if _, g := step[jobspec.InitGoldenDetail](t, res, jobspec.InitStepGoldenCopy); g.Action != golden.ActionCopied || g.Tables == 0 || len(g.TableSample) == 0 {
		t.Fatalf("golden copy: %+v", g)
	}
	if _, a := step[jobspec.InitAdminDetail](t, res, jobspec.InitStepAdminUser); !a.Created {
		t.Fatalf("admin: %+v", a)
	}
	if _, d := step[jobspec.InitDemoDetail](t, res, jobspec.InitStepDemoData); d.Inserted != initworker.DemoRows {
		t.Fatalf("demo data: %+v", d)
	}
	if _, c := step[jobspec.InitCompleteDetail](t, res, jobspec.InitStepMarkComplete); c.JobID != rec.ID || c.CompletedAt != res.CompletedAt {
		t.Fatalf("mark completed: %+v (result completed_at %s)", c, res.CompletedAt)
	}
	if v, err := deps.DB.GetConfig(context.Background(), initworker.ConfigJobID); err != nil || v != rec.ID {
		t.Fatalf("init.job_id = %q, %v", v, err)
	}
	if n := messagesOn(t, deps.Bus, bus.StreamAudit, "audit.user.created"); n != 1 {
		t.Fatalf("%d audit.user.created events, want 1", n)
	}

	again := waitFinal(t, deps.Bus, submitInit(t, deps.Bus, "ops@example.com").ID)
	if again.State != jobs.Succeeded {
		t.Fatalf("second init job: %s %+v", again.State, again.Error)
	}
	res2 := decodeResult(t, again.Result)
	if _, g := step[jobspec.InitGoldenDetail](t, res2, jobspec.InitStepGoldenCopy); g.Action != golden.ActionUnchanged {
		t.Fatalf("second golden copy: %+v", g)
	}
	if _, a := step[jobspec.InitAdminDetail](t, res2, jobspec.InitStepAdminUser); a.Created {
		t.Fatalf("second admin: %+v", a)
	}
	if _, d := step[jobspec.InitDemoDetail](t, res2, jobspec.InitStepDemoData); d.Inserted != 0 {
		t.Fatalf("second demo data: %+v", d)
	}
	if n := messagesOn(t, deps.Bus, bus.StreamAudit, "audit.user.created"); n != 1 {
		t.Fatalf("%d audit.user.created events after the second init, want 1", n)
	}
	if got := sha256File(t, cfg.TargetDBSource); got != sourceSum {
		t.Fatalf("golden source changed: %s → %s", sourceSum, got)
	}
}

// TestMissingGoldenSourceWarnsUnlessTheTargetDBIsRequired: with
// ENABLE_TARGET_DB=false a missing source is a warning and init succeeds;
// with true the job fails at its first attempt with target_source_missing
// and is not retried.
func TestMissingGoldenSourceWarnsUnlessTheTargetDBIsRequired(t *testing.T) {
	t.Parallel()
	t.Run("target db disabled: warning", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "absent.db")
		cfg := newConfig(t, map[string]string{"TARGET_DB_SOURCE": missing, "ENABLE_TARGET_DB": "false"})
		deps := busDeps(t, cfg)
		startWorker(t, deps, initworker.New(deps, initworker.Options{}).Handlers())

		rec := waitFinal(t, deps.Bus, submitInit(t, deps.Bus, "ops@example.com").ID)
		if rec.State != jobs.Succeeded {
			t.Fatalf("init job: %s %+v", rec.State, rec.Error)
		}
		res := decodeResult(t, rec.Result)
		status, g := step[jobspec.InitGoldenDetail](t, res, jobspec.InitStepGoldenCopy)
		if status != jobspec.InitStatusWarning || !strings.Contains(g.Reason, "golden source missing") || res.Warnings != 1 {
			t.Fatalf("golden copy: %s %+v (warnings %d)", status, g, res.Warnings)
		}
		if s, _ := step[jobspec.InitAdminDetail](t, res, jobspec.InitStepAdminUser); s != jobspec.InitStatusOK {
			t.Fatalf("admin step after the warning: %s", s)
		}
		if _, err := os.Stat(cfg.TargetDBPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("runtime copy exists without a source: %v", err)
		}
	})

	t.Run("target db required: permanent failure", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "absent.db")
		cfg := newConfig(t, map[string]string{"TARGET_DB_SOURCE": missing, "ENABLE_TARGET_DB": "true"})
		deps := busDeps(t, cfg)
		startWorker(t, deps, initworker.New(deps, initworker.Options{}).Handlers())

		rec := waitFinal(t, deps.Bus, submitInit(t, deps.Bus, "ops@example.com").ID)
		if rec.State != jobs.Failed || rec.Attempt != 1 || rec.Error == nil || rec.Error.Code != jobs.CodeTargetSourceMissing {
			t.Fatalf("init job: state %s attempt %d error %+v", rec.State, rec.Attempt, rec.Error)
		}
		res := decodeResult(t, rec.Result)
		if len(res.Steps) != 1 || res.Steps[0].Name != jobspec.InitStepGoldenCopy || res.Steps[0].Status != jobspec.InitStatusFailed {
			t.Fatalf("partial result: %+v", res.Steps)
		}
		if _, f := step[jobspec.InitFailureDetail](t, res, jobspec.InitStepGoldenCopy); f.Code != jobs.CodeTargetSourceMissing {
			t.Fatalf("failure detail: %+v", f)
		}
		// Terminated, not retried: nothing pending, nothing redelivered, and
		// the record stays at attempt 1 well past the retry backoff.
		time.Sleep(500 * time.Millisecond)
		cons, err := deps.Bus.JS.Consumer(context.Background(), bus.StreamJobs, initworker.Kind)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.NumRedelivered != 0 {
			t.Fatalf("consumer after a permanent failure: pending %d ack pending %d redelivered %d", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		}
		if again, _, _ := jobs.NewStore(deps.Bus.Jobs).Get(context.Background(), rec.ID); again.Attempt != 1 || again.State != jobs.Failed {
			t.Fatalf("record after waiting: state %s attempt %d", again.State, again.Attempt)
		}
		if _, err := deps.DB.GetConfig(context.Background(), initworker.ConfigCompletedAt); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("init.completed_at written by a failed init: %v", err)
		}
	})
}

// TestRedeliveredInitPublishesOneTrainJob runs the init handler twice for
// one job (attempt 1 completes its steps and then "crashes"; the runtime
// redelivers it as attempt 2): the JOBS stream holds exactly one
// jobs.chroma.train command, submitted by the init job's submitter.
func TestRedeliveredInitPublishesOneTrainJob(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, map[string]string{"AUTO_TRAIN_CHROMA": "true"})
	deps := busDeps(t, cfg)
	realHandler := initworker.New(deps, initworker.Options{}).Handlers()[jobs.KindInit]
	crashOnce := func(ctx context.Context, job *worker.Job) (any, error) {
		res, err := realHandler(ctx, job)
		if err == nil && job.Attempt() == 1 {
			return nil, errors.New("simulated crash after the init steps ran")
		}
		return res, err
	}
	startWorker(t, deps, map[string]worker.Handler{jobs.KindInit: crashOnce})

	rec := waitFinal(t, deps.Bus, submitInit(t, deps.Bus, "ops@example.com").ID)
	if rec.State != jobs.Succeeded || rec.Attempt != 2 {
		t.Fatalf("init job: state %s attempt %d error %+v", rec.State, rec.Attempt, rec.Error)
	}
	if n := messagesOn(t, deps.Bus, bus.StreamJobs, jobs.Subject(jobs.KindChromaTrain)); n != 1 {
		t.Fatalf("%d jobs.chroma.train commands on JOBS, want exactly 1", n)
	}
	res := decodeResult(t, rec.Result)
	status, at := step[jobspec.InitAutoTrainDetail](t, res, jobspec.InitStepAutoTrain)
	if status != jobspec.InitStatusOK || at.TrainJobID == "" || !at.AlreadyPublished {
		t.Fatalf("auto-train on the redelivery: %s %+v (want the first attempt's job, already published)", status, at)
	}
	train, _, err := jobs.NewStore(deps.Bus.Jobs).Get(context.Background(), at.TrainJobID)
	if err != nil {
		t.Fatalf("train job record: %v", err)
	}
	if train.Kind != jobs.KindChromaTrain || train.SubmittedBy != "ops@example.com" || train.IdempotencyKey != initworker.TrainIdempotencyKey(rec.ID) {
		t.Fatalf("train job: kind %s submitted_by %s key %s", train.Kind, train.SubmittedBy, train.IdempotencyKey)
	}
}

// TestAutoTrainWithoutABusIsAWarningInOnceMode: --once without a bus still
// initialises everything and reports the train job it could not publish.
func TestAutoTrainWithoutABusIsAWarningInOnceMode(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, map[string]string{"AUTO_TRAIN_CHROMA": "true"})
	res, err := initworker.RunOnce(context.Background(), app.Deps{Config: cfg, DB: openDB(t, cfg), Log: testkit.Logger(t)})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	w := wire(t, res)
	status, at := step[jobspec.InitAutoTrainDetail](t, w, jobspec.InitStepAutoTrain)
	if status != jobspec.InitStatusWarning || !strings.Contains(at.Reason, "no bus in --once mode") || w.Warnings != 1 {
		t.Fatalf("auto-train: %s %+v warnings %d", status, at, w.Warnings)
	}
	if s, _ := step[jobspec.InitCompleteDetail](t, w, jobspec.InitStepMarkComplete); s != jobspec.InitStatusOK {
		t.Fatalf("init did not complete after the warning: %s", s)
	}
}

// TestExternalTargetSkipsTheGoldenCopyWithoutEchoingCredentials: with
// TARGET_DATABASE_URL set, no runtime copy is made (even when the golden
// source is missing and the target DB required) and the result names the
// target without its user, password or query.
func TestExternalTargetSkipsTheGoldenCopyWithoutEchoingCredentials(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, map[string]string{
		"TARGET_DATABASE_URL": "postgres://reader:s3cr3t-pw@db.internal:5432/business?sslmode=require&password=other-secret",
		"TARGET_DB_SOURCE":    filepath.Join(t.TempDir(), "absent.db"),
		"ENABLE_TARGET_DB":    "true",
	})
	res, err := initworker.RunOnce(context.Background(), app.Deps{Config: cfg, DB: openDB(t, cfg), Log: testkit.Logger(t)})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	w := wire(t, res)
	status, g := step[jobspec.InitGoldenDetail](t, w, jobspec.InitStepGoldenCopy)
	if status != jobspec.InitStatusSkipped || g.Target != "postgres://db.internal:5432/business" || !strings.Contains(g.Reason, "external target") {
		t.Fatalf("golden copy: %s %+v", status, g)
	}
	b, _ := json.Marshal(res)
	for _, secret := range []string{"s3cr3t-pw", "other-secret", "reader"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("result echoes %q: %s", secret, b)
		}
	}
	if _, err := os.Stat(cfg.TargetDBPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a runtime copy was made for an external target: %v", err)
	}
}

// TestMissingOntologyDirectoryIsAWarning: an ASSETS_DIR without ontology/
// leaves the glossary alone and init goes on.
func TestMissingOntologyDirectoryIsAWarning(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, map[string]string{"ASSETS_DIR": t.TempDir()})
	db := openDB(t, cfg)
	res, err := initworker.RunOnce(context.Background(), app.Deps{Config: cfg, DB: db, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	w := wire(t, res)
	status, o := step[jobspec.InitOntologyDetail](t, w, jobspec.InitStepOntology)
	if status != jobspec.InitStatusWarning || !strings.Contains(o.Reason, "not found") || w.Warnings != 1 {
		t.Fatalf("ontology: %s %+v", status, o)
	}
	if n := rowCounts(t, db)["business_ontologies"]; n != 0 {
		t.Fatalf("%d ontology rows without an ontology directory", n)
	}
}

// TestInvalidOntologyFailsPermanently: a malformed glossary file cannot be
// fixed by a retry, so init fails with ontology_invalid and records nothing
// as completed.
func TestInvalidOntologyFailsPermanently(t *testing.T) {
	t.Parallel()
	assets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(assets, "ontology"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(assets, "ontology", "bad.json"), []byte(`[{"term": "Revenue",`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(t, map[string]string{"ASSETS_DIR": assets})
	db := openDB(t, cfg)
	res, err := initworker.RunOnce(context.Background(), app.Deps{Config: cfg, DB: db, Log: testkit.Logger(t)})
	if err == nil || !jobs.IsPermanent(err) || jobs.ErrorOf(err).Code != jobs.CodeOntologyInvalid {
		t.Fatalf("init with a malformed ontology: %v (permanent %v)", err, jobs.IsPermanent(err))
	}
	last := res.Steps[len(res.Steps)-1]
	if last.Name != jobspec.InitStepOntology || last.Status != jobspec.InitStatusFailed {
		t.Fatalf("last step %+v", last)
	}
	if _, err := db.GetConfig(context.Background(), initworker.ConfigCompletedAt); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("init.completed_at written by a failed init: %v", err)
	}
}

// cancelAt is a Progress that reports cancellation at the n-th step.
type cancelAt struct{ n, seen int }

func (c *cancelAt) Step(context.Context, int, string) error {
	c.seen++
	if c.seen == c.n {
		return jobs.ErrCancelled
	}
	return nil
}

// TestCancellationStopsBetweenSteps: a cancel seen at the third step ends
// the run with jobs.ErrCancelled after two steps, with no user created.
func TestCancellationStopsBetweenSteps(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, nil)
	db := openDB(t, cfg)
	steps := initworker.New(app.Deps{Config: cfg, DB: db}, initworker.Options{})
	res, err := steps.Run(context.Background(), &cancelAt{n: 3}, initworker.Invocation{ID: jobs.NewID(), Log: testkit.Logger(t)})
	if !errors.Is(err, jobs.ErrCancelled) {
		t.Fatalf("run: %v, want jobs.ErrCancelled", err)
	}
	if got := wire(t, res).names(); !slices.Equal(got, allSteps[:2]) {
		t.Fatalf("steps run before the cancel: %v", got)
	}
	if n := rowCounts(t, db)["users"]; n != 0 {
		t.Fatalf("%d users after a cancel before the admin step", n)
	}
}

// TestOnceModeWithABusPublishesOneTrainJobAsSystem: `init --once` on a
// deployment with NATS publishes the train job itself, submitted by
// "system" under the run's idempotency key.
func TestOnceModeWithABusPublishesOneTrainJobAsSystem(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, map[string]string{"AUTO_TRAIN_CHROMA": "true"})
	b, _ := testkit.Bus(t)
	res, err := initworker.RunOnce(context.Background(), app.Deps{Config: cfg, Bus: b, DB: openDB(t, cfg), Log: testkit.Logger(t)})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	status, at := step[jobspec.InitAutoTrainDetail](t, wire(t, res), jobspec.InitStepAutoTrain)
	if status != jobspec.InitStatusOK || at.TrainJobID == "" || at.AlreadyPublished || at.State != string(jobs.Queued) {
		t.Fatalf("auto-train: %s %+v", status, at)
	}
	train, _, err := jobs.NewStore(b.Jobs).Get(context.Background(), at.TrainJobID)
	if err != nil || train.SubmittedBy != initworker.OnceSubmitter || train.IdempotencyKey != initworker.TrainIdempotencyKey(res.JobID) {
		t.Fatalf("train job: %+v, %v", train, err)
	}
	if n := messagesOn(t, b, bus.StreamJobs, jobs.Subject(jobs.KindChromaTrain)); n != 1 {
		t.Fatalf("%d jobs.chroma.train commands, want 1", n)
	}
}

// TestDescribeTargetDropsCredentials checks the external target shown in
// results: no user, password or query ever, a file path as is.
func TestDescribeTargetDropsCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:pw@db:5432/biz?sslmode=disable", "postgres://db:5432/biz"},
		{"postgresql://db.internal/biz?password=pw", "postgresql://db.internal/biz"},
		{"/data/target/business.db", "/data/target/business.db"},
		{"host=db user=u password=pw dbname=biz", ""},
		{"sqlite://u:pw@/x.db", ""},
	} {
		cfg := newConfig(t, map[string]string{"TARGET_DATABASE_URL": tc.in})
		res, err := initworker.RunOnce(context.Background(), app.Deps{Config: cfg, DB: openDB(t, cfg), Log: testkit.Logger(t)})
		if err != nil {
			t.Fatalf("%s: init: %v", tc.in, err)
		}
		_, g := step[jobspec.InitGoldenDetail](t, wire(t, res), jobspec.InitStepGoldenCopy)
		if g.Target != tc.want {
			t.Errorf("target %q shown as %q, want %q", tc.in, g.Target, tc.want)
		}
	}
}
