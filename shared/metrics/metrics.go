// Package metrics holds the Prometheus metrics every insightops binary
// exports: jobs by kind and final state, durations, attempts, retries and
// dead letters, queue depth per consumer, HTTP requests, and the backup
// freshness gauges an operator alerts on.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is the process's registry (Go runtime and process collectors
// included). Tests may read it with prometheus/testutil.
var Registry = prometheus.NewRegistry()

var (
	// JobsFinished counts jobs reaching a final state, by kind and state.
	JobsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "insightops_jobs_finished_total", Help: "Jobs that reached a final state, by kind and state.",
	}, []string{"kind", "state"})
	// JobDuration observes a job attempt's duration, by kind and outcome.
	JobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "insightops_job_duration_seconds", Help: "Duration of job attempts, by kind and outcome (succeeded, failed, cancelled, retried, released).",
		Buckets: []float64{.005, .01, .05, .1, .5, 1, 5, 15, 60, 300, 900, 3600},
	}, []string{"kind", "outcome"})
	// JobAttempts counts deliveries a worker started, by kind.
	JobAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "insightops_job_attempts_total", Help: "Job deliveries a worker started, by kind.",
	}, []string{"kind"})
	// JobRetries counts failed attempts scheduled for a retry.
	JobRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "insightops_job_retries_total", Help: "Failed job attempts scheduled for a retry, by kind.",
	}, []string{"kind"})
	// JobsDeadLettered counts jobs copied to JOBS_DLQ.
	JobsDeadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "insightops_jobs_dead_lettered_total", Help: "Jobs that exhausted their attempts and were copied to JOBS_DLQ, by kind.",
	}, []string{"kind"})
	// HTTPRequests counts API requests by route, method and status.
	HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "insightops_http_requests_total", Help: "API requests by route template, method and status.",
	}, []string{"route", "method", "status"})
	// HTTPDuration observes API latency by route and method.
	HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "insightops_http_request_duration_seconds", Help: "API request latency by route template and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	// BackupBytes is the size of the last archive written.
	BackupBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "insightops_backup_last_bytes", Help: "Size in bytes of the newest archive written.",
	})
	// BackupDuration observes backup job durations.
	BackupDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "insightops_backup_duration_seconds", Help: "Duration of successful backups.",
		Buckets: []float64{1, 5, 15, 60, 300, 900, 1800, 3600, 7200},
	})
	// LastBackupSuccess is the Unix time of the last successful backup.
	LastBackupSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "insightops_backup_last_success_timestamp_seconds", Help: "Unix time of the last successful backup (alert when now minus this exceeds your RPO).",
	})
	// LastBackupVerified is the Unix time of the last successful verify.
	LastBackupVerified = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "insightops_backup_last_verified_timestamp_seconds", Help: "Unix time of the last archive verified successfully.",
	})
	// BackupVerifications counts archive verifications by outcome
	// ("passed", "failed": the archive is corrupt or incomplete).
	BackupVerifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "insightops_backup_verifications_total", Help: "Archive verifications by outcome (passed, failed: the archive is corrupt or incomplete).",
	}, []string{"outcome"})
	// ReadyChecks counts the checks of the bus GET /ready made; the
	// route answers from a cache between them, so a flood of requests
	// shows as requests, not as checks.
	ReadyChecks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "insightops_api_ready_checks_total", Help: "Readiness checks of the bus GET /ready made (it answers from a short cache between them).",
	})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		JobsFinished, JobDuration, JobAttempts, JobRetries, JobsDeadLettered,
		HTTPRequests, HTTPDuration, BackupBytes, BackupDuration, LastBackupSuccess, LastBackupVerified,
		BackupVerifications, ReadyChecks, running,
	)
	for _, o := range []string{"passed", "failed"} {
		BackupVerifications.WithLabelValues(o) // at zero from the start: increase() sees the first failure
	}
}

// Handler serves the registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}

// queueCollector reads the pending and ack-pending counts of named
// consumers from JetStream at scrape time: the queue depth per worker kind
// on JOBS, and the audit sink's lag on AUDIT.
type queueCollector struct {
	mu      sync.Mutex
	targets map[string]queueTarget // by stream
	pending *prometheus.Desc
	ackPend *prometheus.Desc
	redeliv *prometheus.Desc
}

type queueTarget struct {
	js        jetstream.JetStream
	consumers []string
}

var (
	queueOnce sync.Once
	queues    = &queueCollector{targets: map[string]queueTarget{},
		pending: prometheus.NewDesc("insightops_consumer_pending_messages", "Messages waiting for the consumer (queue depth; for AUDIT/audit-sink, the sink's lag).", []string{"stream", "consumer"}, nil),
		ackPend: prometheus.NewDesc("insightops_consumer_ack_pending_messages", "Messages delivered and not yet acknowledged (jobs running).", []string{"stream", "consumer"}, nil),
		redeliv: prometheus.NewDesc("insightops_consumer_redelivered_messages", "Messages delivered more than once and still pending.", []string{"stream", "consumer"}, nil),
	}
)

// RegisterQueueDepth exports insightops_consumer_pending_messages,
// insightops_consumer_ack_pending_messages and
// insightops_consumer_redelivered_messages for the named consumers of
// stream (the queue depth per worker kind on JOBS, the audit sink's lag on
// AUDIT). A later call for the same stream replaces the earlier one (one
// bus per process; tests start several).
func RegisterQueueDepth(js jetstream.JetStream, stream string, consumers []string) error {
	return registerOnce(&queueOnce, queues, "queue depth", &queues.mu, func() {
		queues.targets[stream] = queueTarget{js: js, consumers: consumers}
	})
}

// registerOnce registers c the first time, then runs set under mu: a
// scrape-time collector is registered once and a later call's sources
// replace the earlier ones.
func registerOnce(once *sync.Once, c prometheus.Collector, what string, mu *sync.Mutex, set func()) error {
	var err error
	once.Do(func() {
		if rerr := Registry.Register(c); rerr != nil {
			err = fmt.Errorf("register %s: %w", what, rerr)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	set()
	return err
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPend
	ch <- c.redeliv
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	targets := maps.Clone(c.targets)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for stream, t := range targets {
		for _, name := range t.consumers {
			cons, err := t.js.Consumer(ctx, stream, name)
			if err != nil {
				continue // not created yet, or NATS away: no sample rather than a wrong one
			}
			info, err := cons.Info(ctx)
			if err != nil {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), stream, name)
			ch <- prometheus.MustNewConstMetric(c.ackPend, prometheus.GaugeValue, float64(info.NumAckPending), stream, name)
			ch <- prometheus.MustNewConstMetric(c.redeliv, prometheus.GaugeValue, float64(info.NumRedelivered), stream, name)
		}
	}
}

// Serve exposes /metrics and /healthz on ln until ctx ends (the worker
// binaries' METRICS_ADDR; the API serves /metrics on its own port). The
// caller opens ln, so it learns of an address it cannot listen on before
// it starts its work; Serve closes it.
func Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler())
	// /healthz: the process is up and serving (a liveness/readiness probe
	// target for the worker pods).
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("metrics listening", "addr", ln.Addr().String())
	go func() { //nolint:gosec // runs once ctx has ended: the shutdown gets its own bound
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics serve: %w", err)
	}
	return nil
}
