package backupfmt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// zstdFrames compresses each of parts as a frame of its own, as
// AddStream's parallel path does.
func zstdFrames(t *testing.T, parts ...[]byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithWindowSize(frameUnit))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out []byte
	for _, p := range parts {
		out = enc.EncodeAll(p, out)
	}
	return out
}

// zstdStream compresses data as one streaming frame (no content size), as
// an archive written by one goroutine is.
func zstdStream(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	enc, err := zstd.NewWriter(&b, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// skippable is a skippable frame holding n bytes.
func skippable(n int) []byte {
	b := make([]byte, 8+n)
	binary.LittleEndian.PutUint32(b, skippableMagic+3)
	binary.LittleEndian.PutUint32(b[4:], uint32(n))
	return b
}

// rleBomb is one frame of RLE blocks that decompresses to blocks × 128 KiB
// of the byte 'x' from a few bytes each.
func rleBomb(blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58} // magic, no content size, window 128 KiB... descriptor
	for i := range blocks {
		h := uint32(1<<1) | uint32(maxBlockSize)<<3
		if i == blocks-1 {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 'x')
	}
	return b
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(16)) // compressible, not trivially
	}
	return b
}

func readAllZstd(t *testing.T, stream []byte, workers int) ([]byte, error) {
	t.Helper()
	r, closeR, err := newZstdReader(bufio.NewReaderSize(bytes.NewReader(stream), 4096), workers)
	if err != nil {
		t.Fatal(err)
	}
	defer closeR()
	return io.ReadAll(r)
}

func TestFrameReaderReturnsWhatZstdDecodes(t *testing.T) {
	t.Parallel()
	unit := randomBytes(frameUnit, 1)
	small := randomBytes(700, 2)
	big := randomBytes(5*frameUnit+123, 3)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name   string
		stream []byte
	}{
		{"one small frame", zstdFrames(t, small)},
		{"frames of one unit", zstdFrames(t, unit, unit, small, unit)},
		{"unit plus tar padding", zstdFrames(t, append(append([]byte{}, unit...), make([]byte, tarBlock)...))},
		{"empty frame between", zstdFrames(t, small, nil, small)},
		{"skippable frames between and at the end", cat(zstdFrames(t, small), skippable(10), zstdFrames(t, unit), skippable(0))},
		{"one long streaming frame", zstdStream(t, big)},
		{"small frames, then a long frame, then small ones", cat(zstdFrames(t, small, unit), zstdStream(t, big), zstdFrames(t, small))},
		{"a frame too large for a worker", zstdFrames(t, big)},
		{"RLE blocks past the worker bound", cat(zstdFrames(t, small), rleBomb(20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := readAllZstd(t, tt.stream, 1)
			if err != nil {
				t.Fatalf("zstd's own decoder: %v", err)
			}
			for _, workers := range []int{2, 3, 4} {
				got, err := readAllZstd(t, tt.stream, workers)
				if err != nil {
					t.Fatalf("%d workers: %v", workers, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%d workers: %d bytes differ from zstd's %d", workers, len(got), len(want))
				}
			}
		})
	}
}

func TestFrameReaderRefusesBadStreams(t *testing.T) {
	t.Parallel()
	good := zstdFrames(t, randomBytes(3000, 4), randomBytes(frameUnit, 5))
	flipped := bytes.Clone(good)
	flipped[len(flipped)-100] ^= 0xff
	badChecksum := bytes.Clone(good)
	badChecksum[len(badChecksum)-1] ^= 0xff
	tests := []struct {
		name   string
		stream []byte
		is     error  // errors.Is, when set
		want   string // in the message, when set
	}{
		{"truncated in a block", good[:len(good)-50], io.ErrUnexpectedEOF, ""},
		{"truncated in the frame header", good[:5], io.ErrUnexpectedEOF, ""},
		{"a flipped byte", flipped, nil, "zstd"},
		{"a wrong checksum", badChecksum, nil, "zstd"},
		{"garbage after the frames", append(bytes.Clone(good), "trailing garbage"...), nil, "magic number mismatch"},
		{"reserved block type", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x07, 0, 0}, nil, "reserved block type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := readAllZstd(t, tt.stream, 2)
			if err == nil {
				t.Fatal("read without error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			if tt.want != "" && !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// A reader closed before the end (a Walk whose callback failed) leaves no
// goroutine behind.
func TestFrameReaderCloseStopsItsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	var parts [][]byte
	for i := range 40 {
		parts = append(parts, randomBytes(frameUnit, uint64(10+i)))
	}
	stream := zstdFrames(t, parts...)
	for range 5 {
		r, closeR, err := newZstdReader(bufio.NewReader(bytes.NewReader(stream)), 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, make([]byte, 3*frameUnit)); err != nil {
			t.Fatal(err)
		}
		closeR()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after closing, %d before", n, before)
	}
}
