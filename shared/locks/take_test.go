package locks_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
)

// events collects what TakeOptions.Audit publishes.
type events struct {
	mu  sync.Mutex
	got []audit.Event
}

func (e *events) publish(_ context.Context, ev audit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.got {
		out = append(out, ev.Action)
	}
	return out
}

var (
	restoreHolder = locks.Holder{Owner: "restore-1", Operation: "restore.run"}
	backupHolder  = locks.Holder{Owner: "backup-1", Operation: "backup.create"}
)

// TestTakeWaitsOrFailsAsItsOptionsSay: the Wait option. Another
// operation holds system; it is released after releaseAfter (never when
// zero). Take succeeds when the release comes within Wait and otherwise
// returns the *HeldError naming the holder once Wait is over (at once for
// a zero Wait).
func TestTakeWaitsOrFailsAsItsOptionsSay(t *testing.T) {
	b, _ := testkit.Bus(t)
	for _, tc := range []struct {
		name         string
		wait         time.Duration
		releaseAfter time.Duration
		wantTaken    bool
		minElapsed   time.Duration
		maxElapsed   time.Duration
	}{
		{name: "no wait fails at once", wait: 0, maxElapsed: 2 * time.Second},
		{name: "negative wait fails at once", wait: -time.Second, maxElapsed: 2 * time.Second},
		{name: "wait ends with the holder named", wait: 400 * time.Millisecond, minElapsed: 400 * time.Millisecond, maxElapsed: 5 * time.Second},
		{name: "wait ends with the release", wait: 20 * time.Second, releaseAfter: 300 * time.Millisecond, wantTaken: true, minElapsed: 300 * time.Millisecond, maxElapsed: 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			held, err := locks.Acquire(ctx, b.Locks, locks.System, restoreHolder, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = held.Release(context.Background()) })
			if tc.releaseAfter > 0 {
				time.AfterFunc(tc.releaseAfter, func() { _ = held.Release(context.Background()) })
			}
			start := time.Now()
			set, err := locks.Take(ctx, b.Locks, []string{locks.System, locks.Target}, backupHolder, locks.TakeOptions{Wait: tc.wait, Poll: 50 * time.Millisecond})
			elapsed := time.Since(start)
			if tc.wantTaken {
				if err != nil || len(set) != 2 {
					t.Fatalf("Take: %v (%d leases)", err, len(set))
				}
				if err := set.Release(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				var he *locks.HeldError
				if !errors.As(err, &he) || !errors.Is(err, locks.ErrHeld) || he.Name != locks.System || he.Holder.Owner != restoreHolder.Owner {
					t.Fatalf("Take under a held lease: %v, want the *HeldError of %s", err, restoreHolder.Owner)
				}
				if hs, _ := locks.Holders(ctx, b.Locks, locks.Target); len(hs) != 0 {
					t.Errorf("a refused Take left the target lease held: %v", hs)
				}
			}
			if elapsed < tc.minElapsed || elapsed > tc.maxElapsed {
				t.Errorf("Take returned after %s, want between %s and %s", elapsed, tc.minElapsed, tc.maxElapsed)
			}
		})
	}
}

// TestTakePollAndReportEvery: with ReportEvery shorter than Poll, Progress
// is called once per try, so the number of calls over Wait follows Poll;
// with ReportEvery zero it is called once, since the holder never changes.
func TestTakePollAndReportEvery(t *testing.T) {
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	held, err := locks.Acquire(ctx, b.Locks, locks.Chroma, restoreHolder, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	for _, tc := range []struct {
		name        string
		poll        time.Duration
		reportEvery time.Duration
		min, max    int
	}{
		{name: "every try reported, fast poll", poll: 50 * time.Millisecond, reportEvery: time.Nanosecond, min: 6, max: 21},
		{name: "every try reported, slow poll", poll: 400 * time.Millisecond, reportEvery: time.Nanosecond, min: 2, max: 4},
		{name: "reported when the holder changes", poll: 50 * time.Millisecond, reportEvery: 0, min: 1, max: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			_, err := locks.Take(ctx, b.Locks, []string{locks.Chroma}, backupHolder, locks.TakeOptions{
				Wait: time.Second, Poll: tc.poll, ReportEvery: tc.reportEvery,
				Progress: func(_ context.Context, he *locks.HeldError) error {
					if he.Holder.Owner != restoreHolder.Owner {
						t.Errorf("progress told of holder %+v", he.Holder)
					}
					calls++
					return nil
				},
			})
			if !errors.Is(err, locks.ErrHeld) {
				t.Fatalf("Take: %v", err)
			}
			if calls < tc.min || calls > tc.max {
				t.Errorf("Progress called %d times in a 1s wait, want %d to %d", calls, tc.min, tc.max)
			}
		})
	}
}

