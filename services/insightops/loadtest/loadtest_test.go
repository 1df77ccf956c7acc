package loadtest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/services/insightops/loadtest"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/reliability"
	"github.com/insightops/insightops/shared/testkit"
)

// Leak tolerances, checked after the load stopped, idle connections were
// closed and the process settled (up to a minute), against the level
// measured after a warm-up run (which opens the lazily opened parts:
// backup store, HTTP connections, worker pulls, caches):
//
//   - goroutines: +goroutineSlack. The all-in-one's own background
//     goroutines (NATS fetch loops, timers, heartbeat senders) come and go
//     by a handful (measured: 71 before, 71 after, in both the CI and the
//     full run); a per-request or per-job leak would add one or more per
//     request, i.e. thousands in the CI run and tens of thousands in the
//     full one.
//   - heap in use after two GCs: +heapSlack plus heapPerJob per job run.
//     A heap profile diff (LOADTEST_HEAPPROFILE_DIR) puts all of the
//     growth in the embedded nats-server: its message-block buffers (a
//     fixed few MiB) and the Nats-Msg-Id entries of the duplicate windows
//     (JOBS keeps them 10 minutes; about 1 KiB per job with its audit
//     events), i.e. bounded server state, none in insightops code.
//     Measured: +9 MiB after the CI run (~1,400 jobs), +19 to +20 MiB
//     after the full one (~10,600 to 12,200 jobs). The per-job part keeps
//     a faster machine, running more jobs, from failing; a leak of more
//     than a couple of KiB per job still fails.
const (
	goroutineSlack = 25
	heapSlack      = 16 << 20
	heapPerJob     = 2 << 10
)

// startAllInOne runs the all-in-one on a fresh DATA_DIR (embedded NATS on a
// free port, SQLite) and returns its API base URL once /health answers.
func startAllInOne(t *testing.T) string {
	t.Helper()
	vars := map[string]string{
		"DATA_DIR": t.TempDir(), "API_ADDR": testkit.FreeAddr(t), "NATS_LISTEN": "127.0.0.1:0",
		"TARGET_DB_SOURCE": "../../../assets/databases/vanna_db.db", "ASSETS_DIR": "../../../assets",
		"ENABLE_TARGET_DB": "true", "SHUTDOWN_TIMEOUT": "5s",
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	deps, closeAll, err := app.OpenWith(ctx, cfg, log, app.Options{Name: "loadtest", SystemDB: true})
	if err != nil {
		cancel()
		// The embedded NATS and SQLite are part of the product, not outside
		// services: failing to open them is a failure, never a skip.
		t.Fatalf("open the all-in-one (embedded NATS, SQLite): %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- allinone.Run(ctx, deps, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("all-in-one: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("all-in-one did not stop within 60s")
		}
		closeAll()
	})
	base := "http://" + cfg.APIAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := testkit.HTTP.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not healthy within 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// login retries until the first-start init job has created the admin.
func login(t *testing.T, base string) string {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		tok, err := loadtest.Login(context.Background(), c, base, "admin@example.com", config.DefaultAdminPassword)
		if err == nil {
			return tok
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login within 90s: %v", err)
		}
		time.Sleep(time.Second)
	}
}

// writeHeap writes a heap profile (LOADTEST_HEAPPROFILE_DIR set: before
// the load and after it settled), to see where memory that stays is held.
func writeHeap(t *testing.T, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		t.Errorf("heap profile: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Errorf("heap profile: %v", err)
	}
}

