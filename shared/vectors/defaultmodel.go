package vectors

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/amikos-tech/chroma-go/pkg/embeddings"
	defaultef "github.com/amikos-tech/chroma-go/pkg/embeddings/default_ef"

	"github.com/insightops/insightops/shared/config"
)

// DefaultModel is the model of EMBEDDING_PROVIDER=default: Chroma's
// default embedding function, which Chroma's Python client, its
// JavaScript client (@chroma-core/default-embed) and a Vanna app left at
// its defaults compute.
const DefaultModel = "all-MiniLM-L6-v2"

// DefaultDimension is the dimension of DefaultModel's vectors.
const DefaultDimension = 384

// ErrModelMissing means the default embedder's files are neither
// provisioned nor fetchable; the message names each missing file and
// where it was looked for.
var ErrModelMissing = errors.New("default embedding model missing")

// The default embedding function is loaded once per process: chroma-go
// keeps the ONNX Runtime environment and its file locations (read from
// $HOME once) process-wide.
var defaultModel struct {
	sync.Mutex
	dir string // the EMBEDDING_MODEL_DIR it was loaded from
	ef  *defaultef.DefaultEmbeddingFunction
}

// newDefaultEmbedder returns the default embedder of dir
// (EMBEDDING_MODEL_DIR; empty: chroma-go's caches). Its model is loaded
// on first use, or by Load: a process that only recreates collections or
// restores saved vectors (the restore worker) never loads it.
func newDefaultEmbedder(dir string) Embedder {
	return &remoteEmbedder{provider: ProviderDefault, model: DefaultModel, ef: &lazyDefaultEF{dir: dir}, dim: DefaultDimension, efName: "default"}
}

// Load makes sure e can embed now: the default embedder loads its model
// (fetching it on first use when EMBEDDING_MODEL_DIR is empty) and
// returns ErrModelMissing naming what is missing and where it looked;
// the other embedders need nothing loaded. The chroma worker calls it at
// start.
func Load(e Embedder) error {
	if r, ok := e.(*remoteEmbedder); ok {
		if l, ok := r.ef.(*lazyDefaultEF); ok {
			_, err := l.get()
			return err
		}
	}
	return nil
}

// lazyDefaultEF is chroma-go's default embedding function, loaded by its
// first call (loadDefaultModel).
type lazyDefaultEF struct{ dir string }

var _ embeddings.EmbeddingFunction = (*lazyDefaultEF)(nil)

func (l *lazyDefaultEF) get() (*defaultef.DefaultEmbeddingFunction, error) {
	return loadDefaultModel(l.dir)
}

func (l *lazyDefaultEF) EmbedDocuments(ctx context.Context, texts []string) ([]embeddings.Embedding, error) {
	ef, err := l.get()
	if err != nil {
		return nil, err
	}
	return ef.EmbedDocuments(ctx, texts)
}

func (l *lazyDefaultEF) EmbedQuery(ctx context.Context, text string) (embeddings.Embedding, error) {
	ef, err := l.get()
	if err != nil {
		return nil, err
	}
	return ef.EmbedQuery(ctx, text)
}

func (l *lazyDefaultEF) Name() string { return "default" }
func (l *lazyDefaultEF) GetConfig() embeddings.EmbeddingFunctionConfig {
	return embeddings.EmbeddingFunctionConfig{}
}
func (l *lazyDefaultEF) DefaultSpace() embeddings.DistanceMetric { return embeddings.L2 }
func (l *lazyDefaultEF) SupportedSpaces() []embeddings.DistanceMetric {
	return []embeddings.DistanceMetric{embeddings.L2, embeddings.COSINE, embeddings.IP}
}

