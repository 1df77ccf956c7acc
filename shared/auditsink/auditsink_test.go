package auditsink_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

func TestSinkStoresEachEventOnceInStreamOrderAndVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			db := d.SystemDB(t)
			b, _ := testkit.Bus(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pub := audit.NewPublisher(b.JS, testkit.Logger(t))
			var ids []string
			for i := range 20 {
				e := audit.Event{ID: fmt.Sprintf("01JD%022d", i), Actor: "a@example.com", Action: "backup.requested", Resource: "backup",
					Outcome: audit.Success, Detail: map[string]any{"n": i, "zeta": "z", "alpha": []any{1, "two"}}}
				if err := pub.Publish(ctx, e); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, e.ID)
			}
			// A retried publish of the same event is stored once by the stream.
			if err := pub.Publish(ctx, audit.Event{ID: ids[3], Action: "backup.requested", Resource: "backup"}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- auditsink.Run(ctx, b.JS, db, testkit.Logger(t)) }()
			waitRows(t, db, 20)
			var seen []string
			if err := db.EachAuditLog(context.Background(), func(r store.AuditLog) error { seen = append(seen, r.EventID); return nil }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(seen) != fmt.Sprint(ids) {
				t.Fatalf("rows in stream order %v, want %v", seen, ids)
			}
			rep, err := auditsink.Verify(context.Background(), db)
			if err != nil || !rep.OK || rep.Rows != 20 {
				t.Fatalf("verify of an intact chain: %+v %v", rep, err)
			}
			cancel()
			<-done

			// Alter one row by hand: Verify names it.
			if _, err := db.SQL.Exec(db.Rebind(`UPDATE audit_logs SET actor = ? WHERE event_id = ?`), "mallory@example.com", ids[7]); err != nil {
				t.Fatal(err)
			}
			rep, err = auditsink.Verify(context.Background(), db)
			if err != nil || rep.OK || rep.Broken == nil || rep.Broken.EventID != ids[7] {
				t.Fatalf("verify after altering %s: %+v %v", ids[7], rep, err)
			}
			// Delete a row instead: the next row's link breaks.
			if _, err := db.SQL.Exec(db.Rebind(`UPDATE audit_logs SET actor = ? WHERE event_id = ?`), "a@example.com", ids[7]); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL.Exec(db.Rebind(`DELETE FROM audit_logs WHERE event_id = ?`), ids[12]); err != nil {
				t.Fatal(err)
			}
			rep, _ = auditsink.Verify(context.Background(), db)
			if rep.OK || rep.Broken.EventID != ids[13] {
				t.Fatalf("verify after deleting %s: %+v", ids[12], rep.Broken)
			}
		})
	}
}

// TestSinkRestartWritesNothingTwice runs the sink until it has stored and
// acknowledged five events, then replays the stream from the start through
// a fresh consumer and runs the sink until that consumer has acknowledged
// all five too (the sink acknowledges an event only after store1 returned,
// so the replay provably went through every event): still five rows, and
// the chain verifies.
func TestSinkRestartWritesNothingTwice(t *testing.T) {
	t.Parallel()
	db := testkit.SQLite.SystemDB(t)
	b, _ := testkit.Bus(t)
	pub := audit.NewPublisher(b.JS, testkit.Logger(t))
	const n = 5
	run := func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- auditsink.Run(ctx, b.JS, db, testkit.Logger(t)) }()
		waitAcked(t, b.JS, n)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("sink: %v", err)
		}
	}
	for range n {
		if err := pub.Publish(context.Background(), audit.Event{Action: "auth.login", Resource: "auth", Outcome: audit.Failure}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	waitRows(t, db, n)
	// Replay the stream from the start through a fresh consumer: the rows
	// are already there and nothing is written twice.
	if err := b.JS.DeleteConsumer(context.Background(), "AUDIT", auditsink.Consumer); err != nil {
		t.Fatal(err)
	}
	run()
	rows, err := db.AuditLogs(context.Background(), store.AuditFilter{})
	if err != nil || len(rows) != n {
		t.Fatalf("%d rows after a replay of %d events (%v), want %d", len(rows), n, err, n)
	}
	if rep, _ := auditsink.Verify(context.Background(), db); !rep.OK {
		t.Fatalf("chain after replay: %+v", rep.Broken)
	}
}

// waitAcked waits until the sink's consumer has delivered and acknowledged
// n events with none pending or outstanding.
func waitAcked(t *testing.T, js jetstream.JetStream, n uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ci, err := js.Consumer(context.Background(), "AUDIT", auditsink.Consumer)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = ci.Info(context.Background())
		}
		if err == nil && info.AckFloor.Consumer >= n && info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink's consumer did not acknowledge %d events in 30s: %+v %v", n, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitRows(t *testing.T, db *store.DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, err := db.AuditLogs(context.Background(), store.AuditFilter{Limit: 1000})
		if err == nil && len(rows) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d audit rows after 10s, want %d (%v)", len(rows), n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