// level is the process's goroutine count and heap in use after GC.
func level() (int, uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

// settle waits, for at most a minute (long enough for the embedded
// server's block caches to expire), until the goroutine count and the heap
// are back within goroutineSlack of gBase and hSlack of hBase, and
// returns the last level.
func settle(t *testing.T, gBase int, hBase, hSlack uint64) (int, uint64) {
	start := time.Now()
	for {
		time.Sleep(time.Second)
		g, h := level()
		if (g <= gBase+goroutineSlack && h <= hBase+hSlack) || time.Since(start) > time.Minute {
			t.Logf("settled after %s", time.Since(start).Round(time.Second))
			return g, h
		}
	}
}

// TestLoadAPISubmitPoll runs the load generator against an in-process
// all-in-one: a fixed number of clients submit backup prune dry runs and
// poll each to its final state for 10 s (60 s under `make reliability`).
// Every request must succeed, every submitted job must succeed, and after
// the load the process's goroutines and heap must be back near where they
// were before it.
func TestLoadAPISubmitPoll(t *testing.T) {
	// Not parallel: measures the goroutines and heap of the whole process.
	duration, concurrency := 10*time.Second, 4
	if reliability.Full() {
		duration, concurrency = 60*time.Second, 8
	}
	base := startAllInOne(t)
	token := login(t, base)
	ctx := context.Background()

	// Warm-up: open everything that opens on first use, then measure.
	if st, err := loadtest.Run(ctx, loadtest.Options{BaseURL: base, Token: token, Duration: 2 * time.Second, Concurrency: concurrency}); err != nil || st.Errors > 0 {
		t.Fatalf("warm-up: %v, %d errors: %v", err, st.Errors, st.ErrorSamples)
	}
	time.Sleep(2 * time.Second)
	gBefore, hBefore := level()
	if d := os.Getenv("LOADTEST_HEAPPROFILE_DIR"); d != "" {
		writeHeap(t, filepath.Join(d, "before.pprof"))
		defer writeHeap(t, filepath.Join(d, "after.pprof"))
	}

	st, err := loadtest.Run(ctx, loadtest.Options{BaseURL: base, Token: token, Duration: duration, Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	hSlack := uint64(heapSlack + heapPerJob*st.Submitted)
	gAfter, hAfter := settle(t, gBefore, hBefore, hSlack)
	t.Logf("load: %d submitted, %d completed, %d succeeded, %d requests, %d errors in %s; %.1f jobs/s, %.1f req/s; submit %s; poll %s",
		st.Submitted, st.Completed, st.Succeeded, st.Requests, st.Errors, st.Elapsed.Round(time.Millisecond),
		st.JobsPerSecond, st.RequestsPerSecond, st.Submit, st.Poll)
	t.Logf("leak check: goroutines %d -> %d (slack %d), heap in use %d -> %d bytes (slack %d)", gBefore, gAfter, goroutineSlack, hBefore, hAfter, hSlack)

	reliability.Write(t, reliability.Result{Load: &reliability.Load{
		Name: reliability.LoadAPISubmitPoll, Duration: st.Elapsed, Requests: st.Requests, Errors: st.Errors,
		Throughput: st.JobsPerSecond, P50: st.Submit.P50, P99: st.Submit.P99, Max: st.Submit.Max,
		JobsDone: st.Succeeded, GoroutinesB: gBefore, GoroutinesA: gAfter, HeapB: hBefore, HeapA: hAfter,
		Notes: []string{
			fmt.Sprintf("all-in-one in process (embedded NATS, SQLite), %d clients each submitting POST /admin/db/backup/prune {\"dry_run\":true} and polling GET /admin/db/tasks/{id} every 20ms to its final state", concurrency),
			fmt.Sprintf("jobs submitted %d, completed %d, succeeded %d; %.1f jobs/s, %.1f requests/s", st.Submitted, st.Completed, st.Succeeded, st.JobsPerSecond, st.RequestsPerSecond),
			"latency p50/p99/max above: submissions (" + st.Submit.String() + "); polls: " + st.Poll.String(),
			fmt.Sprintf("leak tolerance: goroutines +%d, heap in use after GC +%d MiB + %d KiB per job (= %.1f MiB), against the level after a warm-up run", goroutineSlack, heapSlack>>20, heapPerJob>>10, float64(hSlack)/(1<<20)),
		},
	}})

	if st.Errors != 0 {
		t.Errorf("%d errors, first: %v", st.Errors, st.ErrorSamples)
	}
	if st.Submitted == 0 {
		t.Errorf("no job was submitted")
	}
	if st.Completed != st.Submitted || st.Succeeded != st.Submitted {
		t.Errorf("submitted %d jobs, %d completed, %d succeeded", st.Submitted, st.Completed, st.Succeeded)
	}
	if gAfter > gBefore+goroutineSlack {
		t.Errorf("goroutines: %d before the load, %d after it settled (tolerance %d)", gBefore, gAfter, goroutineSlack)
	}
	if hAfter > hBefore+hSlack {
		t.Errorf("heap in use: %d bytes before the load, %d after it settled (tolerance %d)", hBefore, hAfter, hSlack)
	}
}
