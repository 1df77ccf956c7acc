// Package worker is the runtime every insightops worker binary runs: one
// durable pull consumer per worker kind shared by all replicas, bounded
// concurrency, InProgress heartbeats, retries with exponential backoff,
// dead-lettering after max_attempts, cancellation between steps, presence
// in WORKERS and a graceful drain on shutdown.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/tracing"
)

// Handler does one job. It reports progress through job.Step, which also
// returns jobs.ErrCancelled when cancellation was requested. The result is
// stored in the record on success. A handler must be idempotent: a
// redelivered job runs it again.
type Handler func(ctx context.Context, job *Job) (result any, err error)

// Options configure a worker replica.
type Options struct {
	// Kind is the worker kind and durable consumer name: init, backup, restore, chroma.
	Kind string
	// Handlers by job kind ("backup.create", …), built with Handlers from
	// typed handlers (Handle). A job of another kind fails permanently.
	Handlers map[string]Handler
	// WorkerID names this replica in records and WORKERS.
	WorkerID string
	// Concurrency is the number of jobs run at once by this replica.
	Concurrency int
	// AckWait is how long a job may go without a heartbeat before it is
	// redelivered to another replica (a crashed worker's jobs come back
	// after this). Heartbeats are sent every AckWait/3.
	AckWait time.Duration
	// ShutdownTimeout is how long a stopping replica lets running jobs
	// finish before cancelling them and releasing their messages.
	ShutdownTimeout time.Duration
	// Backoff gives the delay before delivery attempt+1 after a failed
	// attempt; nil uses an exponential backoff from 1s up to 1m.
	Backoff func(attempt int) time.Duration
	// PresenceEvery is the presence refresh interval (default 5s).
	PresenceEvery time.Duration
	// FetchWait is how long one pull request waits for messages before
	// it expires and is sent again (default 2s).
	FetchWait time.Duration
	// Audit, when set, receives a started/succeeded/failed/cancelled event
	// per job.
	Audit *audit.Publisher
	Log   *slog.Logger
}

