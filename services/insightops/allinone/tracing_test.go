package allinone_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/insightops/insightops/services/backup/backupworker"
	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/services/insightops/allinone/allinonetest"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/tracing/tracingtest"
)

// spanInfo is what the trace checks read of a span, from this process's
// recorder or from the worker process's file.
type spanInfo struct {
	Name    string            `json:"name"`
	TraceID string            `json:"trace_id"`
	SpanID  string            `json:"span_id"`
	Parent  string            `json:"parent_span_id"`
	Attrs   map[string]string `json:"attrs"`
}

func infoOf(spans []sdktrace.ReadOnlySpan) []spanInfo {
	out := make([]spanInfo, 0, len(spans))
	for _, s := range spans {
		si := spanInfo{Name: s.Name(), TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(), Attrs: map[string]string{}}
		if s.Parent().IsValid() {
			si.Parent = s.Parent().SpanID().String()
		}
		for _, a := range s.Attributes() {
			si.Attrs[string(a.Key)] = a.Value.String()
		}
		out = append(out, si)
	}
	return out
}

// logLines parses JSON log lines.
func logLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// checkJobTrace holds one backup.create job to one trace: the API's span
// of the POST, the publish span its child, the worker's job span the
// publish span's child (ended in the job's final state), step spans and
// the dump, compress and store put spans in the same trace; the API's log
// line of the POST and every worker log line of the job carry its id.
func checkJobTrace(t *testing.T, spans []spanInfo, jobID string, apiLog, workerLog []byte) {
	t.Helper()
	find := func(name string, ok func(spanInfo) bool) spanInfo {
		t.Helper()
		for _, s := range spans {
			if s.Name == name && ok(s) {
				return s
			}
		}
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("no span %q (spans: %s)", name, strings.Join(names, ", "))
		return spanInfo{}
	}
	ofJob := func(s spanInfo) bool { return s.Attrs["job.id"] == jobID }
	post := find("POST /admin/db/backup", func(s spanInfo) bool { return s.Attrs["http.response.status_code"] == "202" })
	trace := post.TraceID
	inTrace := func(s spanInfo) bool { return s.TraceID == trace }
	pub := find("jobs publish", ofJob)
	job := find("job backup.create", ofJob)
	switch {
	case pub.TraceID != trace || pub.Parent != post.SpanID:
		t.Errorf("publish span in trace %s under %s, want trace %s under the POST's span %s", pub.TraceID, pub.Parent, trace, post.SpanID)
	case job.TraceID != trace || job.Parent != pub.SpanID:
		t.Errorf("job span in trace %s under %s, want trace %s under the publish span %s", job.TraceID, job.Parent, trace, pub.SpanID)
	case job.Attrs["job.state"] != string(jobs.Succeeded):
		t.Errorf("job span ended with state %q, want succeeded", job.Attrs["job.state"])
	}
	find("step dumping the system database", func(s spanInfo) bool { return s.Parent == job.SpanID })
	for _, name := range []string{"backup dump", "backup compress", "backup store put"} {
		find(name, inTrace)
	}

	var apiTrace string
	for _, l := range logLines(t, apiLog) {
		if l["msg"] == "http request" && l["method"] == "POST" && l["route"] == "/admin/db/backup" {
			apiTrace, _ = l["trace_id"].(string)
		}
	}
	if apiTrace != trace {
		t.Errorf("API log line of the POST has trace_id %q, want %s", apiTrace, trace)
	}
	n := 0
	for _, l := range logLines(t, workerLog) {
		if l["job_id"] != jobID || l["worker"] == nil {
			continue
		}
		n++
		if l["trace_id"] != trace {
			t.Errorf("worker log line %q of the job has trace_id %v, want %s", l["msg"], l["trace_id"], trace)
		}
	}
	if n < 3 {
		t.Errorf("%d worker log lines of job %s, want its start, steps and end", n, jobID)
	}
}

// postBackup submits a backup as the admin and waits for it to end.
func postBackup(t *testing.T, in *instance, token string) string {
	t.Helper()
	var accepted struct {
		TaskID string `json:"task_id"`
	}
	if code := in.call(t, "POST", "/admin/db/backup", token, map[string]any{}, &accepted); code != http.StatusAccepted {
		t.Fatalf("POST /admin/db/backup: %d", code)
	}
	if rec := in.waitFinal(t, token, accepted.TaskID); rec.State != jobs.Succeeded {
		t.Fatalf("backup %s: %s %+v", accepted.TaskID, rec.State, rec.Error)
	}
	return accepted.TaskID
}

// TestOneTraceFromThePostToTheJobsFinalState: the all-in-one, one process.
func TestOneTraceFromThePostToTheJobsFinalState(t *testing.T) {
	rec := tracingtest.Record(t)
	logs := &allinonetest.Buffer{}
	in := startLogged(t, t.TempDir(), logs)
	token := in.loginWhenReady(t)
	id := postBackup(t, in, token)
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	checkJobTrace(t, infoOf(rec.Ended()), id, []byte(logs.String()), []byte(logs.String()))
}

