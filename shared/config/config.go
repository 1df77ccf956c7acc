// Package config turns the process environment into a typed, validated
// Config. It is parsed once at start; a bad value is an error naming the
// variable and the values it accepts, never a panic later.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupfmt/complevel"
)

// DefaultBackupImportMaxMB is BACKUP_IMPORT_MAX_MB's default.
const DefaultBackupImportMaxMB = 8192

// DefaultAdminPassword is the development admin password. Production refuses it.
const DefaultAdminPassword = "admin-change-me"

// Environment names the deployment flavour that picks feature-flag defaults.
type Environment string

// The accepted APP_ENV values.
const (
	Development Environment = "development"
	Production  Environment = "production"
)

// Config is every setting of the contract, typed.
type Config struct {
	AppEnv Environment
	// Role is the kind of process this configuration was loaded for
	// (LoadRole); it decides which role-scoped secrets are required.
	Role Role

	// Feature flags; their defaults depend on AppEnv.
	SeedDemoData    bool
	EnableTargetDB  bool
	AutoTrainChroma bool

	// Where things listen and write.
	APIAddr string
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For the API believes (TRUSTED_PROXIES); none by default:
	// the direct peer is the client.
	TrustedProxies []netip.Prefix
	NATSListen     string
	DataDir        string

	// NATS.
	NATSURL      string // empty: start an embedded server
	NATSReplicas int
	NATSCreds    string
	// NATSCAFile is the PEM CA bundle the NATS servers' certificates are
	// verified with (NATS_CA_FILE); set, the connection requires TLS.
	NATSCAFile string
	// NATSProvision: this process creates/updates the streams and buckets
	// at start (false for least-privilege users that may not).
	NATSProvision bool
	// NATSInboxPrefix is the subject prefix of this process's reply
	// inboxes ("_INBOX" by default). Giving each role its own lets the NATS
	// permissions allow a user to subscribe to its own replies only.
	NATSInboxPrefix string

	// Stores.
	DatabaseURL string // empty: SQLite under DataDir
	// VerifyDatabaseURL is the PostgreSQL role verify's scratch test
	// restores run as (CREATEDB and nothing more); empty: DATABASE_URL's
	// role if it is limited so, else no scratch restore.
	VerifyDatabaseURL string
	TargetDatabaseURL string
	TargetDBSource    string
	TargetDBPath      string
	// TargetTestAllowedHosts are the hosts (host or host:port) POST
	// /admin/db/target/test may connect to; empty: only the host of
	// TargetDatabaseURL.
	TargetTestAllowedHosts []string
	// TargetTestAllowedPaths are the directories whose SQLite files POST
	// /admin/db/target/test may open; empty: the directory of TargetDBPath.
	TargetTestAllowedPaths []string
	AssetsDir              string // ontology/ and training/ live here
	ChromaURL              string
	// Embedding is EMBEDDING_PROVIDER and the settings of the openai and
	// ollama embedders (shared/vectors builds the one it names).
	Embedding Embedding

	// Auth.
	InitAdminUsername string
	InitAdminPassword string
	JWTSecret         string
	JWTTTL            time.Duration

	// Backups.
	BackupStore          string
	BackupDir            string
	BackupRetentionCount int
	BackupCompression    string
	// BackupCompressionLevel is the level of BackupCompression; 0 in a
	// Config built by hand means the compression's default
	// (complevel.Of).
	BackupCompressionLevel int
	// BackupS3 is the bucket of BACKUP_STORE=s3 (see s3.go).
	BackupS3 S3
	// BackupRetention is the whole retention policy; its Last is
	// BackupRetentionCount.
	BackupRetention Retention
	// BackupDrillSchedule is when the backup workers run a restore drill
	// of the newest archive (a backup.verify job marked as a drill); zero:
	// never.
	BackupDrillSchedule Schedule
	// BackupSchedule is when the backup workers submit a backup.create
	// job on their own, once per tick across replicas; zero: never.
	BackupSchedule Schedule
	// BackupVerifyAfter makes each scheduled backup be verified (a
	// backup.verify job) once it succeeds.
	BackupVerifyAfter bool
	// BackupSigningKey signs and verifies archives (archivesig); the
	// BackupSigningKeysOld (comma separated) only verify, for rotation.
	BackupSigningKey     string
	BackupSigningKeysOld string
	// BackupAgeRecipients (age public keys, comma separated) encrypt every
	// new archive (backupcrypt); empty: archives are not encrypted.
	BackupAgeRecipients string
	// BackupAgeIdentityFile is the age identity file that decrypts
	// archives where they are verified and restored; empty: none.
	BackupAgeIdentityFile string
	// BackupImportMaxMB caps the body of an archive import (MiB).
	BackupImportMaxMB int
	// BackupMaxDecompressed caps the bytes one archive may decompress to
	// when it is verified or restored (a decompression bomb stops there).
	BackupMaxDecompressed int64

	// Retention on the bus.
	AuditRetention time.Duration
	// AuditMaxBytes is the MaxBytes of the AUDIT stream.
	AuditMaxBytes int64
	// AuditVerifyTimeout bounds GET /admin/db/audit/verify.
	AuditVerifyTimeout time.Duration
	JobRetention       time.Duration

	// Job runtime.
	WorkerID          string
	WorkerConcurrency int
	JobMaxAttempts    int
	JobAckWait        time.Duration
	ShutdownTimeout   time.Duration

	LogLevel    string
	LogFormat   string // auto, json or text
	MetricsAddr string

	// Tracing is the OpenTelemetry trace export (OTEL_* variables).
	Tracing Tracing
}

