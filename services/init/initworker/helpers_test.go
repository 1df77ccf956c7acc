package initworker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/insightops/insightops/services/init/initworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// assetsDir is the repository's assets/ seen from this package's directory.
const assetsDir = "../../../assets"

func TestMain(m *testing.M) {
	auth.Cost = bcrypt.MinCost // hashing at the production cost only slows tests
	os.Exit(m.Run())
}

// goldenSource copies the shipped demo target DB into a temp dir, so the
// test can check its bytes are never changed.
func goldenSource(t *testing.T) string {
	t.Helper()
	return testkit.DemoDBCopy(t, filepath.Join("golden", "vanna_db.db"))
}

// newConfig loads a configuration from env over test defaults: a golden
// source copy, the repository's assets, DATA_DIR in a temp dir, demo data
// on, target DB required, auto-train off.
func newConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	vars := map[string]string{
		"APP_ENV":             "development",
		"ASSETS_DIR":          assetsDir,
		"INIT_ADMIN_USERNAME": "Admin@Example.com",
		"INIT_ADMIN_PASSWORD": "first-password-1",
		"SEED_DEMO_DATA":      "true",
		"ENABLE_TARGET_DB":    "true",
		"AUTO_TRAIN_CHROMA":   "false",
		"JOB_ACK_WAIT":        "10s", // see startWorker
		"WORKER_ID":           "test",
	}
	if _, ok := env["TARGET_DB_SOURCE"]; !ok {
		vars["TARGET_DB_SOURCE"] = goldenSource(t)
	}
	for k, v := range env {
		vars[k] = v
	}
	return testkit.Config(t, vars)
}

// openDB opens the System DB the configuration names, unmigrated (init
// migrates it), closed at the end.
func openDB(t *testing.T, cfg config.Config) *store.DB {
	t.Helper()
	return testkit.OpenSystemDB(t, cfg)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func rowCounts(t *testing.T, db *store.DB) map[string]int64 {
	t.Helper()
	stats, err := db.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range stats {
		out[s.Name] = s.Rows
	}
	return out
}

// wireResult is a jobspec.InitResult as it reads back from JSON (the job record).
type wireResult struct {
	JobID       string `json:"job_id"`
	Mode        string `json:"mode"`
	Warnings    int    `json:"warnings"`
	CompletedAt string `json:"completed_at"`
	Steps       []struct {
		Name   string          `json:"name"`
		Status string          `json:"status"`
		Detail json.RawMessage `json:"detail"`
	} `json:"steps"`
}

func decodeResult(t *testing.T, raw []byte) wireResult {
	t.Helper()
	var r wireResult
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("decode result %s: %v", raw, err)
	}
	return r
}

// wire round-trips a jobspec.InitResult through JSON, as the record stores it.
func wire(t *testing.T, res jobspec.InitResult) wireResult {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return decodeResult(t, b)
}

func (r wireResult) names() []string {
	out := []string{}
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

func (r wireResult) statuses() map[string]string {
	out := map[string]string{}
	for _, s := range r.Steps {
		out[s.Name] = s.Status
	}
	return out
}

// step returns the status of step name and decodes its detail into T.
func step[T any](t *testing.T, r wireResult, name string) (string, T) {
	t.Helper()
	var d T
	for _, s := range r.Steps {
		if s.Name == name {
			if err := json.Unmarshal(s.Detail, &d); err != nil {
				t.Fatalf("decode %s detail %s: %v", name, s.Detail, err)
			}
			return s.Status, d
		}
	}
	t.Fatalf("no step %s in %v", name, r.names())
	return "", d
}

var allSteps = []string{
	jobspec.InitStepGoldenCopy, jobspec.InitStepMigrations, jobspec.InitStepOntology, jobspec.InitStepAdminUser,
	jobspec.InitStepDemoData, jobspec.InitStepAutoTrain, jobspec.InitStepMarkComplete,
}

// busDeps are the dependencies of a worker on a fresh embedded NATS and a
// SQLite System DB, migrated as app.Open does for the worker binary.
func busDeps(t *testing.T, cfg config.Config) app.Deps {
	t.Helper()
	return testkit.NewEnv(t, testkit.WithConfig(cfg)).Deps()
}

// startWorker runs a real init worker replica with short timeouts until the
// test ends.
func startWorker(t *testing.T, deps app.Deps, handlers map[string]worker.Handler) {
	t.Helper()
	opts := worker.OptionsFrom(deps.Config, initworker.Kind, handlers, deps.Audit, deps.Log)
	// 10 s: tests assert a first-attempt finish; with a 2 s AckWait
	// (heartbeats every 0.7 s) one 1.3 s stall of a busy machine redelivered
	// the job. Retries after an error go through the backoff, not AckWait.
	opts.AckWait = 10 * time.Second
	testkit.RunWorker(t, deps.Bus, opts)
}

func submitInit(t *testing.T, b *bus.Bus, by string) jobs.Record {
	t.Helper()
	p := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), 5)
	rec, created, err := p.Submit(context.Background(), jobs.Submission{Args: jobspec.InitArgs{}, SubmittedBy: by})
	if err != nil || !created {
		t.Fatalf("submit init: created=%v err=%v", created, err)
	}
	return rec
}

// waitFinal waits up to 60s for job id to end (testkit.WaitFinal).
func waitFinal(t *testing.T, b *bus.Bus, id string) jobs.Record {
	t.Helper()
	return testkit.WaitFinal(t, jobs.NewStore(b.Jobs), id, 60*time.Second)
}

// messagesOn counts the messages stored on subject in stream.
func messagesOn(t *testing.T, b *bus.Bus, stream, subject string) uint64 {
	t.Helper()
	s, err := b.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}
