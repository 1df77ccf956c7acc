package app

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/config"
)

// Audit actions about the configuration a process starts with (resource
// "config", subjects audit.config.invalid and audit.config.warning).
const (
	ActionConfigInvalid = "config.invalid"
	ActionConfigWarning = "config.warning"
)

// ConfigAuditTimeout bounds how long a process whose configuration is
// invalid tries to reach NATS to audit it before it exits.
const ConfigAuditTimeout = 3 * time.Second

// Problem is one configuration problem or warning: the variable it is
// about and a message that never holds a secret's value.
type Problem struct {
	Variable string `json:"variable"`
	Message  string `json:"message"`
}

// urlPassword matches the userinfo password of a URL inside a message.
var urlPassword = regexp.MustCompile(`(://[^:/@\s"]*):[^@\s"]*@`)

// Problems splits a config.Load error into one Problem per variable (see
// config.Problems): Variable is the variable's name, Message the problem's
// redacted text (config.VarError.Redacted), with any secret value getenv
// holds removed too, in case it was given to the wrong variable. An error
// that holds no config.VarError is one Problem without a Variable, its
// text redacted (Redact).
func Problems(err error, getenv func(string) string) []Problem {
	if err == nil {
		return nil
	}
	vars := config.Problems(err)
	if len(vars) == 0 {
		return []Problem{{Message: Redact(err.Error(), getenv)}}
	}
	out := make([]Problem, 0, len(vars))
	for _, v := range vars {
		out = append(out, Problem{Variable: v.Var, Message: Redact(v.Redacted(), getenv)})
	}
	return out
}

// Redact removes from msg, a text that no config.VarError describes (the
// error of a NATS connection, for instance), the values of the secret
// variables getenv holds (config.SecretVars), the passwords any variable
// of config.Vars carries (config.Passwords), and the password of any URL
// written in msg; each is replaced by config.RedactionMark. Values shorter
// than 3 characters are left, so that a message is not shredded.
func Redact(msg string, getenv func(string) string) string {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var secrets []string
	add := func(s string) {
		if len(s) >= 3 && !slices.Contains(secrets, s) {
			secrets = append(secrets, s)
		}
	}
	for _, name := range config.SecretVars() {
		add(strings.TrimSpace(getenv(name)))
	}
	for _, v := range config.Vars {
		for _, pw := range config.Passwords(strings.TrimSpace(getenv(v.Name))) {
			add(pw)
		}
	}
	// Longest first, so a URL is removed whole before its password.
	slices.SortStableFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, config.RedactionMark)
	}
	return urlPassword.ReplaceAllString(msg, "$1:"+config.RedactionMark+"@")
}

// natsProblem reports whether a problem makes NATS itself unreachable for
// this process (then only a NATS_URL that is itself fine is tried).
func natsProblem(p Problem) bool {
	return strings.HasPrefix(p.Variable, "NATS_URL") || p.Variable == "NATS_CREDS" || p.Variable == "NATS_CA_FILE" || p.Variable == "NATS_LISTEN"
}

// AuditConfigInvalid publishes a config.invalid event (outcome failure,
// actor the process name, detail the problems with secrets redacted) for
// a configuration that config.Load refused, trying for at most
// ConfigAuditTimeout: on NATS_URL when set, else on the address the
// embedded server of this installation listens on (NATS_LISTEN), in case
// it runs. It reports whether the event was stored; the caller exits with
// its error either way.
func AuditConfigInvalid(ctx context.Context, name string, getenv func(string) string, loadErr error, log *slog.Logger) bool {
	problems := Problems(loadErr, getenv)
	if slices.ContainsFunc(problems, natsProblem) {
		log.Warn("configuration problem not audited: NATS itself is misconfigured")
		return false
	}
	urls := strings.TrimSpace(getenv("NATS_URL"))
	if urls == "" {
		listen := strings.TrimSpace(getenv("NATS_LISTEN"))
		if listen == "" {
			listen = "127.0.0.1:4223"
		}
		urls = "nats://" + listen
	}
	ctx, cancel := context.WithTimeout(ctx, ConfigAuditTimeout)
	defer cancel()
	opts := []nats.Option{nats.Name(name), nats.Timeout(ConfigAuditTimeout), nats.NoReconnect()}
	if creds := strings.TrimSpace(getenv("NATS_CREDS")); creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	if ca := strings.TrimSpace(getenv("NATS_CA_FILE")); ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		log.Warn("configuration problem not audited: NATS unreachable", "err", Redact(err.Error(), getenv))
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Warn("configuration problem not audited", "err", err)
		return false
	}
	e := audit.Event{
		Actor: name, Action: ActionConfigInvalid, Resource: "config", Outcome: audit.Failure,
		Detail: map[string]any{"service": name, "problems": problems},
	}
	if err := audit.NewPublisher(js, log).Publish(ctx, e); err != nil {
		log.Warn("configuration problem not audited", "err", Redact(err.Error(), getenv))
		return false
	}
	return true
}

// ConfigWarnings are the settings a process starts with that work but an
// operator should know about: development defaults in use, and
// single-machine defaults in production. No value of a secret appears.
func ConfigWarnings(cfg config.Config) []Problem {
	var out []Problem
	if cfg.Role.Holds("INIT_ADMIN_PASSWORD") && cfg.InitAdminPassword == config.DefaultAdminPassword {
		out = append(out, Problem{"INIT_ADMIN_PASSWORD", "INIT_ADMIN_PASSWORD: the development default admin password is in use; set your own"})
	}
	if cfg.Role.Holds("JWT_SECRET") && cfg.JWTSecret == "" {
		out = append(out, Problem{"JWT_SECRET", "JWT_SECRET: not set; tokens are signed with a generated key kept in DATA_DIR/jwt.secret (only processes sharing DATA_DIR accept them)"})
	}
	if cfg.AppEnv == config.Production && cfg.Embedded() {
		out = append(out, Problem{"NATS_URL", "NATS_URL: empty in production; the process runs its own single-node embedded NATS server"})
	}
	if cfg.AppEnv == config.Production && cfg.DatabaseURL == "" {
		out = append(out, Problem{"DATABASE_URL", "DATABASE_URL: empty in production; the System DB is SQLite under DATA_DIR"})
	}
	return out
}

// AuditConfigWarnings publishes one config.warning event (outcome
// success: the process starts) listing ConfigWarnings(cfg), when there is
// any. A failure to publish is logged.
func AuditConfigWarnings(ctx context.Context, pub *audit.Publisher, name string, cfg config.Config) {
	warnings := ConfigWarnings(cfg)
	if len(warnings) == 0 || pub == nil {
		return
	}
	// Bounded: a process must not wait at start for an audit stream that
	// has no leader (or a NATS user not allowed to publish the subject).
	ctx, cancel := context.WithTimeout(ctx, ConfigAuditTimeout)
	defer cancel()
	pub.Record(ctx, audit.Event{
		Actor: name, Action: ActionConfigWarning, Resource: "config", Outcome: audit.Success,
		Detail: map[string]any{"service": name, "app_env": string(cfg.AppEnv), "warnings": warnings},
	})
}
