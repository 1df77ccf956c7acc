package app

import (
	"bytes"
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// The process of a worker that streams archives (Main, JobMemoryLimit)
// gets the soft memory limit of its jobs and logs it; Run alone (tests,
// the all-in-one) leaves the limit alone. Not parallel: the limit is the
// test binary's own, and is put back.
func TestMainSetsTheJobMemoryLimitAndRunDoesNot(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	// testkit imports this package: the server is started here.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vars := map[string]string{"NATS_URL": ns.ClientURL(), "DATA_DIR": t.TempDir(), "WORKER_CONCURRENCY": "3"}
	getenv := func(k string) string { return vars[k] }
	done := errors.New("run done")
	opts := Options{Name: "insightops-test", JobMemoryLimit: true}
	run := func(context.Context, Deps) error { return done }

	if err := Run(ctx, getenv, &bytes.Buffer{}, opts, run); !errors.Is(err, done) {
		t.Fatalf("Run: %v", err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("Run changed the soft memory limit to %d", got)
	}

	var logs bytes.Buffer
	if err := runProcess(ctx, getenv, &logs, opts, run, opts.JobMemoryLimit); !errors.Is(err, done) {
		t.Fatalf("runProcess: %v", err)
	}
	want := int64(16+3*24) << 20 // memlimit.For: local store, 3 jobs
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Fatalf("soft memory limit %d MiB after Main's start, want %d MiB", got>>20, want>>20)
	}
	if !strings.Contains(logs.String(), `"soft memory limit"`) || !strings.Contains(logs.String(), `"mib":88`) {
		t.Fatalf("no log line of the limit in\n%s", logs.String())
	}
}
