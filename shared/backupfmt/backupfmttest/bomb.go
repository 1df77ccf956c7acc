// Package backupfmttest builds hostile backup archives for tests: a
// decompression bomb streamed to a writer, so a test can plant an archive
// that decompresses to gigabytes of zeros without holding it in memory.
package backupfmttest

import (
	"archive/tar"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/insightops/insightops/shared/backupfmt"
)

// Bomb describes a decompression bomb: Path holding Size zero bytes, as
// one tar entry, or as parts of PartSize bytes (Path.part-000001, …) when
// PartSize is set, so each entry header declares little and only their
// sum is large. Trailing zero bytes follow the end of the tar stream
// (TrailingZeros), which no entry header declares. With DeclareOnly the
// single entry's header declares Size but only its first MiB follows, and
// the stream ends there (a reader must refuse the header before reading).
type Bomb struct {
	Compression   backupfmt.Compression
	Path          string
	Size          int64
	PartSize      int64
	TrailingZeros int64
	DeclareOnly   bool
}

// Write streams the bomb to w and returns the compressed bytes written.
// Nothing but a small buffer is held in memory.
func (b Bomb) Write(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	var zw io.WriteCloser
	switch b.Compression {
	case backupfmt.Zstd:
		z, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return cw.n, fmt.Errorf("bomb: zstd: %w", err)
		}
		zw = z
	default:
		z, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
		if err != nil {
			return cw.n, fmt.Errorf("bomb: gzip: %w", err)
		}
		zw = z
	}
	tw := tar.NewWriter(zw)
	entries := []struct {
		name string
		size int64
	}{{b.Path, b.Size}}
	if b.PartSize > 0 {
		entries = entries[:0]
		for i, left := 1, b.Size; left > 0; i++ {
			n := min(left, b.PartSize)
			entries = append(entries, struct {
				name string
				size int64
			}{backupfmt.PartPath(b.Path, i), n})
			left -= n
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o600, Size: e.size}); err != nil {
			return cw.n, fmt.Errorf("bomb: header: %w", err)
		}
		if b.DeclareOnly {
			if err := writeZeros(tw, min(e.size, 1<<20)); err != nil {
				return cw.n, err
			}
			if err := zw.Close(); err != nil {
				return cw.n, fmt.Errorf("bomb: compress: %w", err)
			}
			return cw.n, nil
		}
		if err := writeZeros(tw, e.size); err != nil {
			return cw.n, err
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, fmt.Errorf("bomb: tar: %w", err)
	}
	if err := writeZeros(zw, b.TrailingZeros); err != nil {
		return cw.n, err
	}
	if err := zw.Close(); err != nil {
		return cw.n, fmt.Errorf("bomb: compress: %w", err)
	}
	return cw.n, nil
}

var zeros = make([]byte, 1<<20)

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return fmt.Errorf("bomb: write: %w", err)
		}
		n -= k
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
