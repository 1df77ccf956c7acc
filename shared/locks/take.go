package locks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
)

// Defaults of TakeOptions.
const (
	// DefaultPoll is how often Take tries the leases again while it waits.
	DefaultPoll = 500 * time.Millisecond
	// ReleaseTimeout bounds ReleaseDetached.
	ReleaseTimeout = 10 * time.Second
)

// TakeOptions is an operation's lease policy: how long it waits for a
// lease another operation holds, how it reports and audits the wait, and
// whether it takes over a lease its own earlier attempt left behind. The
// zero value takes the leases or fails at once, refreshing them every
// second, and neither reports nor audits.
type TakeOptions struct {
	// Refresh is the lease refresh interval (keep it well under the
	// bucket's TTL); zero or negative is one second.
	Refresh time.Duration
	// Wait is how long Take keeps trying while another operation holds a
	// lease; zero or negative fails at the first refusal.
	Wait time.Duration
	// Poll is how often Take tries again while it waits (DefaultPoll when
	// zero or negative); the last try is at the end of Wait.
	Poll time.Duration
	// TakeOverOwn deletes a lease whose holder has the caller's Owner (an
	// earlier attempt of the same job whose worker died holding it) and
	// tries again, instead of treating it as held. Each lease is taken
	// over at most once per call.
	TakeOverOwn bool
	// Progress, when set, is told who blocks the wait; it may return an
	// error (a cancelled job) to stop waiting with that error. It is not
	// called when Wait is zero.
	Progress func(ctx context.Context, held *HeldError) error
	// ReportEvery: when zero, Progress is called each time the blocking
	// holder changes; when positive, at most once per ReportEvery (the
	// first time at once), whether or not the holder changed.
	ReportEvery time.Duration
	// Audit, when set, publishes the wait as <Holder.Operation>.lock_wait
	// (once per blocking holder) and <Holder.Operation>.lock_acquired
	// (after a wait) with Holder.Owner as the job id; see WaitAuditor.
	Audit func(context.Context, audit.Event)
	// Log receives take-overs and waits (the job's logger, which carries
	// its job_id); nil logs nothing.
	Log *slog.Logger
}

// Take takes the leases names for h (AcquireAll, so in Order and all or
// nothing) under the policy o. A lease another operation still holds when
// o.Wait is over is returned as a *HeldError (errors.Is ErrHeld); other
// errors are the bucket's, or ctx's, or o.Progress's.
func Take(ctx context.Context, kv jetstream.KeyValue, names []string, h Holder, o TakeOptions) (Set, error) {
	if kv == nil {
		return nil, errors.New("locks: no LOCKS bucket to take leases in")
	}
	if h.Since.IsZero() {
		h.Since = time.Now().UTC()
	}
	refresh := o.Refresh
	if refresh <= 0 {
		refresh = time.Second
	}
	poll := o.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deadline := time.Now().Add(max(o.Wait, 0))
	waits := &WaitAuditor{Kind: h.Operation, JobID: h.Owner, Publish: o.Audit}
	takenOver := map[string]bool{}
	var (
		lastReport time.Time
		lastMsg    string
	)
	for {
		set, err := AcquireAll(ctx, kv, names, h, refresh)
		if err == nil {
			waits.Acquired(ctx, names)
			return set, nil
		}
		var held *HeldError
		if !errors.As(err, &held) {
			return nil, err
		}
		if o.TakeOverOwn && held.Holder.Owner == h.Owner && !takenOver[held.Name] {
			takenOver[held.Name] = true
			if takeOver(ctx, kv, held.Name, h.Owner) {
				log.Warn("taking over a lease of an earlier attempt of this job", "lock", held.Name)
				continue
			}
		}
		waits.Held(ctx, held)
		if !time.Now().Before(deadline) {
			return nil, held
		}
		msg := held.Error()
		report := msg != lastMsg
		if o.ReportEvery > 0 {
			report = time.Since(lastReport) >= o.ReportEvery
		}
		if report {
			lastMsg, lastReport = msg, time.Now()
			log.Info("waiting for a lock", "lock", held.Name, "holder", held.Holder.Owner, "operation", held.Holder.Operation)
			if o.Progress != nil {
				if err := o.Progress(ctx, held); err != nil {
					return nil, err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(poll, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// takeOver deletes the lease name if its holder is owner, guarded by the
// revision read, and reports whether it did.
func takeOver(ctx context.Context, kv jetstream.KeyValue, name, owner string) bool {
	e, err := kv.Get(ctx, name)
	if err != nil {
		return false
	}
	var cur Holder
	if json.Unmarshal(e.Value(), &cur) != nil || cur.Owner != owner {
		return false
	}
	return kv.Delete(ctx, name, jetstream.LastRevision(e.Revision())) == nil
}

// ReleaseDetached releases the set's leases even when ctx is already
// done (a cancelled job still frees its leases), within ReleaseTimeout.
// A failure is worth a warning only: the bucket's TTL frees the leases.
func (s Set) ReleaseDetached(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReleaseTimeout)
	defer cancel()
	if err := s.Release(rctx); err != nil {
		return fmt.Errorf("release leases (they expire by themselves): %w", err)
	}
	return nil
}
