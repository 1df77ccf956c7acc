package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
)

// submitInit posts /admin/db/init as admin and returns the 202 body.
func (e *env) submitInit(key string) (resp, Accepted) {
	e.t.Helper()
	hdr := map[string]string{}
	if key != "" {
		hdr[HeaderIdempotencyKey] = key
	}
	res := e.do(req{method: http.MethodPost, path: "/admin/db/init", token: e.token(auth.Admin), headers: hdr})
	if res.status != http.StatusAccepted {
		e.t.Fatalf("POST /admin/db/init: %d %s", res.status, res.body)
	}
	return res, decode[Accepted](e.t, res)
}

func TestSubmitInit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, acc := e.submitInit("")
	if loc := res.header.Get("Location"); loc != "/admin/db/tasks/"+acc.TaskID {
		t.Errorf("Location = %q, task %s", loc, acc.TaskID)
	}
	if !jobs.ValidID(acc.TaskID) || acc.Status != "queued" || acc.StatusURL != "/admin/db/tasks/"+acc.TaskID || acc.Message == "" {
		t.Errorf("202 body %s", res.body)
	}
	if acc.Job.ID != acc.TaskID || acc.Job.Kind != jobs.KindInit || acc.Job.State != jobs.Queued || acc.Job.SubmittedBy != testUsers[auth.Admin] {
		t.Errorf("job %+v", acc.Job)
	}

	// The task route (and its aliases) answer with the record.
	for _, p := range []string{"/admin/db/tasks/", "/admin/db/backup/status/", "/admin/db/chroma/status/"} {
		got := e.do(req{method: http.MethodGet, path: p + acc.TaskID, token: e.token(auth.Viewer)})
		if got.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, got.status, got.body)
		}
		rec := decode[jobs.Record](t, got)
		if rec.ID != acc.TaskID || rec.Kind != jobs.KindInit || rec.State != jobs.Queued {
			t.Errorf("GET %s: %s", p, got.body)
		}
	}

	// The command is on the JOBS stream.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.bus.JS.Stream(ctx, bus.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, jobs.Subject(jobs.KindInit))
	if err != nil {
		t.Fatal(err)
	}
	var cmd jobs.Command
	if err := json.Unmarshal(msg.Data, &cmd); err != nil || cmd.ID != acc.TaskID {
		t.Errorf("command %s (%v)", msg.Data, err)
	}

	// And the request is audited.
	evs, raws := e.auditEvents("audit.init.requested")
	if len(evs) != 1 {
		t.Fatalf("%d init.requested events", len(evs))
	}
	ev := evs[0]
	if ev.Action != "init.requested" || ev.Resource != "init" || ev.JobID != acc.TaskID || ev.Actor != testUsers[auth.Admin] ||
		ev.Role != "admin" || ev.Outcome != audit.Success || ev.SourceIP == "" || ev.RequestID != res.header.Get("X-Request-ID") {
		t.Errorf("audit event %s (request id %s)", raws[0], res.header.Get("X-Request-ID"))
	}

	// The list shows it, filtered by kind and state.
	list := decode[TaskList](t, e.do(req{method: http.MethodGet, path: "/admin/db/tasks?kind=init.run&state=queued&limit=10", token: e.token(auth.Viewer)}))
	if list.Count != 1 || list.Tasks[0].ID != acc.TaskID {
		t.Errorf("list %+v", list)
	}
	list = decode[TaskList](t, e.do(req{method: http.MethodGet, path: "/admin/db/tasks?state=succeeded", token: e.token(auth.Viewer)}))
	if list.Count != 0 || list.Tasks == nil {
		t.Errorf("succeeded list %+v", list)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, first := e.submitInit("init-2026-11-27")
	res, again := e.submitInit("init-2026-11-27")
	if again.TaskID != first.TaskID {
		t.Fatalf("same key gave jobs %s and %s", first.TaskID, again.TaskID)
	}
	if res.header.Get("Location") != "/admin/db/tasks/"+first.TaskID {
		t.Errorf("replay Location %q", res.header.Get("Location"))
	}
	_, other := e.submitInit("another-key")
	if other.TaskID == first.TaskID {
		t.Error("different keys gave one job")
	}
	_, none := e.submitInit("")
	if none.TaskID == first.TaskID || none.TaskID == other.TaskID {
		t.Error("no key reused a job")
	}
	list := decode[TaskList](t, e.do(req{method: http.MethodGet, path: "/admin/db/tasks?kind=init.run", token: e.token(auth.Viewer)}))
	if list.Count != 3 {
		t.Errorf("%d init jobs, want 3", list.Count)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	op := e.token(auth.Operator)
	_, acc := e.submitInit("")

	res := e.do(req{method: http.MethodDelete, path: "/admin/db/tasks/" + acc.TaskID, token: op})
	if res.status != http.StatusOK {
		t.Fatalf("cancel queued: %d %s", res.status, res.body)
	}
	if rec := decode[jobs.Record](t, res); rec.State != jobs.Cancelled {
		t.Errorf("cancelled record %s", res.body)
	}
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/tasks/" + acc.TaskID, token: op})
	if res.status != http.StatusConflict {
		t.Fatalf("cancel final: %d %s, want 409", res.status, res.body)
	}
	if code, _ := errorOf(t, res); code != CodeConflict {
		t.Errorf("code %q", code)
	}
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/tasks/" + jobs.NewID(), token: op})
	if res.status != http.StatusNotFound {
		t.Fatalf("cancel unknown: %d %s", res.status, res.body)
	}
	errorOf(t, res)

	// A running job gets its cancel flag: 202, cancellation pending.
	_, run := e.submitInit("")
	ctx := context.Background()
	if _, err := e.srv.jobs.Update(ctx, run.TaskID, func(r *jobs.Record) error { r.State, r.Attempt = jobs.Running, 1; return nil }); err != nil {
		t.Fatal(err)
	}
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/tasks/" + run.TaskID, token: op})
	if res.status != http.StatusAccepted {
		t.Fatalf("cancel running: %d %s", res.status, res.body)
	}
	if rec := decode[jobs.Record](t, res); rec.State != jobs.Running || !rec.CancelRequested {
		t.Errorf("running record %s", res.body)
	}
	evs, _ := e.auditEvents("audit.init.cancel.requested")
	if len(evs) != 3 { // success, conflict, success
		t.Errorf("%d cancel events, want 3", len(evs))
	}
}

type sseEvent struct {
	name string
	data string
}

// readSSE parses a stream into events (comments are sent as name ":").
func readSSE(body *bufio.Reader, out chan<- sseEvent) {
	defer close(out)
	var ev sseEvent
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				out <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			out <- sseEvent{name: ":", data: strings.TrimSpace(line[1:])}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
}

// openStream opens the event stream of id; cancel ends the request.
func (e *env) openStream(ctx context.Context, id string) (<-chan sseEvent, *http.Response) {
	e.t.Helper()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/admin/db/tasks/"+id+"/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+e.token(auth.Viewer))
	res, err := e.ts.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("events: %d", res.StatusCode)
	}
	ch := make(chan sseEvent, 16)
	go readSSE(bufio.NewReader(res.Body), ch)
	return ch, res
}

