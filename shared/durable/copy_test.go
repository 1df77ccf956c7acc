package durable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Copy writes exactly what it reads, from the file's current offset, for
// lengths around its block sizes and its writeback interval: from an
// aligned offset (direct I/O where the file system takes it, the unaligned
// tail through the page cache) and from an unaligned one (page cache
// only). Afterwards the file's offset is at the end of what was written
// and its flags are as before, so a plain write appends.
func TestCopyWritesEveryByteInOrder(t *testing.T) {
	t.Parallel()
	lengths := []int{0, 1, directAlign - 1, directAlign, copyBuffer - 1, copyBuffer, copyBuffer + 1,
		directBuffer - 1, directBuffer, directBuffer + 1, 3*directBuffer + directAlign, writebackEvery + 3*copyBuffer + 17}
	for _, head := range []string{"", "head"} {
		for _, n := range lengths {
			t.Run(fmt.Sprintf("head %d bytes, %d bytes", len(head), n), func(t *testing.T) {
				t.Parallel()
				data := make([]byte, n)
				rng := rand.New(rand.NewPCG(uint64(n), 1))
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				f, err := os.Create(filepath.Join(t.TempDir(), "out"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteString(head); err != nil {
					t.Fatal(err)
				}
				// iotest-style small reads: Copy must gather them into blocks.
				written, err := Copy(context.Background(), f, io.LimitReader(&chunky{r: bytes.NewReader(data)}, int64(n)))
				if err != nil || written != int64(n) {
					t.Fatalf("Copy = %d, %v; want %d", written, err, n)
				}
				if isDirect(f) {
					t.Fatal("the file is left with O_DIRECT on")
				}
				if _, err := f.WriteString("tail"); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(f.Name())
				if err != nil {
					t.Fatal(err)
				}
				want := append(append([]byte(head), data...), "tail"...)
				if !bytes.Equal(got, want) {
					t.Fatalf("file holds %d bytes, not the %d-byte head, the %d bytes read and the 4-byte tail", len(got), len(head), n)
				}
			})
		}
	}
}

// chunky returns at most 1000 bytes per Read.
type chunky struct{ r io.Reader }

func (c *chunky) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), 1000)]) }

var errBroken = errors.New("broken source")

// A read error, a write error and a cancelled context each stop the copy
// and are returned.
func TestCopyStopsOnErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("read error", func(t *testing.T) {
		f, err := os.Create(filepath.Join(dir, "read"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		src := io.MultiReader(bytes.NewReader(make([]byte, 3*copyBuffer)), errReader{})
		n, err := Copy(context.Background(), f, src)
		if !errors.Is(err, errBroken) || n > 3*copyBuffer {
			t.Fatalf("Copy = %d, %v; want the source's error", n, err)
		}
	})
	t.Run("write error", func(t *testing.T) {
		p := filepath.Join(dir, "readonly")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p) // read-only: every write fails
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = Copy(context.Background(), f, bytes.NewReader(make([]byte, 10*copyBuffer)))
		if err == nil || !strings.HasPrefix(err.Error(), "write "+p) {
			t.Fatalf("Copy into a read-only file = %v; want the write's error", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f, err := os.Create(filepath.Join(dir, "cancelled"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Copy(ctx, f, bytes.NewReader(make([]byte, 10*copyBuffer))); !errors.Is(err, context.Canceled) {
			t.Fatalf("Copy with a cancelled context = %v", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }
