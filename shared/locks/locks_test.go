package locks_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
)

func TestSecondHolderIsRefusedWithTheHolderNamed(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	l, err := locks.Acquire(ctx, b.Locks, locks.System, locks.Holder{Owner: "job-1", Operation: "restore.run"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = locks.Acquire(ctx, b.Locks, locks.System, locks.Holder{Owner: "job-2", Operation: "backup.create"}, time.Second)
	var he *locks.HeldError
	if !errors.As(err, &he) || !errors.Is(err, locks.ErrHeld) || he.Holder.Owner != "job-1" || he.Holder.Operation != "restore.run" {
		t.Fatalf("second acquire: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l2, err := locks.Acquire(ctx, b.Locks, locks.System, locks.Holder{Owner: "job-2"}, time.Second)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	_ = l2.Release(ctx)
}

// releasedBeforeGet is the real LOCKS bucket where the holder releases its
// lease just after Acquire's Create found it held and before Acquire reads
// who holds it: the interleaving that once audited a wait on nobody.
type releasedBeforeGet struct {
	jetstream.KeyValue
	release func()
	once    sync.Once
}

func (r *releasedBeforeGet) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	r.once.Do(r.release)
	return r.KeyValue.Get(ctx, key)
}

// TestLeaseReleasedWhileRefusedIsTakenNotReportedHeld: when the holder
// releases between Acquire's Create and its read of the holder, Acquire
// takes the lease instead of returning a HeldError that names nobody.
func TestLeaseReleasedWhileRefusedIsTakenNotReportedHeld(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	first, err := locks.Acquire(ctx, b.Locks, locks.Target, locks.Holder{Owner: "job-1", Operation: "restore.run"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kv := &releasedBeforeGet{KeyValue: b.Locks, release: func() {
		if err := first.Release(ctx); err != nil {
			t.Error(err)
		}
	}}
	l, err := locks.Acquire(ctx, kv, locks.Target, locks.Holder{Owner: "job-2", Operation: "backup.create"}, time.Second)
	if err != nil {
		t.Fatalf("acquire while the holder released: %v, want the lease", err)
	}
	defer func() { _ = l.Release(ctx) }()
	e, err := b.Locks.Get(ctx, locks.Target)
	if err != nil || !strings.Contains(string(e.Value()), `"job-2"`) {
		t.Fatalf("lease %s: %v, want job-2's", e.Value(), err)
	}
}

func TestAcquireAllIsAllOrNothing(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	chroma, err := locks.Acquire(ctx, b.Locks, locks.Chroma, locks.Holder{Owner: "train"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locks.AcquireAll(ctx, b.Locks, []string{locks.Chroma, locks.System, locks.Target}, locks.Holder{Owner: "restore"}, time.Second); !errors.Is(err, locks.ErrHeld) {
		t.Fatalf("AcquireAll with chroma held: %v", err)
	}
	held, err := locks.Holders(ctx, b.Locks, locks.Order...)
	if err != nil || len(held) != 1 || held[locks.Chroma].Owner != "train" {
		t.Fatalf("after a refused AcquireAll the holders are %v (%v), want only chroma", held, err)
	}
	_ = chroma.Release(ctx)
	set, err := locks.AcquireAll(ctx, b.Locks, locks.Order, locks.Holder{Owner: "restore"}, time.Second)
	if err != nil || len(set) != 3 {
		t.Fatalf("AcquireAll: %v", err)
	}
	if err := set.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCrashedHolderLeaseExpires: a holder that stops refreshing (crashed)
// loses the lease after the bucket TTL, and a refreshing one keeps it. The
// TTL is 3 s against a refresh every 200 ms, so a live holder survives a
// 2.8 s stall of a busy machine; the test waits for the crashed key to
// expire (polling) instead of sleeping a fixed time, and the live lease,
// taken before the crashed key was written, has by then outlived a TTL.
func TestCrashedHolderLeaseExpiresAndALiveOneIsKept(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	js, _ := jetstream.New(testkit.Connect(t, ns))
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "LOCKS", TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	live, err := locks.Acquire(ctx, kv, locks.Target, locks.Holder{Owner: "live"}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// A crashed holder: the key written, nobody refreshing it.
	if _, err := kv.Create(ctx, locks.System, []byte(`{"owner":"crashed"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kv.Get(ctx, locks.System)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("crashed holder's key still there 30s after it was written (TTL 3s)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	l, err := locks.Acquire(ctx, kv, locks.System, locks.Holder{Owner: "next"}, 200*time.Millisecond)
	if err != nil {
		t.Fatalf("crashed holder's lease still held after its TTL: %v", err)
	}
	_ = l.Release(ctx)
	if _, err := locks.Acquire(ctx, kv, locks.Target, locks.Holder{Owner: "thief"}, time.Second); !errors.Is(err, locks.ErrHeld) {
		t.Fatalf("a refreshed lease was taken: %v", err)
	}
	if live.Err() != nil {
		t.Fatalf("live lease lost: %v", live.Err())
	}
	_ = live.Release(ctx)
}

func TestReleaseDoesNotDeleteSomeoneElsesLease(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	l, err := locks.Acquire(ctx, b.Locks, locks.Chroma, locks.Holder{Owner: "a"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Someone force-takes the key (e.g. after an expiry the old holder missed).
	if err := b.Locks.Delete(ctx, locks.Chroma); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Locks.Create(ctx, locks.Chroma, []byte(`{"owner":"b"}`)); err != nil {
		t.Fatal(err)
	}
	_ = l.Release(ctx)
	held, _ := locks.Holders(ctx, b.Locks, locks.Chroma)
	if held[locks.Chroma].Owner != "b" {
		t.Fatalf("release removed b's lease: %v", held)
	}
}
