package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
)

func TestStateMachineOnlyMovesForward(t *testing.T) {
	t.Parallel()
	all := []jobs.State{jobs.Queued, jobs.Running, jobs.Succeeded, jobs.Failed, jobs.Cancelled}
	allowed := map[[2]jobs.State]bool{
		{jobs.Queued, jobs.Queued}: true, {jobs.Queued, jobs.Running}: true, {jobs.Queued, jobs.Cancelled}: true, {jobs.Queued, jobs.Failed}: true,
		{jobs.Running, jobs.Running}: true, {jobs.Running, jobs.Succeeded}: true, {jobs.Running, jobs.Failed}: true, {jobs.Running, jobs.Cancelled}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got, want := jobs.CanTransition(from, to), allowed[[2]jobs.State{from, to}]; got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestAuditActionDropsGenericVerbs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ kind, phase, want string }{
		{jobs.KindBackupCreate, "requested", "backup.requested"},
		{jobs.KindInit, "succeeded", "init.succeeded"},
		{jobs.KindBackupVerify, "started", "backup.verify.started"},
		{jobs.KindChromaClear, "failed", "chroma.clear.failed"},
	} {
		if got := jobs.AuditAction(tc.kind, tc.phase); got != tc.want {
			t.Errorf("AuditAction(%s, %s) = %s, want %s", tc.kind, tc.phase, got, tc.want)
		}
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	p := jobs.NewPublisher(b.JS, store, 3)
	rec, _, err := p.Submit(context.Background(), jobs.Submission{Args: jobspec.InitArgs{}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := store.Update(context.Background(), rec.ID, func(r *jobs.Record) error { r.Progress++; return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _, err := store.Get(context.Background(), rec.ID)
	if err != nil || got.Progress != 40 {
		t.Fatalf("progress %d after 40 concurrent increments (err %v)", got.Progress, err)
	}
}

func TestFinalRecordRefusesChange(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	rec, _, err := jobs.NewPublisher(b.JS, store, 3).Submit(context.Background(), jobs.Submission{Args: jobspec.InitArgs{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Cancel(context.Background(), rec.ID); err != nil {
		t.Fatal(err)
	}
	_, err = store.Update(context.Background(), rec.ID, func(r *jobs.Record) error { r.State = jobs.Running; return nil })
	if !errors.Is(err, jobs.ErrTransition) {
		t.Fatalf("cancelled → running: %v, want ErrTransition", err)
	}
}

func TestIdempotencyKeyGivesOneJobEvenUnderRace(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	p := jobs.NewPublisher(b.JS, store, 3)
	ids := make(chan string, 20)
	created := make(chan bool, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			rec, c, err := p.Submit(context.Background(), jobs.Submission{Args: jobspec.InitArgs{}, SubmittedBy: "a@example.com", IdempotencyKey: "k-1"})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- rec.ID
			created <- c
		})
	}
	wg.Wait()
	close(ids)
	close(created)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if len(seen) != 1 || n != 1 {
		t.Fatalf("%d distinct jobs, %d created, want 1 and 1", len(seen), n)
	}
	// Another submitter, or another kind, with the same key is another job.
	other, c, err := p.Submit(context.Background(), jobs.Submission{Args: jobspec.InitArgs{}, SubmittedBy: "b@example.com", IdempotencyKey: "k-1"})
	if err != nil || !c || seen[other.ID] {
		t.Fatalf("other submitter got %s created=%v err=%v", other.ID, c, err)
	}
	s, _ := b.JS.Stream(context.Background(), "JOBS")
	info, _ := s.Info(context.Background())
	if info.State.Msgs != 2 {
		t.Fatalf("JOBS holds %d commands, want 2", info.State.Msgs)
	}
	list, err := store.List(context.Background(), jobs.Filter{Kind: jobs.KindInit})
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %d records (%v), want 2 (idempotency keys are not jobs)", len(list), err)
	}
}

func TestListFiltersNewestFirst(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	p := jobs.NewPublisher(b.JS, store, 3)
	var ids []string
	for _, k := range []jobs.Args{jobspec.InitArgs{}, jobspec.BackupCreateArgs{}, jobspec.InitArgs{}} {
		r, _, err := p.Submit(context.Background(), jobs.Submission{Args: k, SubmittedBy: fmt.Sprintf("user%d@example.com", len(ids)%2)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if _, err := store.Cancel(context.Background(), ids[2]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    jobs.Filter
		want []string
	}{
		{"all", jobs.Filter{}, []string{ids[2], ids[1], ids[0]}},
		{"by kind", jobs.Filter{Kind: jobs.KindInit}, []string{ids[2], ids[0]}},
		{"by state", jobs.Filter{State: jobs.Queued}, []string{ids[1], ids[0]}},
		{"limit", jobs.Filter{Limit: 1}, []string{ids[2]}},
		{"offset", jobs.Filter{Limit: 1, Offset: 1}, []string{ids[1]}},
		{"offset past the end", jobs.Filter{Offset: 3}, []string{}},
		{"by submitter", jobs.Filter{SubmittedBy: "user0@example.com"}, []string{ids[2], ids[0]}},
		{"since", jobs.Filter{Since: time.Now().Add(-time.Hour)}, []string{ids[2], ids[1], ids[0]}},
		{"until", jobs.Filter{Until: time.Now().Add(-time.Hour)}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.List(context.Background(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i].ID != tc.want[i] {
					t.Fatalf("record %d = %s, want %s", i, got[i].ID, tc.want[i])
				}
			}
		})
	}
}

// TestListKeepsTheNewestPageOfMany lists a page out of far more records
// than List keeps in memory at once (it trims while it reads).
func TestListKeepsTheNewestPageOfMany(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	ctx := context.Background()
	var ids []string
	for range 300 {
		now := time.Now().UTC()
		r := jobs.Record{ID: jobs.NewID(), Kind: jobs.KindInit, State: jobs.Queued, MaxAttempts: 1, CreatedAt: now, UpdatedAt: now}
		if _, err := store.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	got, err := store.List(ctx, jobs.Filter{Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("got %d records, want 7", len(got))
	}
	for i := range got {
		if got[i].ID != ids[i] {
			t.Fatalf("record %d = %s, want %s", i, got[i].ID, ids[i])
		}
	}
}

func TestGetRejectsInvalidIDs(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	for _, id := range []string{"", "../etc", "idem.abc", "01JD", "*", ">"} {
		if _, _, err := store.Get(context.Background(), id); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestIdempotencyKeyWithOtherParamsIsAConflict(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	p := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), 3)
	first, _, err := p.Submit(context.Background(), jobs.Submission{Args: jobspec.BackupCreateArgs{Note: "a"}, IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Submit(context.Background(), jobs.Submission{Args: jobspec.BackupCreateArgs{Note: "b"}, IdempotencyKey: "k"})
	if !errors.Is(err, jobs.ErrIdempotencyConflict) || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("reuse with other params: %v", err)
	}
}

func TestWatchEndsAtTheFinalState(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	rec, _, err := jobs.NewPublisher(b.JS, store, 3).Submit(context.Background(), jobs.Submission{Args: jobspec.InitArgs{}})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := store.Watch(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(context.Background(), rec.ID, func(r *jobs.Record) error { r.State = jobs.Running; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(context.Background(), rec.ID, func(r *jobs.Record) error { r.State = jobs.Succeeded; return nil }); err != nil {
		t.Fatal(err)
	}
	var states []jobs.State
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				if len(states) != 3 || states[0] != jobs.Queued || states[2] != jobs.Succeeded {
					t.Fatalf("states %v", states)
				}
				return
			}
			states = append(states, r.State)
		case <-timeout:
			t.Fatalf("watch did not close; saw %v", states)
		}
	}
}

// TestKeyedSubmissionWhosePublishFailedIsPublishedByItsRetry fills JOBS so
// the first publish fails after the record is written; the retry with the
// same key publishes the very same job, and counts as its creation (the
// first caller was refused, so nobody was told the job was accepted); a
// further retry, after the command is out, is a replay.
func TestKeyedSubmissionWhosePublishFailedIsPublishedByItsRetry(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	store := jobs.NewStore(b.Jobs)
	p := jobs.NewPublisher(b.JS, store, 3)
	s, err := b.JS.Stream(ctx, "JOBS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew
	if _, err := b.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Submit(ctx, jobs.Submission{Args: jobspec.InitArgs{}}); err != nil {
		t.Fatal(err)
	}
	first, _, err := p.Submit(ctx, jobs.Submission{Args: jobspec.InitArgs{}, IdempotencyKey: "retry-me"})
	if !errors.Is(err, jobs.ErrUnavailable) {
		t.Fatalf("publish into a full stream: %v", err)
	}
	if r, _, _ := store.Get(ctx, first.ID); r.State != jobs.Queued {
		t.Fatalf("keyed job after a failed publish is %s, want queued", r.State)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	again, created, err := p.Submit(ctx, jobs.Submission{Args: jobspec.InitArgs{}, IdempotencyKey: "retry-me"})
	if err != nil || !created || again.ID != first.ID {
		t.Fatalf("retry: id %s (first %s) created=%v err=%v, want the first job, created by this retry", again.ID, first.ID, created, err)
	}
	replay, created, err := p.Submit(ctx, jobs.Submission{Args: jobspec.InitArgs{}, IdempotencyKey: "retry-me"})
	if err != nil || created || replay.ID != first.ID {
		t.Fatalf("second retry: id %s (first %s) created=%v err=%v, want a replay of the first job", replay.ID, first.ID, created, err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("JOBS holds %d commands after the retry, want 1", info.State.Msgs)
	}
	// An unkeyed submission that cannot be published is failed at once.
	lost, _, err := p.Submit(ctx, jobs.Submission{Args: jobspec.InitArgs{}})
	if !errors.Is(err, jobs.ErrUnavailable) {
		t.Fatalf("unkeyed publish into a full stream: %v", err)
	}
	if r, _, _ := store.Get(ctx, lost.ID); r.State != jobs.Failed || r.Error == nil || r.Error.Code != jobs.CodeDispatchFailed {
		t.Fatalf("unkeyed undispatched job: %s %+v", r.State, r.Error)
	}
}
