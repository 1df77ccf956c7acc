package archivertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
)

// PlantSigned stores under name the bytes write produces, signed with the
// deployment's own key (cfg's BACKUP_SIGNING_KEY, or its development key in
// DATA_DIR): an archive made by an insider who holds the key, so that what
// a test checks after the signature (a decompression bomb, a damaged part)
// is reached. The bytes are spooled to a temporary file, not held in
// memory. A plain manifest digest is signed: such an archive need not have
// a manifest.
func PlantSigned(t testing.TB, ctx context.Context, cfg config.Config, st backupstore.Store, name string, write func(io.Writer) error) backupstore.Info {
	t.Helper()
	keys, _, err := archivesig.Load(cfg.Signing())
	if err != nil {
		t.Fatalf("plant %s: signing key: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), "planted")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	werr := write(io.MultiWriter(f, h))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		t.Fatalf("plant %s: %v", name, werr)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	noManifest := sha256.Sum256(nil)
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seal := func(got string) (string, error) {
		if got != sum {
			return "", fmt.Errorf("the store hashed %s, the planted bytes %s", got, sum)
		}
		sig, err := keys.Sign(name, sum, hex.EncodeToString(noManifest[:]))
		if err != nil {
			return "", err
		}
		return sig.String(), nil
	}
	info, err := st.Put(ctx, name, r, backupstore.WithSeal(seal))
	if err != nil {
		t.Fatalf("plant %s: %v", name, err)
	}
	return info
}
