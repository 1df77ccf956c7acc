// Command chromabench measures Chroma training throughput: a generated
// SQLite target of -tables tables (each with a foreign key and an index) is
// trained into a fresh Chroma the way jobs.chroma.train does it — schema
// read, documents built, local embeddings, batched upserts, -parallel
// requests in flight — and, in the same run against the same server, the
// same kind of records are upserted one record per request with the same
// number of requests in flight (so the ratio measures batching, not
// concurrency), and all the trained records are upserted raw in batches,
// again as many in flight: the ceiling a train could reach with no schema
// read, planning or progress. It prints the rates in records per second,
// training / one-per-request (target: -min-ratio) and training / ceiling
// (target: -min-ceiling), and exits 1 when either misses its target.
//
// Then, for each embedding provider of -providers that can run here (local
// always; default when its model is provisioned in EMBEDDING_MODEL_DIR or
// chroma-go's caches, or can be fetched), it trains the shipped demo
// database and prints the training throughput and the retrieval hit rate
// of chromaworker.RetrievalQuestions (the right table's DDL in the top 3);
// a provider that cannot run is printed with the reason, never replaced by
// another.
//
// Without -chroma it starts its own Chroma from the repository's npm
// package (deploy/chroma, `make chroma-install`), as the tests do.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

func main() {
	tables := flag.Int("tables", 2000, "tables in the generated target schema (each adds a DDL, an index DDL and a documentation record)")
	batch := flag.Int("batch", chromaworker.BatchSize, "records per upsert request when training")
	parallel := flag.Int("parallel", vectors.DefaultParallel, "upsert requests in flight when training")
	dim := flag.Int("dim", vectors.LocalDimension, "dimension of the local embedding")
	naiveN := flag.Int("naive", 1000, "records upserted one per request for the baseline (0: as many as trained)")
	rounds := flag.Int("rounds", 3, "rounds; the median of each rate is reported")
	chromaURL := flag.String("chroma", "", "use this Chroma server instead of starting one (its collections are cleared)")
	minRatio := flag.Float64("min-ratio", targetRatio, "exit 1 when training / one-per-request (same parallelism) falls below this (0: report only)")
	minCeiling := flag.Float64("min-ceiling", targetCeiling, "exit 1 when training / raw batched upserts falls below this fraction (0: report only)")
	providers := flag.String("providers", "local,default", "embedding providers whose retrieval hit rate and demo training throughput are measured (comma separated; empty: none)")
	flag.Parse()
	if p := os.Getenv("CHROMABENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*tables, *batch, *parallel, *dim, *naiveN, *rounds, *chromaURL, *minRatio, *minCeiling, *providers); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "chromabench:", err)
		os.Exit(1)
	}
}

// The documented targets (README, Benchmark).
const (
	// targetRatio: training at least this many times the rate of
	// one-record requests sent with the same parallelism.
	targetRatio = 20
	// targetCeiling: training at least this fraction of the rate of raw
	// batched upserts of the same records.
	targetCeiling = 0.8
)

// upsertAll writes docs (new to the collection) through the client's own
// batched write path, vectors.Client.Apply: batch records per request, the
// client's Options.Parallel requests in flight, embedding overlapping the
// writes; with no schema read, no planning and no progress reports.
func upsertAll(ctx context.Context, c *vectors.Client, coll string, docs []vectors.Doc, batch int) error {
	p := vectors.Plan{Collection: coll, Add: docs, AddID: make([]string, len(docs))}
	for i, d := range docs {
		p.AddID[i] = vectors.ID(coll, d.Content)
	}
	_, err := c.Apply(ctx, p, batch, nil)
	return err
}

// byCollection splits docs into the collections training writes them to.
func byCollection(docs []vectors.Doc) map[string][]vectors.Doc {
	out := map[string][]vectors.Doc{}
	for _, d := range docs {
		coll := vectors.CollectionDDL
		if d.Metadata[vectors.MetaKind] == vectors.KindTableDoc {
			coll = vectors.CollectionDocumentation
		}
		out[coll] = append(out[coll], d)
	}
	return out
}

