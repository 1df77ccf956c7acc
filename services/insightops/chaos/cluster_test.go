package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
)

// Worker binaries this package builds, by kind (= directory under services/).
var workerKinds = []string{"init", "backup", "chroma"}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binaries builds the worker binaries once per test run (the chroma worker
// needs cgo and takes a while) and returns their directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testkit.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "insightops-chaos-bin-")
		if err != nil {
			buildErr = fmt.Errorf("temp dir for binaries: %w", err)
			return
		}
		buildDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		args := []string{"build", "-o", dir + string(os.PathSeparator)}
		for _, k := range workerKinds {
			args = append(args, "./services/"+k)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build worker binaries: %v", buildErr)
	}
	return buildDir
}

// proc is one worker process.
type proc struct {
	kind, id string // id is its WORKER_ID; the runtime names it kind-id
	cmd      *exec.Cmd
	done     chan struct{}
	log      string
}

// workerName is the name job records carry in their worker field.
func (p *proc) workerName() string { return p.kind + "-" + p.id }

// cluster runs worker processes with a common environment, each with its
// own DATA_DIR and WORKER_ID, and stops every one of them when the test ends.
type cluster struct {
	t    *testing.T
	bins string
	env  []string
	root string

	mu      sync.Mutex
	procs   map[string][]*proc
	seq     int
	kills   int
	started int
}

// newCluster prepares a cluster; env holds the KEY=value settings shared
// by every process.
func newCluster(t *testing.T, bins string, env []string) *cluster {
	c := &cluster{t: t, bins: bins, env: env, root: t.TempDir(), procs: map[string][]*proc{}}
	t.Cleanup(c.stopAll)
	return c
}

// baseEnv is what a worker needs from the test's own environment: PATH
// (pg_dump, pg_restore), HOME and TMPDIR; nothing that config reads.
// signingKey is a random BACKUP_SIGNING_KEY (hex of 32 bytes).
func signingKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// start starts one more process of kind.
func (c *cluster) start(kind string) *proc {
	c.t.Helper()
	c.mu.Lock()
	c.seq++
	id := fmt.Sprintf("p%d", c.seq)
	c.mu.Unlock()
	dataDir := filepath.Join(c.root, kind+"-"+id)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	logPath := filepath.Join(c.root, kind+"-"+id+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.bins, kind))
	cmd.Env = append(append(baseEnv(), c.env...), "WORKER_ID="+id, "DATA_DIR="+dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s worker: %v", kind, err)
	}
	p := &proc{kind: kind, id: id, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs[kind] = append(c.procs[kind], p)
	c.started++
	c.mu.Unlock()
	return p
}

// kill SIGKILLs p, waits for it to be gone and forgets it.
func (c *cluster) kill(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kills++
	list := c.procs[p.kind]
	for i, q := range list {
		if q == p {
			c.procs[p.kind] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
}

// live returns the running processes.
func (c *cluster) live() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*proc
	for _, k := range workerKinds {
		out = append(out, c.procs[k]...)
	}
	return out
}

// byWorker finds the live process a job record's worker field names.
func (c *cluster) byWorker(name string) *proc {
	for _, p := range c.live() {
		if p.workerName() == name {
			return p
		}
	}
	return nil
}

// stopAll ends every process: SIGTERM, then SIGKILL after 20s.
func (c *cluster) stopAll() {
	for _, p := range c.live() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range c.live() {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	if c.t.Failed() {
		c.dumpLogs()
	}
}

// dumpLogs prints the tail of every process log (on failure).
func (c *cluster) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(c.root, "*.log"))
	sort.Strings(logs)
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		c.t.Logf("--- %s (tail)\n%s", filepath.Base(l), b)
	}
}

// submitter submits jobs the way the API does: the queued record and
// command through jobs.Publisher, then the <kind>.requested audit event.
type submitter struct {
	pub   *jobs.Publisher
	store *jobs.Store
	audit *audit.Publisher
}

func newSubmitter(b *bus.Bus, maxAttempts int, log *slog.Logger) *submitter {
	return &submitter{
		pub:   jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), maxAttempts),
		store: jobs.NewStore(b.Jobs),
		audit: audit.NewPublisher(b.JS, log),
	}
}

const chaosActor = "chaos@example.com"

func (s *submitter) submit(ctx context.Context, t *testing.T, args jobs.Args) string {
	t.Helper()
	id, err := s.trySubmit(ctx, args)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// trySubmit is submit for a goroutine other than the test's: it returns
// the error instead of failing the test.
func (s *submitter) trySubmit(ctx context.Context, args jobs.Args) (string, error) {
	kind := args.Kind()
	rec, _, err := s.pub.Submit(ctx, jobs.Submission{Args: args, SubmittedBy: chaosActor})
	if err != nil {
		return "", fmt.Errorf("submit %s: %w", kind, err)
	}
	err = s.audit.Publish(ctx, audit.Event{
		Actor: chaosActor, Role: "admin", Action: jobs.AuditAction(kind, "requested"), Resource: jobs.WorkerKind(kind),
		JobID: rec.ID, Outcome: audit.Success, Detail: map[string]any{"kind": kind, "replayed": false},
	})
	if err != nil {
		return rec.ID, fmt.Errorf("audit %s requested: %w", kind, err)
	}
	return rec.ID, nil
}

// records reads the current record of each id.
func (s *submitter) records(ctx context.Context, ids []string) (map[string]jobs.Record, error) {
	out := make(map[string]jobs.Record, len(ids))
	for _, id := range ids {
		rec, _, err := s.store.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("read job %s: %w", id, err)
		}
		out[id] = rec
	}
	return out, nil
}

// waitFinal polls until every job is final or ctx ends, and returns the
// last records read (some not final when ctx ended).
func (s *submitter) waitFinal(ctx context.Context, ids []string) map[string]jobs.Record {
	var last map[string]jobs.Record
	for {
		recs, err := s.records(context.WithoutCancel(ctx), ids)
		if err == nil {
			last = recs
			done := true
			for _, r := range recs {
				if !r.State.Final() {
					done = false
					break
				}
			}
			if done {
				return last
			}
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// mustSucceed waits for one job (within timeout, and before ctx's
// deadline) and fails the test unless it succeeded.
func (s *submitter) mustSucceed(ctx context.Context, t *testing.T, id string, timeout time.Duration) jobs.Record {
	t.Helper()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	rec := testkit.WaitFinal(t, s.store, id, timeout)
	if rec.State != jobs.Succeeded {
		t.Fatalf("job %s %s: state %s (step %q, error %+v)", rec.Kind, id, rec.State, rec.Step, rec.Error)
	}
	return rec
}

// auditCounts reads the whole AUDIT stream (audit.Read of "audit.>") and
// counts events by job id and action; it also returns how many events it
// read.
func auditCounts(ctx context.Context, js jetstream.JetStream) (map[string]map[string]int, int, error) {
	evs, err := audit.Read(ctx, js, "audit.>")
	if err != nil {
		return nil, 0, err
	}
	out := map[string]map[string]int{}
	for _, e := range evs {
		if e.JobID != "" {
			if out[e.JobID] == nil {
				out[e.JobID] = map[string]int{}
			}
			out[e.JobID][e.Action]++
		}
	}
	return out, len(evs), nil
}
