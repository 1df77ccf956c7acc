package initworker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/golden"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/ontology"
	"github.com/insightops/insightops/shared/store"
)

// tableSample is how many target table names the golden step reports.
const tableSample = 5

// goldenCopy syncs TARGET_DB_SOURCE to TARGET_DB_PATH and inspects the
// runtime copy read-only. With ENABLE_TARGET_DB false a missing or unusable
// source is a warning; with it true, a permanent failure.
func (s *Worker) goldenCopy(ctx context.Context, inv Invocation) (string, any, error) {
	cfg := s.Config
	if cfg.TargetDatabaseURL != "" {
		return jobspec.InitStatusSkipped, jobspec.InitGoldenDetail{
			Reason: "an external target database is configured (TARGET_DATABASE_URL); no golden copy is made",
			Target: describeTarget(cfg.TargetDatabaseURL),
		}, nil
	}
	d := jobspec.InitGoldenDetail{Source: cfg.TargetDBSource, Path: cfg.TargetDBPath}
	if cfg.TargetDBSource == "" || cfg.TargetDBPath == "" {
		return "", d, jobs.Permanent(jobs.CodeInvalidConfig, errors.New("TARGET_DB_SOURCE and TARGET_DB_PATH must both be set"))
	}
	srcAbs, err1 := filepath.Abs(cfg.TargetDBSource)
	dstAbs, err2 := filepath.Abs(cfg.TargetDBPath)
	if err := errors.Join(err1, err2); err != nil {
		return "", d, fmt.Errorf("resolve target paths: %w", err)
	}
	if srcAbs == dstAbs {
		return "", d, jobs.Permanent(jobs.CodeInvalidConfig, fmt.Errorf("TARGET_DB_PATH is TARGET_DB_SOURCE (%s): the golden source must never be the runtime copy", srcAbs))
	}

	synced, err := golden.Sync(ctx, cfg.TargetDBSource, cfg.TargetDBPath)
	if err != nil {
		var code jobs.Code
		switch {
		case errors.Is(err, golden.ErrSourceMissing):
			code = jobs.CodeTargetSourceMissing
		case errors.Is(err, golden.ErrSourceInvalid):
			code = jobs.CodeTargetSourceInvalid
		case errors.Is(err, golden.ErrSourceNotCheckpointed):
			code = jobs.CodeTargetSourceNotCheckpointed
		case errors.Is(err, golden.ErrSourceChanged):
			return "", d, jobs.Retryable(jobs.CodeTargetSourceChanged, err)
		default:
			return "", d, fmt.Errorf("sync golden copy: %w", err)
		}
		if cfg.EnableTargetDB {
			return "", d, jobs.Permanent(code, fmt.Errorf("ENABLE_TARGET_DB is true: %w", err))
		}
		d.Reason = err.Error() + " (ENABLE_TARGET_DB is false, so init goes on without a target database)"
		return jobspec.InitStatusWarning, d, nil
	}
	d.Action, d.SHA256, d.Bytes = synced.Action, synced.DestSHA256, synced.Bytes
	if synced.Action == golden.ActionReplaced {
		d.PreviousSHA256 = synced.PreviousSHA256
	}
	inv.Log.Info("golden copy synced", "action", synced.Action, "path", cfg.TargetDBPath, "bytes", synced.Bytes)

	db, err := golden.OpenReadOnly(ctx, cfg.TargetDBPath)
	if err != nil {
		return "", d, fmt.Errorf("open runtime copy: %w", err)
	}
	defer db.Close()
	info, err := golden.Inspect(ctx, db, tableSample)
	if err != nil {
		return "", d, fmt.Errorf("inspect runtime copy: %w", err)
	}
	d.Tables, d.Views, d.TableSample = info.Tables, info.Views, info.TableNames
	return jobspec.InitStatusOK, d, nil
}

