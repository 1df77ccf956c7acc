package natsperm

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
)

// Users are the NATS users of deploy/nats/accounts.conf, one per role.
var Users = []string{"provisioner", "api", "init", "backup", "restore", "chroma"}

// passwordVar is the environment variable accounts.conf reads a user's password from.
func passwordVar(user string) string { return "NATS_" + strings.ToUpper(user) + "_PASSWORD" }

// testPassword is the (test-only) password of user.
func testPassword(user string) string { return "test-" + user + "-pw" }

// repoPath is a path under the repository root.
func repoPath(t testing.TB, parts ...string) string {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

// setDeployEnv sets the environment deploy/nats/nats-server.conf reads:
// the server name, every user's password, and the TLS files (a fresh test
// CA and node certificate, testkit.TLS). It returns the TLS files.
func setDeployEnv(t *testing.T) testkit.TLSFiles {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", "natsperm-test")
	for _, u := range Users {
		t.Setenv(passwordVar(u), testPassword(u))
	}
	f := testkit.TLS(t)
	t.Setenv("NATS_TLS_CERT", f.Cert)
	t.Setenv("NATS_TLS_KEY", f.Key)
	t.Setenv("NATS_TLS_CA", f.CA)
	return f
}

// deployCA is the CA of the server startFromDeployConfig started (set in
// the environment by setDeployEnv): the services' NATS_CA_FILE.
func deployCA() string { return os.Getenv("NATS_TLS_CA") }

// startFromDeployConfig starts a nats-server from deploy/nats/nats-server.conf
// itself — users, accounts, permissions and client TLS as shipped — on a
// free port with a temporary store, as a single node (the cluster block is
// dropped: the permissions do not depend on it). It returns host:port;
// clients verify it with deployCA().
func startFromDeployConfig(t *testing.T) string {
	t.Helper()
	setDeployEnv(t)
	opts, err := server.ProcessConfigFile(repoPath(t, "deploy", "nats", "nats-server.conf"))
	if err != nil {
		t.Fatalf("deploy/nats/nats-server.conf: %v", err)
	}
	if opts.TLSConfig == nil {
		t.Fatal("deploy/nats/nats-server.conf: client connections are not TLS")
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.HTTPPort, opts.HTTPHost = 0, ""
	opts.Cluster = server.ClusterOpts{}
	opts.Routes = nil
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server from deploy config: %v", err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server from deploy config not ready within 20s")
	}
	return ns.Addr().String()
}

// userURL is NATS_URL for user: credentials in the URL, as the manifests set it.
func userURL(addr, user string) string {
	u := url.URL{Scheme: "nats", User: url.UserPassword(user, testPassword(user)), Host: addr}
	return u.String()
}

// violations records the permission violations a connection is told about.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if err == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

// count is how many violations were recorded so far.
func (v *violations) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.errs)
}

// since lists the violations recorded after the first n.
func (v *violations) since(n int) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.errs[n:]...)
}

// watch installs v as c's error handler.
func watch(c *nats.Conn) *violations {
	v := &violations{}
	c.SetErrorHandler(v.handler)
	return v
}

// connectRaw connects as user with bus-like options and records violations.
func connectRaw(t *testing.T, addr, user string) (*nats.Conn, *violations) {
	t.Helper()
	v := &violations{}
	nc, err := nats.Connect(userURL(addr, user), nats.Name("natsperm-"+user), nats.ErrorHandler(v.handler), nats.CustomInboxPrefix(inboxPrefix(user)), nats.RootCAs(deployCA()))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// inboxPrefix is the reply-inbox prefix the manifests give user's service.
func inboxPrefix(user string) string { return "_INBOX_" + user }

// roleEnv is the environment of one service connecting as user, as the
// manifests set it (NATS_PROVISION only for the provisioner).
func roleEnv(addr, user, dataDir string, extra map[string]string) map[string]string {
	env := map[string]string{
		"NATS_URL":          userURL(addr, user),
		"NATS_PROVISION":    fmt.Sprint(user == "provisioner"),
		"NATS_INBOX_PREFIX": inboxPrefix(user),
		"NATS_CA_FILE":      deployCA(),
		"BACKUP_STORE":      "nats",
		"DATA_DIR":          dataDir,
		"WORKER_ID":         user,
		"JOB_ACK_WAIT":      "20s",
		"SHUTDOWN_TIMEOUT":  "10s",
		"LOG_LEVEL":         "warn",
		"ENABLE_TARGET_DB":  "true",
		"AUTO_TRAIN_CHROMA": "true",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// openRole opens what a service's main.go opens (app.OpenWith: config,
// bus, System DB) as user.
func openRole(ctx context.Context, t *testing.T, env map[string]string, log *slog.Logger) (app.Deps, *violations) {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	deps, closeAll, err := app.OpenWith(ctx, cfg, log, app.Options{Name: "natsperm-" + cfg.WorkerID, SystemDB: true, FailFastWhenDisconnected: cfg.WorkerID == "api"})
	if err != nil {
		t.Fatalf("open as %s: %v", cfg.WorkerID, err)
	}
	t.Cleanup(closeAll)
	return deps, watch(deps.Bus.Conn)
}