func run(tables, batch, parallel, dim, naiveN, rounds int, chromaURL string, minRatio, minCeiling float64, providers string) error {
	parallel = max(parallel, 1)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "chromabench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if chromaURL == "" {
		root, err := testkit.RepoRoot()
		if err != nil {
			return err
		}
		srv, err := testkit.StartChroma(ctx, root, filepath.Join(dir, "chroma"))
		if err != nil {
			return err
		}
		defer srv.Stop()
		chromaURL = srv.URL
	}
	target := filepath.Join(dir, "target.db")
	if err := generate(ctx, target, tables); err != nil {
		return fmt.Errorf("generate schema: %w", err)
	}
	cfg := config.Config{ChromaURL: chromaURL, Embedding: config.Embedding{Provider: vectors.ProviderLocal}, TargetDatabaseURL: target, AssetsDir: filepath.Join(dir, "no-assets")}
	c, err := vectors.New(chromaURL, vectors.NewLocal(dim), vectors.Options{Parallel: parallel})
	if err != nil {
		return err
	}
	defer c.Close()
	w := &chromaworker.Worker{Options: chromaworker.Options{BatchSize: batch}, Config: cfg, Vectors: c}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	schema, err := chromaworker.ReadSchema(ctx, cfg)
	if err != nil {
		return err
	}
	all := append(chromaworker.DDLDocs(schema), chromaworker.TableDocs(schema)...)
	naive := append([]vectors.Doc(nil), all...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(naive), func(i, j int) { naive[i], naive[j] = naive[j], naive[i] })
	if naiveN <= 0 || naiveN > len(naive) {
		naiveN = len(naive)
	}
	naive = naive[:naiveN]

	var trainRates, naiveRates, ceilRates, retrainSecs []float64
	var trained int
	for r := 1; r <= rounds; r++ {
		if err := clearAll(ctx, c); err != nil {
			return err
		}
		// The ceiling first, then training right after clearing the
		// ceiling's records: Chroma's clean-up of a dropped collection
		// slows the writes that follow it, so this order can only
		// understate training against its ceiling, never flatter it.
		start := time.Now()
		byColl := byCollection(all)
		for _, coll := range vectors.Collections {
			docs := byColl[coll]
			if len(docs) == 0 {
				continue
			}
			if err := upsertAll(ctx, c, coll, docs, batch); err != nil {
				return fmt.Errorf("raw batched upserts: %w", err)
			}
		}
		cd := time.Since(start)
		ceilRates = append(ceilRates, float64(len(all))/cd.Seconds())
		if err := clearAll(ctx, c); err != nil {
			return err
		}
		start, cpu0 := time.Now(), cpuTime()
		res, err := w.Sync(ctx, noProgress{}, log)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		d := time.Since(start)
		clientCPU := cpuTime() - cpu0
		trained = res.Written
		trainRates = append(trainRates, float64(res.Written)/d.Seconds())

		start = time.Now()
		again, err := w.Sync(ctx, noProgress{}, log)
		if err != nil {
			return fmt.Errorf("retrain: %w", err)
		}
		retrainSecs = append(retrainSecs, time.Since(start).Seconds())
		if again.Written != 0 {
			return fmt.Errorf("retrain wrote %d records, want 0", again.Written)
		}

		if err := clearAll(ctx, c); err != nil {
			return err
		}
		start = time.Now()
		for coll, docs := range byCollection(naive) {
			if err := upsertAll(ctx, c, coll, docs, 1); err != nil { // one record per request, parallel in flight
				return fmt.Errorf("one-per-request upserts: %w", err)
			}
		}
		nd := time.Since(start)
		naiveRates = append(naiveRates, float64(len(naive))/nd.Seconds())

		fmt.Printf("round %d: train %d records in %.2fs = %.0f records/s (this process's CPU %.2fs; re-train, all unchanged: %.2fs); one per request: %d records in %.2fs = %.0f records/s; raw batched: %d records in %.2fs = %.0f records/s\n",
			r, res.Written, d.Seconds(), trainRates[r-1], clientCPU.Seconds(), retrainSecs[r-1], len(naive), nd.Seconds(), naiveRates[r-1], len(all), cd.Seconds(), ceilRates[r-1])
	}
	tr, nr, cr := median(trainRates), median(naiveRates), median(ceilRates)
	ratio, ofCeiling := tr/nr, tr/cr
	t, v, i := schema.Counts()
	fmt.Printf("\ngenerated schema: %d tables, %d views, %d indexes → %d records (ddl + documentation), local embedding (%d dims), batch %d × %d in flight, Chroma %s\n",
		t, v, i, trained, dim, batch, parallel, chromaURL)
	fmt.Printf("%-52s %10.0f records/s\n", "training, batched (jobs.chroma.train path, median)", tr)
	fmt.Printf("%-52s %10.0f records/s\n", fmt.Sprintf("one record per request, %d in flight (median)", parallel), nr)
	fmt.Printf("%-52s %10.0f records/s\n", fmt.Sprintf("ceiling: raw batched upserts, %d in flight (median)", parallel), cr)
	fmt.Printf("%-52s %10.1f×  (target ≥ %.1f×)\n", "ratio training / one-per-request", ratio, minRatio)
	fmt.Printf("%-52s %10.2f   (target ≥ %.2f)\n", "training / ceiling", ofCeiling, minCeiling)
	fmt.Printf("%-52s %10.2f s\n", "re-train with nothing changed (median)", median(retrainSecs))
	if providers != "" {
		if err := retrieval(ctx, chromaURL, dir, strings.Split(providers, ","), log); err != nil {
			return err
		}
	}
	if trained != len(all) {
		return fmt.Errorf("training wrote %d records, the ceiling upserted %d: not the same records", trained, len(all))
	}
	var missed []error
	if minRatio > 0 && ratio < minRatio {
		missed = append(missed, fmt.Errorf("ratio training / one-per-request %.1f below the target %.1f", ratio, minRatio))
	}
	if minCeiling > 0 && ofCeiling < minCeiling {
		missed = append(missed, fmt.Errorf("training / ceiling %.2f below the target %.2f", ofCeiling, minCeiling))
	}
	return errors.Join(missed...)
}

