package vectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"sync"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"

	"github.com/insightops/insightops/shared/handoff"
)

// Export calls fn with every record of a collection — id, document,
// metadata and embedding — in ascending id order, reading pageSize records
// per request (DefaultBatchSize when < 1). The ids are listed first, so the
// order is stable and no record is read twice even if Chroma's storage
// order changes; a record deleted meanwhile is skipped. A collection that
// does not exist is ErrNotFound. An error from fn stops the export and is
// returned as is.
func (c *Client) Export(ctx context.Context, collection string, pageSize int, fn func(Record) error) error {
	if pageSize < 1 {
		pageSize = DefaultBatchSize
	}
	col, err := c.open(ctx, collection)
	if err != nil {
		return err
	}
	all, _, err := c.listIDs(ctx, col, max(pageSize, 1000))
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// The next page is read while fn takes this one's records: Chroma
	// works while this process encodes. At most two pages are held.
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	pages := make(chan exportPage)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(pages)
		for start := 0; start < len(ids); start += pageSize {
			chunk := ids[start:min(start+pageSize, len(ids))]
			docIDs := make([]chroma.DocumentID, len(chunk))
			for i, id := range chunk {
				docIDs[i] = chroma.DocumentID(id)
			}
			res, err := col.Get(fctx, chroma.WithIDs(docIDs...),
				chroma.WithInclude(chroma.IncludeDocuments, chroma.IncludeMetadatas, chroma.IncludeEmbeddings))
			select {
			case pages <- exportPage{chunk: chunk, res: res, err: err}:
			case <-fctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for p := range pages {
		if p.err != nil {
			return c.classify(ctx, p.err, "export", collection)
		}
		gotIDs, docs, mds, embs := p.res.GetIDs(), p.res.GetDocuments(), p.res.GetMetadatas(), p.res.GetEmbeddings()
		byID := make(map[string]Record, len(gotIDs))
		for i, id := range gotIDs {
			r := Record{ID: string(id)}
			if i < len(docs) && docs[i] != nil {
				r.Document = docs[i].ContentString()
			}
			if i < len(mds) && mds[i] != nil {
				r.Metadata = metadataMap(mds[i])
			}
			if i < len(embs) && embs[i] != nil {
				r.Embedding = embs[i].ContentAsFloat32()
			}
			byID[r.ID] = r
		}
		for _, id := range p.chunk {
			r, ok := byID[id]
			if !ok {
				continue // deleted since the ids were listed
			}
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// exportPage is one page of Export: the ids asked for and Chroma's answer.
type exportPage struct {
	chunk []string
	res   chroma.GetResult
	err   error
}

// Import replaces a collection with the given records: the collection is
// deleted if it exists and recreated with metadata (DesiredMetadata when
// metadata is nil), then the records are upserted batch per request
// (DefaultBatchSize when < 1) with their saved embeddings — nothing is
// re-embedded. Every record needs an id and an embedding; embeddings must
// all have one dimension, equal to the metadata's MetaDimension when it
// has one; an id may appear once. The next batch is read while one is
// written. It returns the number of records written; on error the
// collection holds the batches written so far.
func (c *Client) Import(ctx context.Context, collection string, metadata map[string]any, records iter.Seq2[Record, error], batch int) (int, error) {
	if !ValidCollection(collection) {
		return 0, fmt.Errorf("vectors: import: %w: unknown collection %q (want one of %v)", ErrInvalid, collection, Collections)
	}
	if batch < 1 {
		batch = DefaultBatchSize
	}
	if metadata == nil {
		md, err := c.DesiredMetadata(ctx)
		if err != nil {
			return 0, err
		}
		metadata = md
	}
	wantDim := -1
	if v, ok := metadata[MetaDimension]; ok {
		if n, ok := toInt(v); ok {
			wantDim = n
		}
	}
	if _, err := collectionMetadata(metadata); err != nil {
		return 0, fmt.Errorf("vectors: import %s: collection %w", collection, err)
	}
	if err := c.api.DeleteCollection(ctx, collection); err != nil {
		if err = c.classify(ctx, err, "delete collection", collection); !errors.Is(err, ErrNotFound) {
			return 0, err
		}
	}
	col, err := c.create(ctx, collection, metadata)
	if err != nil {
		return 0, err
	}
	// The next batch is read (JSON numbers parsed into embeddings) while
	// one is upserted: at most two batches are in memory.
	written := 0
	w := handoff.Start(0, func(b importBatch) error {
		if err := c.write(ctx, col, b.ids, b.texts, b.metas, b.vecs); err != nil {
			return fmt.Errorf("vectors: import %s: %w", collection, err)
		}
		written += len(b.ids)
		return nil
	})
	var (
		seen = map[string]bool{}
		cur  importBatch
		line int
	)
	readErr := func() error {
		for r, err := range records {
			line++
			if err != nil {
				return fmt.Errorf("vectors: import %s: record %d: %w", collection, line, err)
			}
			switch {
			case r.ID == "":
				return fmt.Errorf("vectors: import %s: record %d: %w: empty id", collection, line, ErrInvalid)
			case seen[r.ID]:
				return fmt.Errorf("vectors: import %s: record %d: %w: id %s appears twice", collection, line, ErrInvalid, r.ID)
			case len(r.Embedding) == 0:
				return fmt.Errorf("vectors: import %s: record %d (%s): %w: no embedding", collection, line, r.ID, ErrInvalid)
			case wantDim >= 0 && len(r.Embedding) != wantDim:
				return fmt.Errorf("vectors: import %s: record %d (%s): %w: embedding of %d dimensions, collection metadata says %d",
					collection, line, r.ID, ErrInvalid, len(r.Embedding), wantDim)
			}
			if wantDim < 0 {
				wantDim = len(r.Embedding)
			}
			seen[r.ID] = true
			cur.add(r)
			if len(cur.ids) >= batch {
				if err := w.Put(ctx, cur); err != nil {
					return err
				}
				cur = importBatch{}
			}
		}
		if len(cur.ids) > 0 {
			return w.Put(ctx, cur)
		}
		return nil
	}()
	err = w.Finish()
	if readErr != nil {
		return written, readErr
	}
	return written, err
}

// importBatch is one upsert of Import.
type importBatch struct {
	ids, texts []string
	metas      []map[string]any
	vecs       [][]float32
}

func (b *importBatch) add(r Record) {
	b.ids, b.texts, b.metas, b.vecs = append(b.ids, r.ID), append(b.texts, r.Document), append(b.metas, r.Metadata), append(b.vecs, r.Embedding)
}

func toInt(v any) (int, bool) {
	switch t := v.(type) {
	case int:
		return t, true
	case int64:
		return int(t), true
	case float64:
		if t == float64(int(t)) {
			return int(t), true
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return int(i), true
		}
	}
	return 0, false
}

// WriteJSONL writes r as one JSON line (HTML characters not escaped).
func WriteJSONL(w io.Writer, r Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("vectors: write record %s: %w", r.ID, err)
	}
	return nil
}

// ReadJSONL yields the records of a JSON-lines stream as WriteJSONL writes
// them. Numbers in metadata are kept as json.Number, so integers are
// restored as integers. A malformed line ends the sequence with its error.
func ReadJSONL(r io.Reader) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		dec := json.NewDecoder(r)
		dec.UseNumber()
		for {
			var raw struct {
				ID        string         `json:"id"`
				Document  string         `json:"document"`
				Metadata  map[string]any `json:"metadata"`
				Embedding []json.Number  `json:"embedding"`
			}
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(Record{}, fmt.Errorf("%w: malformed JSON line: %w", ErrInvalid, err))
				return
			}
			rec := Record{ID: raw.ID, Document: raw.Document, Metadata: raw.Metadata}
			if raw.Embedding != nil {
				rec.Embedding = make([]float32, len(raw.Embedding))
				for i, x := range raw.Embedding {
					f, err := x.Float64()
					if err == nil && math.Abs(f) > math.MaxFloat32 {
						err = errors.New("out of float32 range")
					}
					if err != nil {
						yield(Record{}, fmt.Errorf("%w: record %s: embedding value %q: %w", ErrInvalid, raw.ID, x, err))
						return
					}
					rec.Embedding[i] = float32(f)
				}
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// ExportJSONL writes a collection to w as JSON lines (Export, WriteJSONL)
// and returns the number of records written.
func (c *Client) ExportJSONL(ctx context.Context, collection string, pageSize int, w io.Writer) (int, error) {
	n := 0
	err := c.Export(ctx, collection, pageSize, func(r Record) error {
		if err := WriteJSONL(w, r); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// ImportJSONL replaces a collection with the JSON lines of r (ReadJSONL,
// Import) and returns the number of records written.
func (c *Client) ImportJSONL(ctx context.Context, collection string, metadata map[string]any, r io.Reader, batch int) (int, error) {
	return c.Import(ctx, collection, metadata, ReadJSONL(r), batch)
}
