package chromaworker

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/vectors"
)

// Progress ranges of a training run.
const (
	progressWriteFrom = 20
	progressWriteTo   = 98
)

// Sync reads the training sources and makes the three collections match
// them (see the package documentation), reporting to p. It does not take
// the chroma lease: Train does; other callers (the benchmark) must make
// sure nothing else writes the collections meanwhile.
func (w *Worker) Sync(ctx context.Context, p Progress, log *slog.Logger) (jobspec.ChromaTrainResult, error) {
	started := time.Now()
	c, err := w.client()
	if err != nil {
		return jobspec.ChromaTrainResult{}, err
	}
	batch := w.BatchSize
	if batch < 1 {
		batch = BatchSize
	}
	emb := c.Embedder()
	res := jobspec.ChromaTrainResult{Chroma: c.URL(), Embedding: jobspec.EmbeddingInfo{Provider: emb.Provider(), Model: emb.Model()},
		Collections: map[string]jobspec.CollectionSync{}, Warnings: []string{}}

	if err := p.Step(ctx, 2, "checking Chroma at "+c.URL()); err != nil {
		return res, err
	}
	if err := c.Heartbeat(ctx); err != nil {
		return res, err
	}

	if err := p.Step(ctx, 5, "reading the target schema"); err != nil {
		return res, err
	}
	schema, err := ReadSchema(ctx, w.Config)
	if err != nil {
		return res, err
	}
	res.Target = jobspec.TargetInfo{Dialect: schema.Dialect, Source: schema.Source, Database: schema.Database}
	res.Warnings = append(res.Warnings, schema.Warnings...)
	res.Target.Tables, res.Target.Views, res.Target.Indexes = schema.Counts()
	log.Info("target schema read", "source", schema.Source, "tables", res.Target.Tables, "views", res.Target.Views, "indexes", res.Target.Indexes)

	if err := p.Step(ctx, 10, "reading the glossary and question/SQL pairs"); err != nil {
		return res, err
	}
	want := map[string][]vectors.Doc{
		vectors.CollectionDDL:           DDLDocs(schema),
		vectors.CollectionDocumentation: TableDocs(schema),
	}
	res.Sources.DDL = len(want[vectors.CollectionDDL])
	res.Sources.TableDocs = len(want[vectors.CollectionDocumentation])

	pairs, found, err := LoadTrainingPairs(filepath.Join(w.Config.AssetsDir, TrainingAssetsDir))
	if err != nil {
		return res, err
	}
	if !found {
		res.Warnings = append(res.Warnings, "no training assets at "+filepath.Join(w.Config.AssetsDir, TrainingAssetsDir)+" (ASSETS_DIR): no shipped question/SQL pairs")
	}
	res.Sources.AssetPairs = len(pairs)
	sqlDocs := PairDocs(pairs, OriginAssets)

	if w.DB != nil {
		terms, err := w.DB.OntologyTerms(ctx)
		if err != nil {
			return res, fmt.Errorf("read the business glossary: %w", err)
		}
		res.Sources.OntologyTerms = len(terms)
		want[vectors.CollectionDocumentation] = append(want[vectors.CollectionDocumentation], TermDocs(terms)...)
		good, err := FeedbackPairs(ctx, w.DB)
		if err != nil {
			return res, err
		}
		res.Sources.FeedbackPairs = len(good)
		sqlDocs = append(sqlDocs, PairDocs(good, OriginFeedback)...)
	} else {
		res.Warnings = append(res.Warnings, "no System DB: glossary terms and rated queries skipped")
	}
	res.Sources.QuestionSQLTotal = len(sqlDocs)
	want[vectors.CollectionSQL] = sqlDocs

	if err := p.Step(ctx, 15, "comparing with Chroma"); err != nil {
		return res, err
	}
	order := []string{vectors.CollectionDDL, vectors.CollectionDocumentation, vectors.CollectionSQL}
	plans := make([]vectors.Plan, 0, len(order))
	total := 0
	for _, name := range order {
		plan, err := c.PlanSync(ctx, name, want[name], max(batch, 1000))
		if err != nil {
			return res, err
		}
		plans = append(plans, plan)
		total += len(plan.Add) + len(plan.Remove)
	}
	if d, err := emb.Dimension(ctx); err == nil {
		res.Embedding.Dimension = d
	}

	written := 0
	for _, plan := range plans {
		base := written
		name := plan.Collection
		r, err := c.Apply(ctx, plan, batch, func(ctx context.Context, done, n int) error {
			pct := progressWriteFrom + (progressWriteTo-progressWriteFrom)*(base+done)/max(total, 1)
			return p.Step(ctx, pct, fmt.Sprintf("writing %s: %d/%d changes (%d/%d overall)", name, done, n, base+done, total))
		})
		if err != nil {
			return res, err
		}
		written += len(plan.Add) + len(plan.Remove)
		res.Collections[name] = jobspec.CollectionSync(r)
		log.Info("chroma collection synced", "collection", name, "added", r.Added, "unchanged", r.Unchanged, "removed", r.Removed, "total", r.Total)
	}
	res.Written = written
	res.DurationMS = time.Since(started).Milliseconds()
	return res, nil
}
