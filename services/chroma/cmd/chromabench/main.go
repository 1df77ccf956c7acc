// Command chromabench measures Chroma training throughput: a generated
// SQLite target of -tables tables (each with a foreign key and an index) is
// trained into a fresh Chroma the way jobs.chroma.train does it — schema
// read, documents built, local embeddings, batched upserts — and, in the
// same run against the same server, the same kind of records are upserted
// one record per request. It prints both rates in records per second and
// their ratio (target: batched ≥ 20× one-per-request).
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
	minRatio := flag.Float64("min-ratio", 0, "exit 1 when batched / one-per-request falls below this (0: report only)")
	providers := flag.String("providers", "local,default", "embedding providers whose retrieval hit rate and demo training throughput are measured (comma separated; empty: none)")
	flag.Parse()
	if p := os.Getenv("CHROMABENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*tables, *batch, *parallel, *dim, *naiveN, *rounds, *chromaURL, *minRatio, *providers); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "chromabench:", err)
		os.Exit(1)
	}
}

func run(tables, batch, parallel, dim, naiveN, rounds int, chromaURL string, minRatio float64, providers string) error {
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
	naive := append(chromaworker.DDLDocs(schema), chromaworker.TableDocs(schema)...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(naive), func(i, j int) { naive[i], naive[j] = naive[j], naive[i] })
	if naiveN <= 0 || naiveN > len(naive) {
		naiveN = len(naive)
	}
	naive = naive[:naiveN]

	var trainRates, naiveRates, retrainSecs []float64
	var trained int
	for r := 1; r <= rounds; r++ {
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
		byColl := map[string][]vectors.Doc{}
		for _, d := range naive {
			coll := vectors.CollectionDDL
			if d.Metadata[vectors.MetaKind] == vectors.KindTableDoc {
				coll = vectors.CollectionDocumentation
			}
			byColl[coll] = append(byColl[coll], d)
		}
		for coll, docs := range byColl {
			if err := c.Upsert(ctx, coll, docs, 1, nil); err != nil { // one record per request
				return fmt.Errorf("one-per-request upserts: %w", err)
			}
		}
		nd := time.Since(start)
		naiveRates = append(naiveRates, float64(len(naive))/nd.Seconds())
		fmt.Printf("round %d: train %d records in %.2fs = %.0f records/s (this process's CPU %.2fs; re-train, all unchanged: %.2fs); one per request: %d records in %.2fs = %.0f records/s\n",
			r, res.Written, d.Seconds(), trainRates[r-1], clientCPU.Seconds(), retrainSecs[r-1], len(naive), nd.Seconds(), naiveRates[r-1])
	}
	tr, nr := median(trainRates), median(naiveRates)
	ratio := tr / nr
	t, v, i := schema.Counts()
	fmt.Printf("\ngenerated schema: %d tables, %d views, %d indexes → %d records (ddl + documentation), local embedding (%d dims), batch %d × %d in flight, Chroma %s\n",
		t, v, i, trained, dim, batch, parallel, chromaURL)
	fmt.Printf("%-52s %10.0f records/s\n", "training, batched (jobs.chroma.train path, median)", tr)
	fmt.Printf("%-52s %10.0f records/s\n", "one record per upsert request (median)", nr)
	fmt.Printf("%-52s %10.1f×  (target ≥ 20×)\n", "ratio batched / one-per-request", ratio)
	fmt.Printf("%-52s %10.2f s\n", "re-train with nothing changed (median)", median(retrainSecs))
	if providers != "" {
		if err := retrieval(ctx, chromaURL, dir, strings.Split(providers, ","), log); err != nil {
			return err
		}
	}
	if minRatio > 0 && ratio < minRatio {
		return fmt.Errorf("ratio %.1f below %.1f", ratio, minRatio)
	}
	return nil
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