// Var documents one environment variable: its name, default and meaning,
// and whether its value is a secret. Vars is the single list the README
// table is checked against.
type Var struct {
	Name    string
	Default string
	Help    string
	// Secret: the whole value is a credential (a key, a password, a
	// database connection string that may hold one anywhere), so redacted
	// text (VarError.Redacted, the config.invalid audit event) never shows
	// it. A variable whose credentials can only be a URL's userinfo
	// (NATS_URL, CHROMA_URL) is not Secret: redaction removes the password
	// or token of every URL in any value and keeps the servers named.
	Secret bool
}

// Values of Var.Secret, for the table below.
const (
	plain  = false
	secret = true
)

// Vars lists every variable Load reads, in README order.
var Vars = []Var{
	{"APP_ENV", "development", "development|production: picks the defaults of the three feature flags below", plain},
	{"SEED_DEMO_DATA", "true (dev) / false (prod)", "init seeds demo rows into accounting_transactions", plain},
	{"ENABLE_TARGET_DB", "false (dev) / true (prod)", "a missing target DB source fails init instead of warning", plain},
	{"AUTO_TRAIN_CHROMA", "false (dev) / true (prod)", "init publishes a jobs.chroma.train job when it is done", plain},
	{"API_ADDR", "127.0.0.1:8000 (dev) / :8000 (prod)", "HTTP listen address of the API; development listens on loopback only", plain},
	{"TRUSTED_PROXIES", "(empty)", "comma-separated CIDRs (or addresses) of the reverse proxies whose X-Forwarded-For the API believes; empty: the direct peer is the client", plain},
	{"NATS_LISTEN", "127.0.0.1:4223", "client address of the embedded NATS server (only when NATS_URL is empty)", plain},
	{"DATA_DIR", "./data", "everything the embedded defaults write: JetStream store, SQLite system DB, runtime target copy, backups", plain},
	{"NATS_URL", "(empty)", "NATS server(s) to connect to, comma separated; empty starts an embedded server", plain},
	{"NATS_REPLICAS", "1", "replicas of every stream and bucket (3 on a cluster)", plain},
	{"NATS_CREDS", "(empty)", "path of a NATS .creds file", plain},
	{"NATS_CA_FILE", "(empty)", "PEM CA bundle that signed the NATS servers' certificates; set, every NATS connection requires TLS and verifies the servers with it (deploy/nats turns client TLS on)", plain},
	{"NATS_PROVISION", "true", "this process creates/updates streams and buckets at start; false for least-privilege NATS users (only the provisioner, e.g. the init Job, provisions)", plain},
	{"NATS_INBOX_PREFIX", "_INBOX", "subject prefix of this process's reply inboxes (JetStream API replies, pulled messages); one per role, e.g. _INBOX_backup, so a NATS user may subscribe only to its own replies", plain},
	{"DATABASE_URL", "(empty)", "PostgreSQL URL of the System DB; empty uses SQLite at DATA_DIR/system.db", secret},
	{"VERIFY_DATABASE_URL", "(empty)", "PostgreSQL URL of a role with CREATEDB and nothing more (no SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS, server-file roles): backup.verify restores a dump into a scratch database as it; empty: DATABASE_URL's role when it is so limited, else verify checks the dump with pg_restore --list only", secret},
	{"TARGET_DATABASE_URL", "(empty)", "external target DB URL (postgres://… or a sqlite file path); empty uses the golden copy", secret},
	{"TARGET_DB_SOURCE", "assets/databases/vanna_db.db", "golden source of the target DB, never modified", plain},
	{"TARGET_DB_PATH", "DATA_DIR/target/vanna_db.db", "runtime copy of the golden source, opened read-only", plain},
	{"TARGET_TEST_ALLOWED_HOSTS", "(empty: the host of TARGET_DATABASE_URL)", "comma-separated hosts (host or host:port) POST /admin/db/target/test may connect to", plain},
	{"TARGET_TEST_ALLOWED_PATHS", "(empty: the directory of TARGET_DB_PATH)", "comma-separated directories whose SQLite files POST /admin/db/target/test may open", plain},
	{"ASSETS_DIR", "assets", "shipped data: ontology/ (business glossary loaded by init) and training/ (question/SQL pairs)", plain},
	{"CHROMA_URL", "(empty)", "ChromaDB server URL; empty disables the vector store", plain},
	{"EMBEDDING_PROVIDER", "local", "default|local|openai|ollama: default is Chroma's own embedding function (all-MiniLM-L6-v2 on ONNX Runtime, what a default Vanna app searches with; recommended for production); local is an offline feature-hashing embedder for development that no Vanna app can search with (docs/VANNA.md)", plain},
	{"EMBEDDING_MODEL_DIR", "(empty: fetched into $HOME/.cache on first use)", "absolute path of a directory provisioned with the default embedder's files (docs/VANNA.md: layout and checksums); when set nothing is fetched, and a missing file or checksum stops the chroma worker at start", plain},
	{"OPENAI_API_KEY", "(empty)", "API key of the openai embedder; required when EMBEDDING_PROVIDER=openai", secret},
	{"OPENAI_EMBEDDING_MODEL", "text-embedding-3-small", "embedding model of the openai embedder", plain},
	{"OPENAI_BASE_URL", "(empty: api.openai.com)", "base URL of an OpenAI-compatible embeddings API; http:// allowed", plain},
	{"OPENAI_API_BASE", "(empty)", "older name of OPENAI_BASE_URL, read when that is empty", plain},
	{"OPENAI_EMBEDDING_DIMENSIONS", "(model's own)", "1–65536: ask the openai model for vectors of this size", plain},
	{"OPENAI_ORG_ID", "(empty)", "OpenAI organisation id sent with each request", plain},
	{"OLLAMA_HOST", "http://localhost:11434", "Ollama server of the ollama embedder (host:port is accepted)", plain},
	{"OLLAMA_EMBEDDING_MODEL", "nomic-embed-text", "embedding model of the ollama embedder", plain},
	{"INIT_ADMIN_USERNAME", "admin@example.com", "e-mail of the admin user init creates once", plain},
	{"INIT_ADMIN_PASSWORD", DefaultAdminPassword, "its password; init and the all-in-one only; production requires your own (no placeholder, no shipped default) and refuses it in any other process", secret},
	{"JWT_SECRET", "(random, kept in DATA_DIR in development)", "HMAC key of the API's tokens; the API and the all-in-one only; production requires it (32+ characters, no placeholder) and refuses it in any other process", secret},
	{"JWT_TTL", "1h", "lifetime of a login token", plain},
	{"BACKUP_STORE", "local", "local|nats|s3: BACKUP_DIR, the JetStream Object Store bucket BACKUPS, or the S3 bucket BACKUP_S3_BUCKET", plain},
	{"BACKUP_DIR", "DATA_DIR/backups", "archive directory when BACKUP_STORE=local", plain},
	{"BACKUP_S3_ENDPOINT", "(empty)", "BACKUP_STORE=s3: URL of the S3-compatible server, e.g. https://s3.eu-west-1.amazonaws.com (required)", plain},
	{"BACKUP_S3_BUCKET", "(empty)", "BACKUP_STORE=s3: the bucket (required; it must exist)", plain},
	{"BACKUP_S3_PREFIX", "(empty)", "BACKUP_STORE=s3: key prefix of the archives, e.g. insightops/prod/", plain},
	{"BACKUP_S3_REGION", "us-east-1", "BACKUP_STORE=s3: the bucket's region (signed into every request)", plain},
	{"BACKUP_S3_PATH_STYLE", "false", "BACKUP_STORE=s3: true forces path-style requests (host/bucket/key); false lets the client choose (virtual-hosted on AWS)", plain},
	{"AWS_ACCESS_KEY_ID", "(empty)", "BACKUP_STORE=s3: access key id (with AWS_SECRET_ACCESS_KEY), unless BACKUP_S3_CREDENTIALS_FILE is set", plain},
	{"AWS_SECRET_ACCESS_KEY", "(empty)", "BACKUP_STORE=s3: its secret key", secret},
	{"AWS_SESSION_TOKEN", "(empty)", "BACKUP_STORE=s3: session token of temporary credentials", secret},
	{"BACKUP_S3_CREDENTIALS_FILE", "(empty)", "BACKUP_STORE=s3: an AWS shared credentials file (ini) to read the keys from instead of AWS_*", plain},
	{"AWS_PROFILE", "default", "BACKUP_STORE=s3: the profile of BACKUP_S3_CREDENTIALS_FILE", plain},
	{"BACKUP_S3_PART_SIZE_MB", "16", "BACKUP_STORE=s3: multipart part size in MiB (5–5120), the memory one upload holds", plain},
	{"BACKUP_S3_LOCK_DAYS", "0", "BACKUP_STORE=s3: > 0 puts each archive under object-lock retention for that many days (the bucket must have object lock enabled); 0: off", plain},
	{"BACKUP_S3_LOCK_MODE", "governance", "governance|compliance: the object-lock mode of BACKUP_S3_LOCK_DAYS", plain},
	{"BACKUP_RETENTION_COUNT", "7", "archives kept by retention (keep-last)", plain},
	{"BACKUP_RETENTION_DAILY", "0", "retention also keeps the newest archive of each of the last N days that have one (UTC)", plain},
	{"BACKUP_RETENTION_WEEKLY", "0", "… of each of the last N ISO weeks that have one", plain},
	{"BACKUP_RETENTION_MONTHLY", "0", "… of each of the last N months that have one", plain},
	{"BACKUP_RETENTION_WITHIN", "(empty)", "retention also keeps every archive made within this duration of the newest one, e.g. 48h or 14d", plain},
	{"BACKUP_COMPRESSION", "gzip", "gzip|zstd", plain},
	{"BACKUP_COMPRESSION_LEVEL", "gzip 5, zstd 1", "compression level of new archives: gzip 1–9, zstd 1–22 (zstd's encoder has four speeds: 1–2, 3–5, 6–9, 10–22); zstd 1 compresses SQLite pages, pg_dump output and embeddings as small as `zstd -3` with 40% less CPU, 3 makes text-heavy data about 7% smaller (see Benchmark)", plain},
	{"BACKUP_SCHEDULE", "(empty)", "cron schedule of automatic backups, submitted once per tick by the backup workers however many replicas run: " + ScheduleForms + "; empty: none", plain},
	{"BACKUP_VERIFY_AFTER", "false", "each scheduled backup is verified (a backup.verify job) once it succeeds", plain},
	{"BACKUP_SIGNING_KEY", "(random, kept in DATA_DIR in development)", "HMAC-SHA256 key (hex or base64 of at least 32 random bytes: openssl rand -base64 32) signing every archive; backup and restore workers (and the API for imports and signature status); required in production by the workers; production refuses it in init and chroma", secret},
	{"BACKUP_SIGNING_KEYS_OLD", "(empty)", "earlier BACKUP_SIGNING_KEYs, comma separated: archives they signed still verify and restore, nothing new is signed with them", secret},
	{"BACKUP_AGE_RECIPIENTS", "(empty: archives are not encrypted)", "age public keys (age1…, from age-keygen), comma separated: every new archive is compressed, then encrypted to all of them (named ….tar.zst.age); backup and restore workers (the safety backup) and the all-in-one; a malformed key refuses to start", plain},
	{"BACKUP_AGE_IDENTITY_FILE", "(empty)", "path of an age identity file (age-keygen output, mode 0600; several identities for rotation) decrypting archives where they are verified and restored: backup and restore workers and the all-in-one; missing, unreadable, group/world-readable or empty refuses to start", plain},
	{"BACKUP_IMPORT_MAX_MB", "8192", "largest archive POST /admin/db/backup/import accepts, in MiB (413 beyond); it is spooled to DATA_DIR/scratch", plain},
	{"BACKUP_DRILL_SCHEDULE", "(empty)", "cron schedule of restore drills, submitted once per tick by the backup workers: the newest archive is restored into scratch stores and checked against its manifest (a backup.verify job with drill set); same forms as BACKUP_SCHEDULE; empty: none", plain},
	{"BACKUP_MAX_DECOMPRESSED", "32GiB", "most bytes one archive may decompress to when verified or restored (a decompression bomb stops there with decompression_limit); e.g. 500MiB, 64GiB", plain},
	{"AUDIT_RETENTION", "400d", "MaxAge of the AUDIT stream", plain},
	{"AUDIT_MAX_BYTES", "1GiB", "MaxBytes of the AUDIT stream (reserved in the JetStream store); GET /admin/db/health warns above 80%, at 100% the oldest events leave the stream (they stay in audit_logs)", plain},
	{"AUDIT_VERIFY_TIMEOUT", "60s", "how long GET /admin/db/audit/verify may run before it answers 503 audit_verify_timeout", plain},
	{"JOB_RETENTION", "7d", "TTL of job records in JOB_PROGRESS", plain},
	{"WORKER_ID", "<hostname>-<pid>", "this worker instance's name in WORKERS and job records", plain},
	{"WORKER_CONCURRENCY", "2", "jobs one worker replica runs at once", plain},
	{"JOB_MAX_ATTEMPTS", "5", "deliveries before a job is failed and copied to JOBS_DLQ", plain},
	{"JOB_ACK_WAIT", "30s", "redelivery timeout of a job whose worker vanished (heartbeats keep live jobs)", plain},
	{"SHUTDOWN_TIMEOUT", "30s", "how long a stopping worker lets in-flight jobs finish before releasing them", plain},
	{"LOG_LEVEL", "info", "debug|info|warn|error", plain},
	{"LOG_FORMAT", "auto", "auto|json|text: auto writes readable text lines on a terminal and JSON otherwise", plain},
	{"METRICS_ADDR", "(empty)", "worker binaries: serve Prometheus /metrics on this address (the API serves /metrics on API_ADDR)", plain},
	{"OTEL_SDK_DISABLED", "false", "true turns tracing off whatever else is set", plain},
	{"OTEL_TRACES_EXPORTER", "otlp when an OTLP endpoint is set, else none", "none|otlp: export traces over OTLP/HTTP; tracing is off by default", plain},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "(empty)", "base URL of the OTLP/HTTP collector, e.g. http://otel-collector:4318 (traces go to <url>/v1/traces)", plain},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "(empty)", "full URL of the OTLP/HTTP traces endpoint; overrides OTEL_EXPORTER_OTLP_ENDPOINT", plain},
	{"OTEL_EXPORTER_OTLP_HEADERS", "(empty)", "headers sent with each export, key=value,key=value (e.g. an API key)", secret},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http/protobuf (the only protocol built in)", plain},
	{"OTEL_SERVICE_NAME", "(the binary's name, e.g. insightops-api)", "service.name of the spans this process exports", plain},
	{"OTEL_RESOURCE_ATTRIBUTES", "(empty)", "more resource attributes of the spans, key=value,key=value (e.g. deployment.environment=prod)", plain},
}