func (o *Options) defaults() error {
	if o.Kind == "" {
		return errors.New("worker: Kind is required")
	}
	if len(o.Handlers) == 0 {
		return errors.New("worker: no handlers")
	}
	if o.WorkerID == "" {
		o.WorkerID = o.Kind
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Backoff == nil {
		o.Backoff = ExponentialBackoff
	}
	if o.PresenceEvery <= 0 {
		o.PresenceEvery = 5 * time.Second
	}
	if o.FetchWait <= 0 {
		o.FetchWait = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

// ExponentialBackoff is the default retry delay: 1s, 2s, 4s … capped at
// one minute, with ±20% jitter so replicas do not retry in lockstep.
func ExponentialBackoff(attempt int) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.Multiplier = 2
	b.RandomizationFactor = 0.2
	b.MaxInterval = time.Minute
	b.MaxElapsedTime = 0
	b.Reset()
	d := b.NextBackOff()
	for i := 1; i < attempt; i++ {
		d = b.NextBackOff()
	}
	return d
}

// ConsumerConfig is the durable consumer shared by every replica of kind.
// MaxDeliver is unlimited on the server: the runtime counts attempts
// itself so that a job whose worker crashed on its last attempt is still
// marked failed and dead-lettered rather than silently parked.
func ConsumerConfig(kind string, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       kind,
		Description:   "insightops " + kind + " workers",
		FilterSubject: "jobs." + kind + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Run consumes jobs until ctx ends, then drains: it stops fetching, lets
// running jobs finish for up to ShutdownTimeout, then cancels them and
// releases their messages for another replica. It returns nil after a
// clean drain.
func Run(ctx context.Context, b *bus.Bus, opts Options) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	if _, err := b.JS.CreateOrUpdateConsumer(ctx, bus.StreamJobs, ConsumerConfig(opts.Kind, opts.AckWait)); err != nil {
		return fmt.Errorf("consumer %s: %w", opts.Kind, err)
	}
	w := &runner{
		opts:  opts,
		store: jobs.NewStore(b.Jobs),
		js:    b.JS,
		log:   opts.Log.With("worker", opts.WorkerID, "worker_kind", opts.Kind),
		pres:  presence.NewAnnouncer(b.Workers, opts.Kind, opts.WorkerID, opts.Concurrency, opts.PresenceEvery, opts.Log),
	}
	// Handlers run under their own context: a stop does not cancel them
	// until the drain timeout has passed.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	w.handlerCtx = hctx

	presCtx, presCancel := context.WithCancel(context.WithoutCancel(ctx))
	presDone := make(chan struct{})
	go func() { defer close(presDone); w.pres.Run(presCtx) }()

	consumers := jobs.WorkerKinds
	if !slices.Contains(consumers, opts.Kind) {
		consumers = append(slices.Clone(consumers), opts.Kind)
	}
	if err := metrics.RegisterQueueDepth(b.JS, bus.StreamJobs, consumers); err != nil {
		w.log.Warn("queue depth metrics", "err", err)
	}
	metrics.DeclareJobKinds(slices.Collect(maps.Keys(opts.Handlers))...)
	w.log.Info("worker started", "concurrency", opts.Concurrency, "ack_wait", opts.AckWait.String())
	if err := w.pullLoop(ctx, b.Conn, bus.StreamJobs); err != nil {
		presCancel()
		<-presDone
		return err
	}

	// Drain.
	w.log.Info("worker draining", "timeout", opts.ShutdownTimeout.String())
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(opts.ShutdownTimeout):
		w.log.Warn("drain timeout: cancelling running jobs, releasing them to other replicas")
		hcancel()
		<-done
	}
	presCancel()
	<-presDone
	w.log.Info("worker stopped")
	return nil
}

type runner struct {
	opts       Options
	store      *jobs.Store
	js         jetstream.JetStream
	log        *slog.Logger
	pres       *presence.Announcer
	handlerCtx context.Context
	wg         sync.WaitGroup
}

// gather takes more free slots after the first: all that are free now
// and, while other jobs run, those freed within fetchGather, up to half
// the concurrency. Under load this turns one pull request per job into
// one per several jobs; when idle it costs nothing (all slots are free).
func (w *runner) gather(slots chan struct{}) int {
	n, want := 1, max(1, w.opts.Concurrency/2)
	var timer <-chan time.Time
	for n < w.opts.Concurrency {
		select {
		case slots <- struct{}{}:
			n++
			continue
		default:
		}
		if n >= want {
			return n
		}
		if timer == nil {
			timer = time.After(fetchGather)
		}
		select {
		case slots <- struct{}{}:
			n++
		case <-timer:
			return n
		}
	}
	return n
}

// fetchGather bounds how long a free slot waits for others before its
// pull request goes out.
const fetchGather = 2 * time.Millisecond

func (w *runner) process(msg *nats.Msg) {
	ctx := w.handlerCtx
	md, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without metadata: terminating it", "subject", msg.Subject, "err", err)
		_ = msg.Term()
		return
	}
	attempt := int(md.NumDelivered)
	var cmd jobs.Command
	if err := json.Unmarshal(msg.Data, &cmd); err != nil || !jobs.ValidID(cmd.ID) {
		w.log.Error("malformed job command: terminating it", "subject", msg.Subject, "stream_seq", md.Sequence.Stream)
		_ = msg.Term()
		return
	}
	ctx, span := tracing.StartJob(ctx, msg.Header, cmd.Kind, cmd.ID, attempt)
	defer span.End()
	log := tracing.Logger(ctx, w.log.With("job_id", cmd.ID, "kind", cmd.Kind, "attempt", attempt))

	var (
		rec jobs.Record
		rev uint64
	)
	if attempt == 1 && cmd.Queued != nil && cmd.Queued.ID == cmd.ID && cmd.Rev > 0 {
		rec, rev = *cmd.Queued, cmd.Rev // checked by the compare-and-set below
	} else {
		rec, rev, err = w.store.Get(ctx, cmd.ID)
	}
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		log.Error("job record missing (expired or never written): terminating the command")
		_ = msg.Term()
		return
	case err != nil:
		log.Warn("read job record failed; will retry", "err", err)
		_ = msg.NakWithDelay(w.opts.Backoff(1))
		return
	case rec.State.Final():
		// Already done (a redelivery after the final write) or cancelled while queued.
		// A worker that wrote the final state but died before its final
		// audit event was stored and the command acked: publish that event
		// again (same derived id, so it is stored once either way).
		log.Info("job already final; acknowledging", "state", rec.State)
		if rec.Worker != "" {
			if err := w.auditFinal(ctx, rec, rec.State, nil); err != nil && attempt < finalAuditTries {
				log.Warn("final audit event not stored; will retry", "err", err)
				_ = msg.NakWithDelay(w.opts.Backoff(1))
				return
			} else if err != nil {
				log.Error("final audit event lost", "err", err, "deliveries", attempt)
			}
		}
		_ = msg.Ack()
		return
	}
	if rec.CancelRequested {
		w.finish(ctx, msg, log, rec, rev, jobs.Cancelled, nil, jobs.ErrCancelled, false)
		return
	}
	if rec.MaxAttempts > 0 && attempt > rec.MaxAttempts {
		// Earlier deliveries vanished without an answer (worker crashes).
		err := fmt.Errorf("no attempt finished after %d deliveries (workers stopped answering)", attempt-1)
		w.finish(ctx, msg, log, rec, rev, jobs.Failed, nil, jobs.Retryable(jobs.CodeAttemptsExhausted, err), true)
		return
	}
	handler, ok := w.opts.Handlers[cmd.Kind]
	if !ok {
		w.finish(ctx, msg, log, rec, rev, jobs.Failed, nil, jobs.Permanent(jobs.CodeUnknownKind, fmt.Errorf("no handler for job kind %q in worker %s", cmd.Kind, w.opts.Kind)), false)
		return
	}

	rec, rev, err = w.store.UpdateFrom(ctx, rec, rev, func(r *jobs.Record) error {
		now := time.Now().UTC()
		r.State, r.Attempt, r.Worker = jobs.Running, attempt, w.opts.WorkerID
		if r.StartedAt == nil {
			r.StartedAt = &now
		}
		r.Step = "started"
		if attempt > 1 {
			r.Step = "retrying (attempt " + strconv.Itoa(attempt) + ")"
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, jobs.ErrTransition) {
			log.Info("job became final before it started; acknowledging")
			_ = msg.Ack()
			return
		}
		log.Warn("mark running failed; will retry", "err", err)
		_ = msg.NakWithDelay(w.opts.Backoff(1))
		return
	}
	metrics.JobAttempts.WithLabelValues(w.metricKind(cmd.Kind)).Inc()
	log.Info("job started")
	w.audit(ctx, rec, "started", audit.Success, map[string]any{"attempt": attempt, "worker": w.opts.WorkerID})

	w.pres.AddInFlight(1)
	defer w.pres.AddInFlight(-1)
	jctx, jcancel := context.WithCancel(ctx)
	defer jcancel()
	hbDone := make(chan struct{})
	beat, running := metrics.JobRunning(rec.ID, w.metricKind(cmd.Kind))
	defer running()
	go w.heartbeat(jctx, msg, beat, hbDone)
	job := &Job{Record: rec, rev: rev, store: w.store, log: log, audit: w.opts.Audit}
	started := time.Now()
	result, herr := call(jctx, handler, job)
	job.endSteps()
	jcancel()
	<-hbDone
	elapsed := time.Since(started)
	log = log.With("duration_ms", elapsed.Milliseconds())
	outcome := map[bool]string{true: "succeeded", false: "failed"}[herr == nil]
	switch {
	case errors.Is(herr, jobs.ErrCancelled):
		outcome = "cancelled"
	case herr != nil && w.handlerCtx.Err() != nil:
		outcome = "released"
	case herr != nil && !jobs.IsPermanent(herr) && attempt < rec.MaxAttempts:
		outcome = "retried"
		metrics.JobRetries.WithLabelValues(w.metricKind(cmd.Kind)).Inc()
	}
	metrics.JobDuration.WithLabelValues(w.metricKind(cmd.Kind), outcome).Observe(elapsed.Seconds())

	switch {
	case herr == nil:
		w.finish(ctx, msg, log, job.Record, job.rev, jobs.Succeeded, result, nil, false)
	case errors.Is(herr, jobs.ErrCancelled):
		w.finish(ctx, msg, log, job.Record, job.rev, jobs.Cancelled, result, herr, false)
	case w.handlerCtx.Err() != nil:
		// Shutdown past the drain timeout: release for another replica now.
		log.Warn("job interrupted by shutdown; released for redelivery", "err", herr)
		_ = msg.Nak()
	case jobs.IsPermanent(herr):
		w.finish(ctx, msg, log, job.Record, job.rev, jobs.Failed, result, herr, false)
	case attempt >= rec.MaxAttempts:
		w.finish(ctx, msg, log, job.Record, job.rev, jobs.Failed, result, herr, true)
	default:
		delay := w.opts.Backoff(attempt)
		if _, _, err := w.store.UpdateFrom(ctx, job.Record, job.rev, func(r *jobs.Record) error {
			r.Error = jobs.ErrorOf(herr)
			r.Step = "attempt " + strconv.Itoa(attempt) + " failed; retrying in " + delay.Round(time.Millisecond).String()
			return nil
		}); err != nil {
			log.Warn("record retry failed", "err", err)
		}
		log.Warn("job attempt failed; retrying", "err", herr, "retry_in", delay.String())
		_ = msg.NakWithDelay(delay)
	}
}

