package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// ErrNotFound means no record exists under that id.
var ErrNotFound = errors.New("job not found")

// ErrTransition means an update tried to move a record backwards or out of
// a final state.
var ErrTransition = errors.New("invalid job state transition")

// Store reads and writes job records in the JOB_PROGRESS bucket. Every
// write is a compare-and-set on the key's revision.
type Store struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// NewStore wraps the JOB_PROGRESS bucket.
func NewStore(kv jetstream.KeyValue) *Store {
	return &Store{kv: kv, now: func() time.Time { return time.Now().UTC() }}
}

// Get returns the record and its revision.
func (s *Store) Get(ctx context.Context, id string) (Record, uint64, error) {
	if !ValidID(id) {
		return Record{}, 0, ErrNotFound
	}
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Record{}, 0, ErrNotFound
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("get job %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, fmt.Errorf("decode job %s: %w", id, err)
	}
	return r, e.Revision(), nil
}

// Create writes a new record; it fails with jetstream.ErrKeyExists if the
// id is taken.
func (s *Store) Create(ctx context.Context, r Record) (uint64, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode job %s: %w", r.ID, err)
	}
	rev, err := s.kv.Create(ctx, r.ID, data)
	if err != nil {
		return 0, fmt.Errorf("create job %s: %w", r.ID, err)
	}
	return rev, nil
}

// Update applies fn to the current record and writes the result with a
// compare-and-set on the revision read, retrying when another writer got
// there first. fn may return an error to abort; a transition the state
// machine forbids aborts with ErrTransition.
func (s *Store) Update(ctx context.Context, id string, fn func(*Record) error) (Record, error) {
	r, _, err := s.UpdateFrom(ctx, Record{ID: id}, 0, fn)
	return r, err
}

// UpdateFrom is Update for a caller that already holds the record at
// revision rev (a worker between its own writes): the first
// compare-and-set uses it without reading again, and only a conflict (a
// concurrent cancel, say) costs a fresh read. rev 0 reads first. It
// returns the written record and its new revision.
func (s *Store) UpdateFrom(ctx context.Context, cur Record, rev uint64, fn func(*Record) error) (Record, uint64, error) {
	id := cur.ID
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, 0, err
		}
		if rev == 0 {
			var err error
			if cur, rev, err = s.Get(ctx, id); err != nil {
				return Record{}, 0, err
			}
		}
		next := cur
		if err := fn(&next); err != nil {
			return cur, rev, err
		}
		if !CanTransition(cur.State, next.State) {
			return cur, rev, fmt.Errorf("job %s %s → %s: %w", id, cur.State, next.State, ErrTransition)
		}
		next.UpdatedAt = s.now()
		data, err := json.Marshal(next)
		if err != nil {
			return cur, rev, fmt.Errorf("encode job %s: %w", id, err)
		}
		newRev, err := s.kv.Update(ctx, id, data, rev)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				rev = 0 // lost the race; read again
				continue
			}
			return cur, rev, fmt.Errorf("update job %s: %w", id, err)
		}
		return next, newRev, nil
	}
}

// Filter selects records for List.
type Filter struct {
	Kind  string
	State State
	// SubmittedBy keeps the records of one submitter (exact match).
	SubmittedBy string
	// Since and Until bound the creation time (inclusive, exclusive).
	Since, Until time.Time
	Limit        int // default 50
	// Offset skips that many of the newest matches (paging).
	Offset int
}

// match reports whether r is selected by f.
func (f Filter) match(r Record) bool {
	return (f.Kind == "" || r.Kind == f.Kind) && (f.State == "" || r.State == f.State) &&
		(f.SubmittedBy == "" || r.SubmittedBy == f.SubmittedBy) &&
		(f.Since.IsZero() || !r.CreatedAt.Before(f.Since)) && (f.Until.IsZero() || r.CreatedAt.Before(f.Until))
}

// List returns the newest records matching f, newest first, after
// skipping f.Offset of them. Memory is bounded by Offset+Limit, not by the
// bucket.
func (s *Store) List(ctx context.Context, f Filter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Offset = max(f.Offset, 0)
	keep := f.Offset + f.Limit
	if f.Kind == "" && f.State == "" && f.SubmittedBy == "" {
		return s.listByKeys(ctx, f, keep)
	}
	// Job ids are single-token keys; "idem.*" keys are not matched by "*".
	w, err := s.kv.Watch(ctx, "*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []Record
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list jobs: watcher closed")
			}
			if e == nil { // initial values delivered
				out = newest(out, keep)
				if f.Offset >= len(out) {
					return []Record{}, nil
				}
				return out[f.Offset:], nil
			}
			var r Record
			if json.Unmarshal(e.Value(), &r) != nil {
				continue
			}
			if f.match(r) {
				out = append(out, r)
				if len(out) >= 2*keep+64 {
					// Keep memory bounded by the page, not by the bucket.
					out = newest(out, keep)
				}
			}
		}
	}
}

// listByKeys is List without a filter on the record's fields: job ids are
// ULIDs, ordered by creation time (to the millisecond, which Since and
// Until are checked against), so the page is chosen from the keys alone
// and only its records are read.
func (s *Store) listByKeys(ctx context.Context, f Filter, keep int) ([]Record, error) {
	kl, err := s.kv.ListKeysFiltered(ctx, "*")
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer func() { _ = kl.Stop() }()
	var ids []string
	for k := range kl.Keys() {
		id, err := ulid.ParseStrict(k)
		if err != nil {
			continue
		}
		at := ulid.Time(id.Time())
		if (!f.Since.IsZero() && at.Before(f.Since.Truncate(time.Millisecond))) || (!f.Until.IsZero() && !at.Before(f.Until)) {
			continue
		}
		ids = append(ids, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	if f.Offset >= len(ids) {
		return []Record{}, nil
	}
	ids = ids[f.Offset:min(keep, len(ids))]
	out := make([]Record, 0, len(ids))
	for _, id := range ids {
		r, _, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // expired or deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		if f.match(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// newest sorts rs newest first (ids are ULIDs, ordered by creation time)
// and keeps at most limit of them.
func newest(rs []Record, limit int) []Record {
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID > rs[j].ID })
	if len(rs) > limit {
		rs = rs[:limit]
	}
	return rs
}

// Watch sends the record's current value and every change after it,
// closing the channel once the record is final, deleted, or ctx ends.
func (s *Store) Watch(ctx context.Context, id string) (<-chan Record, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	w, err := s.kv.Watch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("watch job %s: %w", id, err)
	}
	out := make(chan Record, 8)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				if e.Operation() != jetstream.KeyValuePut {
					return // deleted or purged (expired): nothing more will come
				}
				var r Record
				if json.Unmarshal(e.Value(), &r) != nil {
					continue
				}
				select {
				case out <- r:
				case <-ctx.Done():
					return
				}
				if r.State.Final() {
					return
				}
			}
		}
	}()
	return out, nil
}

// Cancel asks for a job to stop. A queued job becomes cancelled at once;
// a running one gets its cancel flag set, which its worker checks between
// steps. A final job is returned unchanged with ErrTransition.
func (s *Store) Cancel(ctx context.Context, id string) (Record, error) {
	return s.Update(ctx, id, func(r *Record) error {
		switch {
		case r.State.Final():
			return fmt.Errorf("job %s is already %s: %w", id, r.State, ErrTransition)
		case r.State == Queued:
			now := s.now()
			r.State, r.FinishedAt, r.CancelRequested = Cancelled, &now, true
			r.Error = &Error{Code: CodeCancelled, Message: "cancelled before it started"}
		default:
			r.CancelRequested = true
		}
		return nil
	})
}
