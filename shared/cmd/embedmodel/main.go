// Command embedmodel provisions an EMBEDDING_MODEL_DIR for
// EMBEDDING_PROVIDER=default on a machine that can reach the model's and
// the libraries' download sites: it runs chroma-go's first-use fetch with
// HOME set to -dir (so the files land in the layout shared/config
// describes), embeds a probe text to check that the model loads and
// returns 384-dimensional vectors, and writes -dir/SHA256SUMS, which every
// start then verifies. Copy the directory to the air-gapped hosts and set
// EMBEDDING_MODEL_DIR to it.
//
//	cd shared && go run ./cmd/embedmodel -dir /srv/insightops/embedding-model
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/vectors"
)

func main() {
	dir := flag.String("dir", "", "the directory to provision (created if missing)")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "embedmodel:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if dir == "" {
		return errors.New("-dir is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("-dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("-dir: %w", err)
	}
	// The fetch writes under $HOME/.cache; nothing else may redirect it.
	for k, v := range map[string]string{"HOME": abs, "XDG_CACHE_HOME": "", "CHROMAGO_ONNX_RUNTIME_PATH": "", "TOKENIZERS_LIB_PATH": ""} {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("set %s: %w", k, err)
		}
	}
	emb, err := vectors.NewEmbedder(config.Embedding{Provider: vectors.ProviderDefault})
	if err != nil {
		return err
	}
	v, err := emb.EmbedQuery(context.Background(), "How much VAT was charged on each invoice?")
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if len(v) != vectors.DefaultDimension {
		return fmt.Errorf("probe: %d dimensions, want %d", len(v), vectors.DefaultDimension)
	}
	var files []string
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != config.ModelChecksums && d.Name() != ".lock" && !strings.HasSuffix(d.Name(), ".tar.gz") {
			rel, err := filepath.Rel(abs, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", abs, err)
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		sum, err := sha256File(filepath.Join(abs, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, f)
	}
	if err := os.WriteFile(filepath.Join(abs, config.ModelChecksums), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", config.ModelChecksums, err)
	}
	fmt.Print(b.String())
	fmt.Printf("provisioned %s (%s, %d dimensions): set EMBEDDING_MODEL_DIR=%s\n", abs, emb.Model(), len(v), abs)
	return nil
}

func sha256File(path string) (string, error) {
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