// TestTakeProgressSeesEachHolderAndCanStopTheWait: with ReportEvery zero
// Progress hears of every new holder; its error ends the wait with it.
func TestTakeProgressSeesEachHolderAndCanStopTheWait(t *testing.T) {
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	first, err := locks.Acquire(ctx, b.Locks, locks.Target, restoreHolder, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	second := locks.Holder{Owner: "train-1", Operation: "chroma.train"}
	stop := errors.New("job cancelled")
	var seen []string
	_, err = locks.Take(ctx, b.Locks, []string{locks.Target}, backupHolder, locks.TakeOptions{
		Wait: 20 * time.Second, Poll: 20 * time.Millisecond,
		Progress: func(ctx context.Context, he *locks.HeldError) error {
			seen = append(seen, he.Holder.Owner)
			if len(seen) == 1 {
				// The first holder hands the lease to a second one.
				if err := first.Release(ctx); err != nil {
					return err
				}
				l, err := locks.Acquire(ctx, b.Locks, locks.Target, second, time.Second)
				if err != nil {
					return err
				}
				t.Cleanup(func() { _ = l.Release(context.Background()) })
				return nil
			}
			return stop
		},
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Take: %v, want Progress's error", err)
	}
	if len(seen) != 2 || seen[0] != restoreHolder.Owner || seen[1] != second.Owner {
		t.Errorf("Progress saw holders %v, want %s then %s", seen, restoreHolder.Owner, second.Owner)
	}
}

// TestTakeOverOwn: a lease left by the caller's own owner (an earlier
// attempt) is taken over with TakeOverOwn and is an ordinary held lease
// without it; the lease taken over carries the new holder.
func TestTakeOverOwn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		takeOver bool
	}{
		{name: "taken over", takeOver: true},
		{name: "held without the option", takeOver: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := testkit.Bus(t)
			ctx := context.Background()
			earlier := backupHolder
			earlier.Since = time.Now().Add(-time.Minute).UTC()
			old, err := locks.Acquire(ctx, b.Locks, locks.System, earlier, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = old.Release(context.Background()) })
			rec := &events{}
			set, err := locks.Take(ctx, b.Locks, []string{locks.System}, backupHolder, locks.TakeOptions{TakeOverOwn: tc.takeOver, Audit: rec.publish})
			if !tc.takeOver {
				var he *locks.HeldError
				if !errors.As(err, &he) || he.Holder.Owner != backupHolder.Owner {
					t.Fatalf("Take of its own lease without TakeOverOwn: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Take over its own lease: %v", err)
			}
			defer set.Release(ctx)
			hs, err := locks.Holders(ctx, b.Locks, locks.System)
			if err != nil || hs[locks.System].Owner != backupHolder.Owner || !hs[locks.System].Since.After(earlier.Since) {
				t.Errorf("holder after the take-over %+v (%v), want a new one of %s", hs, err, backupHolder.Owner)
			}
			if a := rec.actions(); len(a) != 0 {
				t.Errorf("a take-over is not a wait, audited %v", a)
			}
		})
	}
}