// retrieval trains the shipped demo database with each provider and
// prints its training throughput and retrieval hit rate.
func retrieval(ctx context.Context, chromaURL, dir string, providers []string, log *slog.Logger) error {
	root, err := testkit.RepoRoot()
	if err != nil {
		return err
	}
	target := filepath.Join(dir, "demo.db")
	src, err := os.ReadFile(filepath.Join(root, "assets/databases/vanna_db.db"))
	if err != nil {
		return fmt.Errorf("demo database: %w", err)
	}
	if err := os.WriteFile(target, src, 0o600); err != nil {
		return fmt.Errorf("demo database copy: %w", err)
	}
	n := len(chromaworker.RetrievalQuestions)
	fmt.Printf("\nretrieval on the demo database: %d business-term questions (chromaworker.RetrievalQuestions), hit = the right table's DDL in the top 3\n", n)
	for _, p := range providers {
		p = strings.TrimSpace(p)
		cfg := config.Config{ChromaURL: chromaURL, TargetDBPath: target, AssetsDir: filepath.Join(root, "assets"),
			Embedding: config.Embedding{Provider: p, ModelDir: os.Getenv("EMBEDDING_MODEL_DIR")}}
		emb, err := vectors.NewEmbedder(cfg.Embedding)
		if err != nil {
			fmt.Printf("%-10s not measured: %v\n", p, err)
			continue
		}
		c, err := vectors.New(chromaURL, emb, vectors.Options{})
		if err != nil {
			return err
		}
		w := &chromaworker.Worker{Config: cfg, Vectors: c}
		err = clearAll(ctx, c)
		start := time.Now()
		var res jobspec.ChromaTrainResult
		if err == nil {
			res, err = w.Sync(ctx, noProgress{}, log)
		}
		d := time.Since(start)
		var hits int
		if err == nil {
			_, hits, err = chromaworker.HitRate(ctx, c, chromaworker.RetrievalQuestions, 3)
		}
		_ = c.Close()
		if errors.Is(err, vectors.ErrModelMissing) {
			// Its model is neither provisioned nor fetchable here (no
			// network): the provider cannot run, which is not a miss.
			fmt.Printf("%-10s not measured: %v\n", p, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("retrieval with %s: %w", p, err)
		}
		fmt.Printf("%-10s %-28s hit rate %2d/%d = %3.0f%%   training %d records in %.2fs = %.0f records/s\n",
			p, emb.Model(), hits, n, 100*float64(hits)/float64(n), res.Written, d.Seconds(), float64(res.Written)/d.Seconds())
	}
	return nil
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type noProgress struct{}

func (noProgress) Step(ctx context.Context, _ int, _ string) error { return ctx.Err() }

func clearAll(ctx context.Context, c *vectors.Client) error {
	for _, name := range vectors.Collections {
		if _, err := c.Clear(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// Vocabulary of the generated schema.
var (
	nouns = strings.Fields(`account invoice order shipment customer supplier product warehouse region contract
		payment refund ledger budget campaign lead ticket employee payroll asset lease loan policy claim
		subscription license device sensor route vehicle store promotion coupon return quote forecast`)
	fields = strings.Fields(`amount total quantity price cost margin discount tax balance rate status category
		name code description country city segment priority channel currency opened closed due paid
		created updated score weight volume duration owner manager notes reference`)
	types = []string{"INTEGER", "REAL", "TEXT", "NUMERIC", "TEXT"}
)

// generate writes a SQLite database of n tables with business-like names,
// each with 6–10 columns, a foreign key to an earlier table and an index.
func generate(ctx context.Context, path string, n int) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	rng := rand.New(rand.NewPCG(42, 2000))
	names := make([]string, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s_%s_%04d", nouns[rng.IntN(len(nouns))], nouns[rng.IntN(len(nouns))], i)
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE TABLE %s (\n\tid INTEGER PRIMARY KEY", name)
		cols := 6 + rng.IntN(5)
		used := map[string]bool{}
		var first string
		for range cols {
			col := nouns[rng.IntN(len(nouns))] + "_" + fields[rng.IntN(len(fields))]
			if used[col] {
				continue
			}
			used[col] = true
			if first == "" {
				first = col
			}
			fmt.Fprintf(&b, ",\n\t%s %s NOT NULL", col, types[rng.IntN(len(types))])
		}
		if i > 0 {
			fmt.Fprintf(&b, ",\n\tparent_id INTEGER REFERENCES %s (id)", names[rng.IntN(i)])
		}
		b.WriteString("\n)")
		names = append(names, name)
		ddl := b.String()
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("%s: %w", ddl, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("CREATE INDEX idx_%s_%s ON %s (%s)", name, first, name, first)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
