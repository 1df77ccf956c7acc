// Package bus connects to NATS (or embeds a nats-server when no URL is
// configured) and provisions, idempotently, the streams and buckets of the
// insightops contract: JOBS, JOBS_DLQ, AUDIT, JOB_PROGRESS, LOCKS, WORKERS.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/config"
)

// Names on the bus, as in the architecture contract.
const (
	StreamJobs    = "JOBS"
	StreamDLQ     = "JOBS_DLQ"
	StreamAudit   = "AUDIT"
	BucketJobs    = "JOB_PROGRESS"
	BucketLocks   = "LOCKS"
	BucketWorkers = "WORKERS"
	BucketBackups = "BACKUPS"

	SubjectJobs  = "jobs.>"
	SubjectDLQ   = "dlq.jobs.>"
	SubjectAudit = "audit.>"
)

// DefaultAuditMaxBytes is the MaxBytes of AUDIT when the configuration
// gives none (AUDIT_MAX_BYTES' default): 1 GiB, about a million events. JetStream reserves it in the store.
const DefaultAuditMaxBytes int64 = 1 << 30

// Settings are the provisioning knobs taken from configuration.
type Settings struct {
	Replicas       int
	AuditRetention time.Duration
	// AuditMaxBytes is the MaxBytes of AUDIT (DefaultAuditMaxBytes when
	// not positive): past it the oldest events leave the stream (they are
	// in the System DB's audit_logs once the sink has them), so a flood of
	// events cannot fill the JetStream store every other stream shares.
	AuditMaxBytes int64
	JobRetention  time.Duration
	// DuplicateWindow of JOBS; at least 10 minutes (idempotency keys).
	DuplicateWindow time.Duration
	// WorkerTTL is how long a worker's presence key lives without refresh.
	WorkerTTL time.Duration
	// LockTTL is how long a lock lives without refresh.
	LockTTL time.Duration
}

func (s Settings) withDefaults() Settings {
	if s.Replicas < 1 {
		s.Replicas = 1
	}
	if s.AuditRetention <= 0 {
		s.AuditRetention = 400 * 24 * time.Hour
	}
	if s.AuditMaxBytes <= 0 {
		s.AuditMaxBytes = DefaultAuditMaxBytes
	}
	if s.JobRetention <= 0 {
		s.JobRetention = 7 * 24 * time.Hour
	}
	if s.DuplicateWindow < 10*time.Minute {
		s.DuplicateWindow = 10 * time.Minute
	}
	if s.WorkerTTL <= 0 {
		s.WorkerTTL = 15 * time.Second
	}
	if s.LockTTL <= 0 {
		s.LockTTL = 60 * time.Second
	}
	return s
}

// EmbeddedOptions configure an in-process nats-server.
type EmbeddedOptions struct {
	// Listen is host:port of the client listener; port 0 picks a free one.
	Listen string
	// StoreDir holds JetStream's file store.
	StoreDir   string
	ServerName string
}

// StartEmbedded starts a JetStream-enabled nats-server in this process and
// waits until it accepts connections. Shut it down with Shutdown and
// WaitForShutdown.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", opts.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if err := os.MkdirAll(opts.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: store dir: %w", err)
	}
	name := opts.ServerName
	if name == "" {
		name = "insightops-embedded"
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Clean(opts.StoreDir),
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready on %s within 10s (is the port taken?)", opts.Listen)
	}
	return ns, nil
}

// Connect dials url with reconnects that never give up, so a worker rides
// out a NATS outage and resumes by itself. extra options are applied after
// these (e.g. nats.CustomInboxPrefix, nats.ReconnectBufSize).
func Connect(url, name, creds string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", config.RedactURLs(url), err)
	}
	return nc, nil
}

// StreamConfigs returns the desired configuration of every stream.
func StreamConfigs(s Settings) []jetstream.StreamConfig {
	s = s.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name:        StreamJobs,
			Description: "insightops job commands (work queue)",
			Subjects:    []string{SubjectJobs},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    s.Replicas,
			Duplicates:  s.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        StreamDLQ,
			Description: "insightops jobs that exhausted their deliveries",
			Subjects:    []string{SubjectDLQ},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    s.Replicas,
			Duplicates:  s.DuplicateWindow,
		},
		{
			Name:        StreamAudit,
			Description: "insightops audit trail (append-only)",
			Subjects:    []string{SubjectAudit},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    s.Replicas,
			MaxAge:      s.AuditRetention,
			MaxBytes:    s.AuditMaxBytes,
			Discard:     jetstream.DiscardOld,
			Duplicates:  s.DuplicateWindow,
			DenyDelete:  true,
			DenyPurge:   true,
		},
	}
}

