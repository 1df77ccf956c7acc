package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/jobs"
)

// jobPollEvery is how often WaitJob reads the record.
const jobPollEvery = 20 * time.Millisecond

// jobReadTimeout bounds one read of the record.
const jobReadTimeout = 10 * time.Second

// WaitJob reads job id's record from store (the JOB_PROGRESS bucket) every
// 20ms until cond holds for it, and returns that record. A failed read is
// tried again (a cluster may be electing a leader, a follower may not have
// the record yet). When within passes first, the test fails naming what
// (e.g. "the job to wait for the lock") with the last record read — state,
// step, attempt and error — and the last read's error, if any.
func WaitJob(t testing.TB, store *jobs.Store, id string, within time.Duration, what string, cond func(jobs.Record) bool) jobs.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	var last jobs.Record
	var read bool
	for {
		ctx, cancel := context.WithTimeout(context.Background(), jobReadTimeout)
		r, _, err := store.Get(ctx, id)
		cancel()
		if err == nil {
			if cond(r) {
				return r
			}
			last, read = r, true
		}
		if time.Now().After(deadline) {
			if !read {
				t.Fatalf("job %s: timed out after %s waiting for %s; no record read (last read error: %v)", id, within, what, err)
			}
			t.Fatalf("job %s: timed out after %s waiting for %s; last record read: state=%s step=%q attempt=%d error=%+v (last read error: %v)",
				id, within, what, last.State, last.Step, last.Attempt, last.Error, err)
		}
		time.Sleep(jobPollEvery)
	}
}

// WaitFinal waits, as WaitJob does, until job id's record in store is in
// a final state (succeeded, failed or cancelled) and returns it; when
// within passes first, the test fails with the last record read.
func WaitFinal(t testing.TB, store *jobs.Store, id string, within time.Duration) jobs.Record {
	t.Helper()
	return WaitJob(t, store, id, within, "a final state", func(r jobs.Record) bool { return r.State.Final() })
}
