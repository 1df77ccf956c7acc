package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// replicasPerKind is how many replicas of each worker kind run.
const replicasPerKind = 2

// workerKinds are the worker services allinone.Services returns.
var workerKinds = []string{"init", "backup", "restore", "chroma"}

// env is one insightops deployment on a 3-node cluster: the API (one
// replica, with its audit sink) and two replicas of every worker kind,
// each opened like its binary (app.OpenWith: its own NATS connection to
// all three nodes) and running the Services of the all-in-one.
type env struct {
	t       *testing.T
	cluster *testkit.Cluster
	cfg     config.Config
	base    string   // API base URL
	api     *bus.Bus // the API's bus, for reads in checks
	db      *store.DB
	token   string
	client  *http.Client
}

// startEnv starts the cluster, PostgreSQL database, Chroma, the API and
// the workers, runs the first init job and logs in as the admin.
func startEnv(t *testing.T) *env {
	t.Helper()
	pgURL := testkit.Postgres(t)
	chroma := testkit.Chroma(t)
	c := testkit.StartCluster(t)
	c.Provision(t, c.Connect(t, "clustertest-provision"), func(ctx context.Context, js jetstream.JetStream) error {
		_, err := backupstore.NewNATS(ctx, js, testkit.ClusterSize)
		return err
	})

	vars := map[string]string{
		"NATS_URL": c.URL(), "NATS_REPLICAS": "3",
		"DATABASE_URL": pgURL, "CHROMA_URL": chroma.URL,
		"DATA_DIR": t.TempDir(), "API_ADDR": testkit.FreeAddr(t),
		"TARGET_DB_SOURCE": "../../../assets/databases/vanna_db.db", "ASSETS_DIR": "../../../assets",
		"ENABLE_TARGET_DB": "true", "BACKUP_STORE": "nats", "BACKUP_RETENTION_COUNT": "1000",
		"JWT_SECRET":         "clustertest-secret-0123456789abcdefghijklmnop",
		"WORKER_CONCURRENCY": "8", "JOB_MAX_ATTEMPTS": "10",
		"JOB_ACK_WAIT": "10s", "SHUTDOWN_TIMEOUT": "5s",
	}
	cfg := testkit.Config(t, vars)
	db := testkit.SystemDB(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	e := &env{t: t, cluster: c, cfg: cfg, base: "http://" + cfg.APIAddr, db: db, client: &http.Client{Timeout: 60 * time.Second}}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		stop()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Errorf("services did not stop within 60s")
		}
	})
	// open opens one process's deps the way its binary does and runs the
	// named service of allinone.Services on them.
	open := func(name, service string) *bus.Bus {
		pcfg := cfg
		pcfg.WorkerID = name
		log := testkit.Logger(t).With("process", name)
		deps, closeAll, err := app.OpenWith(ctx, pcfg, log, app.Options{Name: "clustertest-" + name, FailFastWhenDisconnected: service == "api"})
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		deps.DB = db // one pool for all: PostgreSQL is shared with other tests
		t.Cleanup(closeAll)
		var run func(context.Context) error
		for _, s := range allinone.Services(deps) {
			if s.Name == service {
				run = s.Run
			}
		}
		if run == nil {
			t.Fatalf("allinone.Services has no %q", service)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s stopped: %v", name, err)
			}
		}()
		return deps.Bus
	}
	e.api = open("api", "api")
	for _, kind := range workerKinds {
		for r := 1; r <= replicasPerKind; r++ {
			open(fmt.Sprintf("%s-%d", kind, r), kind)
		}
	}
	e.waitHealthy()

	// First start, as the all-in-one does it: the init job creates the admin.
	pub := jobs.NewPublisher(e.api.JS, jobs.NewStore(e.api.Jobs), cfg.JobMaxAttempts)
	rec, _, err := pub.Submit(ctx, jobs.Submission{Args: jobspec.InitArgs{}, SubmittedBy: "system", IdempotencyKey: allinone.FirstStartKey})
	if err != nil {
		t.Fatalf("submit init: %v", err)
	}
	deadline, _ := ctx.Deadline()
	if final := testkit.WaitFinal(t, jobs.NewStore(e.api.Jobs), rec.ID, time.Until(deadline)); final.State != jobs.Succeeded {
		t.Fatalf("init job %s: %+v", final.State, final.Error)
	}
	e.token = e.login()
	return e
}

