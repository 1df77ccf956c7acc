package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// prodEnv is a production environment of role with generated secrets.
func prodEnv(role Role, extra map[string]string) map[string]string {
	m := map[string]string{"APP_ENV": "production"}
	if role.Holds("JWT_SECRET") {
		m["JWT_SECRET"] = "8f3c1e0b9d7a4f2e6c5b3a1d0e9f8a7b"
	}
	if role.Holds("INIT_ADMIN_PASSWORD") {
		m["INIT_ADMIN_PASSWORD"] = "Qx7-vLp2-Rk9w"
	}
	if role.Holds("BACKUP_SIGNING_KEY") {
		m["BACKUP_SIGNING_KEY"] = "3f1c0a9e7b5d2c4f6a8e0b1d3c5f7a9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a"
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// refusedVars lists the variables a Load error names.
func refusedVars(err error) []string {
	var out []string
	for _, p := range Problems(err) {
		out = append(out, p.Var)
	}
	return out
}

func TestIsPlaceholder(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"change-me", true},
		{"CHANGE-ME", true},
		{"admin-change-me", true},
		{"ChangeMe123!", true},
		{"please_change_me_now", true},
		{"my-example-secret-0123456789abcdef", true},
		{"PLACEHOLDER", true},
		{"AdminPassword123", true},
		{"adminpassword123", true},
		{"local-trial-admin-pw", true},
		{"local-trial-jwt-secret-change-me", true},
		{"CHANGE-ME-at-least-32-characters-long-secret", true},
		{"8f3c1e0b9d7a4f2e6c5b3a1d0e9f8a7b", false},
		{"Qx7-vLp2-Rk9w", false},
		{"exampl", false},
		{"", false},
	} {
		if got := IsPlaceholder(tc.v); got != tc.want {
			t.Errorf("IsPlaceholder(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
	for _, d := range KnownDefaultSecrets {
		if !IsPlaceholder(d) {
			t.Errorf("the shipped default %q is not a placeholder", d)
		}
	}
}

// TestProductionRefusesPlaceholderSecrets: every secret, and every
// password inside a connection string, is refused in production when it
// looks like a placeholder; the error names the variable, never the value.
func TestProductionRefusesPlaceholderSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, v, val string
	}{
		{"jwt change-me", "JWT_SECRET", "local-trial-jwt-secret-change-me-0123456789"},
		{"jwt example", "JWT_SECRET", "an-example-secret-that-is-long-enough-000"},
		{"admin default", "INIT_ADMIN_PASSWORD", DefaultAdminPassword},
		{"admin shipped example", "INIT_ADMIN_PASSWORD", "CHANGE-ME"},
		{"admin seed password", "INIT_ADMIN_PASSWORD", "AdminPassword123"},
		{"database password", "DATABASE_URL", "postgres://insightops:CHANGE-ME@db:5432/insightops"},
		{"database keyword password", "TARGET_DATABASE_URL", "host=db user=x password=placeholder"},
		{"nats password", "NATS_URL", "nats://api:s3cr3t-ok@n1:4222,nats://api:changeme@n2:4222"},
		{"openai key", "OPENAI_API_KEY", "sk-placeholder"},
		{"signing key", "BACKUP_SIGNING_KEY", "changemechangemechangemechangemechangemechangeme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(prodEnv(RoleAllInOne, map[string]string{tc.v: tc.val})))
			if err == nil {
				t.Fatalf("production accepted %s=%q", tc.v, tc.val)
			}
			got := refusedVars(err)
			if len(got) == 0 || slices.ContainsFunc(got, func(v string) bool { return v != tc.v }) || !strings.Contains(err.Error(), tc.v+": production refuses a placeholder") {
				t.Fatalf("refused %v, want only %s, as a placeholder: %v", got, tc.v, err)
			}
			var ve *VarError
			if !errors.As(err, &ve) || strings.Contains(err.Error(), tc.val) {
				t.Fatalf("the error shows the value or is no VarError: %v", err)
			}
			// Development keeps accepting it (make run's defaults), where the
			// value is not refused for its own sake (a short or non-random key).
			if _, err := Load(env(map[string]string{tc.v: tc.val})); err != nil && tc.v != "JWT_SECRET" && tc.v != "BACKUP_SIGNING_KEY" {
				t.Fatalf("development refused %s: %v", tc.v, err)
			}
		})
	}
	// A host named example is not a password.
	if _, err := Load(env(prodEnv(RoleAllInOne, map[string]string{"DATABASE_URL": "postgres://u:Zr8-pq1-mnX@db.example.com:5432/x"}))); err != nil {
		t.Fatalf("a real password on an example.com host refused: %v", err)
	}
}