// Environment of the backup worker process TestOneTraceAcrossProcesses starts.
const (
	childEnv      = "INSIGHTOPS_TRACE_CHILD"       // set: this test binary is the worker process
	childLogEnv   = "INSIGHTOPS_TRACE_CHILD_LOG"   // its JSON log file
	childSpansEnv = "INSIGHTOPS_TRACE_CHILD_SPANS" // its spans, written at exit
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := runBackupWorkerProcess(); err != nil {
			fmt.Fprintln(os.Stderr, "worker process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runBackupWorkerProcess is the other process: a backup worker configured
// from its environment (NATS_URL names the test's server) with its own
// tracer provider, until SIGTERM; then it writes the spans it recorded.
func runBackupWorkerProcess() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	logf, err := os.Create(os.Getenv(childLogEnv))
	if err != nil {
		return err
	}
	defer logf.Close()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	deps, closeAll, err := app.OpenWith(ctx, cfg, app.NewLoggerFormat(logf, "debug", "json"), app.Options{Name: "insightops-backup", SystemDB: true})
	if err != nil {
		return err
	}
	err = backupworker.Run(ctx, deps)
	closeAll()
	if err != nil {
		return err
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		return err
	}
	stubs := exp.GetSpans()
	b, err := json.Marshal(infoOf(stubs.Snapshots()))
	if err != nil {
		return err
	}
	return os.WriteFile(os.Getenv(childSpansEnv), b, 0o600)
}

// TestOneTraceAcrossProcesses: the API (and the init worker) in this
// process, the backup worker in another one with its own tracer provider;
// the job's trace crosses the bus in the command's headers.
func TestOneTraceAcrossProcesses(t *testing.T) {
	rec := tracingtest.Record(t)
	dir := t.TempDir()
	vars := map[string]string{
		"DATA_DIR": dir, "API_ADDR": testkit.FreeAddr(t), "NATS_LISTEN": "127.0.0.1:0",
		"TARGET_DB_SOURCE": "../../../assets/databases/vanna_db.db", "ASSETS_DIR": "../../../assets",
		"ENABLE_TARGET_DB": "true", "JOB_ACK_WAIT": "5s", "SHUTDOWN_TIMEOUT": "5s",
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	apiLog := &allinonetest.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	deps, closeAll, err := app.OpenWith(ctx, cfg, app.NewLoggerFormat(apiLog, "debug", "json"), app.Options{Name: "test-api", SystemDB: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	running := 0
	for _, s := range allinone.Services(deps) {
		if s.Name != "api" && s.Name != "init" {
			continue // the backup worker runs in the other process
		}
		running++
		go func() { _ = s.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		for range running {
			<-done
		}
		closeAll()
	})

	// The worker process, on this process's NATS server and DATA_DIR.
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1",
		childLogEnv+"="+filepath.Join(dir, "worker.log"), childSpansEnv+"="+filepath.Join(dir, "worker-spans.json"),
		"NATS_URL="+deps.Bus.Embedded.ClientURL())
	for k, v := range vars {
		if k != "NATS_LISTEN" && k != "API_ADDR" {
			child.Env = append(child.Env, k+"="+v)
		}
	}
	var childErr bytes.Buffer
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	t.Cleanup(func() { _ = child.Process.Kill() })

	// First start: init creates the admin user.
	p := jobs.NewPublisher(deps.Bus.JS, jobs.NewStore(deps.Bus.Jobs), cfg.JobMaxAttempts)
	initRec, _, err := p.Submit(ctx, jobs.Submission{Args: jobspec.InitArgs{}, SubmittedBy: "system"})
	if err != nil {
		t.Fatal(err)
	}
	if r := testkit.WaitFinal(t, jobs.NewStore(deps.Bus.Jobs), initRec.ID, time.Minute); r.State != jobs.Succeeded {
		t.Fatalf("init: %s %+v", r.State, r.Error)
	}
	in := &instance{base: "http://" + cfg.APIAddr, deps: deps}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := testkit.HTTP.Get(in.base + "/health"); err == nil {
			resp.Body.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("API not listening: %v", err)
		}
	}
	id := postBackup(t, in, in.login(t))

	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker process: %v\n%s", err, childErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker process did not stop within 30s\n%s", childErr.String())
	}
	var workerSpans []spanInfo
	b, err := os.ReadFile(filepath.Join(dir, "worker-spans.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &workerSpans); err != nil {
		t.Fatal(err)
	}
	workerLog, err := os.ReadFile(filepath.Join(dir, "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range infoOf(rec.Ended()) {
		if s.Name == "job backup.create" {
			t.Fatalf("this process ran the backup job: the test does not cross processes")
		}
	}
	checkJobTrace(t, append(infoOf(rec.Ended()), workerSpans...), id, []byte(apiLog.String()), workerLog)
}
