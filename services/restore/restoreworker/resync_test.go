package restoreworker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/services/restore/restoreworker"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// TestResyncWritesWhatTheSinkWrites checks that Resync copies the AUDIT
// stream into audit_logs exactly as the audit sink does — same rows, same
// stream sequences, same hash chain, a non-event message included — that
// it starts after the highest stored sequence, and that a second run, or
// the sink afterwards, adds nothing.
func TestResyncWritesWhatTheSinkWrites(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	b, _ := testkit.Bus(t)
	log := testkit.Logger(t)
	pub := audit.NewPublisher(b.JS, log)
	openDB := func(name string) *store.DB { // a SQLite System DB of its own; name is for the reader
		return testkit.SystemDB(t, testkit.Config(t, nil))
	}
	publish := func(from, n int) {
		for i := from; i < from+n; i++ {
			if err := pub.Publish(ctx, audit.Event{Actor: fmt.Sprintf("user%d@example.com", i), Role: "admin", Action: "test.resync",
				Resource: "test", Outcome: audit.Success, Detail: map[string]any{"i": i, "nested": map[string]any{"b": 2, "a": 1}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 5)
	// Not an event: the sink keeps a row for it.
	if _, err := b.JS.PublishMsg(ctx, &nats.Msg{Subject: "audit.test.garbage", Data: []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	publish(5, 5)

	resynced := openDB("resynced.db")
	// A first part stored, as the sink left it before a restore.
	n, err := restoreworker.Resync(ctx, b.JS, resynced, time.Second)
	if err != nil || n != 11 {
		t.Fatalf("resync: %d rows, %v; want 11", n, err)
	}
	publish(10, 4)
	if n, err = restoreworker.Resync(ctx, b.JS, resynced, time.Second); err != nil || n != 4 {
		t.Fatalf("second resync: %d rows, %v; want 4 (only the new events)", n, err)
	}
	if n, err = restoreworker.Resync(ctx, b.JS, resynced, time.Second); err != nil || n != 0 {
		t.Fatalf("third resync: %d rows, %v; want 0", n, err)
	}

	// The sink over the same stream into another database.
	sunk := openDB("sunk.db")
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = auditsink.Run(sctx, b.JS, sunk, log) }()
	deadline := time.Now().Add(30 * time.Second)
	for count(t, sunk) < 15 {
		if time.Now().After(deadline) {
			t.Fatalf("the sink stored %d rows, want 15", count(t, sunk))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done

	want := rowsOf(t, sunk)
	got := rowsOf(t, resynced)
	if len(got) != len(want) {
		t.Fatalf("resync stored %d rows, the sink %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n resync %s\n sink   %s", i, got[i], want[i])
		}
	}
	for _, db := range []*store.DB{resynced, sunk} {
		rep, err := auditsink.Verify(ctx, db)
		if err != nil || !rep.OK {
			t.Errorf("chain: %+v %v", rep, err)
		}
	}
}

func count(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRow(`SELECT count(*) FROM audit_logs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rowsOf renders audit_logs in stream order, database ids aside.
func rowsOf(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	err := db.EachAuditLog(context.Background(), func(r store.AuditLog) error {
		r.ID = 0
		out = append(out, fmt.Sprintf("%+v", r))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
