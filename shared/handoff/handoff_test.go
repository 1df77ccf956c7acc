package handoff

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestWritesInOrderAndStopsAtTheFirstFailure: items are written in the
// order they were handed over; after a failed write no more are taken,
// Put and Finish return that error, and only the items before it were
// written. Item i weighs i+1.
func TestWritesInOrderAndStopsAtTheFirstFailure(t *testing.T) {
	boom := errors.New("write refused")
	for _, queue := range []int{0, 1} {
		for _, tc := range []struct {
			failAt         int // the write that fails; -1: none
			writes, weight int
		}{
			{failAt: 0, writes: 1, weight: 0},
			{failAt: 1, writes: 2, weight: 1},
			{failAt: 3, writes: 4, weight: 1 + 2 + 3},
			{failAt: -1, writes: 5, weight: 1 + 2 + 3 + 4 + 5},
		} {
			t.Run(fmt.Sprintf("queue %d, fail at %d", queue, tc.failAt), func(t *testing.T) {
				var order []int
				weight := 0
				w := Start(queue, func(i int) error {
					order = append(order, i)
					if len(order)-1 == tc.failAt {
						return boom
					}
					weight += i + 1
					return nil
				})
				var accepted []int
				for i := range 5 {
					if err := w.Put(context.Background(), i); err == nil {
						accepted = append(accepted, i)
					} else if !errors.Is(err, boom) {
						t.Fatalf("Put: %v, want the write's error", err)
					}
				}
				err := w.Finish()
				if !slices.Equal(order, accepted[:len(order)]) {
					t.Fatalf("written %v, handed over %v", order, accepted)
				}
				if len(order) != tc.writes || weight != tc.weight || (tc.failAt >= 0) != errors.Is(err, boom) {
					t.Fatalf("%d writes, weight %d, %v; want %d writes, weight %d, failure %v", len(order), weight, err, tc.writes, tc.weight, tc.failAt >= 0)
				}
			})
		}
	}
}

// TestPutStopsWhenTheContextEnds: a Put waiting for a busy writer returns
// when its context ends.
func TestPutStopsWhenTheContextEnds(t *testing.T) {
	release := make(chan struct{})
	w := Start(0, func(int) error { <-release; return nil })
	if err := w.Put(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Put(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with an ended context: %v", err)
	}
	close(release)
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
}
