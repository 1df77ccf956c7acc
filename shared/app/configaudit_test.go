package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// problemsOf decodes the problems or warnings list of an audit event.
func problemsOf(t *testing.T, e audit.Event, key string) []app.Problem {
	t.Helper()
	raw, err := json.Marshal(e.Detail[key])
	if err != nil {
		t.Fatal(err)
	}
	var out []app.Problem
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("detail %s: %v (%s)", key, err, raw)
	}
	return out
}

func variables(ps []app.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Variable)
	}
	slices.Sort(out)
	return out
}

// TestInvalidConfigIsAuditedWithoutSecrets: a process whose configuration
// is refused still reaches NATS_URL, publishes one config.invalid event
// naming every bad variable (actor: the process), and exits with the
// error; no secret value — JWT secret, admin password, the passwords inside
// database and Chroma URLs — is anywhere in the event.
func TestInvalidConfigIsAuditedWithoutSecrets(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secrets := []string{"tooshort-jwt-s3cret", "hunt3r!", "pgS3cretPass", "chromaS3cret", "tgtS3cretPass"}
	vars := map[string]string{
		"NATS_URL":            ns.ClientURL(),
		"DATA_DIR":            t.TempDir(),
		"JWT_SECRET":          secrets[0],
		"INIT_ADMIN_PASSWORD": secrets[1],
		"DATABASE_URL":        "mysql://root:" + secrets[2] + "@db:3306/insight",
		"CHROMA_URL":          "ftp://admin:" + secrets[3] + "@chroma:8000",
		"TARGET_DATABASE_URL": "postgres://ro:" + secrets[4] + "@target/db",
		"LOG_LEVEL":           "loud",
	}
	_, _, err := app.OpenEnv(ctx, env(vars), io.Discard, app.Options{Name: "insightops-test"})
	if len(config.Problems(err)) == 0 {
		t.Fatalf("OpenEnv with an invalid configuration = %v, want configuration errors (config.Problems)", err)
	}
	events, rerr := audit.Read(ctx, b.JS, "audit.config.invalid")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(events) != 1 {
		t.Fatalf("%d config.invalid events, want 1", len(events))
	}
	e := events[0]
	if e.Action != app.ActionConfigInvalid || e.Resource != "config" || e.Outcome != audit.Failure || e.Actor != "insightops-test" {
		t.Errorf("event %+v", e)
	}
	want := []string{"CHROMA_URL", "DATABASE_URL", "INIT_ADMIN_PASSWORD", "JWT_SECRET", "LOG_LEVEL"}
	if got := variables(problemsOf(t, e, "problems")); !slices.Equal(got, want) {
		t.Errorf("problems name %v, want %v", got, want)
	}
	raw, _ := json.Marshal(e)
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("the event holds the secret %q: %s", s, raw)
		}
	}
	t.Logf("event: %s", raw)
}

// TestInvalidConfigWithNATSUnreachableStillExits: nothing listens at
// NATS_URL; the attempt gives up and the configuration error is returned.
func TestInvalidConfigWithNATSUnreachableStillExits(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // a free port nothing listens on
	vars := map[string]string{"NATS_URL": "nats://" + addr, "LOG_LEVEL": "loud"}
	if app.AuditConfigInvalid(context.Background(), "t", env(vars), errorOf(t, vars), testkit.Logger(t)) {
		t.Error("reported audited with no NATS")
	}
	if _, _, err := app.OpenEnv(context.Background(), env(vars), io.Discard, app.Options{Name: "t"}); err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Errorf("OpenEnv error %v, want the configuration error", err)
	}
}

func errorOf(t *testing.T, vars map[string]string) error {
	t.Helper()
	_, err := config.Load(env(vars))
	if err == nil {
		t.Fatal("configuration accepted")
	}
	return err
}

// TestConfigWarningsAreAuditedAtStart: a development start on the default
// admin password and without JWT_SECRET opens and publishes one
// config.warning event naming both, without the password itself.
func TestConfigWarningsAreAuditedAtStart(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vars := map[string]string{"NATS_URL": ns.ClientURL(), "DATA_DIR": t.TempDir()}
	deps, closeAll, err := app.OpenEnv(ctx, env(vars), io.Discard, app.Options{Name: "insightops-test"})
	if err != nil {
		t.Fatal(err)
	}
	closeAll()
	if deps.Config.InitAdminPassword != config.DefaultAdminPassword {
		t.Fatalf("not on the default password")
	}
	events, err := audit.Read(ctx, b.JS, "audit.config.warning")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d config.warning events, want 1", len(events))
	}
	e := events[0]
	if e.Action != app.ActionConfigWarning || e.Outcome != audit.Success || e.Actor != "insightops-test" || e.Detail["app_env"] != "development" {
		t.Errorf("event %+v", e)
	}
	if got, want := variables(problemsOf(t, e, "warnings")), []string{"INIT_ADMIN_PASSWORD", "JWT_SECRET"}; !slices.Equal(got, want) {
		t.Errorf("warnings name %v, want %v", got, want)
	}
	if raw, _ := json.Marshal(e); strings.Contains(string(raw), config.DefaultAdminPassword) {
		t.Errorf("the event holds the default password: %s", raw)
	}
}

// TestConfigWarnings lists what each kind of start warns about.
func TestConfigWarnings(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("k", 40)
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"development defaults", map[string]string{}, []string{"INIT_ADMIN_PASSWORD", "JWT_SECRET"}},
		{"development, own secrets", map[string]string{"JWT_SECRET": secret, "INIT_ADMIN_PASSWORD": "a-real-password"}, nil},
		{"production on one machine", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret, "INIT_ADMIN_PASSWORD": "a-real-password"}, []string{"DATABASE_URL", "NATS_URL"}},
		{"production cluster", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret, "INIT_ADMIN_PASSWORD": "a-real-password",
			"NATS_URL": "nats://n1:4222", "DATABASE_URL": "postgres://u@db/x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(env(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			if got := variables(app.ConfigWarnings(cfg)); !slices.Equal(got, tc.want) {
				t.Errorf("warnings %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRedact: secret values and URL passwords leave the message; the rest
// of it stays.
func TestRedact(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"JWT_SECRET": "jwt-value-123", "DATABASE_URL": "postgres://u:dbpw99@h/x"}
	for _, tc := range []struct{ in, want string }{
		{`CHROMA_URL="http://a:b3cret@h:1": accepted values`, `CHROMA_URL="http://a:[redacted]@h:1": accepted values`},
		{`JWT_SECRET is jwt-value-123`, `JWT_SECRET is [redacted]`},
		{`DATABASE_URL postgres://u:dbpw99@h/x refused`, `DATABASE_URL [redacted] refused`},
		{`password dbpw99 seen`, `password [redacted] seen`},
		{`LOG_LEVEL="loud": accepted values: debug`, `LOG_LEVEL="loud": accepted values: debug`},
	} {
		if got := app.Redact(tc.in, env(vars)); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
