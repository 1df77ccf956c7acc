package backupfmt_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupfmt/backupfmttest"
)

const gib = 1 << 30

// streamBomb returns a reader of b, written by a goroutine as it is read:
// the bomb is never held in memory. Closing the reader stops the writer.
func streamBomb(t *testing.T, b backupfmttest.Bomb) io.ReadCloser {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := b.Write(pw)
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() {
		_ = pr.Close()
		<-done
	})
	return pr
}

// countingChecker reads everything a checker is given and adds its length to *n.
func countingChecker(n *int64) backupfmt.Checker {
	return func(ctx context.Context, f backupfmt.File, r io.Reader) (int64, error) {
		k, err := io.Copy(io.Discard, r)
		*n += k
		return backupfmt.CountUnknown, err
	}
}

// TestDecompressionBombStopsAtTheCap: 1 GiB of zeros, in one entry or in
// 16 MiB parts (each header declares little) or after the end of the tar
// stream (no header declares it), compressed with gzip and zstd, is read
// no further than MaxDecompressed: Verify fails with ErrDecompressionLimit
// (and ErrInvalidArchive) and no checker saw more than the cap.
func TestDecompressionBombStopsAtTheCap(t *testing.T) {
	t.Parallel()
	const capBytes = 48 << 20
	for _, c := range []backupfmt.Compression{backupfmt.Gzip, backupfmt.Zstd} {
		for name, bomb := range map[string]backupfmttest.Bomb{
			"one entry": {Path: "target/vanna_db.db", Size: gib},
			"parts":     {Path: "target/vanna_db.db", Size: gib, PartSize: 16 << 20},
			"trailing":  {Path: "chroma/sql.jsonl", Size: 0, TrailingZeros: gib},
		} {
			t.Run(string(c)+"/"+name, func(t *testing.T) {
				t.Parallel()
				bomb.Compression = c
				var seen int64
				checkers := map[string]backupfmt.Checker{backupfmt.KindSQLite: countingChecker(&seen), backupfmt.KindJSONL: countingChecker(&seen)}
				rep, err := backupfmt.Verify(context.Background(), streamBomb(t, bomb), backupfmt.VerifyOptions{
					ReadOptions: backupfmt.ReadOptions{MaxDecompressed: capBytes},
					Checkers:    checkers,
				})
				if !errors.Is(err, backupfmt.ErrDecompressionLimit) || !errors.Is(err, backupfmt.ErrInvalidArchive) {
					t.Fatalf("Verify: %v, want ErrDecompressionLimit", err)
				}
				if !strings.Contains(err.Error(), "BACKUP_MAX_DECOMPRESSED") {
					t.Errorf("error %q does not name the setting", err)
				}
				if seen > capBytes {
					t.Errorf("checkers read %d bytes, more than the cap %d", seen, capBytes)
				}
				if rep.OK() {
					t.Error("report OK")
				}
			})
		}
	}
}

// TestDecompressionBombExtractLeavesNothing: Extract of a bomb in parts
// (the first parts are written before the sum passes the cap) fails with
// ErrDecompressionLimit and removes everything it wrote.
func TestDecompressionBombExtractLeavesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bomb := backupfmttest.Bomb{Compression: backupfmt.Zstd, Path: "target/vanna_db.db", Size: gib, PartSize: 8 << 20}
	_, err := backupfmt.Extract(context.Background(), streamBomb(t, bomb), dir, backupfmt.ExtractOptions{
		ReadOptions: backupfmt.ReadOptions{MaxDecompressed: 40 << 20},
	})
	if !errors.Is(err, backupfmt.ErrDecompressionLimit) {
		t.Fatalf("Extract: %v, want ErrDecompressionLimit", err)
	}
	left, rerr := os.ReadDir(dir)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(left) != 0 {
		t.Errorf("Extract left %v behind", left)
	}
}

// TestDecompressionBombAgainstTheManifest: with Expect (the manifest of a
// previous Verify), the cap is the manifest's total plus tar overhead, far
// below MaxDecompressed: an archive whose listed file matches but which
// goes on decompressing after its end is stopped there.
func TestDecompressionBombAgainstTheManifest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	content := make([]byte, 100)
	var archive bytes.Buffer
	w, err := backupfmt.NewWriter(&archive, backupfmt.Gzip, backupfmt.WithModTime(exampleCreated))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddFile(ctx, backupfmt.ComponentTarget, "target/vanna_db.db", backupfmt.KindSQLite, bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(backupfmt.Manifest{CreatedAt: exampleCreated, JobID: exampleJobID, AppVersion: "test",
		Components: map[string]backupfmt.Component{backupfmt.ComponentTarget: {Source: "sqlite target"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backupfmt.Walk(ctx, bytes.NewReader(archive.Bytes()), backupfmt.ReadOptions{Expect: &res.Manifest}, nil); err != nil {
		t.Fatalf("the genuine archive: %v", err)
	}
	limit := backupfmt.ExpectedTarBytes(res.Manifest)
	if limit >= backupfmt.DefaultMaxDecompressed || limit < int64(len(content)) {
		t.Fatalf("ExpectedTarBytes = %d", limit)
	}
	bomb := backupfmttest.Bomb{Compression: backupfmt.Gzip, Path: "target/vanna_db.db", Size: int64(len(content)), TrailingZeros: gib}
	var seen int64
	_, err = backupfmt.Walk(ctx, streamBomb(t, bomb), backupfmt.ReadOptions{Expect: &res.Manifest}, func(ctx context.Context, f backupfmt.File, r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		seen += n
		return err
	})
	if !errors.Is(err, backupfmt.ErrDecompressionLimit) {
		t.Fatalf("Walk: %v, want ErrDecompressionLimit", err)
	}
	if !strings.Contains(err.Error(), "manifest allows") {
		t.Errorf("error %q does not say the manifest set the limit", err)
	}
	if seen != int64(len(content)) {
		t.Errorf("the consumer read %d bytes, want the file's %d", seen, len(content))
	}
}
