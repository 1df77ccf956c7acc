// Package initworker is the init worker: it consumes jobs.init.run on the
// shared durable consumer "init" and brings a deployment to its initial
// state, in order:
//
//  1. golden copy: the Target DB's runtime copy is synced from its golden
//     source (copied when missing or different by SHA-256, atomically; the
//     source is never touched) and inspected read-only;
//  2. System DB migrations;
//  3. the business ontology from ASSETS_DIR/ontology;
//  4. the admin user INIT_ADMIN_USERNAME, created once and never overwritten;
//  5. demo accounting data when SEED_DEMO_DATA;
//  6. a jobs.chroma.train job when AUTO_TRAIN_CHROMA;
//  7. init.completed_at and init.job_id in the configurations table.
//
// Every step is idempotent, so a redelivered or repeated init is a no-op
// that succeeds again; the job's result lists each step with a status (ok,
// warning, skipped, failed) and a detail. A missing or bad asset the
// configuration requires, or a bad setting, fails the job permanently; an
// unreachable store is returned plainly and retried with backoff.
//
// RunOnce runs the same steps without a bus job, for a deployment's init
// container (`init --once`).
package initworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/worker"
)

// Kind is the worker kind and durable consumer name.
const Kind = "init"

// Keys init writes in the System DB's configurations table.
const (
	ConfigCompletedAt = store.ConfigInitCompletedAt
	ConfigJobID       = store.ConfigInitJobID
)

// The demo data set: DemoRows rows of store.DemoTransactions from a fixed
// seed, so every init seeds the very same rows.
const (
	DemoRows = 500
	DemoSeed = 20250101
)

// OnceSubmitter is the submitter of the train job RunOnce publishes.
const OnceSubmitter = "system"

// Progress receives a run's progress. *worker.Job implements it; its Step is
// also the job's cancellation point (it returns jobs.ErrCancelled).
type Progress interface {
	Step(ctx context.Context, progress int, step string) error
}

// Invocation says on whose behalf the steps run.
type Invocation struct {
	// ID is the init job id; the auto-train idempotency key is derived from
	// it, and it is stored as init.job_id.
	ID string
	// SubmittedBy is the init job's submitter, who also submits the train job.
	SubmittedBy string
	// Mode is jobspec.InitModeJob or jobspec.InitModeOnce.
	Mode string
	// Log logs the run (job.Logger() in a job, so lines carry job_id).
	Log *slog.Logger
}

// Options are the init worker's knobs.
type Options struct {
	// Now is the clock of init.completed_at (time.Now when nil).
	Now func() time.Time
}

// Worker runs the init steps against a System DB and, optionally, a bus:
// as the handler of jobs.init.run, or once (RunOnce).
type Worker struct {
	Options
	Config config.Config
	DB     *store.DB
	// Publisher submits the auto-train job; nil (--once without a bus)
	// turns auto-train into a warning.
	Publisher *jobs.Publisher
	// Audit, when set, receives a user.created event for the admin user.
	Audit *audit.Publisher
}

// New returns the worker over deps with opts: its configuration and
// System DB, and a job publisher on deps.Bus when there is one.
func New(deps app.Deps, opts Options) *Worker {
	s := &Worker{Options: opts, Config: deps.Config, DB: deps.DB, Audit: deps.Audit}
	if deps.Bus != nil {
		s.Publisher = jobs.NewPublisher(deps.Bus.JS, jobs.NewStore(deps.Bus.Jobs), deps.Config.JobMaxAttempts)
	}
	return s
}

// Handlers returns the handler of every job kind this worker consumes.
func (s *Worker) Handlers() map[string]worker.Handler {
	return worker.Handlers(worker.Handle(s.Handle))
}

// Run consumes init jobs until ctx ends, then drains. deps needs the bus
// and the System DB (app.Options{SystemDB: true}).
func Run(ctx context.Context, deps app.Deps) error {
	if deps.Bus == nil {
		return errors.New("initworker: run: no bus")
	}
	if deps.DB == nil {
		return errors.New("initworker: run: no System DB (open it with app.Options{SystemDB: true})")
	}
	return worker.Run(ctx, deps.Bus, worker.OptionsFrom(deps.Config, Kind, New(deps, Options{}).Handlers(), deps.Audit, deps.Log))
}

