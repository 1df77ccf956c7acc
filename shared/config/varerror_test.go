package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVarErrors: each problem Load reports is a *VarError naming its
// variable, whose Error is the message Load has always written (the exact
// fmt format of before is rebuilt here) and whose Redacted text holds no
// secret: not the value of a secret variable, not the password or token of
// a URL.
func TestVarErrors(t *testing.T) {
	missingCreds := filepath.Join(t.TempDir(), "missing.creds")
	_, statErr := os.Stat(missingCreds)
	_, schedErr := ParseSchedule("every night")
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		want     string // the VarError's Error, exactly
		redacted string // its Redacted; "": the same as want
		secrets  []string
	}{
		{name: "accepted values", vars: map[string]string{"NATS_REPLICAS": "0"},
			want: fmt.Sprintf("%s=%q: accepted values: %s", "NATS_REPLICAS", "0", "an integer from 1 to 5")},
		{name: "across variables", vars: map[string]string{"NATS_REPLICAS": "3"},
			want: fmt.Sprintf("NATS_REPLICAS=%d needs NATS_URL (the embedded server is a single node)", 3)},
		{name: "parsed duration", vars: map[string]string{"JOB_ACK_WAIT": "500ms"},
			want: "JOB_ACK_WAIT=500ms: must be at least 1s"},
		{name: "underlying error", vars: map[string]string{"NATS_CREDS": missingCreds},
			want: fmt.Sprintf("NATS_CREDS=%q: %v", missingCreds, statErr)},
		{name: "schedule", vars: map[string]string{"BACKUP_SCHEDULE": "every night"},
			want: fmt.Sprintf("BACKUP_SCHEDULE=%q: %v; accepted values: %s", "every night", schedErr, ScheduleForms)},
		{name: "short secret", vars: map[string]string{"JWT_SECRET": "tooshort-jwt-s3cret"},
			want: "JWT_SECRET: must be at least 32 characters", secrets: []string{"tooshort-jwt-s3cret"}},
		{name: "short admin password", vars: map[string]string{"INIT_ADMIN_PASSWORD": "hunt3r!"},
			want: "INIT_ADMIN_PASSWORD: must be at least 8 characters", secrets: []string{"hunt3r!"}},
		{name: "secret URL with a password", vars: map[string]string{"DATABASE_URL": "mysql://root:pgS3cretPass@db:3306/insight"},
			want:    "DATABASE_URL: accepted values: a postgres:// or postgresql:// URL (empty for SQLite under DATA_DIR)",
			secrets: []string{"pgS3cretPass", "mysql://root"}},
		{name: "URL with a password", vars: map[string]string{"CHROMA_URL": "ftp://admin:chromaS3cret@chroma:8000"},
			want:     fmt.Sprintf("CHROMA_URL=%q: accepted values: an http:// or https:// URL", "ftp://admin:chromaS3cret@chroma:8000"),
			redacted: `CHROMA_URL="ftp://admin:[redacted]@chroma:8000": accepted values: an http:// or https:// URL`,
			secrets:  []string{"chromaS3cret"}},
		{name: "URL without its scheme", vars: map[string]string{"CHROMA_URL": "admin:chromaS3cret@chroma:8000"},
			want:     fmt.Sprintf("CHROMA_URL=%q: accepted values: an http:// or https:// URL", "admin:chromaS3cret@chroma:8000"),
			redacted: `CHROMA_URL="admin:[redacted]@chroma:8000": accepted values: an http:// or https:// URL`,
			secrets:  []string{"chromaS3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.vars))
			ps := Problems(err)
			if len(ps) != 1 {
				t.Fatalf("%d problems %v, want 1 (error %v)", len(ps), ps, err)
			}
			p := ps[0]
			var name string
			for k := range tc.vars {
				name = k
			}
			if p.Var != name {
				t.Errorf("Var %q, want %q", p.Var, name)
			}
			if p.Error() != tc.want {
				t.Errorf("Error\n%s\nwant\n%s", p.Error(), tc.want)
			}
			if err.Error() != "configuration: "+tc.want {
				t.Errorf("Load's error %q", err)
			}
			want := tc.redacted
			if want == "" {
				want = tc.want
			}
			if got := p.Redacted(); got != want {
				t.Errorf("Redacted\n%s\nwant\n%s", got, want)
			}
			for _, s := range tc.secrets {
				if strings.Contains(p.Redacted(), s) {
					t.Errorf("Redacted %q holds the secret %q", p.Redacted(), s)
				}
			}
		})
	}
}

