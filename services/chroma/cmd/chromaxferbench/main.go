// Command chromaxferbench measures how fast the backup exports, and the
// restore imports, the vector store, against chroma-go's own batched get
// and add of the same records, in the same run on the same Chroma:
//
//   - baseline import: -records generated records (a short document, a
//     small metadata map and a -dim embedding each) added to a fresh
//     collection with chroma-go's Collection.Add, -batch records per
//     request, one request at a time;
//   - baseline export: the same collection read back with chroma-go's
//     Collection.Get (limit/offset pages of -page records, documents,
//     metadatas and embeddings included);
//   - export: vectors.Client.ExportJSONL of that collection (what
//     backup.create runs per collection: ids listed, then pages read by id
//     in id order, each record written as a JSON line) into a file;
//   - import: vectors.Client.ImportJSONL of that file into a managed
//     collection, the same one, deleted first (what restore runs per collection: the collection
//     recreated, the records upserted in batches with their saved
//     embeddings); the collection must then hold every record.
//
// It prints each side in records per second and the ratios
// export / baseline export and import / baseline import, and the peak RSS
// of this process during the export and during the import (VmHWM, reset
// before each through /proc/self/clear_refs). It exits 1 when a ratio is
// below -min-export-ratio or -min-import-ratio, or a peak RSS reaches
// -max-rss. Each export is the best of -rounds.
//
// Without -chroma it starts its own Chroma from the repository's npm
// package (deploy/chroma, `make chroma-install`), as the tests do.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"
	"github.com/amikos-tech/chroma-go/pkg/embeddings"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

func main() {
	var o opts
	flag.IntVar(&o.records, "records", 100_000, "records in the collection")
	flag.IntVar(&o.dim, "dim", 384, "embedding dimension")
	flag.IntVar(&o.batch, "batch", vectors.DefaultBatchSize, "records per add/upsert request (the restore's batch)")
	flag.IntVar(&o.page, "page", archiver.DefaultExportPage, "records per get request (the backup's export page)")
	flag.IntVar(&o.rounds, "rounds", 2, "export rounds (each side); the best is reported")
	flag.StringVar(&o.chromaURL, "chroma", "", "use this Chroma server instead of starting one (the collections used are replaced)")
	flag.Float64Var(&o.minExport, "min-export-ratio", 0.8, "exit 1 when export rate / chroma-go batched get rate is below this")
	flag.Float64Var(&o.minImport, "min-import-ratio", 0.8, "exit 1 when import rate / chroma-go batched add rate is below this")
	flag.Int64Var(&o.maxRSS, "max-rss", 100_000_000, "exit 1 when the peak RSS during the export or the import reaches this many bytes")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "chromaxferbench:", err)
		os.Exit(1)
	}
}

// opts are the command's flags.
type opts struct {
	records, dim, batch, page, rounds int
	chromaURL                         string
	minExport, minImport              float64
	maxRSS                            int64
}

// rawCollection is the collection the baseline writes and reads with
// chroma-go only, and the export reads (a managed collection: the export
// refuses others); it is deleted before the import recreates it.
const rawCollection = vectors.CollectionDDL

