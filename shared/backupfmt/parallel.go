package backupfmt

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/insightops/insightops/shared/ctxio"
	"github.com/insightops/insightops/shared/handoff"
)

// frameUnit is the length of the data compressed as one zstd frame by the
// parallel path of AddStream: a part of DefaultChunkSize is 16 frames,
// compressed on every core at once. Each frame is independent (no shared
// window), which costs a little ratio against one frame per part; any zstd
// reader reads the concatenation as one stream.
const frameUnit = 1 << 20

// framePool compresses units of data into independent zstd frames on
// several goroutines. Raw unit buffers come from a bounded pool, so at
// most 2 × workers units are being read or compressed at any time. The
// frames' buffers are recycled once written (spare): a backup then
// allocates next to nothing per frame, and the heap (and the GC's
// headroom above it) stays the size of what is in flight.
type framePool struct {
	enc   *zstd.Encoder
	jobs  chan frameJob
	bufs  chan []byte
	spare chan []byte
	wg    sync.WaitGroup
}

// frameJob is one unit to compress; the frame is sent on out (buffered).
type frameJob struct {
	data []byte
	out  chan []byte
}

func newFramePool(workers int, level zstd.EncoderLevel, chunk int) (*framePool, error) {
	// A frame never refers beyond itself: a window of one unit is all
	// the history it can use, and keeps each encoder's buffers small.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(workers), zstd.WithWindowSize(frameUnit))
	if err != nil {
		return nil, fmt.Errorf("backup archive: zstd: %w", err)
	}
	inFlight := (partsQueued+1)*(chunk/frameUnit+1) + 2*workers
	p := &framePool{enc: enc, jobs: make(chan frameJob), bufs: make(chan []byte, 2*workers), spare: make(chan []byte, inFlight)}
	for range 2 * workers {
		p.bufs <- make([]byte, frameUnit, frameUnit+tarBlock) // room for the entry's padding
	}
	p.wg.Add(workers)
	for range workers {
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				frame := p.enc.EncodeAll(j.data, p.frameBuf(len(j.data)))
				p.bufs <- j.data[:frameUnit]
				j.out <- frame
			}
		}()
	}
	return p, nil
}

// frameBuf returns an empty buffer for the frame of n bytes: a recycled
// one, or a new one of half that (frames grow it when they need to).
func (p *framePool) frameBuf(n int) []byte {
	select {
	case b := <-p.spare:
		return b[:0]
	default:
		return make([]byte, 0, n/2)
	}
}

// recycle keeps a written frame's buffer for another frame.
func (p *framePool) recycle(b []byte) {
	select {
	case p.spare <- b[:0]:
	default:
	}
}

// submit hands data (a buffer taken from p.bufs) to a worker and returns
// the channel its frame will arrive on.
func (p *framePool) submit(data []byte) chan []byte {
	out := make(chan []byte, 1)
	p.jobs <- frameJob{data: data, out: out}
	return out
}

// encode compresses small data (a tar header, padding) on the caller's
// goroutine.
func (p *framePool) encode(data []byte) []byte { return p.enc.EncodeAll(data, nil) }

// close waits for the workers, which finish every submitted unit.
func (p *framePool) close() {
	close(p.jobs)
	p.wg.Wait()
	_ = p.enc.Close()
}

// addStreamParallel is AddStream for zstd with more than one worker: the
// stream is read in units of frameUnit and hashed on the caller's
// goroutine, each unit compressed as its own frame by the pool, and each
// part written by a writer goroutine once it is complete (a part's tar
// header, which holds its size, comes first, and the size of the last part
// is only known at the end of the stream) while the next part is read.
// Memory: the pool's units, plus the frames of at most partsQueued + 1
// parts waiting for the writer.
func (w *Writer) addStreamParallel(ctx context.Context, p, kind string, r io.Reader) (File, error) {
	pool, err := newFramePool(w.opts.workers, w.level, w.opts.chunk)
	if err != nil {
		return File{}, w.fail(err)
	}
	defer pool.close()
	// Each part is written on a goroutine of its own, in order, while the
	// next is read; the frames' channels are buffered, so a part dropped
	// after a failed write blocks no compressor.
	pw := handoff.Start(partsQueued, func(part framedPart) error { return w.writeFrames(pool, part) })
	f, err := w.readParts(ctx, pool, pw, p, kind, r)
	if werr := pw.Finish(); err == nil {
		err = werr
	}
	if err != nil {
		return File{}, w.fail(err)
	}
	return w.finish(f.file, f.hash, f.lines), nil
}