// describeTarget returns a target database URL without user, password or
// query (scheme://host/path), a plain file path as is, or "" when it cannot
// tell which parts are secret.
func describeTarget(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	if !strings.ContainsAny(raw, "@?= ") && !strings.Contains(raw, "://") {
		return raw // a SQLite file path
	}
	return ""
}

// migrate applies the System DB migrations.
func (s *Worker) migrate(ctx context.Context, inv Invocation) (string, any, error) {
	m, err := s.DB.Migrate(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("migrate system db: %w", err)
	}
	applied := m.Applied
	if applied == nil {
		applied = []int64{}
	}
	return jobspec.InitStatusOK, jobspec.InitMigrationsDetail{Dialect: s.DB.Dialect().String(), Applied: applied, SchemaVersion: m.Version}, nil
}

// loadOntology upserts the glossary from ASSETS_DIR/ontology; a missing
// directory is a warning, an invalid file a permanent failure.
func (s *Worker) loadOntology(ctx context.Context, inv Invocation) (string, any, error) {
	dir := filepath.Join(s.Config.AssetsDir, "ontology")
	d := jobspec.InitOntologyDetail{Dir: dir}
	terms, err := ontology.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		d.Reason = "ontology directory not found: " + dir
		return jobspec.InitStatusWarning, d, nil
	}
	if err != nil {
		return "", d, jobs.Permanent(jobs.CodeOntologyInvalid, err)
	}
	d.Terms = len(terms)
	if len(terms) == 0 {
		d.Reason = "no ontology terms in " + dir
		return jobspec.InitStatusWarning, d, nil
	}
	rows := make([]store.OntologyTerm, len(terms))
	for i, t := range terms {
		rows[i] = store.OntologyTerm(t) // same fields; the glossary file and the table agree
	}
	r, err := s.DB.UpsertOntology(ctx, rows)
	if err != nil {
		return "", d, fmt.Errorf("upsert ontology: %w", err)
	}
	d.Inserted, d.Updated, d.Unchanged = r.Inserted, r.Updated, r.Unchanged
	return jobspec.InitStatusOK, d, nil
}

// adminUser creates INIT_ADMIN_USERNAME with role admin unless a user with
// that email exists; an existing user (its password included) is never
// changed, and the password is hashed only when a user is to be created.
// With APP_ENV=production the new admin must change its password first.
func (s *Worker) adminUser(ctx context.Context, inv Invocation) (string, any, error) {
	email := store.NormalizeEmail(s.Config.InitAdminUsername)
	d := jobspec.InitAdminDetail{Username: email, Role: store.RoleAdmin}
	if email == "" {
		return "", d, jobs.Permanent(jobs.CodeInvalidConfig, errors.New("INIT_ADMIN_USERNAME is empty"))
	}
	existing, err := s.DB.UserByEmail(ctx, email)
	if err == nil {
		d.Role = existing.Role
		return jobspec.InitStatusOK, d, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", d, fmt.Errorf("look up admin user: %w", err)
	}
	hash, err := auth.HashPassword(s.Config.InitAdminPassword)
	if errors.Is(err, auth.ErrEmptyPassword) || errors.Is(err, auth.ErrPasswordTooLong) {
		return "", d, jobs.Permanent(jobs.CodeInvalidConfig, fmt.Errorf("INIT_ADMIN_PASSWORD: %w", err))
	}
	if err != nil {
		return "", d, fmt.Errorf("hash admin password: %w", err)
	}
	// In production INIT_ADMIN_PASSWORD lives in deployment config, so the
	// admin must change it at first login; under `make run` it need not.
	_, err = s.DB.CreateUser(ctx, store.NewUser{Email: email, PasswordHash: hash, Role: store.RoleAdmin,
		MustChangePassword: s.Config.AppEnv == config.Production})
	created := err == nil
	if errors.Is(err, store.ErrExists) {
		err = nil
	}
	if err != nil {
		return "", d, fmt.Errorf("create admin user: %w", err)
	}
	d.Created = created
	if created {
		inv.Log.Info("admin user created", "username", email)
		if s.Audit != nil {
			s.Audit.Record(ctx, audit.Event{
				Actor: submitter(inv), Action: "user.created", Resource: "user", JobID: inv.ID,
				Outcome: audit.Success, Detail: map[string]any{"email": email, "role": store.RoleAdmin, "by": "init"},
			})
		}
	}
	return jobspec.InitStatusOK, d, nil
}

