package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/config"
)

// Bus is a provisioned connection: the NATS connection, its JetStream
// context and handles on the contract's buckets. When the configuration
// has no NATS_URL it also owns the embedded server.
type Bus struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Jobs     jetstream.KeyValue // JOB_PROGRESS
	Locks    jetstream.KeyValue // LOCKS
	Workers  jetstream.KeyValue // WORKERS
	Embedded *server.Server     // nil when connected to an external NATS
	Settings Settings
}

// SettingsFrom maps configuration to provisioning settings.
func SettingsFrom(cfg config.Config) Settings {
	return Settings{Replicas: cfg.NATSReplicas, AuditRetention: cfg.AuditRetention, JobRetention: cfg.JobRetention}
}

// Open starts the embedded server when cfg.NATSURL is empty, connects,
// provisions every stream and bucket (unless cfg.NATSProvision is false:
// a least-privilege NATS user may not create them, so only the
// provisioner does; an embedded server is always provisioned), and opens
// the buckets. With BACKUP_STORE=nats provisioning also creates the
// object store BACKUPS. name is the connection name shown in NATS
// monitoring (e.g. "insightops-backup"). The connection's reply inboxes
// use NATS_INBOX_PREFIX; extra options are applied last.
func Open(ctx context.Context, cfg config.Config, name string, log *slog.Logger, extra ...nats.Option) (*Bus, error) {
	b := &Bus{Settings: SettingsFrom(cfg)}
	url := cfg.NATSURL
	if cfg.Embedded() {
		ns, err := StartEmbedded(EmbeddedOptions{Listen: cfg.NATSListen, StoreDir: filepath.Join(cfg.DataDir, "jetstream")})
		if err != nil {
			return nil, err
		}
		b.Embedded = ns
		url = ns.ClientURL()
		log.Info("embedded nats started", "url", url, "store", filepath.Join(cfg.DataDir, "jetstream"))
	}
	var opts []nats.Option
	if cfg.NATSInboxPrefix != "" && cfg.NATSInboxPrefix != strings.TrimSuffix(nats.InboxPrefix, ".") {
		opts = append(opts, nats.CustomInboxPrefix(cfg.NATSInboxPrefix))
	}
	if cfg.NATSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCAFile)) // and TLS required
	}
	nc, err := Connect(url, name, cfg.NATSCreds, log, append(opts, extra...)...)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Conn = nc
	provision := cfg.NATSProvision || cfg.Embedded()
	if err := b.attach(ctx, provision, log); err != nil {
		b.Close()
		if !provision {
			return nil, fmt.Errorf("%w (NATS_PROVISION=false: the provisioner, e.g. the init Job, has not created them yet?)", err)
		}
		return nil, err
	}
	if provision && cfg.BackupStore == "nats" {
		if err := ensureObjectStore(ctx, b.JS, b.Settings, log); err != nil {
			b.Close()
			return nil, fmt.Errorf("provision: %w", err)
		}
	}
	return b, nil
}

// ensureObjectStore creates the object store BACKUPS when it is missing,
// as backupstore.NewNATS would (an existing one is left as it is), so that
// workers without the right to create streams find it.
func ensureObjectStore(ctx context.Context, js jetstream.JetStream, s Settings, log *slog.Logger) error {
	_, err := js.ObjectStore(ctx, BucketBackups)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("look up object store %s: %w", BucketBackups, err)
	}
	s = s.withDefaults()
	_, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BucketBackups,
		Description: "insightops backup archives",
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
	})
	if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		return fmt.Errorf("create object store %s: %w", BucketBackups, err)
	}
	log.Info("object store created", "bucket", BucketBackups, "replicas", s.Replicas)
	return nil
}

// Attach wraps an existing connection (tests, the all-in-one sharing one
// server) and provisions when provision is true.
func Attach(ctx context.Context, nc *nats.Conn, s Settings, provision bool, log *slog.Logger) (*Bus, error) {
	b := &Bus{Conn: nc, Settings: s}
	if err := b.attach(ctx, provision, log); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Bus) attach(ctx context.Context, provision bool, log *slog.Logger) error {
	js, err := jetstream.New(b.Conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	b.JS = js
	if provision {
		if err := Provision(ctx, js, b.Settings, log); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	for _, h := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{BucketJobs, &b.Jobs}, {BucketLocks, &b.Locks}, {BucketWorkers, &b.Workers}} {
		kv, err := js.KeyValue(ctx, h.name)
		if err != nil {
			return fmt.Errorf("open bucket %s: %w", h.name, err)
		}
		*h.kv = kv
	}
	return nil
}

// Close drains the connection and stops the embedded server, if any.
func (b *Bus) Close() {
	if b.Conn != nil {
		_ = b.Conn.Drain()
		b.Conn.Close()
	}
	if b.Embedded != nil {
		b.Embedded.Shutdown()
		b.Embedded.WaitForShutdown()
	}
}