// Load reads the configuration of the all-in-one (RoleAllInOne: every
// secret) from getenv; see LoadRole.
func Load(getenv func(string) string) (Config, error) {
	return LoadRole(getenv, RoleAllInOne)
}

// LoadRole reads the configuration of a process of role from getenv
// (os.Getenv in production code). Every problem found is reported: the
// error is "configuration: " and the problems joined (errors.Join), one
// line each naming its variable; each is a *VarError, which Problems
// lists. In production every secret is checked with IsPlaceholder, the
// role's own secrets are required, and a role-scoped secret given to a
// role that does not hold it is refused (each process receives only its
// own secrets).
func LoadRole(getenv func(string) string, role Role) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{Role: role}
	if !slices.Contains(Roles, role) {
		p.add(&VarError{Var: "role", Reason: fmt.Sprintf("unknown role %q", role)})
	}

	switch env := p.str("APP_ENV", "development"); env {
	case "development", "dev":
		c.AppEnv = Development
	case "production", "prod":
		c.AppEnv = Production
	default:
		p.fail("APP_ENV", env, "development, production")
		c.AppEnv = Development
	}
	prod := c.AppEnv == Production
	c.SeedDemoData = p.boolean("SEED_DEMO_DATA", !prod)
	c.EnableTargetDB = p.boolean("ENABLE_TARGET_DB", prod)
	c.AutoTrainChroma = p.boolean("AUTO_TRAIN_CHROMA", prod)

	c.APIAddr = p.addr("API_ADDR", DefaultAPIAddr(c.AppEnv))
	c.TrustedProxies = p.prefixes("TRUSTED_PROXIES")
	c.NATSListen = p.addr("NATS_LISTEN", "127.0.0.1:4223")
	c.DataDir = p.str("DATA_DIR", "./data")

	c.NATSURL = p.str("NATS_URL", "")
	c.NATSReplicas = p.intRange("NATS_REPLICAS", 1, 1, 5)
	c.NATSCreds = p.str("NATS_CREDS", "")
	c.NATSCAFile = p.str("NATS_CA_FILE", "")
	if c.NATSCAFile != "" {
		if _, err := os.Stat(c.NATSCAFile); err != nil {
			p.add(&VarError{Var: "NATS_CA_FILE", Value: c.NATSCAFile, HasValue: true, Err: err})
		}
	}
	c.NATSProvision = p.boolean("NATS_PROVISION", true)
	c.NATSInboxPrefix = p.str("NATS_INBOX_PREFIX", "_INBOX")
	if !validInboxPrefix(c.NATSInboxPrefix) {
		p.fail("NATS_INBOX_PREFIX", c.NATSInboxPrefix, "subject tokens of letters, digits, '_' and '-', separated by '.', e.g. _INBOX_backup")
	}
	if c.NATSCreds != "" {
		if _, err := os.Stat(c.NATSCreds); err != nil {
			p.add(&VarError{Var: "NATS_CREDS", Value: c.NATSCreds, HasValue: true, Err: err})
		}
	}
	if c.NATSURL == "" && c.NATSReplicas != 1 {
		p.add(&VarError{Var: "NATS_REPLICAS", Value: strconv.Itoa(c.NATSReplicas), HasValue: true, bare: true, sep: " ",
			Reason: "needs NATS_URL (the embedded server is a single node)"})
	}

	c.DatabaseURL = p.str("DATABASE_URL", "")
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.add(&VarError{Var: "DATABASE_URL", Reason: "accepted values: a postgres:// or postgresql:// URL (empty for SQLite under DATA_DIR)"})
		}
	}
	c.VerifyDatabaseURL = p.str("VERIFY_DATABASE_URL", "")
	if c.VerifyDatabaseURL != "" {
		if u, err := url.Parse(c.VerifyDatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.add(&VarError{Var: "VERIFY_DATABASE_URL", Reason: "accepted values: a postgres:// or postgresql:// URL (empty: no separate verify role)"})
		}
	}
	c.TargetDatabaseURL = p.str("TARGET_DATABASE_URL", "")
	c.TargetDBSource = p.str("TARGET_DB_SOURCE", "assets/databases/vanna_db.db")
	c.TargetDBPath = p.str("TARGET_DB_PATH", filepath.Join(c.DataDir, "target", "vanna_db.db"))
	c.TargetTestAllowedHosts = p.list("TARGET_TEST_ALLOWED_HOSTS")
	c.TargetTestAllowedPaths = p.list("TARGET_TEST_ALLOWED_PATHS")
	for _, d := range c.TargetTestAllowedPaths {
		if !filepath.IsAbs(d) {
			p.fail("TARGET_TEST_ALLOWED_PATHS", d, "absolute directory paths, comma separated")
		}
	}
	c.AssetsDir = p.str("ASSETS_DIR", "assets")
	c.ChromaURL = p.str("CHROMA_URL", "")
	if c.ChromaURL != "" {
		if u, err := url.Parse(c.ChromaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("CHROMA_URL", c.ChromaURL, "an http:// or https:// URL")
		}
	}
	c.Embedding = Embedding{
		Provider:         p.oneOf("EMBEDDING_PROVIDER", "local", "default", "local", "openai", "ollama"),
		ModelDir:         p.str("EMBEDDING_MODEL_DIR", ""),
		OpenAIAPIKey:     p.str("OPENAI_API_KEY", ""),
		OpenAIModel:      p.str("OPENAI_EMBEDDING_MODEL", DefaultOpenAIModel),
		OpenAIBaseURL:    p.str("OPENAI_BASE_URL", p.str("OPENAI_API_BASE", "")),
		OpenAIDimensions: p.intRange("OPENAI_EMBEDDING_DIMENSIONS", 0, 1, 65536),
		OpenAIOrgID:      p.str("OPENAI_ORG_ID", ""),
		OllamaHost:       p.str("OLLAMA_HOST", DefaultOllamaHost),
		OllamaModel:      p.str("OLLAMA_EMBEDDING_MODEL", DefaultOllamaModel),
	}
	// EMBEDDING_MODEL_DIR's files are checked by the processes that embed
	// (shared/vectors.NewEmbedder, at the chroma worker's start), not here:
	// a backup worker sharing this configuration has no use for them.
	if d := c.Embedding.ModelDir; d != "" && !filepath.IsAbs(d) {
		p.fail("EMBEDDING_MODEL_DIR", d, "an absolute directory path")
	}
	if c.Embedding.Provider == "openai" && c.Embedding.OpenAIAPIKey == "" {
		p.add(&VarError{Var: "OPENAI_API_KEY", Reason: "EMBEDDING_PROVIDER=openai needs it"})
	}
	if b := c.Embedding.OpenAIBaseURL; b != "" {
		if u, err := url.Parse(b); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("OPENAI_BASE_URL", b, "an http:// or https:// URL")
		}
	}

	c.InitAdminUsername = p.str("INIT_ADMIN_USERNAME", "admin@example.com")
	c.JWTTTL = p.duration("JWT_TTL", time.Hour)
	p.roleSecrets(&c, prod)
	if prod {
		p.errs = append(p.errs, placeholderSecrets(getenv)...)
	}

	c.BackupStore = p.oneOf("BACKUP_STORE", "local", "local", "nats", "s3")
	c.BackupDir = p.str("BACKUP_DIR", filepath.Join(c.DataDir, "backups"))
	c.BackupRetentionCount = p.intRange("BACKUP_RETENTION_COUNT", 7, 1, 10000)
	c.BackupCompression = p.oneOf("BACKUP_COMPRESSION", "gzip", "gzip", "zstd")
	if levels, err := complevel.Of(c.BackupCompression); err == nil {
		c.BackupCompressionLevel = p.intRange("BACKUP_COMPRESSION_LEVEL", levels.Default, levels.Min, levels.Max)
	}
	c.BackupS3 = p.s3(c.BackupStore, c.Role)
	c.BackupRetention = p.retention(c.BackupRetentionCount)
	c.BackupSchedule = p.schedule("BACKUP_SCHEDULE")
	c.BackupVerifyAfter = p.boolean("BACKUP_VERIFY_AFTER", false)
	if c.Role.Holds("BACKUP_SIGNING_KEY") { // a role that does not is refused them (roleSecrets)
		c.BackupSigningKey = p.str("BACKUP_SIGNING_KEY", "")
		c.BackupSigningKeysOld = p.str("BACKUP_SIGNING_KEYS_OLD", "")
	}
	c.BackupImportMaxMB = p.intRange("BACKUP_IMPORT_MAX_MB", DefaultBackupImportMaxMB, 1, 1<<20)
	if c.BackupSigningKey != "" {
		if _, err := archivesig.ParseKey(c.BackupSigningKey); err != nil {
			p.add(&VarError{Var: "BACKUP_SIGNING_KEY", Reason: err.Error()})
		}
	}
	if _, err := archivesig.ParseKeys(c.BackupSigningKeysOld); err != nil {
		p.add(&VarError{Var: "BACKUP_SIGNING_KEYS_OLD", Reason: err.Error()})
	}
	p.backupAge(&c)
	c.BackupDrillSchedule = p.schedule("BACKUP_DRILL_SCHEDULE")
	c.BackupMaxDecompressed = p.size("BACKUP_MAX_DECOMPRESSED", 32<<30, 1<<20)

	c.AuditRetention = p.duration("AUDIT_RETENTION", 400*24*time.Hour)
	c.AuditMaxBytes = p.size("AUDIT_MAX_BYTES", 1<<30, 1<<20)
	c.AuditVerifyTimeout = p.duration("AUDIT_VERIFY_TIMEOUT", 60*time.Second)
	c.JobRetention = p.duration("JOB_RETENTION", 7*24*time.Hour)

	c.WorkerID = p.str("WORKER_ID", defaultWorkerID())
	c.WorkerConcurrency = p.intRange("WORKER_CONCURRENCY", 2, 1, 256)
	c.JobMaxAttempts = p.intRange("JOB_MAX_ATTEMPTS", 5, 1, 100)
	c.JobAckWait = p.duration("JOB_ACK_WAIT", 30*time.Second)
	c.ShutdownTimeout = p.duration("SHUTDOWN_TIMEOUT", 30*time.Second)
	if c.JobAckWait < time.Second {
		p.add(&VarError{Var: "JOB_ACK_WAIT", Value: c.JobAckWait.String(), HasValue: true, bare: true, Reason: "must be at least 1s"})
	}
	c.LogLevel = p.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")
	if v := p.str("METRICS_ADDR", ""); v != "" {
		c.MetricsAddr = p.addr("METRICS_ADDR", "")
	}
	c.LogFormat = p.oneOf("LOG_FORMAT", "auto", "auto", "json", "text")
	c.Tracing = p.tracing()

	if len(p.errs) > 0 {
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return c, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return c, nil
}