func run(ctx context.Context, o opts) error {
	if o.records < 1 || o.dim < 1 || o.batch < 1 || o.page < 1 {
		return errors.New("-records, -dim, -batch and -page must be positive")
	}
	dir, err := os.MkdirTemp("", "chromaxferbench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.chromaURL == "" {
		root, err := testkit.RepoRoot()
		if err != nil {
			return err
		}
		srv, err := testkit.StartChroma(ctx, root, filepath.Join(dir, "chroma"))
		if err != nil {
			return err
		}
		defer srv.Stop()
		o.chromaURL = srv.URL
	}
	c, err := vectors.New(o.chromaURL, vectors.NewLocal(o.dim), vectors.Options{}) // as backup and restore: nothing is embedded
	if err != nil {
		return err
	}
	defer c.Close()
	raw, err := chroma.NewHTTPClient(chroma.WithBaseURL(o.chromaURL))
	if err != nil {
		return fmt.Errorf("chroma-go client: %w", err)
	}
	defer raw.Close()
	md, err := c.DesiredMetadata(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("chromaxferbench: %d records × %d dimensions, batch %d, page %d, Chroma %s\n", o.records, o.dim, o.batch, o.page, o.chromaURL)

	// Baseline import: chroma-go's batched Add.
	_ = raw.DeleteCollection(ctx, rawCollection)
	col, err := raw.CreateCollection(ctx, rawCollection,
		chroma.WithCollectionMetadataCreate(chroma.NewMetadataFromMap(md)), chroma.WithEmbeddingFunctionCreate(noEmbedding{}))
	if err != nil {
		return fmt.Errorf("create %s: %w", rawCollection, err)
	}
	start := time.Now()
	for i := 0; i < o.records; i += o.batch {
		if err := addBatch(ctx, col, i, min(i+o.batch, o.records), o.dim); err != nil {
			return err
		}
	}
	baseImport := float64(o.records) / time.Since(start).Seconds()

	jsonl := filepath.Join(dir, "export.jsonl")
	var baseExport, export float64
	var exportRSS int64
	for range max(o.rounds, 1) {
		// Baseline export: chroma-go's batched Get.
		start = time.Now()
		n, err := getAll(ctx, col, o.page)
		if err != nil {
			return err
		}
		if n != o.records {
			return fmt.Errorf("chroma-go get read %d records, want %d", n, o.records)
		}
		baseExport = max(baseExport, float64(n)/time.Since(start).Seconds())

		// Export: the backup's path.
		resetPeakRSS()
		start = time.Now()
		n, err = exportFile(ctx, c, rawCollection, o.page, jsonl)
		if err != nil {
			return err
		}
		export = max(export, float64(n)/time.Since(start).Seconds())
		exportRSS = max(exportRSS, peakRSS())
		if n != o.records {
			return fmt.Errorf("export wrote %d records, want %d", n, o.records)
		}
	}
	if err := raw.DeleteCollection(ctx, rawCollection); err != nil {
		return fmt.Errorf("delete %s: %w", rawCollection, err)
	}

	// Import: the restore's path, from the exported file.
	f, err := os.Open(jsonl)
	if err != nil {
		return err
	}
	defer f.Close()
	resetPeakRSS()
	start = time.Now()
	n, err := c.ImportJSONL(ctx, rawCollection, md, bufio.NewReaderSize(f, 256<<10), o.batch)
	if err != nil {
		return err
	}
	importRate := float64(n) / time.Since(start).Seconds()
	importRSS := peakRSS()
	count, err := c.Count(ctx, rawCollection)
	switch {
	case err != nil:
		return err
	case n != o.records || count != o.records:
		return fmt.Errorf("import wrote %d records and the collection holds %d, want %d", n, count, o.records)
	}
	if _, err := c.Clear(ctx, rawCollection); err != nil {
		return err
	}

	var missed []string
	report := func(what, base string, baseRate, rate, target float64, rss int64) {
		ratio := rate / baseRate
		fmt.Printf("chroma %-6s  %-28s %8.0f records/s | %s %8.0f records/s | ratio %.2f (target ≥ %.2f) | peak RSS %.1f MB (target < %.1f MB)\n",
			what, base, baseRate, what, rate, ratio, target, float64(rss)/1e6, float64(o.maxRSS)/1e6)
		if ratio < target {
			missed = append(missed, fmt.Sprintf("%s ratio %.2f below %.2f", what, ratio, target))
		}
		if rss <= 0 || rss >= o.maxRSS {
			missed = append(missed, fmt.Sprintf("%s peak RSS %.1f MB, limit %.1f MB", what, float64(rss)/1e6, float64(o.maxRSS)/1e6))
		}
	}
	report("export", "chroma-go batched get", baseExport, export, o.minExport, exportRSS)
	report("import", "chroma-go batched add", baseImport, importRate, o.minImport, importRSS)
	if len(missed) > 0 {
		return fmt.Errorf("target missed: %s", strings.Join(missed, "; "))
	}
	fmt.Println("chromaxferbench: every record exported and imported, every target met")
	return nil
}

// exportFile runs the backup's export of a collection into a new file.
func exportFile(ctx context.Context, c *vectors.Client, coll string, page int, path string) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 256<<10)
	n, err := c.ExportJSONL(ctx, coll, page, bw)
	if err != nil {
		return n, fmt.Errorf("export %s: %w", coll, err)
	}
	if err := bw.Flush(); err != nil {
		return n, err
	}
	return n, f.Close()
}

