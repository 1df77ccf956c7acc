package backupstore

import (
	"errors"
	"io"
	"testing"
	"time"
)

// TestStalledReadFailsInsteadOfWaitingForEver: a read that gets no data
// within the stall timeout returns ErrStalled (the object store's chunk
// consumer can vanish under a cluster restart), while time the caller
// spends between reads never counts as a stall.
func TestStalledReadFailsInsteadOfWaitingForEver(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	r := newStallReader(pr, 200*time.Millisecond)

	go func() { _, _ = pw.Write([]byte("chunk")) }()
	buf := make([]byte, 16)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "chunk" {
		t.Fatalf("first read = %q, %v", buf[:n], err)
	}
	time.Sleep(500 * time.Millisecond) // the caller is busy: not a stall
	go func() { _, _ = pw.Write([]byte("more")) }()
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
