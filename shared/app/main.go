package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/insightops/insightops/shared/memlimit"
	"github.com/insightops/insightops/shared/metrics"
)

// RunFunc is a service's Run: it serves until ctx ends or it fails.
type RunFunc func(ctx context.Context, deps Deps) error

// Main is the whole main of a service binary: a context cancelled on
// SIGINT or SIGTERM, then Run on the process environment logging to
// stderr, then Exit with its error (1) or without (0).
//
// With opts.JobMemoryLimit it sets the soft memory limit first
// (memlimit.Apply): Main is the whole process, so the limit is the
// service's alone.
func Main(opts Options, run RunFunc) {
	ctx, stop := SignalContext()
	err := runProcess(ctx, os.Getenv, os.Stderr, opts, run, opts.JobMemoryLimit)
	stop()
	Exit(err)
}

// Run opens the process's deps (OpenEnv), serves /metrics and /healthz on
// METRICS_ADDR when it is set (unless opts.MetricsOnOwnPort), calls run,
// then stops the metrics server and closes the deps. An address the
// metrics server cannot listen on is an error before run is called, not a
// log line: a worker whose probe port is taken must not look healthy.
func Run(ctx context.Context, getenv func(string) string, logTo io.Writer, opts Options, run RunFunc) error {
	return runProcess(ctx, getenv, logTo, opts, run, false)
}

// runProcess is Run; setLimit also applies the soft memory limit.
func runProcess(ctx context.Context, getenv func(string) string, logTo io.Writer, opts Options, run RunFunc, setLimit bool) error {
	deps, closeAll, err := OpenEnv(ctx, getenv, logTo, opts)
	if err != nil {
		return err
	}
	defer closeAll()
	if setLimit {
		limit, src := memlimit.Apply(deps.Config, getenv)
		deps.Log.Info("soft memory limit", "mib", limit>>20, "source", string(src))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if addr := deps.Config.MetricsAddr; addr != "" && !opts.MetricsOnOwnPort {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics: listen on METRICS_ADDR %s: %w", addr, err)
		}
		served := make(chan error, 1)
		go func() { served <- metrics.Serve(ctx, ln, deps.Log) }()
		defer func() {
			cancel()
			if err := <-served; err != nil {
				deps.Log.Error("metrics server", "err", err)
			}
		}()
	}
	return run(ctx, deps)
}