// BucketConfigs returns the desired configuration of every KV bucket.
func BucketConfigs(s Settings) []jetstream.KeyValueConfig {
	s = s.withDefaults()
	return []jetstream.KeyValueConfig{
		{Bucket: BucketJobs, Description: "insightops job records", History: 5, TTL: s.JobRetention, Storage: jetstream.FileStorage, Replicas: s.Replicas},
		{Bucket: BucketLocks, Description: "insightops exclusive operation leases", History: 1, TTL: s.LockTTL, Storage: jetstream.FileStorage, Replicas: s.Replicas},
		{Bucket: BucketWorkers, Description: "insightops worker presence", History: 1, TTL: s.WorkerTTL, Storage: jetstream.MemoryStorage, Replicas: s.Replicas},
	}
}

// Provision creates or updates every stream and bucket. Settings that
// JetStream cannot change in place (storage type, retention policy) are
// reported as an error naming the stream and the field, leaving the
// existing stream untouched.
func Provision(ctx context.Context, js jetstream.JetStream, s Settings, log *slog.Logger) error {
	var errs []error
	for _, want := range StreamConfigs(s) {
		if err := ensureStream(ctx, js, want, log); err != nil {
			errs = append(errs, err)
		}
	}
	for _, want := range BucketConfigs(s) {
		if err := ensureBucket(ctx, js, want, log); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, log *slog.Logger) error {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		log.Info("stream created", "stream", want.Name, "replicas", want.Replicas)
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", want.Name, err)
	}
	have := st.CachedInfo().Config
	if have.Storage != want.Storage {
		return fmt.Errorf("stream %s: storage is %s, configuration wants %s; JetStream cannot change storage in place (back up, delete the stream, start again)", want.Name, have.Storage, want.Storage)
	}
	if have.Retention != want.Retention {
		return fmt.Errorf("stream %s: retention is %s, configuration wants %s; JetStream cannot change retention in place", want.Name, have.Retention, want.Retention)
	}
	if streamSettingsEqual(have, want) {
		return nil
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return fmt.Errorf("update stream %s (replicas %d→%d, max age %s→%s, max bytes %d→%d): %w", want.Name, have.Replicas, want.Replicas, have.MaxAge, want.MaxAge, have.MaxBytes, want.MaxBytes, err)
	}
	log.Info("stream updated", "stream", want.Name, "replicas", want.Replicas, "max_age", want.MaxAge.String(), "max_bytes", want.MaxBytes)
	return nil
}

func streamSettingsEqual(a, b jetstream.StreamConfig) bool {
	return a.Replicas == b.Replicas && a.MaxAge == b.MaxAge && byteLimit(a.MaxBytes) == byteLimit(b.MaxBytes) && a.Duplicates == b.Duplicates &&
		a.DenyDelete == b.DenyDelete && a.DenyPurge == b.DenyPurge && a.Description == b.Description &&
		len(a.Subjects) == len(b.Subjects) && (len(a.Subjects) == 0 || a.Subjects[0] == b.Subjects[0])
}

// byteLimit is a stream's MaxBytes as the server keeps it: a configured 0
// (no limit) is stored as -1, so both mean unlimited. Without this every
// process start "updated" JOBS and JOBS_DLQ, which have no byte limit.
func byteLimit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig, log *slog.Logger) error {
	kv, err := js.KeyValue(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateKeyValue(ctx, want); err != nil {
			return fmt.Errorf("create bucket %s: %w", want.Bucket, err)
		}
		log.Info("bucket created", "bucket", want.Bucket, "replicas", want.Replicas)
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up bucket %s: %w", want.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("bucket %s status: %w", want.Bucket, err)
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	have := info.Config
	wantStorage := want.Storage
	if have.Storage != wantStorage {
		return fmt.Errorf("bucket %s: storage is %s, configuration wants %s; JetStream cannot change storage in place", want.Bucket, have.Storage, wantStorage)
	}
	if have.Replicas == want.Replicas && have.MaxAge == want.TTL && have.MaxMsgsPerSubject == int64(want.History) {
		return nil
	}
	if _, err := js.UpdateKeyValue(ctx, want); err != nil {
		return fmt.Errorf("update bucket %s (replicas %d→%d, ttl %s→%s): %w", want.Bucket, have.Replicas, want.Replicas, have.MaxAge, want.TTL, err)
	}
	log.Info("bucket updated", "bucket", want.Bucket, "replicas", want.Replicas, "ttl", want.TTL.String())
	return nil
}
