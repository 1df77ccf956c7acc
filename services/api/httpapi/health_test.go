package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/testkit"
)

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.do(req{method: http.MethodGet, path: "/health"})
	if res.status != http.StatusOK || decode[map[string]string](t, res)["status"] != StatusOK {
		t.Fatalf("/health: %d %s", res.status, res.body)
	}
	res = e.do(req{method: http.MethodGet, path: "/ready"})
	if res.status != http.StatusOK {
		t.Fatalf("/ready: %d %s", res.status, res.body)
	}
	rb := decode[readyBody](t, res)
	if rb.Status != "ready" || len(rb.Checks) != 7 {
		t.Errorf("/ready body %s", res.body)
	}
	for k, v := range rb.Checks {
		if v != StatusOK {
			t.Errorf("check %s = %s", k, v)
		}
	}

	// A stream gone: 503 naming it in fixed words; the answer is public,
	// so the error's own text (server names, permissions) is not in it.
	if err := e.bus.JS.DeleteStream(context.Background(), bus.StreamDLQ); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "/ready 503 after the stream is gone", func() bool {
		res = e.do(req{method: http.MethodGet, path: "/ready"})
		return res.status == http.StatusServiceUnavailable
	})
	if got := decode[readyBody](t, res).Checks["stream "+bus.StreamDLQ]; got != "missing or unreachable" {
		t.Errorf("/ready says %q of the deleted stream, want the fixed words only: %s", got, res.body)
	}
}

func TestDBHealthListsLiveWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	viewer := e.token(auth.Viewer)
	health := func() (int, HealthReport) {
		res := e.do(req{method: http.MethodGet, path: "/admin/db/health", token: viewer})
		return res.status, decode[HealthReport](t, res)
	}

	// No worker at all: degraded, still 200.
	status, rep := health()
	if status != http.StatusOK || rep.Status != StatusDegraded {
		t.Fatalf("no workers: %d %+v", status, rep)
	}
	if rep.Components["nats"].Status != StatusOK || rep.Components["system_db"].Status != StatusOK {
		t.Errorf("components %+v", rep.Components)
	}
	for _, k := range jobs.WorkerKinds {
		if ws, ok := rep.Workers[k]; !ok || ws == nil || len(ws) != 0 {
			t.Errorf("workers[%s] = %v, want []", k, ws)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		presence.NewAnnouncer(e.bus.Workers, "init", "init-test-1", 2, 200*time.Millisecond, testkit.Logger(t)).Run(ctx)
	}()
	eventually(t, 5*time.Second, "the init worker to show", func() bool {
		_, rep = health()
		return len(rep.Workers["init"]) == 1
	})
	if w := rep.Workers["init"][0]; w.ID != "init-test-1" || w.Kind != "init" || w.Concurrency != 2 {
		t.Errorf("worker %+v", w)
	}
	if rep.Status != StatusDegraded {
		t.Errorf("status %s with backup/restore/chroma missing", rep.Status)
	}

	// Every kind live: ok.
	var others []chan struct{}
	for _, k := range []string{"backup", "restore", "chroma"} {
		d := make(chan struct{})
		others = append(others, d)
		go func() {
			defer close(d)
			presence.NewAnnouncer(e.bus.Workers, k, k+"-test-1", 1, 200*time.Millisecond, testkit.Logger(t)).Run(ctx)
		}()
	}
	eventually(t, 5*time.Second, "every kind live", func() bool {
		status, rep = health()
		return rep.Status == StatusOK
	})
	if status != http.StatusOK {
		t.Errorf("ok answered %d", status)
	}

	// A stopped worker disappears at once (its key is deleted).
	cancel()
	<-done
	for _, d := range others {
		<-d
	}
	eventually(t, 5*time.Second, "the workers to go", func() bool {
		_, rep = health()
		return len(rep.Workers["init"]) == 0
	})
}

