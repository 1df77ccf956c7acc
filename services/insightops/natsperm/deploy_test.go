package natsperm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
)

// container is one insightops process a manifest runs: its role (the NATS
// user it must connect as), its environment and its stop grace period.
type container struct {
	where string
	role  string
	env   map[string]string
	grace time.Duration // 0: not a long-running service (the init Job)
}

// roleOf maps a service binary (and whether it runs --once) to its NATS user.
func roleOf(service string, once bool) string {
	if service == "init" && once {
		return "provisioner"
	}
	return service
}

// composeVar is a compose interpolation: ${VAR}, ${VAR:-default} or
// ${VAR:?message} (required, no default).
var composeVar = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}`)

// composeEnv resolves the interpolations of v as a deployment would: a
// default is taken, a required variable gets the value an operator set
// (secrets[VAR]: random per test run, the same for every use).
func composeEnv(v string, secrets map[string]string) string {
	return composeVar.ReplaceAllStringFunc(v, func(m string) string {
		g := composeVar.FindStringSubmatch(m)
		if g[2] == "?" {
			if secrets[g[1]] == "" {
				b := make([]byte, 32) // BACKUP_SIGNING_KEY needs 32 random bytes
				_, _ = rand.Read(b)
				secrets[g[1]] = hex.EncodeToString(b)
			}
			return secrets[g[1]]
		}
		return g[3]
	})
}

// isSecretVar tells the variables that hold a credential.
func isSecretVar(name string) bool {
	return config.IsSecret(name) || strings.HasSuffix(name, "PASSWORD") || strings.HasSuffix(name, "SECRET") || strings.HasSuffix(name, "_KEY")
}

// TestComposeShipsNoSecret: every credential docker-compose.yml
// interpolates is required (${VAR:?…}): a shipped default would be a
// secret anyone who read the repository knows.
func TestComposeShipsNoSecret(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(repoPath(t, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range composeVar.FindAllStringSubmatch(string(b), -1) {
		if !isSecretVar(m[1]) {
			continue
		}
		n++
		if m[2] != "?" {
			t.Errorf("docker-compose.yml: %s is interpolated as %q: a credential must be required (${%s:?…}), never defaulted", m[1], m[0], m[1])
		}
	}
	if n == 0 {
		t.Fatal("docker-compose.yml interpolates no credential: the check read nothing")
	}
}

// composeContainers reads docker-compose.yml: every service built from
// deploy/docker/<service>.Dockerfile, its environment with ${VAR:-default}
// taken at its default and each required ${VAR:?…} given a random value,
// as an operator's .env would (merge keys resolved by the YAML decoder).
func composeContainers(t *testing.T) []container {
	t.Helper()
	var doc struct {
		Services map[string]struct {
			Build           any               `yaml:"build"`
			Command         any               `yaml:"command"`
			Environment     map[string]string `yaml:"environment"`
			Volumes         []string          `yaml:"volumes"`
			StopGracePeriod string            `yaml:"stop_grace_period"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile(repoPath(t, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var out []container
	secrets := map[string]string{}
	for name, s := range doc.Services {
		build, _ := s.Build.(map[string]any)
		df, _ := build["dockerfile"].(string)
		if !strings.HasPrefix(df, "deploy/docker/") {
			continue
		}
		svc := strings.TrimSuffix(filepath.Base(df), ".Dockerfile")
		if _, err := os.Stat(repoPath(t, df)); err != nil {
			t.Errorf("compose %s: dockerfile %s: %v", name, df, err)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = composeEnv(v, secrets)
		}
		// The NATS CA the service verifies the nodes with is mounted
		// where NATS_CA_FILE says (a service's own volumes replace the
		// shared ones).
		if ca := env["NATS_CA_FILE"]; ca != "" && !slices.ContainsFunc(s.Volumes, func(v string) bool {
			parts := strings.Split(v, ":")
			return len(parts) >= 2 && parts[1] == ca
		}) {
			t.Errorf("compose %s: NATS_CA_FILE=%s, which none of its volumes %v mounts", name, ca, s.Volumes)
		}
		cmd, _ := s.Command.([]any)
		c := container{where: "docker-compose.yml " + name, role: roleOf(svc, slices.Contains(cmd, any("--once"))), env: env}
		if c.role != "provisioner" {
			c.grace = 10 * time.Second // compose's default
			if s.StopGracePeriod != "" {
				if c.grace, err = time.ParseDuration(s.StopGracePeriod); err != nil {
					t.Errorf("%s: stop_grace_period: %v", c.where, err)
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// k8sObject is the part of a Kubernetes object these checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		ScaleTargetRef struct {
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		Triggers []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
		Template struct {
			Spec struct {
				Automount  *bool  `yaml:"automountServiceAccountToken"`
				Grace      *int64 `yaml:"terminationGracePeriodSeconds"`
				Containers []struct {
					Image   string   `yaml:"image"`
					Args    []string `yaml:"args"`
					EnvFrom []struct {
						ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
						SecretRef    *struct{ Name string } `yaml:"secretRef"`
					} `yaml:"envFrom"`
					Env []struct {
						Name      string `yaml:"name"`
						Value     string `yaml:"value"`
						ValueFrom *struct {
							SecretKeyRef    *struct{ Name, Key string } `yaml:"secretKeyRef"`
							ConfigMapKeyRef *struct{ Name, Key string } `yaml:"configMapKeyRef"`
							FieldRef        *struct {
								FieldPath string `yaml:"fieldPath"`
							} `yaml:"fieldRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// k8sObjects reads every document of deploy/k8s/*.yaml.
func k8sObjects(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(repoPath(t, "deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("deploy/k8s/*.yaml: %v (%d files)", err, len(files))
	}
	var out []k8sObject
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for {
			var o k8sObject
			if err := dec.Decode(&o); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: %v", f, err)
				}
				break
			}
			if o.Kind != "" {
				out = append(out, o)
			}
		}
		fh.Close()
	}
	return out
}

// exampleSecretsFile is the example Secret, outside deploy/k8s (the
// directory `kubectl apply -f deploy/k8s/` takes).
var exampleSecretsFile = []string{"deploy", "examples", "k8s-secrets.example.yaml"}

// exampleSecrets reads the example Secret; with random, each empty value
// and each CHANGE-ME in it is replaced by a random value (one per key), as
// the operator who creates the real Secret does; without, the empty values
// and placeholders stay.
func exampleSecrets(t *testing.T, random bool) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, exampleSecretsFile...))
	if err != nil {
		t.Fatal(err)
	}
	var o k8sObject
	if err := yaml.Unmarshal(b, &o); err != nil || o.Kind != "Secret" {
		t.Fatalf("%s: %v (kind %q)", filepath.Join(exampleSecretsFile...), err, o.Kind)
	}
	data := map[string]string{}
	for k, v := range o.StringData {
		if random {
			r := make([]byte, 32)
			_, _ = rand.Read(r)
			if v == "" {
				v = "CHANGE-ME"
			}
			v = strings.ReplaceAll(v, "CHANGE-ME", hex.EncodeToString(r))
		}
		data[k] = v
	}
	return map[string]map[string]string{o.Metadata.Name: data}
}

// k8sContainers resolves the environment of every insightops container
// (ConfigMap values from deploy/k8s, Secret values from secrets: the
// example Secret, see exampleSecrets).
func k8sContainers(t *testing.T, objs []k8sObject, secrets map[string]map[string]string) []container {
	t.Helper()
	cms := map[string]map[string]string{}
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			cms[o.Metadata.Name] = o.Data
		case "Secret":
			t.Errorf("deploy/k8s holds the Secret %s: kubectl apply -f deploy/k8s/ would install its values (examples belong in deploy/examples)", o.Metadata.Name)
		}
	}
	var out []container
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			img := strings.SplitN(filepath.Base(c.Image), ":", 2)[0]
			if !strings.HasPrefix(img, "insightops-") {
				continue
			}
			where := "deploy/k8s " + o.Kind + " " + o.Metadata.Name
			env := map[string]string{}
			for _, ef := range c.EnvFrom {
				var src map[string]string
				var ok bool
				switch {
				case ef.ConfigMapRef != nil:
					src, ok = cms[ef.ConfigMapRef.Name]
				case ef.SecretRef != nil:
					src, ok = secrets[ef.SecretRef.Name]
				}
				if !ok {
					t.Errorf("%s: envFrom names an object deploy/k8s does not define", where)
				}
				for k, v := range src {
					env[k] = v
				}
			}
			for _, e := range c.Env {
				switch vf := e.ValueFrom; {
				case vf == nil:
					env[e.Name] = e.Value
				case vf.SecretKeyRef != nil:
					v, ok := secrets[vf.SecretKeyRef.Name][vf.SecretKeyRef.Key]
					if !ok {
						t.Errorf("%s: %s from secret %s key %s, which deploy/examples/k8s-secrets.example.yaml lacks", where, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
					}
					env[e.Name] = v
				case vf.ConfigMapKeyRef != nil:
					env[e.Name] = cms[vf.ConfigMapKeyRef.Name][vf.ConfigMapKeyRef.Key]
				case vf.FieldRef != nil:
					env[e.Name] = "pod-name"
				}
			}
			ct := container{where: where, role: roleOf(strings.TrimPrefix(img, "insightops-"), slices.Contains(c.Args, "--once")), env: env}
			if o.Kind == "Deployment" {
				if g := o.Spec.Template.Spec.Grace; g != nil {
					ct.grace = time.Duration(*g) * time.Second
				} else {
					ct.grace = 30 * time.Second // the Kubernetes default
				}
			}
			out = append(out, ct)
		}
	}
	return out
}

// TestDeployManifestsMatchTheCode checks docker-compose.yml and
// deploy/k8s against shared/config and deploy/nats: every variable they
// set is one config reads; each process's environment passes config.Load
// (so production's required secrets are there); it connects to NATS as its
// own user, which deploy/nats defines; only the provisioner provisions;
// replicas are 3; stop grace outlasts SHUTDOWN_TIMEOUT; and KEDA scales
// each worker kind's Deployment on that kind's consumer of JOBS.
func TestDeployManifestsMatchTheCode(t *testing.T) {
	// Not parallel: sets process environment variables (t.Setenv) the shipped nats-server.conf reads.
	known := map[string]bool{}
	for _, v := range config.Vars {
		known[v.Name] = true
	}
	setDeployEnv(t)
	opts, err := server.ProcessConfigFile(repoPath(t, "deploy", "nats", "nats-server.conf"))
	if err != nil {
		t.Fatalf("deploy/nats: %v", err)
	}
	natsUsers := map[string]bool{}
	subscribes := map[string][]string{} // user → what it may subscribe to
	for _, u := range opts.Users {
		natsUsers[u.Username] = true
		if u.Permissions == nil {
			t.Errorf("NATS user %s has no permissions (all allowed)", u.Username)
			continue
		}
		if u.Permissions.Subscribe != nil {
			subscribes[u.Username] = u.Permissions.Subscribe.Allow
		}
	}
	if got, want := sortedKeys(natsUsers), slices.Sorted(slices.Values(Users)); !slices.Equal(got, want) {
		t.Errorf("deploy/nats users %v, the roles are %v", got, want)
	}

	objs := k8sObjects(t)
	all := append(composeContainers(t), k8sContainers(t, objs, exampleSecrets(t, true))...)
	roles := map[string][]string{}
	for _, c := range all {
		roles[c.where[:strings.Index(c.where, " ")]] = append(roles[c.where[:strings.Index(c.where, " ")]], c.role)
		t.Run(c.where, func(t *testing.T) {
			for k := range c.env {
				if !known[k] {
					t.Errorf("sets %s, which shared/config does not read (not in config.Vars)", k)
				}
			}
			// NATS is TLS only: every process verifies the nodes with
			// NATS_CA_FILE (a path in the container; here the test's CA).
			if ca := c.env["NATS_CA_FILE"]; !filepath.IsAbs(ca) {
				t.Errorf("NATS_CA_FILE=%q: the NATS servers speak TLS only; set the CA's absolute path", ca)
			}
			c.env["NATS_CA_FILE"] = deployCA()
			// Loaded for its role: production requires the role's own
			// secrets and refuses the others' (and any placeholder).
			cfg, err := config.LoadRole(func(k string) string { return c.env[k] }, configRole(c.role))
			if err != nil {
				t.Fatalf("config.LoadRole(%s) refuses this environment: %v", configRole(c.role), err)
			}
			for _, name := range config.RoleScopedSecrets() {
				_, has := c.env[name]
				holds := configRole(c.role).Holds(name)
				switch {
				case has && !holds:
					t.Errorf("receives %s, which its role (%s) does not use", name, configRole(c.role))
				case !has && holds && !optionalSecrets[name]:
					t.Errorf("lacks %s, which its role (%s) uses", name, configRole(c.role))
				}
			}
			if cfg.AppEnv != config.Production {
				t.Errorf("APP_ENV is %s, the manifests deploy production", cfg.AppEnv)
			}
			if cfg.DatabaseURL == "" {
				t.Error("DATABASE_URL is empty: the System DB would be a SQLite file inside the container")
			}
			if cfg.Embedded() {
				t.Fatal("NATS_URL is empty: the process would start its own embedded NATS")
			}
			if cfg.NATSReplicas != 3 {
				t.Errorf("NATS_REPLICAS=%d, the cluster has 3 nodes", cfg.NATSReplicas)
			}
			if want := c.role == "provisioner"; cfg.NATSProvision != want {
				t.Errorf("NATS_PROVISION=%v; only the provisioner (init --once) provisions", cfg.NATSProvision)
			}
			for _, raw := range strings.Split(cfg.NATSURL, ",") {
				u, err := url.Parse(raw)
				if err != nil || u.User == nil {
					t.Errorf("NATS_URL entry %q carries no user", bareURL(raw))
					continue
				}
				if u.User.Username() != c.role {
					t.Errorf("connects to NATS as %q, its role's user is %q", u.User.Username(), c.role)
				}
				if !natsUsers[u.User.Username()] {
					t.Errorf("NATS user %q is not defined in deploy/nats", u.User.Username())
				}
			}
			// A role subscribes to its own reply inboxes only: the prefix
			// it is given must be the one its NATS user may subscribe to.
			if want := []string{cfg.NATSInboxPrefix + ".>"}; !slices.Equal(subscribes[c.role], want) {
				t.Errorf("NATS_INBOX_PREFIX=%s, but NATS user %s may subscribe to %v (want exactly %v)", cfg.NATSInboxPrefix, c.role, subscribes[c.role], want)
			}
			if c.grace > 0 && c.grace <= cfg.ShutdownTimeout {
				t.Errorf("stop grace %s is not longer than SHUTDOWN_TIMEOUT %s: running jobs would be killed, not released", c.grace, cfg.ShutdownTimeout)
			}
		})
	}
	for where, rs := range roles {
		for _, want := range Users {
			if !slices.Contains(rs, want) {
				t.Errorf("%s runs no %s", where, want)
			}
		}
	}

	deployments := map[string]bool{}
	for _, o := range objs {
		if o.Kind == "Deployment" {
			deployments[o.Metadata.Name] = true
		}
	}
	scaled := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "ScaledObject" {
			continue
		}
		if !deployments[o.Spec.ScaleTargetRef.Name] {
			t.Errorf("ScaledObject %s scales %s, which deploy/k8s does not define", o.Metadata.Name, o.Spec.ScaleTargetRef.Name)
		}
		for _, tr := range o.Spec.Triggers {
			m := tr.Metadata
			if tr.Type != "nats-jetstream" || m["stream"] != "JOBS" || !slices.Contains(jobs.WorkerKinds, m["consumer"]) || m["account"] != "INSIGHTOPS" {
				t.Errorf("ScaledObject %s: trigger %s %v is not a nats-jetstream trigger on a worker consumer of JOBS in account INSIGHTOPS", o.Metadata.Name, tr.Type, m)
				continue
			}
			if o.Spec.ScaleTargetRef.Name != "insightops-"+m["consumer"] {
				t.Errorf("ScaledObject %s scales %s on consumer %s", o.Metadata.Name, o.Spec.ScaleTargetRef.Name, m["consumer"])
			}
			scaled[m["consumer"]] = true
		}
	}
	for _, k := range jobs.WorkerKinds {
		if !scaled[k] {
			t.Errorf("no KEDA ScaledObject for the %s workers", k)
		}
	}
	t.Logf("checked %d containers (%v)", len(all), fmt.Sprint(roles))
}

// optionalSecrets are the role-scoped secrets a deployment sets only in
// some configurations: the verify-only old archive keys while it rotates a
// key, and the S3 credentials of BACKUP_STORE=s3 (which the manifests give
// as a mounted BACKUP_S3_CREDENTIALS_FILE instead).
var optionalSecrets = map[string]bool{"BACKUP_SIGNING_KEYS_OLD": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true}

// configRole is the configuration role (config.LoadRole) of a NATS user's
// process: the provisioner is init --once.
func configRole(natsUser string) config.Role {
	if natsUser == "provisioner" {
		return config.RoleInit
	}
	return config.Role(natsUser)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// bareURL drops the userinfo of a URL for messages.
func bareURL(raw string) string {
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return raw[i+1:]
	}
	return raw
}
