// Package chromaworker is the chroma worker: it consumes jobs.chroma.* on
// the shared durable consumer "chroma" and keeps the Insight Engine's
// retrieval training data in ChromaDB (Vanna's layout, see shared/vectors).
//
// jobs.chroma.train turns the target database and the System DB into
// training entries and synchronises the three collections with them:
//
//   - ddl: the CREATE statement of every table, view and index — verbatim
//     from sqlite_master for a SQLite target (the golden copy at
//     TARGET_DB_PATH, or a SQLite TARGET_DATABASE_URL), rebuilt from
//     pg_catalog with columns, types, defaults, primary, unique, foreign key
//     and check constraints for a PostgreSQL TARGET_DATABASE_URL;
//   - documentation: one entry per table and view in the spirit of Vanna's
//     training plan ("The following columns are in the … table in the …
//     database:" and a column table), and one per business glossary term
//     (System DB business_ontologies);
//   - sql: question/SQL pairs from ASSETS_DIR/training/*.json and from the
//     System DB queries users rated good (positive sum of feedback ratings).
//
// Entries are identified by Vanna's deterministic ids, so a second train
// finds every entry unchanged and writes nothing; entries insightops wrote
// that are no longer wanted (a dropped table's DDL) are deleted, and
// entries a Vanna app added itself are left alone. Upserts and deletes go
// in batches of BatchSize with the job's progress updated after each. The
// result lists added, unchanged and removed entries per collection.
//
// jobs.chroma.clear ({"collection_name": "sql"|"ddl"|"documentation"},
// or {} for all three) deletes and recreates the collections empty with
// the metadata they had, their embedder keys and their configuration's
// embedding function set to the configured embedder's (see
// vectors.Client.Clear).
//
// # Locking
//
// Both jobs hold the LOCKS lease "chroma" (shared/locks) for their whole
// run and release it on every exit, so a train, a clear and a restore of
// the vector store never interleave; a lease held by another operation
// makes the attempt fail with lock_held at once (locks.Take with no Wait:
// the job waits between attempts, by the runtime's retry backoff, not
// inside one) and retry with backoff. Training
// does not lock the target: it reads the target schema in one read-only
// transaction (a consistent snapshot) at the start, and a restore of the
// target swaps the file (or database) under it atomically, so the
// snapshot is either the old or the new schema — retrain after restoring
// a target. A lease left behind by an earlier attempt of the same job
// (its worker died) is taken over instead of waited for.
//
// # Failures
//
// Chroma unreachable: a retryable chroma_unavailable error naming the
// URL (the job is retried with backoff, then failed and dead-lettered).
// CHROMA_URL empty: permanent chroma_disabled. An embedder that cannot be
// built (a bad setting, EMBEDDING_PROVIDER=default without its model and
// no way to fetch it) stops the worker at start (Run returns the error
// naming what is missing); a job that still meets one fails with the
// permanent invalid_config. A collection filled by another embedder:
// permanent embedder_mismatch, telling the operator to clear it. A
// missing target: permanent target_missing (run init first).
package chromaworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/vectors"
	"github.com/insightops/insightops/shared/worker"
)

// Kind is the worker kind and durable consumer name.
const Kind = "chroma"

// BatchSize is the number of entries per upsert or delete request.
const BatchSize = 500

// DefaultLockRefresh is how often the chroma lease is refreshed when the
// bus's LOCKS TTL is unknown (it is a quarter of the TTL otherwise).
const DefaultLockRefresh = 15 * time.Second

// Options are the worker's knobs; zero values take the defaults.
type Options struct {
	// BatchSize is the number of entries per request (BatchSize when < 1).
	BatchSize int
	// LockRefresh is the lease refresh interval (a quarter of the bus's
	// LOCKS TTL, DefaultLockRefresh without one, when zero).
	LockRefresh time.Duration
}

// Worker runs the chroma jobs. Build it with New.
type Worker struct {
	Options
	// Config is the process configuration (CHROMA_URL, EMBEDDING_PROVIDER,
	// the target database, ASSETS_DIR).
	Config config.Config
	// DB is the System DB (glossary terms, queries and feedback); without
	// it those sources are skipped with a warning.
	DB *store.DB
	// Locks is the LOCKS bucket; the job handlers need it.
	Locks jetstream.KeyValue
	// Vectors is the Chroma client, nil when CHROMA_URL is empty or the
	// embedder settings are bad (see ConfigError).
	Vectors *vectors.Client
	// ConfigError says why Vectors is nil.
	ConfigError error
}

