// Package locks gives exclusive leases on insightops' stores through the
// LOCKS bucket: a lease is a key created with Create (which fails while
// another holder has it), refreshed while held, and removed on release;
// the bucket's TTL frees the lease of a holder that crashed.
package locks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The stores an operation can lock. Take several with AcquireAll, which
// always locks them in this order so two operations cannot deadlock.
const (
	System = "system"
	Target = "target"
	Chroma = "chroma"
)

// Order is the fixed acquisition order.
var Order = []string{System, Target, Chroma}

// ErrHeld means another operation holds the lease.
var ErrHeld = errors.New("lock held")

// Holder describes who holds a lease; it is the key's value.
type Holder struct {
	Owner     string    `json:"owner"` // e.g. the job id
	Operation string    `json:"operation"`
	Since     time.Time `json:"since"`
}

// HeldError is ErrHeld with the holder, for messages such as
// "system is locked by restore.run 01JD… since …".
type HeldError struct {
	Name   string
	Holder Holder
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is locked by %s %s since %s", e.Name, e.Holder.Operation, e.Holder.Owner, e.Holder.Since.Format(time.RFC3339))
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Lease is a held lock. It refreshes itself until Release; Lost is closed
// if a refresh finds the lease gone or taken (the holder must stop).
type Lease struct {
	kv      jetstream.KeyValue
	name    string
	holder  Holder
	mu      sync.Mutex
	rev     uint64
	stop    chan struct{}
	done    chan struct{}
	lost    chan struct{}
	lostErr error
	once    sync.Once
}

// acquireTries bounds Acquire's retries when the lease it found held is
// released before its holder could be read.
const acquireTries = 3

// Acquire takes the lease name for owner, refreshing it every `every`
// (keep it well under the bucket TTL). It fails at once with a *HeldError
// when someone else holds it.
func Acquire(ctx context.Context, kv jetstream.KeyValue, name string, h Holder, every time.Duration) (*Lease, error) {
	if h.Since.IsZero() {
		h.Since = time.Now().UTC()
	}
	data, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode lock holder: %w", err)
	}
	var rev uint64
	for try := 1; ; try++ {
		rev, err = kv.Create(ctx, name, data)
		if !errors.Is(err, jetstream.ErrKeyExists) {
			break
		}
		he := &HeldError{Name: name}
		e, gerr := kv.Get(ctx, name)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) && try < acquireTries {
			// Released between the two calls: the holder is gone, so
			// try to take it again rather than report a wait on nobody.
			continue
		}
		if gerr == nil {
			_ = json.Unmarshal(e.Value(), &he.Holder)
		}
		return nil, he
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lock %s: %w", name, err)
	}
	l := &Lease{kv: kv, name: name, holder: h, rev: rev, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{})}
	go l.refresh(data, every) //nolint:gosec // G118: the refresh outlives the call that took the lease; Release stops it
	return l, nil
}

func (l *Lease) refresh(data []byte, every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		l.mu.Lock()
		rev, err := l.kv.Update(ctx, l.name, data, l.rev)
		if err == nil {
			l.rev = rev
		}
		l.mu.Unlock()
		cancel()
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) {
			l.markLost(fmt.Errorf("lock %s lost: it expired or was taken: %w", l.name, err))
			return
		}
		// Other errors (NATS briefly away) are retried at the next tick;
		// the TTL is several ticks long.
	}
}

func (l *Lease) markLost(err error) {
	l.once.Do(func() { l.lostErr = err; close(l.lost) })
}

// Lost is closed when the lease was lost while held.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns why the lease was lost, or nil.
func (l *Lease) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// Release stops refreshing and deletes the key if it is still ours.
func (l *Lease) Release(ctx context.Context) error {
	select {
	case <-l.stop:
		return nil // already released
	default:
		close(l.stop)
	}
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.kv.Delete(ctx, l.name, jetstream.LastRevision(l.rev)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("release lock %s: %w", l.name, err)
	}
	return nil
}

// Set is several leases taken together.
type Set []*Lease

// AcquireAll takes the named leases in Order; if one is held it releases
// those already taken and returns the *HeldError.
func AcquireAll(ctx context.Context, kv jetstream.KeyValue, names []string, h Holder, every time.Duration) (Set, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var set Set
	for _, n := range Order {
		if !want[n] {
			continue
		}
		delete(want, n)
		l, err := Acquire(ctx, kv, n, h, every)
		if err != nil {
			_ = set.Release(context.WithoutCancel(ctx))
			return nil, err
		}
		set = append(set, l)
	}
	if len(want) > 0 {
		_ = set.Release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("unknown lock names %v (known: %v)", keys(want), Order)
	}
	return set, nil
}

// Release releases every lease of the set.
func (s Set) Release(ctx context.Context) error {
	var errs []error
	for _, v := range slices.Backward(s) {
		errs = append(errs, v.Release(ctx))
	}
	return errors.Join(errs...)
}

// Err is the first lease loss in the set, or nil.
func (s Set) Err() error {
	for _, l := range s {
		if err := l.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Holders reads who holds each of the names now (absent: free).
func Holders(ctx context.Context, kv jetstream.KeyValue, names ...string) (map[string]Holder, error) {
	out := map[string]Holder{}
	for _, n := range names {
		e, err := kv.Get(ctx, n)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read lock %s: %w", n, err)
		}
		var h Holder
		_ = json.Unmarshal(e.Value(), &h)
		out[n] = h
	}
	return out, nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