// record returns the i-th generated record, the same on every call.
func record(i, dim int) (id, doc string, md map[string]any, emb []float32) {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed)) //nolint:gosec // G404: reproducible benchmark data, not a secret
	emb = make([]float32, dim)
	for j := range emb {
		emb[j] = r.Float32()*2 - 1
	}
	table := "table_" + strconv.Itoa(i%2000)
	doc = fmt.Sprintf("CREATE TABLE %s (id INTEGER PRIMARY KEY, name TEXT NOT NULL, amount REAL, created_at TEXT) -- record %d", table, i)
	md = map[string]any{vectors.MetaKind: "ddl", "table": table, "n": int64(i)}
	return fmt.Sprintf("rec-%08d", i), doc, md, emb
}

// addBatch adds records [from, to) with chroma-go's Collection.Add.
func addBatch(ctx context.Context, col chroma.Collection, from, to, dim int) error {
	ids := make([]chroma.DocumentID, 0, to-from)
	docs := make([]string, 0, to-from)
	mds := make([]chroma.DocumentMetadata, 0, to-from)
	embs := make([]embeddings.Embedding, 0, to-from)
	for i := from; i < to; i++ {
		id, doc, m, emb := record(i, dim)
		dm, err := chroma.NewDocumentMetadataFromMap(m)
		if err != nil {
			return err
		}
		ids, docs, mds, embs = append(ids, chroma.DocumentID(id)), append(docs, doc), append(mds, dm), append(embs, embeddings.NewEmbeddingFromFloat32(emb))
	}
	if err := col.Add(ctx, chroma.WithIDs(ids...), chroma.WithTexts(docs...), chroma.WithMetadatas(mds...), chroma.WithEmbeddings(embs...)); err != nil {
		return fmt.Errorf("chroma-go add of records %d-%d: %w", from, to-1, err)
	}
	return nil
}

// getAll reads every record of col with chroma-go's Collection.Get, page
// records per request, and returns how many it read.
func getAll(ctx context.Context, col chroma.Collection, page int) (int, error) {
	n := 0
	for offset := 0; ; offset += page {
		res, err := col.Get(ctx, chroma.WithLimit(page), chroma.WithOffset(offset),
			chroma.WithInclude(chroma.IncludeDocuments, chroma.IncludeMetadatas, chroma.IncludeEmbeddings))
		if err != nil {
			return n, fmt.Errorf("chroma-go get at offset %d: %w", offset, err)
		}
		ids, embs := res.GetIDs(), res.GetEmbeddings()
		if len(embs) != len(ids) {
			return n, fmt.Errorf("chroma-go get at offset %d: %d ids, %d embeddings", offset, len(ids), len(embs))
		}
		n += len(ids)
		if len(ids) < page {
			return n, nil
		}
	}
}

// resetPeakRSS frees what the garbage collector can and resets the
// process's VmHWM to its current RSS.
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's VmHWM in bytes (0 when unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// noEmbedding satisfies chroma-go, which wants an embedding function for
// a collection (without one it would build its ONNX default and download a
// model); every record comes with its embedding, so it is never called.
type noEmbedding struct{}

var errNoEmbedding = errors.New("chromaxferbench: records carry their embeddings; nothing is embedded")

func (noEmbedding) EmbedDocuments(context.Context, []string) ([]embeddings.Embedding, error) {
	return nil, errNoEmbedding
}
func (noEmbedding) EmbedQuery(context.Context, string) (embeddings.Embedding, error) {
	return nil, errNoEmbedding
}
func (noEmbedding) Name() string { return "insightops_bench_none" }
func (noEmbedding) GetConfig() embeddings.EmbeddingFunctionConfig {
	return embeddings.EmbeddingFunctionConfig{}
}
func (noEmbedding) DefaultSpace() embeddings.DistanceMetric { return embeddings.L2 }
func (noEmbedding) SupportedSpaces() []embeddings.DistanceMetric {
	return []embeddings.DistanceMetric{embeddings.L2}
}