// DefaultAPIAddr is API_ADDR's default: loopback only in development (a
// development admin with the default password is never served to the
// network), every interface in production (a container behind a Service).
func DefaultAPIAddr(env Environment) string {
	if env == Production {
		return ":8000"
	}
	return "127.0.0.1:8000"
}

// parser reads variables through getenv and collects every refusal.
type parser struct {
	getenv func(string) string
	errs   []*VarError
}

// roleSecrets refuses, in production, every role-scoped secret given to a
// role that does not hold it (it would hold a key it never uses), and reads
// JWT_SECRET and INIT_ADMIN_PASSWORD for c.Role: a role that holds one gets
// its default and its checks (production requires a JWT secret and a chosen
// admin password); a role that does not leaves it empty. The placeholder
// check of every secret is placeholderSecrets.
func (p *parser) roleSecrets(c *Config, prod bool) {
	for _, name := range RoleScopedSecrets() {
		if prod && !c.Role.Holds(name) && strings.TrimSpace(p.getenv(name)) != "" {
			p.add(&VarError{Var: name, Reason: fmt.Sprintf("the %s process does not use it; production refuses it here (each process receives only its own secrets)", c.Role)})
		}
	}
	if c.Role.Holds("INIT_ADMIN_PASSWORD") {
		c.InitAdminPassword = p.str("INIT_ADMIN_PASSWORD", DefaultAdminPassword)
		if len(c.InitAdminPassword) < 8 {
			p.add(&VarError{Var: "INIT_ADMIN_PASSWORD", Reason: "must be at least 8 characters"})
		}
		if prod && strings.TrimSpace(p.getenv("INIT_ADMIN_PASSWORD")) == "" {
			p.add(&VarError{Var: "INIT_ADMIN_PASSWORD", Reason: "production refuses the default admin password; set your own"})
		}
	}
	if c.Role.Holds("JWT_SECRET") {
		c.JWTSecret = p.str("JWT_SECRET", "")
		if prod && c.JWTSecret == "" {
			p.add(&VarError{Var: "JWT_SECRET", Reason: "production requires a secret (at least 32 characters)"})
		}
		if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
			p.add(&VarError{Var: "JWT_SECRET", Reason: "must be at least 32 characters"})
		}
	}
}