// New builds the worker from deps with opts: its configuration, System
// DB, the LOCKS bucket of its bus, and a Chroma client with the embedder
// EMBEDDING_PROVIDER names.
func New(deps app.Deps, opts Options) *Worker {
	if opts.BatchSize < 1 {
		opts.BatchSize = BatchSize
	}
	w := &Worker{Options: opts, Config: deps.Config, DB: deps.DB}
	if deps.Bus != nil {
		w.Locks = deps.Bus.Locks
		if ttl := deps.Bus.Settings.LockTTL; ttl > 0 && w.LockRefresh <= 0 {
			w.LockRefresh = ttl / 4
		}
	}
	if w.LockRefresh <= 0 {
		w.LockRefresh = DefaultLockRefresh
	}
	w.Vectors, w.ConfigError = NewVectors(deps.Config)
	return w
}

// NewVectors returns the Chroma client of a configuration, or an error
// saying why there is none: CHROMA_URL empty (errors.Is ErrDisabled) or an
// unusable EMBEDDING_PROVIDER setting (the default embedder's model is
// loaded here: vectors.ErrModelMissing when it is missing).
func NewVectors(cfg config.Config) (*vectors.Client, error) {
	if cfg.ChromaURL == "" {
		return nil, ErrDisabled
	}
	emb, err := vectors.NewEmbedder(cfg.Embedding)
	if err != nil {
		return nil, err
	}
	// The default embedder's model is loaded now, so a missing one stops
	// the start rather than the first job.
	if err := vectors.Load(emb); err != nil {
		return nil, err
	}
	return vectors.New(cfg.ChromaURL, emb, vectors.Options{})
}

// ErrDisabled means CHROMA_URL is empty: there is no vector store.
var ErrDisabled = errors.New("the vector store is disabled: CHROMA_URL is not set")

// Close releases the Chroma client.
func (w *Worker) Close() {
	if w.Vectors != nil {
		_ = w.Vectors.Close()
	}
}

// Handlers returns the handler of every job kind this worker consumes.
func (w *Worker) Handlers() map[string]worker.Handler {
	return worker.Handlers(worker.Handle(w.Train), worker.Handle(w.Clear))
}

// Run consumes chroma jobs until ctx ends, then drains. deps needs the bus
// and the System DB (app.Options{SystemDB: true}).
func Run(ctx context.Context, deps app.Deps) error {
	if deps.Bus == nil {
		return errors.New("chromaworker: run: no bus")
	}
	if deps.DB == nil {
		return errors.New("chromaworker: run: no System DB (open it with app.Options{SystemDB: true})")
	}
	w := New(deps, Options{})
	defer w.Close()
	switch {
	case errors.Is(w.ConfigError, ErrDisabled):
		deps.Log.Warn("chroma jobs will fail until the configuration is fixed", "reason", w.ConfigError.Error())
	case w.ConfigError != nil:
		// An embedder that cannot be built (EMBEDDING_PROVIDER=default
		// without its model, say) stops the start: never a worker that
		// would fail every job, nor a fallback to another embedder.
		return fmt.Errorf("chromaworker: %w", w.ConfigError)
	default:
		deps.Log.Info("chroma worker ready", "chroma", w.Vectors.URL(), "embedding_provider", w.Vectors.Embedder().Provider(), "embedding_model", w.Vectors.Embedder().Model())
	}
	return worker.Run(ctx, deps.Bus, worker.OptionsFrom(deps.Config, Kind, w.Handlers(), deps.Audit, deps.Log))
}

// Progress receives a run's progress; *worker.Job implements it, and its
// Step is the job's cancellation point.
type Progress interface {
	Step(ctx context.Context, progress int, step string) error
}

// client returns the Chroma client or the permanent error why there is none.
func (w *Worker) client() (*vectors.Client, error) {
	if w.Vectors != nil {
		return w.Vectors, nil
	}
	err := w.ConfigError
	if err == nil {
		err = ErrDisabled
	}
	if errors.Is(err, ErrDisabled) {
		return nil, jobs.Permanent(jobs.CodeChromaDisabled, err)
	}
	return nil, jobs.Permanent(jobs.CodeInvalidConfig, fmt.Errorf("vector store settings: %w", err))
}

// Train is the handler of jobs.chroma.train: it takes the chroma lease and
// runs Sync.
func (w *Worker) Train(ctx context.Context, job *worker.Job, _ jobspec.ChromaTrainArgs) (jobspec.ChromaTrainResult, error) {
	if _, err := w.client(); err != nil {
		return jobspec.ChromaTrainResult{}, err
	}
	lease, err := w.lock(ctx, job)
	if err != nil {
		return jobspec.ChromaTrainResult{}, err
	}
	defer w.release(ctx, lease, job.Logger())
	res, err := w.Sync(ctx, leaseProgress{job, lease}, job.Logger())
	if err != nil {
		return jobspec.ChromaTrainResult{}, w.jobError(err)
	}
	return res, nil
}