// TestVarErrorRedactsWhatTheTextShows covers VarErrors Load does not make
// today: a secret variable whose value (a URL with a password) the text
// shows, also inside the underlying error, and a variable config does not
// know whose URL carries a token.
func TestVarErrorRedactsWhatTheTextShows(t *testing.T) {
	const target = "postgres://ro:tgt%2FS3cret@target/db"
	for _, tc := range []struct {
		name           string
		err            *VarError
		want, redacted string
		secrets        []string
	}{
		{"secret value shown", &VarError{Var: "TARGET_DATABASE_URL", Value: target, HasValue: true, Reason: "unreachable"},
			`TARGET_DATABASE_URL="postgres://ro:tgt%2FS3cret@target/db": unreachable`,
			`TARGET_DATABASE_URL="[redacted]": unreachable`,
			[]string{"tgt", "S3cret", "ro:"}},
		{"secret in the underlying error", &VarError{Var: "TARGET_DATABASE_URL", Value: target, HasValue: true,
			Err: fmt.Errorf("cannot parse `%s`: password tgt/S3cret refused", target)},
			"TARGET_DATABASE_URL=\"" + target + "\": cannot parse `" + target + "`: password tgt/S3cret refused",
			"TARGET_DATABASE_URL=\"[redacted]\": cannot parse `[redacted]`: password [redacted] refused",
			[]string{"S3cret"}},
		{"unknown variable, token URL", &VarError{Var: "SOME_EXTRA_URL", Value: "nats://t0kenS3cret@n1:4222,nats://u:pwS3cret@n2:4222", HasValue: true, Reason: "refused"},
			`SOME_EXTRA_URL="nats://t0kenS3cret@n1:4222,nats://u:pwS3cret@n2:4222": refused`,
			`SOME_EXTRA_URL="nats://[redacted]@n1:4222,nats://u:[redacted]@n2:4222": refused`,
			[]string{"S3cret"}},
		{"unknown variable, no secret", &VarError{Var: "SOME_EXTRA", Value: "x y", HasValue: true, Reason: "refused"},
			`SOME_EXTRA="x y": refused`, `SOME_EXTRA="x y": refused`, nil},
		{"no value", &VarError{Var: "OPENAI_API_KEY", Reason: "needed by EMBEDDING_PROVIDER=openai"},
			"OPENAI_API_KEY: needed by EMBEDDING_PROVIDER=openai", "OPENAI_API_KEY: needed by EMBEDDING_PROVIDER=openai", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error\n%s\nwant\n%s", got, tc.want)
			}
			got := tc.err.Redacted()
			if got != tc.redacted {
				t.Errorf("Redacted\n%s\nwant\n%s", got, tc.redacted)
			}
			for _, s := range tc.secrets {
				if strings.Contains(got, s) {
					t.Errorf("Redacted %q holds %q", got, s)
				}
			}
		})
	}
}

// TestProblemsListsEveryVarError: Problems lists every problem of Load's
// error in order, through any wrapping, with the underlying errors
// reachable; it finds nothing in other errors.
func TestProblemsListsEveryVarError(t *testing.T) {
	_, err := Load(env(map[string]string{
		"APP_ENV": "staging", "NATS_CREDS": filepath.Join(t.TempDir(), "none"), "JWT_SECRET": "short", "LOG_LEVEL": "loud",
	}))
	if err == nil {
		t.Fatal("accepted")
	}
	wrapped := fmt.Errorf("start insightops-api: %w", err)
	ps := Problems(wrapped)
	var names, lines []string
	for _, p := range ps {
		names = append(names, p.Var)
		lines = append(lines, p.Error())
	}
	if want := []string{"APP_ENV", "NATS_CREDS", "JWT_SECRET", "LOG_LEVEL"}; !slices.Equal(names, want) {
		t.Errorf("problems %v, want %v", names, want)
	}
	if got, want := err.Error(), "configuration: "+strings.Join(lines, "\n"); got != want {
		t.Errorf("Load's error\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(wrapped, fs.ErrNotExist) {
		t.Error("the NATS_CREDS stat error is not reachable")
	}
	var ve *VarError
	if !errors.As(wrapped, &ve) || ve.Var != "APP_ENV" {
		t.Errorf("errors.As: %v", ve)
	}
	if Problems(nil) != nil || Problems(errors.New("APP_ENV: not a config error")) != nil {
		t.Error("problems found in an error that has none")
	}
}

func TestSecretVars(t *testing.T) {
	got := SecretVars()
	for _, want := range []string{"JWT_SECRET", "INIT_ADMIN_PASSWORD", "OPENAI_API_KEY", "DATABASE_URL", "TARGET_DATABASE_URL"} {
		if !slices.Contains(got, want) || !IsSecret(want) {
			t.Errorf("%s is not secret (%v)", want, got)
		}
	}
	for _, name := range []string{"NATS_URL", "CHROMA_URL", "LOG_LEVEL", "UNKNOWN"} {
		if IsSecret(name) {
			t.Errorf("%s is secret", name)
		}
	}
}

func TestRedactURLsAndPasswords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://api:s3cret@nats-1:4222", "nats://api:xxxxx@nats-1:4222"},
		{"nats://api:s3cret@nats-1:4222, nats://api:s3cret@nats-2:4222", "nats://api:xxxxx@nats-1:4222,nats://api:xxxxx@nats-2:4222"},
		{"nats://nats-1:4222", "nats://nats-1:4222"},
		{"nats://s3cret@nats-1:4222", "nats://xxxxx@nats-1:4222"},
		{"nats://api:s3 cret@nats-1:4222", "nats://api:xxxxx@nats-1:4222"},
		{"http://h/p@x", "http://h/p@x"},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"postgres://u:p%40ss@h/db", []string{"p%40ss", "p@ss"}},
		{"postgres://u@h/db?password=s3cret&sslmode=disable", []string{"s3cret"}},
		{`host=db user=u password='p w\'s' dbname=x`, []string{"p%20w%27s", "p+w%27s", "p w's"}},
		{"host=db password=s3cret", []string{"s3cret"}},
		{"postgres://u@h/db", nil},
		{"", nil},
	} {
		if got := Passwords(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Passwords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
