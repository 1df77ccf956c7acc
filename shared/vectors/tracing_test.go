package vectors_test

import (
	"context"
	"testing"

	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/tracing"
	"github.com/insightops/insightops/shared/tracing/tracingtest"
	"github.com/insightops/insightops/shared/vectors"
)

// TestEachChromaBatchIsASpanOfTheCallersTrace: a sync writing 3 entries in
// batches of 2 then removing one makes two upsert batch spans and one
// delete batch span, children of the caller's span.
func TestEachChromaBatchIsASpanOfTheCallersTrace(t *testing.T) {
	srv := testkit.Chroma(t)
	rec := tracingtest.Record(t)
	c := newClient(t, srv.URL, vectors.NewLocal(0))
	ctx, parent := tracing.Start(context.Background(), "job chroma.train")
	if _, err := c.Sync(ctx, vectors.CollectionDDL, ddlDocs("alpha", "beta", "gamma"), 2, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(ctx, vectors.CollectionDDL, ddlDocs("alpha", "beta"), 2, nil); err != nil {
		t.Fatal(err)
	}
	parent.End()
	count := map[string]int{}
	for _, s := range rec.Ended() {
		if s.Name() == "job chroma.train" {
			continue
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %s is not a child of the caller's span", s.Name())
		}
		count[s.Name()]++
	}
	if count["chroma upsert batch"] != 2 || count["chroma delete batch"] != 1 {
		t.Fatalf("batch spans %v, want 2 upsert and 1 delete", count)
	}
}
