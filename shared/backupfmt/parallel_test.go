package backupfmt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The parallel zstd path of AddStream writes the same tar stream (names,
// sizes, padding, contents) and the same manifest as one goroutine, for
// streams that end on and around every boundary: empty, within a frame,
// on a tar block, on a frame, on a part, and parts that are not a
// multiple of the tar block.
func TestParallelZstdWritesWhatOneGoroutineWrites(t *testing.T) {
	t.Parallel()
	for _, chunk := range []int{2 * frameUnit, frameUnit + frameUnit/2 + 3} {
		sizes := []int{0, 1, 511, 512, frameUnit - 1, frameUnit, frameUnit + 1, chunk - 1, chunk, chunk + 1, 3*chunk + 700}
		for _, size := range sizes {
			t.Run(fmt.Sprintf("chunk=%d/size=%d", chunk, size), func(t *testing.T) {
				t.Parallel()
				inputs := []input{
					{path: "system/system.dump", data: compressible(uint64(size), size), stream: true, count: -1},
					{path: "chroma/sql.jsonl", data: jsonl(20), stream: true, count: -1},
				}
				serial, sres := build(t, Zstd, chunk, inputs, WithConcurrency(1))
				parallel, pres := build(t, Zstd, chunk, inputs, WithConcurrency(4))
				if !reflect.DeepEqual(sres.Manifest, pres.Manifest) {
					t.Fatalf("manifests differ:\none goroutine %+v\nfour %+v", sres.Manifest.Files(), pres.Manifest.Files())
				}
				if s, p := decompressAll(t, serial), decompressAll(t, parallel); !bytes.Equal(s, p) {
					t.Fatalf("tar streams differ: %d bytes with one goroutine, %d with four", len(s), len(p))
				}
				rep, err := Verify(context.Background(), bytes.NewReader(parallel), VerifyOptions{})
				if err != nil || !rep.OK() {
					t.Fatalf("verify of the parallel archive: %v %v", err, rep.Problems)
				}
			})
		}
	}
}

// A part of the parallel path is its header frame and ceil(size/1 MiB)
// data frames, the last holding the tar padding: an entry of up to 1 MiB
// is two frames, as with one goroutine.
func TestParallelZstdFramesPerEntry(t *testing.T) {
	t.Parallel()
	chunk := 3*frameUnit + 100
	inputs := []input{{path: "system/system.dump", data: compressible(7, 2*chunk+10), stream: true, count: -1}}
	archive, res := build(t, Zstd, chunk, inputs, WithConcurrency(2))
	parts := res.Manifest.Files()[0].Parts
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	// 3 parts: (1 + 4) + (1 + 4) + (1 + 1) frames, then the manifest's
	// header, and its data with the tar trailer.
	if got, want := len(memberOffsets(t, archive, Zstd)), 5+5+2+2; got != want {
		t.Fatalf("%d frames, want %d", got, want)
	}
}

func decompressAll(t *testing.T, archive []byte) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