// finish writes the final state, dead-letters when asked, acknowledges the
// message (Term for failures, so the server never redelivers) and audits.
// The final write comes first: if it fails, the message is released and
// the (idempotent) job runs again rather than being lost.
func (w *runner) finish(ctx context.Context, msg *nats.Msg, log *slog.Logger, rec jobs.Record, rev uint64, state jobs.State, result any, herr error, deadLetter bool) {
	var resultJSON json.RawMessage
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			log.Error("encode job result", "err", err)
		} else {
			resultJSON = b
		}
	}
	if deadLetter {
		if err := w.deadLetter(ctx, msg, rec, herr); err != nil {
			log.Error("dead-letter failed; will retry", "err", err)
			_ = msg.NakWithDelay(w.opts.Backoff(1))
			return
		}
		metrics.JobsDeadLettered.WithLabelValues(w.metricKind(rec.Kind)).Inc()
	}
	final, _, err := w.store.UpdateFrom(ctx, rec, rev, func(r *jobs.Record) error {
		now := time.Now().UTC()
		r.State, r.FinishedAt = state, &now
		if resultJSON != nil {
			r.Result = resultJSON
		}
		if state == jobs.Succeeded {
			r.Progress, r.Step, r.Error = 100, "done", nil
		} else {
			r.Error = jobs.ErrorOf(herr)
			r.Step = string(state)
		}
		return nil
	})
	if err != nil && !errors.Is(err, jobs.ErrTransition) {
		log.Error("write final state failed; releasing for retry", "state", state, "err", err)
		_ = msg.NakWithDelay(w.opts.Backoff(1))
		return
	}
	if err == nil {
		metrics.JobsFinished.WithLabelValues(w.metricKind(rec.Kind), string(state)).Inc()
		tracing.JobState(ctx, string(state), herr)
	}
	if state == jobs.Failed {
		log.Error("job failed", "err", herr, "dead_lettered", deadLetter)
	} else {
		log.Info("job finished", "state", state)
	}
	// The final event is published before the command is acked: a worker
	// killed in between leaves the command to be redelivered, and the
	// redelivery (which finds the record final) publishes it again.
	if err := w.auditFinal(ctx, final, state, herr); err != nil {
		// Not acked: the redelivery finds the record final and publishes
		// the event again (same id).
		log.Warn("final audit event not stored; releasing the command to publish it again", "err", err)
		_ = msg.NakWithDelay(w.opts.Backoff(1))
		return
	}
	if state == jobs.Succeeded || state == jobs.Cancelled {
		_ = msg.Ack()
	} else {
		_ = msg.Term()
	}
}