// Handle is the handler of jobs.init.run. The job takes no params; any
// given are a permanent invalid_params failure (worker.Handle).
func (s *Worker) Handle(ctx context.Context, job *worker.Job, _ jobspec.InitArgs) (jobspec.InitResult, error) {
	if s.DB == nil {
		return jobspec.InitResult{}, jobs.Permanent(jobs.CodeNoSystemDB, errors.New("init: this worker has no System DB"))
	}
	return s.Run(ctx, job, Invocation{ID: job.ID(), SubmittedBy: job.Record.SubmittedBy, Mode: jobspec.InitModeJob, Log: job.Logger()})
}

// RunOnce runs the init steps once without a bus job, as `init --once` does
// in a deployment's init container. deps needs the System DB; deps.Bus is
// needed only to publish the auto-train job (without it auto-train is a
// warning). The run gets a fresh id, stored as init.job_id.
func RunOnce(ctx context.Context, deps app.Deps) (jobspec.InitResult, error) {
	if deps.DB == nil {
		return jobspec.InitResult{}, errors.New("initworker: run once: no System DB")
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	id := jobs.NewID()
	log = log.With("init_run_id", id, "mode", jobspec.InitModeOnce)
	return New(deps, Options{}).Run(ctx, logProgress{log: log}, Invocation{ID: id, SubmittedBy: OnceSubmitter, Mode: jobspec.InitModeOnce, Log: log})
}

// logProgress is the Progress of a run without a job record: it logs.
type logProgress struct{ log *slog.Logger }

func (p logProgress) Step(ctx context.Context, progress int, step string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	p.log.Info("init step", "step", step, "progress", progress)
	return nil
}

// stepFunc does one step and reports its status and detail.
type stepFunc func(ctx context.Context, inv Invocation) (status string, detail any, err error)

type plannedStep struct {
	name     string
	progress int
	label    string
	run      stepFunc
}

func (s *Worker) plan() []plannedStep {
	return []plannedStep{
		{jobspec.InitStepGoldenCopy, 5, "syncing the target database's golden copy", s.goldenCopy},
		{jobspec.InitStepMigrations, 20, "migrating the system database", s.migrate},
		{jobspec.InitStepOntology, 35, "loading the business ontology", s.loadOntology},
		{jobspec.InitStepAdminUser, 50, "creating the admin user", s.adminUser},
		{jobspec.InitStepDemoData, 65, "seeding demo data", s.demoData},
		{jobspec.InitStepAutoTrain, 80, "publishing the chroma training job", s.autoTrain},
		{jobspec.InitStepMarkComplete, 95, "recording init completion", s.markComplete},
	}
}

// Run runs every step in order, reporting each through p before it
// starts; p's error (cancellation) ends the run with the steps done so
// far. A failed step is recorded in the result and ends the run with its
// error: permanent (jobs.Permanent) for bad configuration or a required
// asset missing, plain for what a retry can fix.
func (s *Worker) Run(ctx context.Context, p Progress, inv Invocation) (jobspec.InitResult, error) {
	if inv.Log == nil {
		inv.Log = slog.Default()
	}
	if inv.Mode == "" {
		inv.Mode = jobspec.InitModeJob
	}
	res := jobspec.InitResult{JobID: inv.ID, Mode: inv.Mode, Steps: []jobspec.InitStep{}}
	for _, st := range s.plan() {
		if err := p.Step(ctx, st.progress, st.label); err != nil {
			return res, err
		}
		status, detail, err := st.run(ctx, inv)
		if err != nil {
			fd := jobspec.InitFailureDetail{Error: err.Error()}
			var ce *jobs.CodedError
			if errors.As(err, &ce) {
				fd.Code = ce.Code
			}
			res.Steps = append(res.Steps, jobspec.InitStep{Name: st.name, Status: jobspec.InitStatusFailed, Detail: fd})
			inv.Log.Error("init step failed", "step", st.name, "err", err, "permanent", jobs.IsPermanent(err))
			return res, fmt.Errorf("init step %s: %w", st.name, err)
		}
		res.Steps = append(res.Steps, jobspec.InitStep{Name: st.name, Status: status, Detail: detail})
		if status == jobspec.InitStatusWarning {
			res.Warnings++
			inv.Log.Warn("init step finished with a warning", "step", st.name, "detail", detail)
		} else {
			inv.Log.Info("init step finished", "step", st.name, "status", status)
		}
		if d, ok := detail.(jobspec.InitCompleteDetail); ok {
			res.CompletedAt = d.CompletedAt
		}
	}
	return res, nil
}

// AppOptions are what the init binary's main opens (app.Main): the System
// DB, as the init role, which requires and receives none of the API's or
// init's secrets but INIT_ADMIN_PASSWORD.
var AppOptions = app.Options{Name: "insightops-init", Role: config.RoleInit, SystemDB: true}
