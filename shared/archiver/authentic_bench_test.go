package archiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
)

// BenchmarkOpenAuthentic measures the price of reading only signed bytes:
// the signature check and the private copy of a 64 MiB archive from the
// local store (b.SetBytes: MB/s of the copy).
func BenchmarkOpenAuthentic(b *testing.B) {
	ctx := context.Background()
	st, err := backupstore.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	data := make([]byte, 64<<20)
	if _, err := rand.Read(key); err != nil {
		b.Fatal(err)
	}
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	k, err := archivesig.ParseKey(hex.EncodeToString(key))
	if err != nil {
		b.Fatal(err)
	}
	keys := archivesig.NewKeyring(&k)
	name := backupfmt.ArchiveName(time.Now().UTC(), jobs.NewID(), backupfmt.Gzip)
	sum := sha256.Sum256(data)
	if _, err := st.Put(ctx, name, bytes.NewReader(data), backupstore.WithSeal(Seal(keys, name, hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:])))); err != nil {
		b.Fatal(err)
	}
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