// finalAuditTries bounds the deliveries of a command whose job is already
// final that retry its final audit event (an AUDIT stream this worker can
// never publish to must not keep the command forever).
const finalAuditTries = 10

// auditFinal publishes the job's final event with an id derived from the
// job and its final state, so publishing it again (after a crash between
// the final write and the ack) stores it once. The publish is bounded by
// half the ack wait: the job's heartbeats have stopped by now.
func (w *runner) auditFinal(ctx context.Context, rec jobs.Record, state jobs.State, herr error) error {
	if w.opts.Audit == nil {
		return nil
	}
	outcome := audit.Success
	detail := map[string]any{"attempt": rec.Attempt, "worker": rec.Worker}
	if state == jobs.Failed {
		outcome = audit.Failure
		var code jobs.Code
		if herr != nil {
			code = jobs.CodeOf(herr)
		} else if rec.Error != nil {
			code = rec.Error.Code
		}
		detail["error_code"] = string(code)
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.AckWait/2)
	defer cancel()
	return w.opts.Audit.Publish(ctx, w.event(audit.DerivedID(rec.ID, "final", string(state)), rec, string(state), outcome, detail))
}

func (w *runner) deadLetter(ctx context.Context, msg *nats.Msg, rec jobs.Record, herr error) error {
	dl := nats.NewMsg(jobs.DLQSubject(rec.Kind))
	dl.Data = msg.Data
	dl.Header.Set(jetstream.MsgIDHeader, "dlq-"+rec.ID)
	dl.Header.Set("Insightops-Job-Id", rec.ID)
	dl.Header.Set("Insightops-Error", jobs.ErrorOf(herr).Message)
	if md, err := msg.Metadata(); err == nil {
		dl.Header.Set("Insightops-Deliveries", strconv.FormatUint(md.NumDelivered, 10))
		dl.Header.Set("Insightops-Stream-Seq", strconv.FormatUint(md.Sequence.Stream, 10))
	}
	if _, err := w.js.PublishMsg(ctx, dl); err != nil {
		return fmt.Errorf("publish %s: %w", dl.Subject, err)
	}
	return nil
}

