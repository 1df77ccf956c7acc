// Package handoff runs a pipeline's last stage on a goroutine of its own:
// the caller hands over items (an archive part, a batch of records) and
// goes on producing the next while the previous ones are written, in the
// order they were handed over, stopping at the first write that fails.
package handoff

import "context"

// Writer writes the items handed to Put, in order, on its goroutine.
type Writer[T any] struct {
	items  chan T
	failed chan struct{} // closed when err is set
	done   chan struct{} // closed when the goroutine has returned
	err    error
}

// Start starts a Writer calling write for each item; up to queue items
// may wait (0: Put waits until write takes the item).
func Start[T any](queue int, write func(T) error) *Writer[T] {
	w := &Writer[T]{items: make(chan T, queue), failed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for it := range w.items {
			if err := write(it); err != nil {
				w.err = err
				close(w.failed) // Put takes nothing more; queued items are dropped
				return
			}
		}
	}()
	return w
}

// Put hands it over. Once a write has failed it returns that error (it is
// dropped); it returns ctx's error when ctx ends first.
func (w *Writer[T]) Put(ctx context.Context, it T) error {
	select {
	case <-w.failed:
		return w.err
	default:
	}
	select {
	case w.items <- it:
		return nil
	case <-w.failed:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Finish waits until every item handed over is written (or the first
// write failed) and returns the first write error.
func (w *Writer[T]) Finish() error {
	close(w.items)
	<-w.done
	return w.err
}
