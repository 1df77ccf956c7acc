package backupfmt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Frame-parallel zstd decompression.
//
// AddStream's parallel path writes an entry's data as independent frames
// of frameUnit bytes, so a reader can decompress several frames at once:
// zstd's own streaming decoder works on one frame at a time. frameReader
// finds each frame's end from its block headers (no decompression needed),
// hands small frames to workers and returns their output in stream order.
// An archive written by one goroutine is a single long frame; from the
// first frame that could decompress to more than maxParallelFrame on, the
// rest of the stream goes through one streaming decoder, as before.

const (
	// maxParallelFrame caps what one frame handed to a worker may
	// decompress to (its bound from the block headers) and its
	// compressed length: AddStream's frames are frameUnit plus the tar
	// padding. A larger frame switches the reader to streaming.
	maxParallelFrame = 2 * frameUnit
	// maxBlockSize is the most a zstd compressed block decompresses to
	// (Block_Maximum_Size, RFC 8878 3.1.1.2.3).
	maxBlockSize = 128 << 10
	// framesAhead is how many frames, per worker, may be decompressed
	// ahead of the reader.
	framesAhead = 2
	// zstdMaxWindow is the largest window the streaming decoder accepts.
	zstdMaxWindow = 64 << 20
)

// newZstdReader returns a reader of the zstd stream br: frame-parallel on
// workers goroutines when workers > 1, else zstd's streaming decoder.
func newZstdReader(br *bufio.Reader, workers int) (io.Reader, func(), error) {
	if workers <= 1 {
		zr, err := streamDecoder(br, 1)
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(workers), zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderMaxMemory(maxParallelFrame), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, nil, err
	}
	fr := &frameReader{
		src:     br,
		dec:     dec,
		workers: workers,
		jobs:    make(chan frameJobIn),
		order:   make(chan chan frameOut, framesAhead*workers),
		quit:    make(chan struct{}),
		bufs:    make(chan []byte, (framesAhead+1)*workers+1),
	}
	fr.wg.Add(workers)
	for range workers {
		go fr.work()
	}
	go fr.split()
	return fr, fr.close, nil
}

// streamDecoder is zstd's streaming decoder of r, decoding blocks on up to
// concurrency goroutines: the whole stream on one core, and the rest of a
// stream after a frame too large for frameReader's workers.
func streamDecoder(r io.Reader, concurrency int) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderConcurrency(concurrency))
}

// frameReader is the frame-parallel reader (see newZstdReader).
type frameReader struct {
	src     *bufio.Reader
	dec     *zstd.Decoder // DecodeAll, from several workers at once
	workers int
	jobs    chan frameJobIn
	order   chan chan frameOut // one channel per frame, in stream order
	quit    chan struct{}      // closed by close: every goroutine returns
	bufs    chan []byte        // recycled buffers (compressed and decompressed)
	wg      sync.WaitGroup     // the workers (close waits for them, not for split)

	// The reader's own state.
	cur    frameOut
	off    int
	stream *zstd.Decoder // set once the rest of the stream is read by one decoder
	err    error
	once   sync.Once
}

// frameJobIn is one frame for a worker.
type frameJobIn struct {
	frame []byte
	bound int // what it may decompress to, at most
	out   chan frameOut
}

// frameOut is a worker's result, or the splitter's last word: an error,
// or the rest of the stream to read with a streaming decoder.
type frameOut struct {
	data []byte
	buf  []byte // data's buffer at full capacity, to recycle
	err  error
	rest io.Reader
}

// buf returns a recycled buffer of capacity n or more, or a new one.
func (f *frameReader) buf(n int) []byte {
	select {
	case b := <-f.bufs:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, max(n, frameUnit+tarBlock))
}

// recycle keeps b for another frame, unless enough are kept.
func (f *frameReader) recycle(b []byte) {
	if cap(b) == 0 {
		return
	}
	select {
	case f.bufs <- b[:0]:
	default:
	}
}

// work decompresses frames until the splitter is done or the reader closed.
func (f *frameReader) work() {
	defer f.wg.Done()
	for {
		select {
		case <-f.quit:
			return
		case j, ok := <-f.jobs:
			if !ok {
				return
			}
			// The capacity caps the output (WithDecodeAllCapLimit).
			b := f.buf(j.bound)
			out, err := f.dec.DecodeAll(j.frame, b[:0:j.bound])
			f.recycle(j.frame)
			if err != nil {
				f.recycle(b)
				j.out <- frameOut{err: fmt.Errorf("zstd: %w", err)}
				continue
			}
			j.out <- frameOut{data: out, buf: b}
		}
	}
}

// split reads the stream frame by frame and hands each one to the workers,
// in order, until the end of the stream, an error, or a frame too large
// for a worker.
//
// close does not wait for it: it may be blocked reading a stalled source,
// and returns once that read does (the caller closes its source), touching
// nothing but its channels and the source after close.
func (f *frameReader) split() {
	defer close(f.jobs)
	for {
		frame, bound, err := f.readFrame()
		out := make(chan frameOut, 1)
		select {
		case f.order <- out:
		case <-f.quit:
			return
		}
		switch {
		case errors.Is(err, io.EOF) && frame == nil:
			out <- frameOut{err: io.EOF}
			return
		case errors.Is(err, errFrameTooLarge):
			// What was read of the frame, then the rest of the source.
			out <- frameOut{rest: io.MultiReader(bytes.NewReader(frame), f.src)}
			return
		case err != nil:
			out <- frameOut{err: err}
			return
		case frame == nil:
			close(out) // a skippable frame: nothing to return
			continue
		}
		select {
		case f.jobs <- frameJobIn{frame: frame, bound: bound, out: out}:
		case <-f.quit:
			return
		}
	}
}