// metricKind bounds the kind label to the kinds this worker handles.
func (w *runner) metricKind(kind string) string {
	if _, ok := w.opts.Handlers[kind]; ok {
		return kind
	}
	return "unknown"
}

func (w *runner) heartbeat(ctx context.Context, msg *nats.Msg, sent func(), done chan<- struct{}) {
	defer close(done)
	every := max(w.opts.AckWait/3, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if msg.InProgress() == nil {
				sent()
			}
		}
	}
}

func (w *runner) audit(ctx context.Context, rec jobs.Record, phase, outcome string, detail map[string]any) {
	w.opts.Audit.Record(ctx, w.event("", rec, phase, outcome, detail)) // nil-safe
}

// event is the audit event of rec's phase, with id ("" for a fresh one).
func (w *runner) event(id string, rec jobs.Record, phase, outcome string, detail map[string]any) audit.Event {
	return audit.Event{
		ID: id, Actor: rec.SubmittedBy, Action: jobs.AuditAction(rec.Kind, phase), Resource: jobs.WorkerKind(rec.Kind),
		JobID: rec.ID, Outcome: outcome, Detail: detail,
	}
}

// call runs h, turning a panic into a permanent error so one bad job
// cannot take the replica down.
func call(ctx context.Context, h Handler, job *Job) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			job.log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = jobs.Permanent(jobs.CodePanic, fmt.Errorf("handler panicked: %v", p))
		}
	}()
	return h(ctx, job)
}

// OptionsFrom fills the runtime knobs of a worker from configuration.
func OptionsFrom(cfg config.Config, kind string, handlers map[string]Handler, pub *audit.Publisher, log *slog.Logger) Options {
	return Options{
		Kind: kind, Handlers: handlers, WorkerID: kind + "-" + cfg.WorkerID,
		Concurrency: cfg.WorkerConcurrency, AckWait: cfg.JobAckWait, ShutdownTimeout: cfg.ShutdownTimeout,
		Audit: pub, Log: log,
	}
}

// NotYetImplemented is the handler of a job kind whose worker exists but
// whose work lands in a later release: it fails the job at once with a
// clear, permanent error instead of retrying.
func NotYetImplemented(kind string) Handler {
	return func(ctx context.Context, job *Job) (any, error) {
		return nil, jobs.Permanent(jobs.CodeNotImplemented, fmt.Errorf("job kind %s is not implemented in this version", kind))
	}
}
