package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
)

// deadLetter publishes a command to JOBS_DLQ as the worker runtime does
// for a job that failed after its last delivery.
func (e *env) deadLetter(kind, params, reason string) string {
	e.t.Helper()
	id := jobs.NewID()
	body, err := json.Marshal(jobs.Command{ID: id, Kind: kind, Params: json.RawMessage(params)})
	if err != nil {
		e.t.Fatal(err)
	}
	m := nats.NewMsg(jobs.DLQSubject(kind))
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, "dlq-"+id)
	m.Header.Set("Insightops-Job-Id", id)
	m.Header.Set("Insightops-Error", reason)
	m.Header.Set("Insightops-Deliveries", "5")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.bus.JS.PublishMsg(ctx, m); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestDeadLettersNewestFirstWithTheirReasons: GET /admin/db/dead-letters
// lists JOBS_DLQ newest first with the job, its kind and params, the
// error and the deliveries, a page at a time; a bad limit is a 400.
func TestDeadLettersNewestFirstWithTheirReasons(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.deadLetter(jobs.KindBackupCreate, `{"note":"nightly"}`, "disk full")
	second := e.deadLetter(jobs.KindChromaTrain, ``, "chroma unreachable")
	viewer := e.token(auth.Viewer)

	r := e.do(req{method: http.MethodGet, path: "/admin/db/dead-letters", token: viewer})
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	list := decode[DeadLetterList](t, r)
	if list.Total != 2 || len(list.DeadLetters) != 2 {
		t.Fatalf("list: %+v, want 2 dead letters", list)
	}
	got := list.DeadLetters[0]
	if got.JobID != second || got.Kind != jobs.KindChromaTrain || got.Error != "chroma unreachable" || got.Deliveries != 5 || got.Seq != 2 {
		t.Errorf("newest: %+v", got)
	}
	got = list.DeadLetters[1]
	if got.JobID != first || got.Kind != jobs.KindBackupCreate || string(got.Params) != `{"note":"nightly"}` || got.Error != "disk full" {
		t.Errorf("oldest: %+v (params %s)", got, got.Params)
	}

	page := decode[DeadLetterList](t, e.do(req{method: http.MethodGet, path: "/admin/db/dead-letters?limit=1&offset=1", token: viewer}))
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].JobID != first {
		t.Errorf("page 2: %+v", page)
	}
	for _, q := range []string{"limit=0", "limit=201", "offset=-1"} {
		r := e.do(req{method: http.MethodGet, path: "/admin/db/dead-letters?" + q, token: viewer})
		if code, _ := errorOf(t, r); r.status != http.StatusBadRequest || code != CodeBadRequest {
			t.Errorf("?%s: %d %s, want 400 bad_request", q, r.status, code)
		}
	}
}
