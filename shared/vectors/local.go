package vectors

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/kljensen/snowball/english"
)

// LocalDimension is the dimension of the local embedder's vectors.
const LocalDimension = 512

// LocalModel names the local embedder's algorithm; bump its version when
// the features or weights change, so collections filled by the old one are
// reported as a mismatch instead of being mixed.
const LocalModel = "feature-hash-v1"

// Feature weights of the local embedder.
const (
	weightWord    = 1.0  // a stemmed word
	weightBigram  = 0.7  // two consecutive words
	weightTrigram = 0.25 // a character trigram of a word (with ^ and $ edges)
)

// Local is the default embedder: it needs no network and no model. A text
// is lower-cased and split into words (runs of letters or digits; snake_case
// and camelCase identifiers split into their words), English and SQL stop
// words are dropped, and three kinds of features are hashed (FNV-1a, signed)
// into a fixed number of dimensions: each word's Porter2 stem, each pair of
// consecutive words, and each character trigram of each word (sub-word
// tokens: "invoices" and "invoiced" share most of theirs). A feature seen n
// times weighs w·(1+ln n); the vector is L2-normalised, so its dot product
// with another measures lexical overlap: a question naming a table's
// columns or business terms lands near that table's DDL.
type Local struct {
	dim int
}

// NewLocal returns a local embedder of dim dimensions (LocalDimension when
// dim < 1).
func NewLocal(dim int) *Local {
	if dim < 1 {
		dim = LocalDimension
	}
	return &Local{dim: dim}
}

// Provider returns "local".
func (l *Local) Provider() string { return ProviderLocal }

// ChromaFunction is how a collection's configuration records the local
// embedder (see the package function ChromaFunction).
func (l *Local) ChromaFunction() (string, map[string]any) {
	return "insightops_local", map[string]any{"model": LocalModel, "dimension": l.dim}
}

// Model returns LocalModel.
func (l *Local) Model() string { return LocalModel }

// Dimension returns the fixed dimension.
func (l *Local) Dimension(context.Context) (int, error) { return l.dim, nil }

// EmbedDocuments embeds each text.
func (l *Local) EmbedDocuments(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i] = l.Vector(t)
	}
	return out, nil
}

// EmbedQuery embeds one text.
func (l *Local) EmbedQuery(ctx context.Context, text string) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.Vector(text), nil
}

// Vector is the embedding of text. An empty text (or one of stop words
// only) gets a fixed unit vector rather than a zero one, which has no
// direction to compare.
func (l *Local) Vector(text string) []float32 {
	counts := map[string]float64{}
	words := Tokens(text)
	for i, w := range words {
		counts["w:"+stem(w)] += weightWord
		if i > 0 {
			counts["b:"+stem(words[i-1])+" "+stem(w)] += weightBigram
		}
		for _, g := range trigrams(w) {
			counts["g:"+g] += weightTrigram
		}
	}
	v := make([]float64, l.dim)
	if len(counts) == 0 {
		counts["empty"] = 1
	}
	// Sum in a fixed order: features sharing a bucket must add up to the
	// same float every time, so a text always gets the very same vector.
	feats := make([]string, 0, len(counts))
	for f := range counts {
		feats = append(feats, f)
	}
	slices.Sort(feats)
	for _, f := range feats {
		c := counts[f]
		h := fnv.New64a()
		_, _ = h.Write([]byte(f))
		sum := h.Sum64()
		idx := int(sum % uint64(l.dim))
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		v[idx] += sign * sublinear(f, c)
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	out := make([]float32, l.dim)
	if norm == 0 { // every feature cancelled out in its bucket: vanishingly rare
		out[0] = 1
		return out
	}
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// sublinear turns an accumulated weight c of feature f into w·(1+ln n),
// where n is how many times the feature occurred.
func sublinear(f string, c float64) float64 {
	w := weightWord
	switch f[0] {
	case 'b':
		w = weightBigram
	case 'g':
		w = weightTrigram
	}
	n := c / w
	if n < 1 {
		n = 1
	}
	return w * (1 + math.Log(n))
}

// Tokens returns the words of text the local embedder uses: lower-cased
// runs of letters and digits, identifiers split at underscores and at
// lower-to-upper case changes, without one-character words and stop words.
func Tokens(text string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 1 {
			w := string(cur)
			if !stopWord(w) {
				words = append(words, w)
			}
		}
		cur = cur[:0]
	}
	var prev rune
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			if unicode.IsUpper(r) && unicode.IsLower(prev) {
				flush() // camelCase boundary
			}
			cur = append(cur, unicode.ToLower(r))
		default:
			flush()
		}
		prev = r
	}
	flush()
	return words
}

// stem returns the Porter2 stem of an ASCII word; other words as they are.
// Stems are memoised (the stemmer is the costliest step, and schemas and
// questions repeat their words), up to stemCacheMax words.
func stem(w string) string {
	for i := range len(w) {
		if w[i] >= utf8.RuneSelf {
			return w
		}
	}
	stemCache.RLock()
	s, ok := stemCache.m[w]
	stemCache.RUnlock()
	if ok {
		return s
	}
	s = english.Stem(w, false)
	stemCache.Lock()
	if len(stemCache.m) >= stemCacheMax {
		clear(stemCache.m)
	}
	stemCache.m[w] = s
	stemCache.Unlock()
	return s
}

const stemCacheMax = 100_000

var stemCache = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

// trigrams returns the character trigrams of "^"+w+"$".
func trigrams(w string) []string {
	rs := []rune("^" + w + "$")
	if len(rs) < 3 {
		return nil
	}
	out := make([]string, 0, len(rs)-2)
	for i := 0; i+3 <= len(rs); i++ {
		out = append(out, string(rs[i:i+3]))
	}
	return out
}

func stopWord(w string) bool {
	return english.IsStopWord(w) || extraStopWords[w]
}

// extraStopWords are question fillers and SQL/DDL syntax: words that say
// nothing about which table a question is about.
var extraStopWords = func() map[string]bool {
	m := map[string]bool{}
	for w := range strings.FieldsSeq(`
		also already ever every give like list many much one ones per please show still tell us would yet whose
		get got find want need let could
		create table view index unique primary foreign key references integer int bigint smallint tinyint serial
		bigserial text varchar char character varying real numeric decimal double precision float boolean bool
		blob bytea timestamp timestamptz default check constraint null autoincrement collate nocase rowid strict
		without exists select join inner outer left right full cross where group order having case else end
		round sum coalesce cast distinct asc desc offset union glob julianday strftime ifnull
		id idx pk fk`) {
		m[w] = true
	}
	return m
}()