// demoData seeds the deterministic demo transactions when SEED_DEMO_DATA.
func (s *Worker) demoData(ctx context.Context, inv Invocation) (string, any, error) {
	if !s.Config.SeedDemoData {
		return jobspec.InitStatusSkipped, jobspec.InitDemoDetail{Reason: "SEED_DEMO_DATA is false"}, nil
	}
	n, err := s.DB.SeedDemoTransactions(ctx, store.DemoTransactions(DemoRows, DemoSeed))
	if err != nil {
		return "", nil, fmt.Errorf("seed demo data: %w", err)
	}
	return jobspec.InitStatusOK, jobspec.InitDemoDetail{Rows: DemoRows, Inserted: n}, nil
}

// TrainIdempotencyKey is the idempotency key of the train job published by
// the init job (or --once run) initID: every delivery of one init job
// submits the same key, so only one train job is ever published for it.
func TrainIdempotencyKey(initID string) string { return "init:" + initID }

// autoTrain publishes a jobs.chroma.train job when AUTO_TRAIN_CHROMA.
func (s *Worker) autoTrain(ctx context.Context, inv Invocation) (string, any, error) {
	if !s.Config.AutoTrainChroma {
		return jobspec.InitStatusSkipped, jobspec.InitAutoTrainDetail{Reason: "AUTO_TRAIN_CHROMA is false"}, nil
	}
	if s.Publisher == nil {
		return jobspec.InitStatusWarning, jobspec.InitAutoTrainDetail{Reason: "no bus in --once mode: no training job published (submit POST /admin/db/chroma/train once the workers run)"}, nil
	}
	rec, created, err := s.Publisher.Submit(ctx, jobs.Submission{
		Args: jobspec.ChromaTrainArgs{}, SubmittedBy: submitter(inv), IdempotencyKey: TrainIdempotencyKey(inv.ID),
	})
	if errors.Is(err, jobs.ErrIdempotencyConflict) {
		return "", nil, jobs.Permanent(jobs.CodeTrainIdempotencyConflict, fmt.Errorf("publish chroma train job: %w", err))
	}
	if err != nil {
		return "", nil, fmt.Errorf("publish chroma train job: %w", err)
	}
	d := jobspec.InitAutoTrainDetail{TrainJobID: rec.ID, AlreadyPublished: !created, State: string(rec.State)}
	if rec.State == jobs.Failed && rec.Error != nil && rec.Error.Code == jobs.CodeDispatchFailed {
		d.Reason = "the train job published by an earlier attempt was never dispatched: " + rec.Error.Message
		return jobspec.InitStatusWarning, d, nil
	}
	if created {
		inv.Log.Info("chroma train job published", "train_job_id", rec.ID)
	}
	return jobspec.InitStatusOK, d, nil
}

// markComplete records init.completed_at and init.job_id.
func (s *Worker) markComplete(ctx context.Context, inv Invocation) (string, any, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := now().UTC().Format(time.RFC3339)
	if err := s.DB.SetConfig(ctx, ConfigCompletedAt, at); err != nil {
		return "", nil, fmt.Errorf("record init completion: %w", err)
	}
	if err := s.DB.SetConfig(ctx, ConfigJobID, inv.ID); err != nil {
		return "", nil, fmt.Errorf("record init job id: %w", err)
	}
	return jobspec.InitStatusOK, jobspec.InitCompleteDetail{CompletedAt: at, JobID: inv.ID}, nil
}

func submitter(inv Invocation) string {
	if inv.SubmittedBy != "" {
		return inv.SubmittedBy
	}
	return OnceSubmitter
}
