package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/worker"
)

// TestDBHealthShowsQueueDepthPerWorkerKind: with the init consumer in
// place and no replica running, a submitted init job shows as pending.
func TestDBHealthShowsQueueDepthPerWorkerKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.bus.JS.CreateOrUpdateConsumer(context.Background(), bus.StreamJobs, worker.ConsumerConfig("init", 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if r := e.do(req{method: "POST", path: "/admin/db/init", token: e.token(auth.Admin)}); r.status != http.StatusAccepted {
		t.Fatalf("init: %d", r.status)
	}
	// The consumer's pending count follows the stream asynchronously: ask
	// again for a few seconds until the published command shows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep := decode[HealthReport](t, e.do(req{method: "GET", path: "/admin/db/health", token: e.token(auth.Viewer)}))
		q, ok := rep.Queue["init"]
		if ok && q.Pending == 1 && q.AckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %+v, want init pending 1", rep.Queue)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
