package durable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// copyBuffer and copyBuffers size Copy's pipeline: reads and writes move in
// blocks of copyBuffer bytes, and at most copyBuffers of them are in
// flight (2 MiB in all, whatever the length of the copy). Blocks this
// small are still in the CPU's cache when they are written (measured here:
// writing 1 GiB into the page cache takes 0.16 s in 128 KiB writes and
// 0.7 to 1.2 s in 4 MiB ones). Writeback is started every writebackEvery
// bytes.
const (
	copyBuffer     = 256 << 10
	copyBuffers    = 8
	writebackEvery = 8 << 20
)

// Copy writes everything r yields into f from f's current offset and
// returns the number of bytes written. Reading and writing overlap: the
// caller's goroutine reads r (a decompressor, say) into a few large
// buffers while another goroutine writes them to f. Each written block is
// handed to the kernel's writeback at once (sync_file_range on Linux, a
// no-op elsewhere), so the data reaches the disk while the copy goes on and
// the caller's final fsync, which Copy does not do, finds little left to
// flush. A read or write error, or ctx ending, stops the copy and is
// returned with what was written so far left in f.
func Copy(ctx context.Context, f *os.File, r io.Reader) (int64, error) {
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("copy into %s: %w", f.Name(), err)
	}
	free := make(chan []byte, copyBuffers)
	for range copyBuffers {
		free <- make([]byte, copyBuffer)
	}
	full := make(chan []byte, copyBuffers)
	var (
		written int64
		werr    error
	)
	done := make(chan struct{})   // closed when the writer has returned
	failed := make(chan struct{}) // closed when werr is set
	go func() {
		defer close(done)
		var flushed int64 // written bytes whose writeback was started
		for b := range full {
			if werr == nil && ctx.Err() == nil {
				n, err := f.Write(b)
				written += int64(n)
				if err == nil && written-flushed >= writebackEvery {
					if err = startWriteback(f, start+flushed, written-flushed); err != nil {
						err = fmt.Errorf("start writeback of %s: %w", f.Name(), err)
					}
					flushed = written
				} else if err != nil {
					err = fmt.Errorf("write %s: %w", f.Name(), err)
				}
				if err != nil {
					werr = err
					close(failed)
				}
			}
			free <- b[:cap(b)]
		}
	}()
	rerr := func() error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			var b []byte
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-failed:
				return nil // the writer's error is returned
			case b = <-free:
			}
			n, err := io.ReadFull(r, b)
			if n > 0 {
				full <- b[:n]
			}
			switch {
			case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) && n > 0:
				return nil
			case err != nil:
				return err
			}
		}
	}()
	close(full)
	<-done
	if werr != nil {
		return written, werr
	}
	return written, rerr
}
