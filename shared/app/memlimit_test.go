package app_test

import (
	"bytes"
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/testkit"
)

// The process of a worker that streams archives (Main, JobMemoryLimit)
// gets the soft memory limit of its jobs and logs it; Run alone (tests,
// the all-in-one) leaves the limit alone. Not parallel: the limit is the
// test binary's own, and is put back.
func TestMainSetsTheJobMemoryLimitAndRunDoesNot(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	_, ns := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	getenv := env(map[string]string{"NATS_URL": ns.ClientURL(), "DATA_DIR": t.TempDir(), "WORKER_CONCURRENCY": "3"})
	done := errors.New("run done")
	opts := app.Options{Name: "insightops-test", JobMemoryLimit: true}
	run := func(context.Context, app.Deps) error { return done }

	if err := app.Run(ctx, getenv, &bytes.Buffer{}, opts, run); !errors.Is(err, done) {
		t.Fatalf("Run: %v", err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("Run changed the soft memory limit to %d", got)
	}

	var logs bytes.Buffer
	if err := app.RunProcess(ctx, getenv, &logs, opts, run, opts.JobMemoryLimit); !errors.Is(err, done) {
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