// errFrameTooLarge ends the frame-parallel part of a stream (readFrame).
var errFrameTooLarge = errors.New("frame too large for a worker")

// Frame magic numbers (RFC 8878 3.1.1 and 3.1.2).
const (
	zstdFrameMagic     = 0xFD2FB528
	skippableMagicMask = 0xFFFFFFF0
	skippableMagic     = 0x184D2A50
)

// readFrame reads one whole frame from the source and returns its bytes and
// the most it may decompress to. A skippable frame is skipped (nil frame).
// At the end of the stream it returns (nil, 0, io.EOF). A frame whose bound
// or length passes maxParallelFrame stops the reading at that point and
// returns what was read of it with errFrameTooLarge. Malformed input gives
// an error that names it.
func (f *frameReader) readFrame() (frame []byte, bound int, err error) {
	var hdr [4]byte
	n, err := io.ReadFull(f.src, hdr[:])
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return nil, 0, io.EOF
	case err != nil:
		return nil, 0, truncated(err)
	}
	magic := binary.LittleEndian.Uint32(hdr[:])
	if magic&skippableMagicMask == skippableMagic {
		if _, err := io.ReadFull(f.src, hdr[:]); err != nil {
			return nil, 0, truncated(err)
		}
		size := int64(binary.LittleEndian.Uint32(hdr[:]))
		if k, err := f.src.Discard(int(size)); int64(k) != size {
			return nil, 0, truncated(err)
		}
		return nil, 0, nil
	}
	if magic != zstdFrameMagic {
		return nil, 0, errors.New("zstd: invalid input: magic number mismatch")
	}
	frame = f.buf(frameUnit + tarBlock + 256)
	frame = append(frame, hdr[:]...)
	fhd, err := f.src.ReadByte()
	if err != nil {
		return nil, 0, truncated(err)
	}
	frame = append(frame, fhd)
	single := fhd&0x20 != 0
	if fhd&0x08 != 0 {
		return nil, 0, errors.New("zstd: frame header reserved bit set")
	}
	rest := [4]int{0, 1, 2, 4}[fhd&3] // dictionary id
	if !single {
		rest++ // window descriptor
	}
	switch fcs := fhd >> 6; {
	case fcs == 0 && single:
		rest++
	case fcs > 0:
		rest += [4]int{0, 2, 4, 8}[fcs]
	}
	if frame, err = f.appendN(frame, rest); err != nil {
		return nil, 0, err
	}
	for {
		start := len(frame)
		if frame, err = f.appendN(frame, 3); err != nil {
			return nil, 0, err
		}
		bh := uint32(frame[start]) | uint32(frame[start+1])<<8 | uint32(frame[start+2])<<16
		last, size := bh&1 != 0, int(bh>>3)
		switch (bh >> 1) & 3 {
		case 0: // raw
			bound += size
		case 1: // RLE: one byte, repeated size times
			bound += size
			size = 1
		case 2: // compressed
			bound += maxBlockSize
		default:
			return nil, 0, errors.New("zstd: reserved block type")
		}
		if bound > maxParallelFrame || len(frame)+size > maxParallelFrame {
			return frame, 0, errFrameTooLarge
		}
		if frame, err = f.appendN(frame, size); err != nil {
			return nil, 0, err
		}
		if last {
			break
		}
	}
	if fhd&0x04 != 0 { // content checksum
		if frame, err = f.appendN(frame, 4); err != nil {
			return nil, 0, err
		}
	}
	return frame, bound, nil
}

// appendN appends the next n bytes of the source to b.
func (f *frameReader) appendN(b []byte, n int) ([]byte, error) {
	l := len(b)
	if cap(b)-l < n {
		nb := make([]byte, l, l+n+frameUnit/4)
		copy(nb, b)
		b = nb
	}
	b = b[:l+n]
	if _, err := io.ReadFull(f.src, b[l:]); err != nil {
		return nil, truncated(err)
	}
	return b, nil
}

// truncated turns the end of the source within a frame into
// io.ErrUnexpectedEOF; other errors (the source's) pass as they are.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Read returns the decompressed stream in order.
func (f *frameReader) Read(p []byte) (int, error) {
	for {
		if f.stream != nil {
			return f.stream.Read(p)
		}
		if f.err != nil {
			return 0, f.err
		}
		if f.off < len(f.cur.data) {
			n := copy(p, f.cur.data[f.off:])
			f.off += n
			return n, nil
		}
		f.recycle(f.cur.buf)
		f.cur, f.off = frameOut{}, 0
		out, ok := <-(<-f.order)
		if !ok {
			continue // a skipped frame
		}
		switch {
		case out.rest != nil:
			zr, err := streamDecoder(out.rest, f.workers)
			if err != nil {
				f.err = fmt.Errorf("zstd: %w", err)
				continue
			}
			f.stream = zr
		case out.err != nil:
			f.err = out.err
		default:
			f.cur = out
		}
	}
}

// close stops the workers, tells the splitter to stop, and releases the
// decoders.
func (f *frameReader) close() {
	f.once.Do(func() {
		close(f.quit)
		f.wg.Wait()
		f.dec.Close()
		if f.stream != nil {
			f.stream.Close()
		}
	})
}