// prefixes parses a comma-separated list of CIDRs or bare addresses (a
// single host) of name.
func (p *parser) prefixes(name string) []netip.Prefix {
	v := p.str(name, "")
	if v == "" {
		return nil
	}
	var out []netip.Prefix
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if pfx, err := netip.ParsePrefix(part); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(part); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p.fail(name, part, `CIDRs or IP addresses, comma separated, e.g. "10.0.0.0/8,192.168.1.10"`)
		return nil
	}
	return out
}

// Embedded reports whether the process starts its own NATS server.
func (c Config) Embedded() bool { return c.NATSURL == "" }

// Signing returns the settings archivesig.Load makes the archive keyring of.
func (c Config) Signing() archivesig.Settings {
	return archivesig.Settings{Key: c.BackupSigningKey, OldKeys: c.BackupSigningKeysOld, DataDir: c.DataDir, Production: c.AppEnv == Production}
}

// SQLitePath is the System DB file used when DATABASE_URL is empty.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "system.db") }

func defaultWorkerID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "worker"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

func (p *parser) add(e *VarError) { p.errs = append(p.errs, e) }

// fail reports got, the value of name, as refused: NAME="got": accepted
// values: accepted.
func (p *parser) fail(name, got, accepted string) {
	p.add(&VarError{Var: name, Value: got, HasValue: true, Reason: "accepted values: " + accepted})
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) boolean(name string, def bool) bool {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	p.fail(name, v, "true, false, 1, 0, yes, no, on, off")
	return def
}

