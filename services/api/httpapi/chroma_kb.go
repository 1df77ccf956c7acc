package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/vectors"
)

// Bounds of the vector-store routes.
const (
	// ChromaTimeout bounds one vector-store request of the API (a page, a
	// similarity query with its embedding, a health check's share of it).
	ChromaTimeout = 15 * time.Second
	// KnowledgeBaseDefaultLimit is the page size when ?limit is absent.
	KnowledgeBaseDefaultLimit = 50
	// KnowledgeBaseMaxLimit is the largest ?limit accepted.
	KnowledgeBaseMaxLimit = 500
	// KnowledgeBaseMaxOffset is the largest ?offset accepted.
	KnowledgeBaseMaxOffset = 10_000_000
	// KnowledgeBaseMaxQuery is the longest ?q accepted, in characters.
	KnowledgeBaseMaxQuery = 2000
	// KnowledgeBaseMaxQueryWindow is the largest offset+limit of a
	// similarity query (?q): Chroma ranks offset+limit entries per
	// collection and the API holds and sorts them all, so the window,
	// unlike a plain page, costs in proportion to the offset.
	KnowledgeBaseMaxQueryWindow = 1000
)

// CodeQueryWindowTooLarge (400): a similarity query's offset+limit is
// more than KnowledgeBaseMaxQueryWindow.
const CodeQueryWindowTooLarge = "query_window_too_large"

// CodeEmbedderMismatch is the error code of a similarity query on a
// collection filled by another embedder than EMBEDDING_PROVIDER's (the job
// code of the same failure).
const CodeEmbedderMismatch = string(jobs.CodeEmbedderMismatch)

// errChromaDisabled is why the vector-store routes answer 503 without CHROMA_URL.
var errChromaDisabled = errors.New("the vector store is disabled: CHROMA_URL is not set")

// vectorClients caches one Chroma client per (URL, embedding provider):
// clients hold connection pools, and every Server of a process shares the
// same configuration.
var vectorClients = struct {
	sync.Mutex
	m map[string]*vectors.Client
}{m: map[string]*vectors.Client{}}

// vectorStore returns the Chroma client of the configuration, or the
// reason there is none (errChromaDisabled, or a bad embedder setting).
func (s *Server) vectorStore() (*vectors.Client, error) {
	if s.cfg.ChromaURL == "" {
		return nil, errChromaDisabled
	}
	key := fmt.Sprintf("%s\x00%+v", s.cfg.ChromaURL, s.cfg.Embedding)
	vectorClients.Lock()
	defer vectorClients.Unlock()
	if c, ok := vectorClients.m[key]; ok {
		return c, nil
	}
	emb, err := vectors.NewEmbedder(s.cfg.Embedding)
	if err != nil {
		return nil, err
	}
	c, err := vectors.New(s.cfg.ChromaURL, emb, vectors.Options{Timeout: ChromaTimeout})
	if err != nil {
		return nil, err
	}
	vectorClients.m[key] = c
	return c, nil
}

// vectorStoreOr503 is vectorStore with its failure as the API's 503.
func (s *Server) vectorStoreOr503() (*vectors.Client, error) {
	c, err := s.vectorStore()
	if errors.Is(err, errChromaDisabled) {
		return nil, apiErr(http.StatusServiceUnavailable, CodeUnavailable, "%s", err.Error())
	}
	if err != nil {
		return nil, apiErr(http.StatusServiceUnavailable, CodeUnavailable, "the vector store is misconfigured: %s", err.Error())
	}
	return c, nil
}