// TestEachRoleRequiresOnlyItsOwnSecrets: in production the API needs
// JWT_SECRET, init INIT_ADMIN_PASSWORD, the all-in-one both, the other
// workers neither; and a role given a secret it does not use is refused.
func TestEachRoleRequiresOnlyItsOwnSecrets(t *testing.T) {
	for _, role := range Roles {
		t.Run(string(role), func(t *testing.T) {
			c, err := LoadRole(env(prodEnv(role, nil)), role)
			if err != nil {
				t.Fatalf("its own secrets refused: %v", err)
			}
			if c.Role != role {
				t.Fatalf("Role %s", c.Role)
			}
			if !role.Holds("JWT_SECRET") && c.JWTSecret != "" || !role.Holds("INIT_ADMIN_PASSWORD") && c.InitAdminPassword != "" || !role.Holds("BACKUP_SIGNING_KEY") && c.BackupSigningKey != "" {
				t.Fatalf("a secret it does not hold is in its Config")
			}
			for _, name := range RoleScopedSecrets() {
				m := prodEnv(role, nil)
				if role.RequiredInProduction(name) {
					delete(m, name)
					_, err := LoadRole(env(m), role)
					if got := refusedVars(err); len(got) != 1 || got[0] != name {
						t.Errorf("without %s: refused %v, want [%s]", name, got, name)
					}
					continue
				}
				if role.Holds(name) {
					continue // held, not required at start (archivesig.Load requires the signing key where it is used)
				}
				m[name] = "3f1c0a9e7b5d2c4f6a8e0b1d3c5f7a9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1b"
				_, err := LoadRole(env(m), role)
				if got := refusedVars(err); len(got) != 1 || got[0] != name || !strings.Contains(err.Error(), "does not use it") {
					t.Errorf("given %s, which it does not use: refused %v (%v)", name, got, err)
				}
				// Development ignores it.
				if c, err := LoadRole(env(map[string]string{name: m[name]}), role); err != nil || c.JWTSecret == m[name] || c.InitAdminPassword == m[name] ||
					c.BackupSigningKey == m[name] || c.BackupSigningKeysOld == m[name] || c.BackupS3.SecretAccessKey == m[name] || c.BackupS3.SessionToken == m[name] {
					t.Errorf("development, %s given: %v", name, err)
				}
			}
		})
	}
	if got := RoleScopedSecrets(); strings.Join(got, ",") != "AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,BACKUP_SIGNING_KEY,BACKUP_SIGNING_KEYS_OLD,INIT_ADMIN_PASSWORD,JWT_SECRET" {
		t.Fatalf("RoleScopedSecrets %v", got)
	}
}

// TestS3SettingsBindOnlyTheRolesThatOpenTheStore: with BACKUP_STORE=s3
// and none of its settings, the roles that open the store (API, backup,
// restore, all-in-one) refuse to start naming what is missing, while init
// and the chroma workers, which never open it, start and hold no S3
// credential.
func TestS3SettingsBindOnlyTheRolesThatOpenTheStore(t *testing.T) {
	for _, role := range Roles {
		t.Run(string(role), func(t *testing.T) {
			_, err := LoadRole(env(prodEnv(role, map[string]string{"BACKUP_STORE": "s3"})), role)
			if !role.UsesBackupStore() {
				if err != nil {
					t.Fatalf("refused an s3 store it never opens: %v", err)
				}
				return
			}
			if got := refusedVars(err); strings.Join(got, ",") != "BACKUP_S3_ENDPOINT,BACKUP_S3_BUCKET,AWS_SECRET_ACCESS_KEY" {
				t.Fatalf("refused %v (%v), want the endpoint, the bucket and the credentials", got, err)
			}
			c, err := LoadRole(env(prodEnv(role, map[string]string{"BACKUP_STORE": "s3", "BACKUP_S3_ENDPOINT": "https://s3.example.net",
				"BACKUP_S3_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI0K7MDENGbPxRfiCYzq"})), role)
			if err != nil || c.BackupS3.SecretAccessKey != "wJalrXUtnFEMI0K7MDENGbPxRfiCYzq" {
				t.Fatalf("complete settings: %v, secret %q", err, c.BackupS3.SecretAccessKey)
			}
		})
	}
}