func (p *parser) intRange(name string, def, lo, hi int) int {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

// size accepts a byte count with an optional unit ("500MiB", "8GiB",
// "1073741824"), at least lo.
func (p *parser) size(name string, def, lo int64) int64 {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n < uint64(lo) || n > math.MaxInt64 {
		p.fail(name, v, fmt.Sprintf("a size of at least %s such as \"500MiB\" or \"8GiB\"", humanize.IBytes(uint64(lo))))
		return def
	}
	return int64(n)
}

// list splits a comma-separated value into its trimmed, non-empty items.
func (p *parser) list(name string) []string {
	var out []string
	for _, item := range strings.Split(p.getenv(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (p *parser) oneOf(name, def string, accepted ...string) string {
	v := strings.ToLower(strings.TrimSpace(p.getenv(name)))
	if v == "" {
		return def
	}
	if slices.Contains(accepted, v) {
		return v
	}
	p.fail(name, v, strings.Join(accepted, ", "))
	return def
}

// schedule parses a cron schedule (zero when empty).
func (p *parser) schedule(name string) Schedule {
	v := p.str(name, "")
	if v == "" {
		return Schedule{}
	}
	s, err := ParseSchedule(v)
	if err != nil {
		p.add(&VarError{Var: name, Value: v, HasValue: true, Err: err,
			Reason: err.Error() + "; accepted values: " + ScheduleForms})
	}
	return s
}

// duration accepts Go durations ("90s", "36h") and whole days ("400d").
func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	d, err := ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, v, `a positive duration such as "30s", "12h" or "400d"`)
		return def
	}
	return d
}

func (p *parser) addr(name, def string) string {
	v := p.str(name, def)
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		p.fail(name, v, `host:port or :port, e.g. ":8000" or "127.0.0.1:4223"`)
		return def
	}
	return v
}

