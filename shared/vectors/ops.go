package vectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"
	"github.com/amikos-tech/chroma-go/pkg/embeddings"

	"github.com/insightops/insightops/shared/tracing"
)

// Progress is told, after each batch written, how many of total entries
// are done; an error it returns (cancellation) stops the operation.
type Progress func(ctx context.Context, done, total int) error

// SyncResult counts what Sync did to a collection (the chroma.train
// result converts it to its jobspec.CollectionSync: keep the two alike).
type SyncResult struct {
	// Added entries were not in the collection and were upserted.
	Added int `json:"added"`
	// Unchanged entries were already there (same id, so same content).
	Unchanged int `json:"unchanged"`
	// Removed entries were owned by insightops and are no longer wanted.
	Removed int `json:"removed"`
	// Total is the number of entries in the collection afterwards.
	Total int `json:"total"`
}

// Plan is what Sync will do to one collection; see PlanSync.
type Plan struct {
	Collection string
	// Add are the wanted entries missing from the collection, with their ids.
	Add   []Doc
	AddID []string
	// Unchanged counts the wanted entries already stored.
	Unchanged int
	// Remove are the ids of owned entries no longer wanted.
	Remove []string
	// Existing is the collection's entry count before the sync.
	Existing int
}

// PlanSync ensures the collection (see Ensure) and compares it with the
// wanted entries: each is identified by ID(collection, content), so an
// entry already stored is unchanged; owned entries (MetaSource =
// SourceInsightOps) not wanted any more are to be removed. Wanted entries
// with the same content are counted once.
func (c *Client) PlanSync(ctx context.Context, collection string, want []Doc, batch int) (Plan, error) {
	p := Plan{Collection: collection}
	col, err := c.ensure(ctx, collection)
	if err != nil {
		return p, err
	}
	existing, owned, err := c.listIDs(ctx, col, batch)
	if err != nil {
		return p, err
	}
	p.Existing = len(existing)
	wanted := make(map[string]bool, len(want))
	for _, d := range want {
		id := ID(collection, d.Content)
		if wanted[id] {
			continue
		}
		wanted[id] = true
		if existing[id] {
			p.Unchanged++
			continue
		}
		p.Add = append(p.Add, d)
		p.AddID = append(p.AddID, id)
	}
	for _, id := range owned {
		if !wanted[id] {
			p.Remove = append(p.Remove, id)
		}
	}
	return p, nil
}

// Apply carries out a plan: it upserts the added entries (embedded here)
// and deletes the removed ones, batch entries per request with up to
// Options.Parallel requests in flight (embedding of one batch overlaps the
// writing of others), and reports to progress after each batch (done
// counts added plus removed entries; calls are serialised). The first
// error stops the rest and is returned.
func (c *Client) Apply(ctx context.Context, p Plan, batch int, progress Progress) (SyncResult, error) {
	res := SyncResult{Unchanged: p.Unchanged}
	if batch < 1 {
		batch = DefaultBatchSize
	}
	total := len(p.Add) + len(p.Remove)
	if total == 0 {
		res.Total = p.Existing
		return res, nil
	}
	col, err := c.open(ctx, p.Collection)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	done := 0
	report := func(ctx context.Context, n int) error {
		mu.Lock()
		defer mu.Unlock()
		done += n
		if progress == nil {
			return nil
		}
		return progress(ctx, done, total)
	}
	err = c.inParallel(ctx, len(p.Add), batch, func(ctx context.Context, lo, hi int) error {
		bctx, span := tracing.Start(ctx, "chroma upsert batch", tracing.String("collection", p.Collection), tracing.Int("records", hi-lo))
		err := c.upsertBatch(bctx, col, p.AddID[lo:hi], p.Add[lo:hi])
		tracing.End(span, err)
		if err != nil {
			return err
		}
		return report(ctx, hi-lo)
	})
	if err != nil {
		return res, err
	}
	res.Added = len(p.Add)
	err = c.inParallel(ctx, len(p.Remove), batch, func(ctx context.Context, lo, hi int) error {
		bctx, span := tracing.Start(ctx, "chroma delete batch", tracing.String("collection", p.Collection), tracing.Int("records", hi-lo))
		err := c.deleteBatch(bctx, col, p.Remove[lo:hi])
		tracing.End(span, err)
		if err != nil {
			return err
		}
		return report(ctx, hi-lo)
	})
	if err != nil {
		return res, err
	}
	res.Removed = len(p.Remove)
	n, err := col.Count(ctx)
	if err != nil {
		return res, c.classify(ctx, err, "count", p.Collection)
	}
	res.Total = n
	return res, nil
}

