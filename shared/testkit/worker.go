package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/worker"
)

// RunWorker runs a worker replica on b with test timings — AckWait 2s,
// retries after 100ms, 500ms pull waits, presence every 200ms — wherever
// opts leaves them unset, until stop is called or the test ends. stop
// cancels the replica and waits for its drain (at most 15s).
func RunWorker(t testing.TB, b *bus.Bus, opts worker.Options) (stop func()) {
	t.Helper()
	if opts.AckWait == 0 {
		opts.AckWait = 2 * time.Second
	}
	if opts.Backoff == nil {
		opts.Backoff = func(int) time.Duration { return 100 * time.Millisecond }
	}
	if opts.FetchWait == 0 {
		opts.FetchWait = 500 * time.Millisecond
	}
	if opts.PresenceEvery == 0 {
		opts.PresenceEvery = 200 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = Logger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := worker.Run(ctx, b, opts); err != nil {
			t.Errorf("worker %s: %v", opts.WorkerID, err)
		}
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("worker %s did not stop", opts.WorkerID)
		}
	}
	t.Cleanup(stop)
	return stop
}