func (e *env) waitHealthy() {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := e.client.Get(e.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("API not healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) login() string {
	e.t.Helper()
	var tok struct{ Token string }
	code, err := e.call(http.MethodPost, "/auth/login", "", map[string]string{"email": e.cfg.InitAdminUsername, "password": e.cfg.InitAdminPassword}, &tok)
	if err != nil || code != http.StatusOK || tok.Token == "" {
		e.t.Fatalf("login: %d %v", code, err)
	}
	return tok.Token
}

// call does one request and decodes a JSON answer into out (when not nil
// and the body is JSON). It returns the status, or an error for a
// transport failure.
func (e *env) call(method, path, key string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// accepted is the part of a 202 body the tests read.
type accepted struct {
	TaskID string `json:"task_id"`
	Job    struct {
		Kind string `json:"kind"`
	} `json:"job"`
}

// submission is one job the test asked for: the request and, once a 202
// came back, the job id.
type submission struct {
	Key  string
	Path string
	Body any
	Kind string
	ID   string
	// Tries counts requests made until the 202 (503s and lock 409s
	// answered before it are retried with the same Idempotency-Key).
	Tries int
	// Unavailable counts 503 answers on the way.
	Unavailable int
	// Conflicts counts 409 answers (a backup's lease held by another).
	Conflicts int
}

// submit posts s until it gets a 202 (retrying a 503, a 409 for a held
// lease or a transport error with the same Idempotency-Key, as a client
// should) or ctx ends.
func (e *env) submit(ctx context.Context, s *submission) error {
	for {
		s.Tries++
		var a accepted
		code, err := e.call(http.MethodPost, s.Path, s.Key, s.Body, &a)
		switch {
		case err == nil && code == http.StatusAccepted:
			if a.TaskID == "" {
				return fmt.Errorf("%s: 202 without task_id", s.Key)
			}
			if s.ID != "" && s.ID != a.TaskID {
				return fmt.Errorf("%s: idempotency key answered job %s, then %s", s.Key, s.ID, a.TaskID)
			}
			s.ID = a.TaskID
			return nil
		case err == nil && code == http.StatusServiceUnavailable:
			s.Unavailable++
		case err == nil && code == http.StatusConflict:
			s.Conflicts++
		case err == nil:
			return fmt.Errorf("%s %s: unexpected status %d", s.Key, s.Path, code)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no 202 after %d tries (last: %d %v): %w", s.Key, s.Tries, code, err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// outcome is what the checks measured.
type outcome struct {
	states     map[string]jobs.State // by job id
	lost       []string              // submitted, not final
	terminal2  []string              // two terminal writes in the KV history
	archives   map[string]int        // backup.create job id → archives carrying it
	auditSeen  int                   // expected events found (requested + terminal per job)
	auditDupID int                   // event ids stored twice in AUDIT
	auditDup   []string              // (job, action) pairs found more than once
	auditMiss  []string              // (job, action) pairs missing
	auditTotal int                   // events in AUDIT
	replayed   int                   // requested events marked replayed
}

// waitAllFinal polls every submitted job until it is final or ctx ends;
// the ones left are lost.
func (e *env) waitAllFinal(ctx context.Context, subs []*submission) (map[string]jobs.State, []string) {
	st := jobs.NewStore(e.api.Jobs)
	states := map[string]jobs.State{}
	pending := map[string]bool{}
	for _, s := range subs {
		pending[s.ID] = true
	}
	for len(pending) > 0 {
		for id := range pending {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			rec, _, err := st.Get(rctx, id)
			cancel()
			if err == nil && rec.State.Final() {
				states[id] = rec.State
				delete(pending, id)
			}
		}
		if len(pending) == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var lost []string
	for id := range pending {
		lost = append(lost, id)
	}
	return states, lost
}

// check counts, for every submitted job: its final state, terminal writes
// in its KV history, its archives (backup.create) and its audit events.
func (e *env) check(ctx context.Context, subs []*submission, deadline time.Duration) outcome {
	e.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var o outcome
	o.states, o.lost = e.waitAllFinal(wctx, subs)

	for _, s := range subs {
		if _, ok := o.states[s.ID]; !ok {
			continue
		}
		// The job is final (read above), so its history holds at least one
		// terminal write; a history without one was read from a replica
		// that had not caught up yet (a node just restarted): read again.
		final, err := 0, error(nil)
		for try := 0; try < 20 && final == 0; try++ {
			if try > 0 {
				time.Sleep(500 * time.Millisecond)
			}
			final, err = e.terminalWrites(ctx, s.ID)
		}
		if err != nil {
			e.t.Errorf("history of %s: %v", s.ID, err)
			continue
		}
		if final != 1 {
			o.terminal2 = append(o.terminal2, fmt.Sprintf("%s (%d terminal writes)", s.ID, final))
		}
	}

	o.archives = map[string]int{}
	var backups []*submission
	for _, s := range subs {
		if s.Kind == jobs.KindBackupCreate {
			backups = append(backups, s)
			o.archives[s.ID] = 0
		}
	}
	if len(backups) > 0 {
		bs, err := backupstore.NewNATS(ctx, e.api.JS, testkit.ClusterSize)
		if err != nil {
			e.t.Fatalf("backup store: %v", err)
		}
		infos, err := bs.List(ctx)
		if err != nil {
			e.t.Fatalf("list archives: %v", err)
		}
		for _, info := range infos {
			for _, s := range backups {
				if strings.Contains(info.Name, s.ID) {
					o.archives[s.ID]++
				}
			}
		}
	}

	events := e.readAudit(ctx)
	o.auditTotal = len(events)
	byID := map[string]int{}
	type pair struct{ job, action string }
	byPair := map[pair]int{}
	for _, ev := range events {
		byID[ev.ID]++
		if ev.JobID == "" {
			continue
		}
		// Every 202 is audited as <kind>.requested, and each submission
		// here stops at its first 202: exactly one per job. One marked
		// replayed answered a retry whose first try got a 503 although its
		// command was stored (a publish acknowledged too late).
		if strings.HasSuffix(ev.Action, ".requested") && ev.Detail["replayed"] == true {
			o.replayed++
		}
		byPair[pair{ev.JobID, ev.Action}]++
	}
	for _, n := range byID {
		if n > 1 {
			o.auditDupID += n - 1
		}
	}
	for _, s := range subs {
		st, ok := o.states[s.ID]
		if !ok {
			continue
		}
		for _, action := range []string{jobs.AuditAction(s.Kind, "requested"), jobs.AuditAction(s.Kind, string(st))} {
			switch n := byPair[pair{s.ID, action}]; {
			case n == 0:
				o.auditMiss = append(o.auditMiss, s.ID+" "+action)
			case n > 1:
				o.auditSeen++
				o.auditDup = append(o.auditDup, fmt.Sprintf("%s %s ×%d", s.ID, action, n))
			default:
				o.auditSeen++
			}
		}
	}
	return o
}

// terminalWrites counts the writes of a final state in job id's KV history.
func (e *env) terminalWrites(ctx context.Context, id string) (int, error) {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hist, err := e.api.Jobs.History(hctx, id)
	if err != nil {
		return 0, err
	}
	final := 0
	for _, h := range hist {
		var r jobs.Record
		if json.Unmarshal(h.Value(), &r) == nil && r.State.Final() {
			final++
		}
	}
	return final, nil
}

// readAudit reads the whole AUDIT stream (audit.Read of "audit.>"),
// starting over while it fails: right after a cluster restart the stream
// may still be electing a leader.
func (e *env) readAudit(ctx context.Context) []audit.Event {
	e.t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		evs, err := audit.Read(rctx, e.api.JS, "audit.>")
		if err == nil {
			return evs
		}
		if rctx.Err() != nil {
			e.t.Fatalf("read audit: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