// Clear is the handler of jobs.chroma.clear: under the chroma lease it
// empties one collection or all three, recreating each with its metadata.
func (w *Worker) Clear(ctx context.Context, job *worker.Job, p jobspec.ChromaClearArgs) (jobspec.ChromaClearResult, error) {
	c, err := w.client()
	if err != nil {
		return jobspec.ChromaClearResult{}, err
	}
	lease, err := w.lock(ctx, job)
	if err != nil {
		return jobspec.ChromaClearResult{}, err
	}
	defer w.release(ctx, lease, job.Logger())
	res, err := w.clear(ctx, c, p, leaseProgress{job, lease}, job.Logger())
	if err != nil {
		return jobspec.ChromaClearResult{}, w.jobError(err)
	}
	return res, nil
}

func (w *Worker) clear(ctx context.Context, c *vectors.Client, p jobspec.ChromaClearArgs, prog Progress, log *slog.Logger) (jobspec.ChromaClearResult, error) {
	res := jobspec.ChromaClearResult{Chroma: c.URL(), Collections: []jobspec.ClearedEntry{}}
	names := vectors.Collections
	if p.CollectionName != "" {
		names = []string{p.CollectionName}
	}
	if err := c.Heartbeat(ctx); err != nil {
		return res, err
	}
	for i, name := range names {
		if err := prog.Step(ctx, 10+80*i/len(names), "clearing "+name); err != nil {
			return res, err
		}
		before, err := c.Count(ctx, name)
		if err != nil {
			return res, err
		}
		info, err := c.Clear(ctx, name)
		if err != nil {
			return res, err
		}
		log.Info("chroma collection cleared", "collection", name, "removed", before)
		res.Collections = append(res.Collections, jobspec.ClearedEntry{Name: name, Removed: before, Count: info.Count, Metadata: info.Metadata})
	}
	return res, nil
}

// leaseProgress stops the run when the lease was lost, then reports to the job.
type leaseProgress struct {
	p     Progress
	lease locks.Set
}

func (l leaseProgress) Step(ctx context.Context, progress int, step string) error {
	if err := l.lease.Err(); err != nil {
		return jobs.Retryable(jobs.CodeLockLost, fmt.Errorf("the chroma lease was lost mid-run; stopping: %w", err))
	}
	return l.p.Step(ctx, progress, step)
}

// lock takes the chroma lease for job with locks.Take under the chroma
// policy: no wait inside an attempt (Wait zero) — a lease held by another
// operation is a retryable lock_held error at once, and the job waits by
// being retried with backoff, which frees the worker for other jobs
// meanwhile; the wait is audited once per blocking holder (the event id
// is derived from it, so the retries do not repeat it). A lease held by
// an earlier attempt of the same job (whose worker stopped without
// releasing it) is taken over.
func (w *Worker) lock(ctx context.Context, job *worker.Job) (locks.Set, error) {
	if w.Locks == nil {
		return nil, errors.New("chromaworker: no LOCKS bucket")
	}
	every := w.LockRefresh
	if every <= 0 {
		every = DefaultLockRefresh
	}
	set, err := locks.Take(ctx, w.Locks, []string{locks.Chroma}, locks.Holder{Owner: job.ID(), Operation: job.Record.Kind}, locks.TakeOptions{
		Refresh: every, Wait: 0, TakeOverOwn: true, Audit: job.Audit, Log: job.Logger(),
	})
	var held *locks.HeldError
	if errors.As(err, &held) {
		return nil, jobs.Retryable(jobs.CodeLockHeld, fmt.Errorf("the vector store is busy: %w", err))
	}
	if err != nil {
		return nil, fmt.Errorf("take the chroma lease: %w", err)
	}
	job.Logger().Info("chroma lease taken")
	return set, nil
}

func (w *Worker) release(ctx context.Context, set locks.Set, log *slog.Logger) {
	if err := set.ReleaseDetached(ctx); err != nil {
		log.Warn("release the chroma lease", "err", err)
		return
	}
	log.Info("chroma lease released")
}

// jobError gives an error its job error code and retry class.
func (w *Worker) jobError(err error) error {
	var ce *jobs.CodedError
	switch {
	case errors.As(err, &ce), errors.Is(err, jobs.ErrCancelled), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, vectors.ErrUnavailable):
		return jobs.Retryable(jobs.CodeChromaUnavailable, fmt.Errorf("the vector store is unreachable: %w", err))
	case errors.Is(err, vectors.ErrEmbedderMismatch):
		return jobs.Permanent(jobs.CodeEmbedderMismatch, err)
	case errors.Is(err, vectors.ErrInvalid):
		return jobs.Permanent(jobs.CodeInvalidData, err)
	}
	return err
}

// AppOptions are what the chroma binary's main opens (app.Main): the System
// DB, as the chroma role, which requires and receives none of the API's or
// init's secrets.
var AppOptions = app.Options{Name: "insightops-chroma", Role: config.RoleChroma, SystemDB: true}
