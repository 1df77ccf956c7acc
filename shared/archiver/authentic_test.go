package archiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
)

// signedArchive stores data as a signed gzip archive in a new local store.
func signedArchive(tb testing.TB, data []byte) (backupstore.Store, *archivesig.Keyring, string) {
	tb.Helper()
	ctx := context.Background()
	st, err := backupstore.NewLocal(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	k, err := archivesig.ParseKey(hex.EncodeToString(key))
	if err != nil {
		tb.Fatal(err)
	}
	keys := archivesig.NewKeyring(&k)
	name := backupfmt.ArchiveName(time.Now().UTC(), jobs.NewID(), backupfmt.Gzip)
	sum := sha256.Sum256(data)
	if _, err := st.Put(ctx, name, bytes.NewReader(data), backupstore.WithSeal(Seal(keys, name, hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:])))); err != nil {
		tb.Fatal(err)
	}
	return st, keys, name
}

// BenchmarkOpenAuthentic measures the price of reading only signed bytes:
// the signature check and the private copy of a 64 MiB archive from the
// local store (b.SetBytes: MB/s of the copy).
func BenchmarkOpenAuthentic(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 64<<20)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	st, keys, name := signedArchive(b, data)
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		a, err := OpenAuthentic(ctx, st, keys, nil, name, dir)
		if err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
}

// The private copy has no name while it is open: nothing in the scratch
// directory, and Unshared says so; Reader still returns the signed bytes.
func TestOpenAuthenticCopyHasNoName(t *testing.T) {
	t.Parallel()
	data := []byte("signed bytes of an archive")
	st, keys, name := signedArchive(t, data)
	dir := t.TempDir()
	a, err := OpenAuthentic(context.Background(), st, keys, nil, name, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 || !a.Unshared() {
		t.Fatalf("scratch directory holds %d entries, Unshared %v; want none and true", len(entries), a.Unshared())
	}
	got, err := io.ReadAll(a.Reader())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Reader = %q, %v; want the signed bytes", got, err)
	}
}