// inParallel calls fn for each [lo, hi) batch of n items, at most
// c.parallel at once; the first error cancels the others and is returned.
func (c *Client) inParallel(ctx context.Context, n, batch int, fn func(ctx context.Context, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		slots    = make(chan struct{}, c.parallel)
	)
	for lo := 0; lo < n; lo += batch {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		hi := min(lo+batch, n)
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, lo, hi); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// Sync makes the owned entries of a collection exactly want: PlanSync, then
// Apply.
func (c *Client) Sync(ctx context.Context, collection string, want []Doc, batch int, progress Progress) (SyncResult, error) {
	p, err := c.PlanSync(ctx, collection, want, batch)
	if err != nil {
		return SyncResult{}, err
	}
	return c.Apply(ctx, p, batch, progress)
}

// Upsert writes docs into the collection (ensured first), batch entries
// per request, each with its Vanna id and its vector from the embedder.
// Docs with the same content are written once.
func (c *Client) Upsert(ctx context.Context, collection string, docs []Doc, batch int, progress Progress) error {
	if batch < 1 {
		batch = DefaultBatchSize
	}
	col, err := c.ensure(ctx, collection)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(docs))
	var ids []string
	var uniq []Doc
	for _, d := range docs {
		id := ID(collection, d.Content)
		if !seen[id] {
			seen[id] = true
			ids, uniq = append(ids, id), append(uniq, d)
		}
	}
	for start := 0; start < len(uniq); start += batch {
		end := min(start+batch, len(uniq))
		if err := c.upsertBatch(ctx, col, ids[start:end], uniq[start:end]); err != nil {
			return err
		}
		if progress != nil {
			if err := progress(ctx, end, len(uniq)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Client) upsertBatch(ctx context.Context, col chroma.Collection, ids []string, docs []Doc) error {
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.Content
	}
	vecs, err := c.emb.EmbedDocuments(ctx, texts)
	if err != nil {
		return fmt.Errorf("vectors: embed %d %s entries: %w", len(docs), col.Name(), err)
	}
	metas := make([]map[string]any, len(docs))
	for i, d := range docs {
		metas[i] = d.Metadata
	}
	return c.write(ctx, col, ids, texts, metas, vecs)
}

// write upserts entries with the given vectors.
func (c *Client) write(ctx context.Context, col chroma.Collection, ids, texts []string, metas []map[string]any, vecs [][]float32) error {
	docIDs := make([]chroma.DocumentID, len(ids))
	for i, id := range ids {
		docIDs[i] = chroma.DocumentID(id)
	}
	embs := make([]embeddings.Embedding, len(vecs))
	for i, v := range vecs {
		embs[i] = embeddings.NewEmbeddingFromFloat32(v)
	}
	mds := make([]chroma.DocumentMetadata, len(metas))
	for i, m := range metas {
		md, err := documentMetadata(m)
		if err != nil {
			return fmt.Errorf("vectors: upsert %s: entry %s: %w", col.Name(), ids[i], err)
		}
		mds[i] = md
	}
	if err := col.Upsert(ctx, chroma.WithIDs(docIDs...), chroma.WithTexts(texts...), chroma.WithMetadatas(mds...), chroma.WithEmbeddings(embs...)); err != nil {
		return c.classify(ctx, err, fmt.Sprintf("upsert %d entries into", len(ids)), col.Name())
	}
	return nil
}

// Delete removes the entries with the given ids (missing ids are ignored).
func (c *Client) Delete(ctx context.Context, collection string, ids []string, batch int) error {
	if len(ids) == 0 {
		return nil
	}
	if batch < 1 {
		batch = DefaultBatchSize
	}
	col, err := c.open(ctx, collection)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for start := 0; start < len(ids); start += batch {
		if err := c.deleteBatch(ctx, col, ids[start:min(start+batch, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) deleteBatch(ctx context.Context, col chroma.Collection, ids []string) error {
	docIDs := make([]chroma.DocumentID, len(ids))
	for i, id := range ids {
		docIDs[i] = chroma.DocumentID(id)
	}
	if err := col.Delete(ctx, chroma.WithIDs(docIDs...)); err != nil {
		return c.classify(ctx, err, fmt.Sprintf("delete %d entries from", len(ids)), col.Name())
	}
	return nil
}

// listIDs pages through a collection's ids and metadatas: every id, and
// the ids of the entries insightops owns.
func (c *Client) listIDs(ctx context.Context, col chroma.Collection, page int) (map[string]bool, []string, error) {
	if page < 1 {
		page = DefaultBatchSize
	}
	all := map[string]bool{}
	var owned []string
	for offset := 0; ; offset += page {
		res, err := col.Get(ctx, chroma.WithInclude(chroma.IncludeMetadatas), chroma.WithLimit(page), chroma.WithOffset(offset))
		if err != nil {
			return nil, nil, c.classify(ctx, err, "list", col.Name())
		}
		ids, mds := res.GetIDs(), res.GetMetadatas()
		for i, id := range ids {
			all[string(id)] = true
			if i < len(mds) && mds[i] != nil {
				if s, ok := mds[i].GetString(MetaSource); ok && s == SourceInsightOps {
					owned = append(owned, string(id))
				}
			}
		}
		if len(ids) < page {
			return all, owned, nil
		}
	}
}

// IDs returns every id of a collection (none when it does not exist).
func (c *Client) IDs(ctx context.Context, collection string) ([]string, error) {
	col, err := c.open(ctx, collection)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	all, _, err := c.listIDs(ctx, col, 1000)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(all))
	for id := range all {
		out = append(out, id)
	}
	return out, nil
}

// Page returns up to limit entries of a collection from offset, in
// Chroma's storage order, shaped like Vanna's get_training_data rows. A
// collection that does not exist has no entries.
func (c *Client) Page(ctx context.Context, collection string, limit, offset int) ([]Entry, error) {
	if limit < 1 || offset < 0 {
		return nil, fmt.Errorf("vectors: %w: page limit %d, offset %d", ErrInvalid, limit, offset)
	}
	col, err := c.open(ctx, collection)
	if errors.Is(err, ErrNotFound) {
		return []Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	res, err := col.Get(ctx, chroma.WithInclude(chroma.IncludeDocuments, chroma.IncludeMetadatas), chroma.WithLimit(limit), chroma.WithOffset(offset))
	if err != nil {
		return nil, c.classify(ctx, err, "page", collection)
	}
	ids, docs, mds := res.GetIDs(), res.GetDocuments(), res.GetMetadatas()
	out := make([]Entry, 0, len(ids))
	for i, id := range ids {
		var doc string
		if i < len(docs) && docs[i] != nil {
			doc = docs[i].ContentString()
		}
		var md map[string]any
		if i < len(mds) && mds[i] != nil {
			md = metadataMap(mds[i])
		}
		out = append(out, NewEntry(collection, string(id), doc, md))
	}
	return out, nil
}

// Query returns the n entries of a collection nearest to text (embedded
// with the client's embedder), nearest first, with their distances
// (squared L2 between unit vectors: 2·(1−cosine similarity), from 0 to 4).
// A missing or empty collection gives none; a collection filled by another
// embedder is ErrEmbedderMismatch.
func (c *Client) Query(ctx context.Context, collection, text string, n int) ([]Entry, error) {
	if n < 1 {
		return nil, fmt.Errorf("vectors: %w: query n %d", ErrInvalid, n)
	}
	col, err := c.open(ctx, collection)
	if errors.Is(err, ErrNotFound) {
		return []Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := c.info(ctx, col)
	if err != nil {
		return nil, err
	}
	if info.Count == 0 {
		return []Entry{}, nil
	}
	if err := c.CheckEmbedder(ctx, info); err != nil {
		return nil, err
	}
	vec, err := c.emb.EmbedQuery(ctx, text)
	if err != nil {
		return nil, fmt.Errorf("vectors: embed query: %w", err)
	}
	res, err := col.Query(ctx,
		chroma.WithQueryEmbeddings(embeddings.NewEmbeddingFromFloat32(vec)),
		chroma.WithNResults(min(n, info.Count)),
		chroma.WithInclude(chroma.IncludeDocuments, chroma.IncludeMetadatas, chroma.IncludeDistances))
	if err != nil {
		return nil, c.classify(ctx, err, "query", collection)
	}
	out := []Entry{}
	idGroups := res.GetIDGroups()
	if len(idGroups) == 0 {
		return out, nil
	}
	docGroups, mdGroups, distGroups := res.GetDocumentsGroups(), res.GetMetadatasGroups(), res.GetDistancesGroups()
	for i, id := range idGroups[0] {
		var doc string
		if len(docGroups) > 0 && i < len(docGroups[0]) && docGroups[0][i] != nil {
			doc = docGroups[0][i].ContentString()
		}
		var md map[string]any
		if len(mdGroups) > 0 && i < len(mdGroups[0]) && mdGroups[0][i] != nil {
			md = metadataMap(mdGroups[0][i])
		}
		e := NewEntry(collection, string(id), doc, md)
		if len(distGroups) > 0 && i < len(distGroups[0]) {
			d := float64(distGroups[0][i])
			e.Distance = &d
		}
		out = append(out, e)
	}
	return out, nil
}

// NewEntry shapes a stored document like a row of Vanna's
// get_training_data: in the sql collection the JSON document is split into
// question and content (the SQL); elsewhere question is null and content
// the document.
func NewEntry(collection, id, document string, metadata map[string]any) Entry {
	e := Entry{ID: id, Content: document, Collection: collection, Metadata: metadata}
	switch collection {
	case CollectionSQL:
		e.TrainingDataType = TypeSQL
		var qs struct {
			Question *string `json:"question"`
			SQL      *string `json:"sql"`
		}
		if err := json.Unmarshal([]byte(document), &qs); err == nil && qs.SQL != nil {
			e.Question, e.Content = qs.Question, *qs.SQL
		}
	case CollectionDDL:
		e.TrainingDataType = TypeDDL
	default:
		e.TrainingDataType = TypeDocumentation
	}
	return e
}