// ParseDuration parses a Go duration or a whole number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if before, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(before)
		if err != nil {
			return 0, fmt.Errorf("parse %q: %w", s, err)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// validInboxPrefix reports whether s is a literal subject prefix: tokens of
// letters, digits, '_' and '-' separated by single dots (no wildcard, no
// empty token), so "<prefix>.>" is a permission that covers it exactly.
func validInboxPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return false
		}
		for _, r := range tok {
			if r != '_' && r != '-' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
				return false
			}
		}
	}
	return true
}

// Defaults of the remote embedders.
const (
	DefaultOpenAIModel = "text-embedding-3-small"
	DefaultOllamaHost  = "http://localhost:11434"
	DefaultOllamaModel = "nomic-embed-text"
)

// Embedding is the configuration of the embedding function that turns
// training data and questions into vectors. Only the fields of Provider
// are used.
type Embedding struct {
	Provider string // default, local, openai or ollama

	// ModelDir is EMBEDDING_MODEL_DIR: the provisioned files of the
	// default embedder (DefaultModelFiles); empty: chroma-go's caches
	// under $HOME, fetched on first use.
	ModelDir string

	OpenAIAPIKey     string
	OpenAIModel      string
	OpenAIBaseURL    string // empty: the OpenAI API
	OpenAIDimensions int    // 0: the model's own
	OpenAIOrgID      string

	OllamaHost  string // a URL or host:port
	OllamaModel string
}