// TestTakeAuditsTheWait: Audit publishes one lock_wait for the blocking
// holder (as the holder's operation, backup.create audited as backup.*, and job) and, after the wait,
// lock_acquired; a Take that fails at once publishes only the lock_wait.
func TestTakeAuditsTheWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait time.Duration
		want []string
	}{
		{name: "waited then acquired", wait: 20 * time.Second, want: []string{"backup.lock_wait", "backup.lock_acquired"}},
		{name: "refused at once", wait: 0, want: []string{"backup.lock_wait"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := testkit.Bus(t)
			ctx := context.Background()
			held, err := locks.Acquire(ctx, b.Locks, locks.System, restoreHolder, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = held.Release(context.Background()) })
			time.AfterFunc(300*time.Millisecond, func() { _ = held.Release(context.Background()) })
			rec := &events{}
			set, err := locks.Take(ctx, b.Locks, []string{locks.System}, backupHolder, locks.TakeOptions{Wait: tc.wait, Poll: 20 * time.Millisecond, Audit: rec.publish})
			if err == nil {
				defer set.Release(ctx)
			}
			if got := rec.actions(); len(got) != len(tc.want) || got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1] {
				t.Fatalf("audited %v, want %v (Take: %v)", got, tc.want, err)
			}
			ev := rec.got[0]
			if ev.JobID != backupHolder.Owner || ev.Resource != locks.System || ev.Outcome != audit.Denied {
				t.Errorf("lock_wait event %+v", ev)
			}
		})
	}
}

// TestTakeRefreshesItsLeases: the Refresh option rewrites the lease at
// that interval.
func TestTakeRefreshesItsLeases(t *testing.T) {
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	set, err := locks.Take(ctx, b.Locks, []string{locks.Target}, backupHolder, locks.TakeOptions{Refresh: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Release(ctx)
	e, err := b.Locks.Get(ctx, locks.Target)
	if err != nil {
		t.Fatal(err)
	}
	first := e.Revision()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var rev uint64
		e, err := b.Locks.Get(ctx, locks.Target)
		if err == nil {
			rev = e.Revision()
		}
		if rev >= first+2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease was not refreshed twice in 5s at a 50ms refresh (revision %d, first %d, %v)", rev, first, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReleaseDetachedRunsAfterCancellation: a job whose context is
// cancelled still frees its leases.
func TestReleaseDetachedRunsAfterCancellation(t *testing.T) {
	b, _ := testkit.Bus(t)
	ctx, cancel := context.WithCancel(context.Background())
	set, err := locks.Take(ctx, b.Locks, locks.Order, backupHolder, locks.TakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := set.ReleaseDetached(ctx); err != nil {
		t.Fatalf("ReleaseDetached after cancellation: %v", err)
	}
	if hs, err := locks.Holders(context.Background(), b.Locks, locks.Order...); err != nil || len(hs) != 0 {
		t.Fatalf("holders after ReleaseDetached: %v %v", hs, err)
	}
}

// TestTakeLogsTakeOversAndWaits: the Log option hears of a lease taken
// over from an earlier attempt and of each reported wait, naming the
// lease and the holder.
func TestTakeLogsTakeOversAndWaits(t *testing.T) {
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	own, err := locks.Acquire(ctx, b.Locks, locks.System, backupHolder, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Release(context.Background()) })
	other, err := locks.Acquire(ctx, b.Locks, locks.Target, restoreHolder, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Release(context.Background()) })
	var buf bytes.Buffer
	_, err = locks.Take(ctx, b.Locks, []string{locks.System, locks.Target}, backupHolder, locks.TakeOptions{
		Wait: 100 * time.Millisecond, Poll: 20 * time.Millisecond, TakeOverOwn: true,
		Log: slog.New(slog.NewTextHandler(&buf, nil)),
	})
	if !errors.Is(err, locks.ErrHeld) {
		t.Fatalf("Take: %v", err)
	}
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="taking over a lease of an earlier attempt of this job" lock=system`,
		`level=INFO msg="waiting for a lock" lock=target holder=restore-1 operation=restore.run`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