// partsQueued is how many complete parts may wait for the writer.
const partsQueued = 1

// readParts reads the stream into parts, hashing and counting it, and
// hands each part's frames to pw in order.
func (w *Writer) readParts(ctx context.Context, pool *framePool, pw *handoff.Writer[framedPart], p, kind string, r io.Reader) (streamedFile, error) {
	chunk := int64(w.opts.chunk)
	rf := streamedFile{file: File{Path: p, Kind: kind, Count: CountUnknown}, hash: sha256.New(), lines: newLineCounter(kind)}
	src := ctxio.Reader(ctx, r)
	var (
		look    [1]byte // the byte read to learn whether a full part is the last
		hasLook bool
	)
	for partNo := 1; ; partNo++ {
		partHash := sha256.New()
		var (
			frames []chan []byte
			held   []byte // the last unit read, submitted once it is known whether the padding goes with it
			size   int64
			eof    bool
		)
		for size < chunk && !eof {
			buf := <-pool.bufs
			n := 0
			if hasLook {
				buf[0], n, hasLook = look[0], 1, false
			}
			m, err := io.ReadFull(src, buf[n:min(int64(len(buf)), chunk-size)])
			n += m
			switch {
			case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
				eof = true
			case err != nil:
				pool.bufs <- buf
				return rf, fmt.Errorf("backup archive: %s: read: %w", p, err)
			}
			if n == 0 {
				pool.bufs <- buf
				continue
			}
			data := buf[:n]
			rf.hash.Write(data)
			partHash.Write(data)
			_, _ = rf.lines.Write(data)
			size += int64(n)
			if held != nil {
				frames = append(frames, pool.submit(held))
			}
			held = data
		}
		if !eof {
			switch m, err := io.ReadFull(src, look[:]); {
			case m == 1:
				hasLook = true
			case err == io.EOF:
				eof = true
			default:
				return rf, fmt.Errorf("backup archive: %s: read: %w", p, err)
			}
		}
		if held != nil {
			// The tar padding ends the entry's last frame, so an entry
			// of up to frameUnit bytes is one header frame and one data
			// frame, as with one goroutine.
			pad := int((tarBlock - size%tarBlock) % tarBlock)
			held = append(held, make([]byte, pad)...)
			frames = append(frames, pool.submit(held))
		}
		name := p
		if partNo > 1 || !eof {
			name = PartPath(p, partNo)
		}
		if err := pw.Put(ctx, framedPart{name: name, size: size, frames: frames}); err != nil {
			return rf, err
		}
		rf.file.Size += size
		if name != p {
			rf.file.Parts = append(rf.file.Parts, Part{Path: name, Size: size, SHA256: hex.EncodeToString(partHash.Sum(nil))})
		}
		if eof {
			return rf, nil
		}
	}
}

// streamedFile is what readParts learned of the file.
type streamedFile struct {
	file  File
	hash  hash.Hash
	lines *lineCounter
}

// framedPart is one tar entry whose data, padded to the tar block size,
// is the frames in order.
type framedPart struct {
	name   string
	size   int64
	frames []chan []byte
}

// writeFrames writes one tar entry: its header as a frame of its own, then
// its data frames. The archive's tar writer is between entries, so these
// raw frames continue its stream.
func (w *Writer) writeFrames(pool *framePool, part framedPart) error {
	var hb bytes.Buffer
	if err := tar.NewWriter(&hb).WriteHeader(w.tarHeader(part.name, part.size)); err != nil {
		return fmt.Errorf("backup archive: tar header %s: %w", part.name, err)
	}
	if _, err := w.out.Write(pool.encode(hb.Bytes())); err != nil {
		return fmt.Errorf("backup archive: write %s: %w", part.name, err)
	}
	for _, c := range part.frames {
		frame := <-c
		if _, err := w.out.Write(frame); err != nil {
			return fmt.Errorf("backup archive: write %s: %w", part.name, err)
		}
		pool.recycle(frame)
	}
	return nil
}

// tarBlock is tar's block size: every entry's data is padded to it.
const tarBlock = 512
