package backupstore

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// TestStalledReadFailsInsteadOfWaitingForEver: a read that gets no data
// within the stall timeout returns ErrStalled (the object store's chunk
// consumer can vanish under a cluster restart), while time the caller
// spends between reads never counts as a stall.
func TestStalledReadFailsInsteadOfWaitingForEver(t *testing.T) {
	t.Parallel()
	const stall = 200 * time.Millisecond
	src := newChanReader()
	r := newStallReader(src, stall)

	// Each chunk is there before its Read starts, so no scheduling delay
	// of a busy machine can make a read with data look stalled.
	src.data <- []byte("chunk")
	buf := make([]byte, 16)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "chunk" {
		t.Fatalf("first read = %q, %v", buf[:n], err)
	}
	time.Sleep(3 * stall) // the caller is busy between reads: not a stall
	src.data <- []byte("more")
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "more" {
		t.Fatalf("read after a slow caller = %q, %v", buf[:n], err)
	}

	done := make(chan error, 1)
	go func() { _, err := r.Read(buf); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStalled) {
			t.Fatalf("stalled read returned %v, want ErrStalled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a read with no data never returned")
	}
	if _, err := r.Read(buf); !errors.Is(err, ErrStalled) {
		t.Fatalf("read after a stall returned %v, want ErrStalled", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close after a stall: %v", err)
	}
}

// chanReader reads the chunks sent on data, one per Read; Close ends a
// blocked Read, as closing the object store's reader does.
type chanReader struct {
	data   chan []byte
	closed chan struct{}
	once   sync.Once
}

func newChanReader() *chanReader {
	return &chanReader{data: make(chan []byte, 4), closed: make(chan struct{})}
}

func (c *chanReader) Read(p []byte) (int, error) {
	select {
	case b := <-c.data:
		return copy(p, b), nil
	case <-c.closed:
		return 0, io.ErrClosedPipe
	}
}

func (c *chanReader) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
