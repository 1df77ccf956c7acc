package backupfmt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchData []byte
)

// benchInput returns n bytes of pseudo-random but compressible data
// (SQL-like words and numbers, about 3:1 with gzip), generated once
// outside the measured loop.
func benchInput(n int) io.Reader {
	benchOnce.Do(func() { benchData = compressible(42, 64<<20) })
	return bytes.NewReader(benchData[:n])
}

func benchWriter(b *testing.B, c Compression) {
	for _, size := range []int{16 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			benchInput(0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var compressed int64
			for b.Loop() {
				var out countWriter
				w, err := NewWriter(&out, c)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.AddStream(context.Background(), ComponentSystem, "system/system.dump", KindPGDump, benchInput(size)); err != nil {
					b.Fatal(err)
				}
				m := testManifest()
				m.Components = nil
				if _, err := w.Close(m); err != nil {
					b.Fatal(err)
				}
				compressed = out.n
			}
			b.ReportMetric(float64(compressed)/float64(size), "ratio")
		})
	}
}

// BenchmarkWriterGzip and BenchmarkWriterZstd stream 16 and 64 MiB through
// AddStream: MB/s from SetBytes; B/op stays flat (about one chunk plus the
// compressor's state) whatever the size.
func BenchmarkWriterGzip(b *testing.B) { benchWriter(b, Gzip) }

// BenchmarkWriterZstd: see BenchmarkWriterGzip.
func BenchmarkWriterZstd(b *testing.B) { benchWriter(b, Zstd) }

func BenchmarkVerify(b *testing.B) {
	for _, c := range []Compression{Gzip, Zstd} {
		b.Run(string(c), func(b *testing.B) {
			var buf bytes.Buffer
			w, _ := NewWriter(&buf, c)
			const size = 64 << 20
			w.AddStream(context.Background(), ComponentSystem, "system/system.dump", KindPGDump, benchInput(size))
			m := testManifest()
			m.Components = nil
			w.Close(m)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(context.Background(), bytes.NewReader(buf.Bytes()), VerifyOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
