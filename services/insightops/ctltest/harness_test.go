package ctltest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insightops/insightops/services/insightctl/cli"
	"github.com/insightops/insightops/services/insightops/allinone/allinonetest"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
)

// adminEmail and the development default password are what a fresh
// all-in-one's first-start init creates.
const adminEmail = allinonetest.AdminEmail

// instance is one all-in-one running in the test's process.
type instance struct {
	url  string
	cfg  config.Config
	deps app.Deps
}

// start runs an all-in-one on a fresh DATA_DIR with the demo target DB and
// the given Chroma, stopped when the test ends. Auto-training is off so
// that no job holds a lease the test does not expect.
func start(t *testing.T, chromaURL string) *instance {
	t.Helper()
	in := allinonetest.Start(t, allinonetest.Options{Name: "test-insightctl", Vars: map[string]string{
		"AUTO_TRAIN_CHROMA": "false", "CHROMA_URL": chromaURL,
	}})
	return &instance{url: in.URL, cfg: in.Config, deps: in.Deps}
}

// ctl runs insightctl in-process with its own config directory and
// environment.
type ctl struct {
	t      *testing.T
	cfgDir string
	env    map[string]string
}

func newCtl(t *testing.T, env map[string]string) *ctl {
	return &ctl{t: t, cfgDir: t.TempDir(), env: env}
}

// with is a ctl sharing c's config directory with more variables set.
func (c *ctl) with(kv ...string) *ctl {
	env := maps.Clone(c.env)
	if env == nil {
		env = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return &ctl{t: c.t, cfgDir: c.cfgDir, env: env}
}

// result is one run of insightctl.
type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
}

// run runs insightctl with args and stdin (may be empty), bounded by a
// minute.
func (c *ctl) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return c.runCtx(ctx, nil, stdin, args...)
}

// runCtx runs insightctl with ctx; out, when not nil, also receives its
// stdout as it is written.
func (c *ctl) runCtx(ctx context.Context, out io.Writer, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	var w io.Writer = &stdout
	if out != nil {
		w = io.MultiWriter(&stdout, out)
	}
	code := cli.Run(ctx, args, cli.IO{
		In: strings.NewReader(stdin), Out: w, Err: &stderr,
		Getenv: func(k string) string { return c.env[k] }, ConfigDir: c.cfgDir,
	})
	return result{out: stdout.String(), err: stderr.String(), code: code}
}

// must runs insightctl and fails the test unless it exits 0.
func (c *ctl) must(stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != cli.ExitOK {
		c.t.Fatalf("insightctl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// login logs c in to in as the admin once first-start init created it.
func (c *ctl) login(in *instance) result {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.run(config.DefaultAdminPassword+"\n", "login", "--url", in.url, "--email", adminEmail, "--password-stdin")
		if r.code == cli.ExitOK {
			return r
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("login never succeeded: %s", r)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