// loadDefaultModel loads chroma-go's default embedding function once per
// process from dir (EMBEDDING_MODEL_DIR), or from chroma-go's caches when
// dir is empty, fetching what is missing there. It never falls back to
// another embedder: whatever is missing and cannot be fetched is
// ErrModelMissing. A failure is not remembered: the next call tries again.
func loadDefaultModel(dir string) (*defaultef.DefaultEmbeddingFunction, error) {
	defaultModel.Lock()
	defer defaultModel.Unlock()
	if defaultModel.ef != nil {
		if defaultModel.dir != dir {
			return nil, fmt.Errorf("default embedder: already loaded from %q in this process, cannot load it from EMBEDDING_MODEL_DIR=%q", defaultModel.dir, dir)
		}
		return defaultModel.ef, nil
	}
	if dir != "" {
		if err := useModelDir(dir); err != nil {
			return nil, err
		}
	}
	missing := config.MissingModelFiles(dir)
	if dir != "" && len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrModelMissing, config.MissingModelReason(dir, missing))
	}
	if len(missing) > 0 {
		// A model directory left empty by a failed fetch would make
		// chroma-go skip the fetch.
		if err := removeEmptyDir(filepath.Join(os.Getenv("HOME"), config.ModelCacheDir)); err != nil {
			return nil, err
		}
	}
	ef, _, err := defaultef.NewDefaultEmbeddingFunction()
	if err != nil {
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: %s (fetching them on first use failed: %v)", ErrModelMissing, config.MissingModelReason(dir, missing), err) //nolint:errorlint // ErrModelMissing is the class; chroma-go's error is shown
		}
		return nil, fmt.Errorf("default embedder (%s): %w", DefaultModel, err)
	}
	defaultModel.dir, defaultModel.ef = dir, ef
	return ef, nil
}

// useModelDir points chroma-go and pure-tokenizers at the files of dir:
// the two libraries through their own variables (CHROMAGO_ONNX_RUNTIME_PATH,
// TOKENIZERS_LIB_PATH), the model through $HOME, which chroma-go reads once,
// when its configuration is first built (EnsureDefaultEmbeddingFunctionModel
// builds it here and only checks the files, as they are there); HOME is put
// back at once. The checksums of dir's SHA256SUMS, when there is one, are
// verified first.
func useModelDir(dir string) error {
	if err := verifyChecksums(dir); err != nil {
		return err
	}
	if missing := config.MissingModelFiles(dir); len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrModelMissing, config.MissingModelReason(dir, missing))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("EMBEDDING_MODEL_DIR %q: %w", dir, err)
	}
	for k, v := range map[string]string{
		"CHROMAGO_ONNX_RUNTIME_PATH": filepath.Join(abs, config.ModelRuntimeLib),
		"TOKENIZERS_LIB_PATH":        filepath.Join(abs, config.ModelTokenizerLib),
	} {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("default embedder: set %s: %w", k, err)
		}
	}
	home, hadHome := os.LookupEnv("HOME")
	if err := os.Setenv("HOME", abs); err != nil {
		return fmt.Errorf("default embedder: set HOME: %w", err)
	}
	err = defaultef.EnsureDefaultEmbeddingFunctionModel()
	if hadHome {
		_ = os.Setenv("HOME", home)
	} else {
		_ = os.Unsetenv("HOME")
	}
	if err != nil {
		return fmt.Errorf("default embedder: model in EMBEDDING_MODEL_DIR %s (it must be writable: chroma-go takes a lock file there): %w", abs, err)
	}
	return nil
}

// verifyChecksums checks every "<sha256>  <path>" line of dir/SHA256SUMS
// (paths relative to dir); no such file is no check.
func verifyChecksums(dir string) error {
	f, err := os.Open(filepath.Join(dir, config.ModelChecksums))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("EMBEDDING_MODEL_DIR: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		want, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		if !ok || len(want) != 64 || name == "" {
			return fmt.Errorf("EMBEDDING_MODEL_DIR: %s line %d: want \"<sha256>  <path>\"", config.ModelChecksums, n)
		}
		got, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return fmt.Errorf("EMBEDDING_MODEL_DIR: %s line %d: %w", config.ModelChecksums, n, err)
		}
		if !strings.EqualFold(got, want) {
			return fmt.Errorf("EMBEDDING_MODEL_DIR: checksum mismatch for %s: %s says %s, the file has %s", name, config.ModelChecksums, want, got)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("EMBEDDING_MODEL_DIR: read %s: %w", config.ModelChecksums, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum of %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// removeEmptyDir removes dir when it exists and is empty (chroma-go
// creates the model directory before it fetches and takes an existing one
// as complete).
func removeEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) > 0 {
		return nil //nolint:nilerr // missing or not empty: nothing to do
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("default embedder: remove the empty model cache %s: %w", dir, err)
	}
	return nil
}