// TestNATSDown shuts the embedded server down under the API: /ready and
// /admin/db/health answer 503 and a submission fails with 503 within the
// submit timeout instead of hanging.
func TestNATSDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	e.srv.submitTimeout = 2 * time.Second // SubmitTimeout is 5s in production
	e.srv.readTimeout = 2 * time.Second

	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	eventually(t, 5*time.Second, "the client to notice", func() bool { return e.bus.Conn.Status() != nats.CONNECTED })

	res := e.do(req{method: http.MethodGet, path: "/ready"})
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("/ready with NATS down: %d %s", res.status, res.body)
	}
	if code, _ := errorOf(t, res); code != CodeUnavailable {
		t.Errorf("/ready code %q", code)
	}
	if rb := decode[readyBody](t, res); rb.Status != "not_ready" || rb.Checks["nats"] == StatusOK {
		t.Errorf("/ready body %s", res.body)
	}

	// Liveness does not depend on NATS.
	if res := e.do(req{method: http.MethodGet, path: "/health"}); res.status != http.StatusOK {
		t.Errorf("/health with NATS down: %d", res.status)
	}

	start := time.Now()
	res = e.do(req{method: http.MethodPost, path: "/admin/db/init", token: admin})
	took := time.Since(start)
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("submit with NATS down: %d %s", res.status, res.body)
	}
	if code, _ := errorOf(t, res); code != CodeUnavailable {
		t.Errorf("submit code %q", code)
	}
	// submit timeout + the bounded audit publish, never a hang.
	if took > e.srv.submitTimeout+AuditTimeout+2*time.Second {
		t.Errorf("submit took %s", took)
	}

	res = e.do(req{method: http.MethodGet, path: "/admin/db/tasks/" + jobs.NewID(), token: admin})
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("read with NATS down: %d %s", res.status, res.body)
	}
	errorOf(t, res)

	res = e.do(req{method: http.MethodGet, path: "/admin/db/health", token: admin})
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("/admin/db/health with NATS down: %d %s", res.status, res.body)
	}
	rep := decode[HealthReport](t, res)
	if rep.Status != StatusDown || rep.Components["nats"].Status != StatusDown || rep.Components["system_db"].Status != StatusOK {
		t.Errorf("health %s", res.body)
	}
}

// TestReadyIsCached: a flood of anonymous GET /ready within the cache's
// TTL, sequential and concurrent, causes one check of the bus (counted,
// not timed); once the cached answer is stale the next request checks
// again, and a changed bus shows then.
func TestReadyIsCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.readiness.ttl = time.Hour // "within the TTL" whatever the machine's speed
	const n = 50
	for i := range n {
		if res := e.do(req{method: http.MethodGet, path: "/ready"}); res.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, res.status, res.body)
		}
	}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := e.do(req{method: http.MethodGet, path: "/ready"}); res.status != http.StatusOK {
				t.Errorf("concurrent request: %d", res.status)
			}
		}()
	}
	wg.Wait()
	if got := e.srv.readiness.runs.Load(); got != 1 {
		t.Fatalf("%d requests made %d checks, want 1", 2*n, got)
	}
	// Stale: the next request checks again and sees NATS gone.
	e.srv.readTimeout = 2 * time.Second
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	eventually(t, 5*time.Second, "the client to notice", func() bool { return e.bus.Conn.Status() != nats.CONNECTED })
	if res := e.do(req{method: http.MethodGet, path: "/ready"}); res.status != http.StatusOK {
		t.Errorf("within the TTL the cached answer stands: %d", res.status)
	}
	e.srv.readiness.mu.Lock()
	e.srv.readiness.ttl = 0
	e.srv.readiness.mu.Unlock()
	if res := e.do(req{method: http.MethodGet, path: "/ready"}); res.status != http.StatusServiceUnavailable {
		t.Errorf("after the TTL: %d %s", res.status, res.body)
	}
	if got := e.srv.readiness.runs.Load(); got != 2 {
		t.Errorf("%d checks after the TTL, want 2", got)
	}
}

// TestHealthWarnsAsAuditStreamFills: AUDIT is provisioned with
// AUDIT_MAX_BYTES as its MaxBytes; past 80% of it the "audit_stream"
// component, and so the report, is degraded with the reason.
func TestHealthWarnsAsAuditStreamFills(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, map[string]string{"AUDIT_MAX_BYTES": "1MiB"})
	ctx := context.Background()
	// testkit's bus is provisioned with defaults; provision as a process
	// with this configuration does (an in-place update of AUDIT).
	if err := bus.Provision(ctx, e.bus.JS, bus.SettingsFrom(e.cfg), testkit.Logger(t)); err != nil {
		t.Fatal(err)
	}
	st, err := e.bus.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxBytes != 1<<20 {
		t.Fatalf("AUDIT MaxBytes = %d, want 1 MiB", cfg.MaxBytes)
	}
	if c := e.healthReport().Components["audit_stream"]; c.Status != StatusOK || !strings.Contains(c.Detail, "of 1.0 MiB") {
		t.Fatalf("empty AUDIT: %+v", c)
	}
	payload := make([]byte, 9000)
	for i := range 100 { // ~900 kB of 1 MiB
		if _, err := e.bus.JS.Publish(ctx, fmt.Sprintf("audit.test.fill%d", i), payload); err != nil {
			t.Fatal(err)
		}
	}
	rep := e.healthReport()
	c := rep.Components["audit_stream"]
	if c.Status != StatusDegraded || !strings.Contains(c.Detail, "AUDIT_MAX_BYTES") {
		t.Fatalf("AUDIT over 80%%: %+v", c)
	}
	if rep.Status == StatusOK {
		t.Errorf("report status %s with a degraded component", rep.Status)
	}
}
