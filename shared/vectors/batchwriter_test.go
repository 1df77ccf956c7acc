package vectors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestBatchWriterWritesInOrderAndStopsAtTheFirstFailure: Import's writer
// writes the batches in the order they were handed over, counts only the
// written ones, and after a failed write takes no more and returns it.
// Batch i holds i+1 records.
func TestBatchWriterWritesInOrderAndStopsAtTheFirstFailure(t *testing.T) {
	boom := errors.New("upsert refused")
	for _, tc := range []struct {
		failAt         int // the write that fails; -1: none
		writes, record int
	}{
		{failAt: 0, writes: 1, record: 0},
		{failAt: 1, writes: 2, record: 1},
		{failAt: 3, writes: 4, record: 1 + 2 + 3},
		{failAt: -1, writes: 5, record: 1 + 2 + 3 + 4 + 5},
	} {
		t.Run(fmt.Sprintf("fail at %d", tc.failAt), func(t *testing.T) {
			var order []string
			w := startBatchWriter(context.Background(), func(_ context.Context, b importBatch) error {
				order = append(order, b.ids[0])
				if len(order)-1 == tc.failAt {
					return boom
				}
				return nil
			})
			var accepted []string
			for i := range 5 {
				b := importBatch{}
				for j := range i + 1 {
					b.add(Record{ID: fmt.Sprintf("b%d-%d", i, j), Embedding: []float32{1}})
				}
				if w.put(b) {
					accepted = append(accepted, b.ids[0])
				}
			}
			n, err := w.finish()
			if !slices.Equal(order, accepted) {
				t.Fatalf("written %v, handed over %v", order, accepted)
			}
			if len(order) != tc.writes || n != tc.record || (tc.failAt >= 0) != errors.Is(err, boom) {
				t.Fatalf("%d writes, %d records, %v; want %d writes, %d records, failure %v", len(order), n, err, tc.writes, tc.record, tc.failAt >= 0)
			}
		})
	}
}