// nextJob waits for the next "job" event, skipping comments.
func nextJob(t *testing.T, ch <-chan sseEvent) (jobs.Record, bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return jobs.Record{}, false
			}
			if ev.name == ":" {
				continue
			}
			if ev.name != "job" {
				t.Fatalf("event %q", ev.name)
			}
			var rec jobs.Record
			if err := json.Unmarshal([]byte(ev.data), &rec); err != nil {
				t.Fatalf("event data %q: %v", ev.data, err)
			}
			return rec, true
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

func TestTaskEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, acc := e.submitInit("")
	ch, res := e.openStream(context.Background(), acc.TaskID)
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}

	rec, ok := nextJob(t, ch)
	if !ok || rec.State != jobs.Queued {
		t.Fatalf("first event %+v", rec)
	}
	ctx := context.Background()
	steps := []func(r *jobs.Record){
		func(r *jobs.Record) {
			r.State, r.Attempt, r.Progress, r.Step = jobs.Running, 1, 10, "copying golden database"
		},
		func(r *jobs.Record) { r.Progress, r.Step = 60, "migrating system database" },
		func(r *jobs.Record) {
			now := time.Now().UTC()
			r.State, r.Progress, r.Step, r.FinishedAt = jobs.Succeeded, 100, "done", &now
		},
	}
	for i, step := range steps {
		want, err := e.srv.jobs.Update(ctx, acc.TaskID, func(r *jobs.Record) error { step(r); return nil })
		if err != nil {
			t.Fatal(err)
		}
		got, ok := nextJob(t, ch)
		if !ok {
			t.Fatalf("stream closed before step %d", i)
		}
		if got.State != want.State || got.Progress != want.Progress || got.Step != want.Step {
			t.Errorf("step %d: got %s/%d/%q, want %s/%d/%q", i, got.State, got.Progress, got.Step, want.State, want.Progress, want.Step)
		}
	}
	if _, ok := nextJob(t, ch); ok {
		t.Fatal("stream went on after the final state")
	}
	eventually(t, 5*time.Second, "stream handler to return", func() bool { return e.srv.liveStreams.Load() == 0 })

	// A final job: one event, then the end.
	ch, _ = e.openStream(context.Background(), acc.TaskID)
	if rec, ok := nextJob(t, ch); !ok || rec.State != jobs.Succeeded {
		t.Fatalf("final job event %+v", rec)
	}
	if _, ok := nextJob(t, ch); ok {
		t.Fatal("final job stream did not close")
	}
}

func TestTaskEventsKeepAliveAndDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.keepAlive = 50 * time.Millisecond
	_, acc := e.submitInit("")
	ctx, cancel := context.WithCancel(context.Background())
	ch, _ := e.openStream(ctx, acc.TaskID)
	comments := 0
	timeout := time.After(5 * time.Second)
	for comments < 2 {
		select {
		case ev := <-ch:
			if ev.name == ":" && ev.data == "keep-alive" {
				comments++
			}
		case <-timeout:
			t.Fatal("no keep-alive comments")
		}
	}
	if n := e.srv.liveStreams.Load(); n != 1 {
		t.Fatalf("%d live streams, want 1", n)
	}
	cancel() // the client goes away
	eventually(t, 5*time.Second, "handler to stop after disconnect", func() bool { return e.srv.liveStreams.Load() == 0 })

	// Shutdown ends open streams too.
	ch, _ = e.openStream(context.Background(), acc.TaskID)
	if _, ok := nextJob(t, ch); !ok {
		t.Fatal("no first event")
	}
	e.srv.CloseStreams()
	eventually(t, 5*time.Second, "streams to end on shutdown", func() bool { return e.srv.liveStreams.Load() == 0 })
	for range ch { // drain until closed
	}
}

func TestTaskEventsUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.do(req{method: http.MethodGet, path: "/admin/db/tasks/" + jobs.NewID() + "/events", token: e.token(auth.Viewer)})
	if res.status != http.StatusNotFound {
		t.Fatalf("%d %s", res.status, res.body)
	}
	errorOf(t, res)
}

// TestTaskEventsStreamsPerUser: a user holding MaxStreamsPerUser streams
// gets 429 too_many_streams for one more; another user is not affected,
// and closing a stream frees its slot.
func TestTaskEventsStreamsPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, acc := e.submitInit("")
	cancels := make([]context.CancelFunc, 0, MaxStreamsPerUser)
	for range MaxStreamsPerUser {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		ch, _ := e.openStream(ctx, acc.TaskID)
		if _, ok := nextJob(t, ch); !ok {
			t.Fatal("no first event")
		}
	}
	path := "/admin/db/tasks/" + acc.TaskID + "/events"
	res := e.do(req{method: http.MethodGet, path: path, token: e.token(auth.Viewer)})
	if code, _ := errorOf(t, res); res.status != http.StatusTooManyRequests || code != CodeTooManyStreams {
		t.Fatalf("stream %d: %d %s", MaxStreamsPerUser+1, res.status, res.body)
	}
	// Another user still streams (the request returns once its context ends).
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+e.token(auth.Operator))
	other, err := e.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if other.StatusCode != http.StatusOK {
		t.Errorf("another user's stream: %d", other.StatusCode)
	}
	_ = other.Body.Close()
	// Closing one stream frees a slot.
	cancels[0]()
	eventually(t, 5*time.Second, "a freed slot", func() bool {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+e.token(auth.Viewer))
		res, err := e.ts.Client().Do(r)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	for _, c := range cancels[1:] {
		c()
	}
}