func TestAPIAddrIsLoopbackInDevelopment(t *testing.T) {
	dev, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := LoadRole(env(prodEnv(RoleAPI, nil)), RoleAPI)
	if err != nil {
		t.Fatal(err)
	}
	if dev.APIAddr != "127.0.0.1:8000" || prod.APIAddr != ":8000" {
		t.Fatalf("API_ADDR defaults: development %q, production %q", dev.APIAddr, prod.APIAddr)
	}
	if c, err := Load(env(map[string]string{"API_ADDR": ":8100"})); err != nil || c.APIAddr != ":8100" {
		t.Fatalf("explicit API_ADDR: %q %v", c.APIAddr, err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Load(env(map[string]string{"TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,fd00::/8"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, ",") != "10.0.0.0/8,192.168.1.7/32,fd00::/8" {
		t.Fatalf("TrustedProxies %v", got)
	}
	if c, err := Load(env(nil)); err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default %v %v", c.TrustedProxies, err)
	}
	_, err = Load(env(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}))
	if got := refusedVars(err); len(got) != 1 || got[0] != "TRUSTED_PROXIES" {
		t.Fatalf("a host name: %v", err)
	}
}

// shippedSecret finds an assignment of a secret in a shipped file:
// NAME=value, NAME: value or --from-literal=NAME=value.
var shippedSecret = regexp.MustCompile(`\b((?:JWT_SECRET|INIT_ADMIN_PASSWORD|BACKUP_SIGNING_KEY|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|POSTGRES_PASSWORD|NATS_[A-Z]+_PASSWORD))["']?\s*[=:]\s*["']?([^\s"'` + "`" + `,)}]+)`)

// TestEveryShippedSecretIsAPlaceholder reads every file the repository
// ships to operators (README, docs, deploy, compose, Makefile) and checks
// that each literal secret value in it is one production refuses: a value
// copied from the repository can never pass the production checks.
func TestEveryShippedSecretIsAPlaceholder(t *testing.T) {
	root := filepath.Join("..", "..")
	files := []string{filepath.Join(root, "README.md"), filepath.Join(root, "docker-compose.yml"), filepath.Join(root, "Makefile")}
	for _, dir := range []string{"docs", "deploy"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if !d.IsDir() && regexp.MustCompile(`\.(ya?ml|md|conf|env|example|txt)$`).MatchString(d.Name()) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range shippedSecret.FindAllStringSubmatch(string(b), -1) {
			v := m[2]
			if strings.HasPrefix(v, "?") {
				continue // compose's ${VAR:?message}: required, no value
			}
			v = strings.TrimPrefix(v, "-") // compose's ${VAR:-default}: the default ships
			// References, not values: ${VAR…}, $VAR, $(cmd), <…>, …, a
			// Kubernetes valueFrom, a YAML block.
			if strings.HasPrefix(v, "$") || strings.HasPrefix(v, "<") || strings.HasPrefix(v, "…") || strings.HasPrefix(v, "{") || v == "|" || v == "…" || strings.HasPrefix(v, "...") {
				continue
			}
			n++
			if !IsPlaceholder(v) {
				t.Errorf("%s ships %s=%q, which production would accept", f, m[1], v)
			}
		}
	}
	t.Logf("%d files, %d literal secret values, all placeholders", len(files), n)
}
