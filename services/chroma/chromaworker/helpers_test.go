package chromaworker_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/ontology"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
	"github.com/insightops/insightops/shared/worker"
)

// assetsDir is the repository's assets/ seen from this package's directory.
const assetsDir = "../../../assets"

// targetCopy copies the shipped demo target DB into a temp dir, where a
// test may change it.
func targetCopy(t *testing.T) string {
	t.Helper()
	return testkit.DemoDBCopy(t, "target.db")
}

// newConfig is a development configuration over env: DATA_DIR in a temp
// dir, the repository's assets, the target at TARGET_DB_PATH.
func newConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	vars := map[string]string{
		"APP_ENV":      "development",
		"ASSETS_DIR":   assetsDir,
		"JOB_ACK_WAIT": "10s", // see startWorker
		"WORKER_ID":    "test",
	}
	for k, v := range env {
		vars[k] = v
	}
	return testkit.Config(t, vars)
}

// systemDB opens and migrates a SQLite System DB and loads the shipped
// glossary into it, as init does.
func systemDB(t *testing.T, cfg config.Config) *store.DB {
	t.Helper()
	ctx := context.Background()
	db := testkit.SystemDB(t, cfg)
	terms, err := ontology.Load(filepath.Join(assetsDir, "ontology"))
	if err != nil {
		t.Fatal(err)
	}
	st := make([]store.OntologyTerm, len(terms))
	for i, tm := range terms {
		st[i] = store.OntologyTerm{Term: tm.Term, Definition: tm.Definition, Synonyms: tm.Synonyms, Tables: tm.Tables, SQLHint: tm.SQLHint}
	}
	if _, err := db.UpsertOntology(ctx, st); err != nil {
		t.Fatal(err)
	}
	return db
}

// busDeps are a chroma worker's dependencies on a fresh embedded NATS.
func busDeps(t *testing.T, cfg config.Config, db *store.DB) app.Deps {
	t.Helper()
	return testkit.NewEnv(t, testkit.WithConfig(cfg), testkit.WithDB(db)).Deps()
}

// startWorker runs a chroma worker replica with w's handlers and short
// timeouts until the test ends.
func startWorker(t *testing.T, deps app.Deps, w *chromaworker.Worker) {
	t.Helper()
	t.Cleanup(w.Close) // registered first, so it runs after the worker has stopped
	opts := worker.OptionsFrom(deps.Config, chromaworker.Kind, w.Handlers(), deps.Audit, deps.Log)
	// 10 s: tests assert a first-attempt finish; with a 2 s AckWait
	// (heartbeats every 0.7 s) one 1.3 s stall of a busy machine redelivered
	// the job. Retries after an error go through the backoff, not AckWait.
	opts.AckWait = 10 * time.Second
	testkit.RunWorker(t, deps.Bus, opts)
}

// submit publishes args (jobs.RawArgs for params the worker must refuse).
func submit(t *testing.T, b *bus.Bus, args jobs.Args, maxAttempts int) jobs.Record {
	t.Helper()
	p := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), maxAttempts)
	rec, _, err := p.Submit(context.Background(), jobs.Submission{Args: args, SubmittedBy: "ops@example.com"})
	if err != nil {
		t.Fatalf("submit %s: %v", args.Kind(), err)
	}
	return rec
}

// waitFinal waits up to 120s for job id to end (testkit.WaitFinal).
func waitFinal(t *testing.T, b *bus.Bus, id string) jobs.Record {
	t.Helper()
	return testkit.WaitFinal(t, jobs.NewStore(b.Jobs), id, 120*time.Second)
}

// trainResult decodes a succeeded train job's result.
func trainResult(t *testing.T, rec jobs.Record) jobspec.ChromaTrainResult {
	t.Helper()
	if rec.State != jobs.Succeeded {
		t.Fatalf("job %s %s: %+v", rec.Kind, rec.State, rec.Error)
	}
	var r jobspec.ChromaTrainResult
	if err := json.Unmarshal(rec.Result, &r); err != nil {
		t.Fatalf("decode result %s: %v", rec.Result, err)
	}
	return r
}

// counts is added/unchanged/removed of one collection, for messages.
func counts(r jobspec.CollectionSync) string {
	return fmt.Sprintf("added %d, unchanged %d, removed %d, total %d", r.Added, r.Unchanged, r.Removed, r.Total)
}

// export returns every record of a collection by id.
func export(t *testing.T, c *vectors.Client, collection string) map[string]vectors.Record {
	t.Helper()
	out := map[string]vectors.Record{}
	err := c.Export(context.Background(), collection, 100, func(r vectors.Record) error { out[r.ID] = r; return nil })
	if err != nil {
		t.Fatalf("export %s: %v", collection, err)
	}
	return out
}

// vannaID computes Vanna's id of content from the formula, without the
// code under test: uuid5(nil UUID, hex(sha256(content))) + suffix.
func vannaID(collection, content string) string {
	sum := sha256.Sum256([]byte(content))
	h := sha1.New()
	h.Write(make([]byte, 16))
	h.Write([]byte(hex.EncodeToString(sum[:])))
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	suffix := map[string]string{"sql": "-sql", "ddl": "-ddl", "documentation": "-doc"}[collection]
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]) + suffix
}

// pyDumps is Python's json.dumps({"question": q, "sql": s},
// ensure_ascii=False), derived independently from Go's encoder.
func pyDumps(q, s string) string {
	enc := func(v string) string {
		var buf bytes.Buffer
		e := json.NewEncoder(&buf)
		e.SetEscapeHTML(false)
		_ = e.Encode(v)
		out := strings.TrimSuffix(buf.String(), "\n")
		return strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029", `\u0008`, `\b`, `\u000c`, `\f`).Replace(out)
	}
	return `{"question": ` + enc(q) + `, "sql": ` + enc(s) + `}`
}

// logProgress is a Progress for runs without a job.
type logProgress struct{ t *testing.T }

func (p logProgress) Step(ctx context.Context, pct int, step string) error {
	return ctx.Err()
}