// chromaError maps a vector-store failure to the API's answer.
func chromaError(c *vectors.Client, err error) error {
	switch {
	case errors.Is(err, vectors.ErrEmbedderMismatch):
		return apiErr(http.StatusConflict, CodeEmbedderMismatch, "%s", err.Error())
	case errors.Is(err, vectors.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return unavailable("the vector store (Chroma at "+c.URL()+")", err)
	}
	return &APIError{Status: http.StatusBadGateway, Code: CodeUnavailable, Message: "the vector store answered with an error", Err: err}
}

// parseChromaTrain decodes the optional body of POST
// /admin/db/chroma/train: absent, blank or {}; anything else is a 4xx
// *APIError. Whether the vector store is enabled is the handler's check
// (a 503), not the request's.
func (s *Server) parseChromaTrain(c echo.Context) (jobspec.ChromaTrainArgs, error) {
	req, err := decodeArgs[jobspec.ChromaTrainArgs](c, true)
	if err != nil {
		return jobspec.ChromaTrainArgs{}, err
	}
	return req, s.checkArgs(req)
}

// submitChromaTrain answers POST /admin/db/chroma/train: queue a
// jobs.chroma.train job. The body is optional; when present it must be {}.
func (s *Server) submitChromaTrain(c echo.Context) error {
	args, err := s.parseChromaTrain(c)
	if err != nil {
		return err
	}
	if _, err := s.vectorStoreOr503(); err != nil {
		return err
	}
	return s.submit(c, args, "chroma training job queued")
}

// submitChromaClear answers DELETE /admin/db/chroma/clear?confirm=true
// [&collection_name=]: queue a jobs.chroma.clear job for one collection or
// all three. The route table makes it admin-only and confirmed.
func (s *Server) submitChromaClear(c echo.Context) error {
	args := jobspec.ChromaClearArgs{CollectionName: c.QueryParam("collection_name")}
	if err := s.checkArgs(args); err != nil {
		return err
	}
	if _, err := s.vectorStoreOr503(); err != nil {
		return err
	}
	if args.CollectionName == "" {
		return s.submit(c, args, "chroma clear job queued for every collection (sql, ddl, documentation)")
	}
	return s.submit(c, args, "chroma clear job queued for collection "+args.CollectionName)
}

// KnowledgeBase is the body of GET /admin/db/chroma/knowledge-base: the
// Insight Engine's shape (total_collections, collections, entries,
// total_entries) extended with the page asked for and, for a similarity
// query, the distance of each entry.
type KnowledgeBase struct {
	TotalCollections int                      `json:"total_collections"`
	Collections      []vectors.CollectionInfo `json:"collections"`
	// Entries are rows shaped like Vanna's get_training_data (id, question,
	// content, training_data_type) plus collection, metadata and, with q,
	// distance (smaller is nearer).
	Entries []vectors.Entry `json:"entries"`
	// TotalEntries counts the entries of the collection asked for (of all
	// three without ?collection).
	TotalEntries int    `json:"total_entries"`
	Collection   string `json:"collection,omitempty"`
	Limit        int    `json:"limit"`
	Offset       int    `json:"offset"`
	Query        string `json:"q,omitempty"`
	Chroma       string `json:"chroma"`
}

// knowledgeBase answers GET /admin/db/chroma/knowledge-base.
//
//   - ?collection=sql|ddl|documentation restricts the entries (default: the
//     three, in that order, as Vanna's get_training_data lists them);
//   - ?limit (1–500, default 50) and ?offset page through them;
//   - ?q= returns instead the entries nearest to q by similarity (embedded
//     with EMBEDDING_PROVIDER), nearest first, with their distances; limit
//     and offset then page through the ranking, offset+limit at most
//     KnowledgeBaseMaxQueryWindow (else 400 query_window_too_large).
//
// 503 when CHROMA_URL is empty or Chroma is unreachable; 409 when q is
// asked of a collection filled by another embedder.
func (s *Server) knowledgeBase(c echo.Context) error {
	coll := c.QueryParam("collection")
	if coll != "" && !vectors.ValidCollection(coll) {
		return badRequest("collection %q: accepted values: sql, ddl, documentation", truncate(coll, 100))
	}
	limit, err := intParam(c, "limit", KnowledgeBaseDefaultLimit, 1, KnowledgeBaseMaxLimit)
	if err != nil {
		return err
	}
	offset, err := intParam(c, "offset", 0, 0, KnowledgeBaseMaxOffset)
	if err != nil {
		return err
	}
	_, hasQ := c.QueryParams()["q"]
	q := c.QueryParam("q")
	if hasQ && q == "" {
		return badRequest("q must not be empty")
	}
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > KnowledgeBaseMaxQuery {
		return badRequest("q must be valid UTF-8 of at most %d characters", KnowledgeBaseMaxQuery)
	}
	if q != "" && offset+limit > KnowledgeBaseMaxQueryWindow {
		return apiErr(http.StatusBadRequest, CodeQueryWindowTooLarge, "with q, offset+limit may be at most %d (the nearest entries are ranked, not paged)", KnowledgeBaseMaxQueryWindow)
	}
	vc, err := s.vectorStoreOr503()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), ChromaTimeout)
	defer cancel()

	kb := KnowledgeBase{Collections: []vectors.CollectionInfo{}, Entries: []vectors.Entry{}, Collection: coll, Limit: limit, Offset: offset, Query: q, Chroma: vc.URL()}
	counts := map[string]int{}
	for _, name := range vectors.Collections {
		info, err := vc.Info(ctx, name)
		if errors.Is(err, vectors.ErrNotFound) {
			continue
		}
		if err != nil {
			return chromaError(vc, err)
		}
		kb.Collections = append(kb.Collections, info)
		counts[name] = info.Count
	}
	kb.TotalCollections = len(kb.Collections)
	selected := vectors.Collections
	if coll != "" {
		selected = []string{coll}
	}
	for _, name := range selected {
		kb.TotalEntries += counts[name]
	}

	if q != "" {
		var hits []vectors.Entry
		for _, name := range selected {
			if counts[name] == 0 {
				continue
			}
			h, err := vc.Query(ctx, name, q, offset+limit)
			if err != nil {
				return chromaError(vc, err)
			}
			hits = append(hits, h...)
		}
		sort.SliceStable(hits, func(i, j int) bool { return *hits[i].Distance < *hits[j].Distance })
		if offset < len(hits) {
			kb.Entries = hits[offset:min(offset+limit, len(hits))]
		}
		return c.JSON(http.StatusOK, kb)
	}

	// A page over the selected collections, in order.
	skip, want := offset, limit
	for _, name := range selected {
		n := counts[name]
		if skip >= n {
			skip -= n
			continue
		}
		page, err := vc.Page(ctx, name, min(want, n-skip), skip)
		if err != nil {
			return chromaError(vc, err)
		}
		kb.Entries = append(kb.Entries, page...)
		want -= len(page)
		skip = 0
		if want <= 0 {
			break
		}
	}
	return c.JSON(http.StatusOK, kb)
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(c echo.Context, name string, def, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
