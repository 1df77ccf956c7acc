package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/tracing"
)

// ErrUnavailable wraps failures to reach the bus, so callers can answer 503.
var ErrUnavailable = errors.New("job bus unavailable")

// ErrIdempotencyConflict means an idempotency key was reused with other
// params than the job it first created.
var ErrIdempotencyConflict = errors.New("idempotency key reused with different params")

// ErrNoArgs is returned by Submit for a Submission without Args.
var ErrNoArgs = errors.New("submission without args")

// Submission is a request for work: the typed params of one job kind
// (package jobspec), who asks and, optionally, an idempotency key.
type Submission struct {
	// Args are the job's params; their Kind is the job's kind. They are
	// validated before anything is written and published as JSON (an
	// Args that encodes to {} is published without params).
	Args           Args
	SubmittedBy    string
	IdempotencyKey string
}

// Kind is the kind of the submission's Args ("" without Args).
func (s Submission) Kind() string {
	if s.Args == nil {
		return ""
	}
	return s.Args.Kind()
}

// RawArgs are params published as they are, without validation: the
// low-level path for tests that check how a worker refuses malformed
// params, and for synthetic kinds (cmd/jobbench, the runtime's own
// tests). Application code submits the jobspec types.
type RawArgs struct {
	// JobKind is the job's kind.
	JobKind string
	// Params is the params' JSON, published byte for byte (nil: none).
	Params json.RawMessage
}

// Kind is r.JobKind.
func (r RawArgs) Kind() string { return r.JobKind }

// Validate accepts everything: raw params are not checked.
func (RawArgs) Validate() error { return nil }

// Publisher writes a job's queued record and publishes its command.
type Publisher struct {
	js          jetstream.JetStream
	store       *Store
	maxAttempts int
	now         func() time.Time
}

// NewPublisher returns a publisher whose jobs allow maxAttempts deliveries.
func NewPublisher(js jetstream.JetStream, store *Store, maxAttempts int) *Publisher {
	if maxAttempts < 1 {
		maxAttempts = 5
	}
	return &Publisher{js: js, store: store, maxAttempts: maxAttempts, now: func() time.Time { return time.Now().UTC() }}
}

// Submit writes the queued record, then publishes the command with the job
// id as Nats-Msg-Id. With an idempotency key, a retried submission (same
// submitter, kind and key) returns the first job with created=false; the
// key is claimed with a KV Create, so two racing submissions agree on one
// job, and a submitter that crashed between claiming and publishing is
// completed by its retry (the Nats-Msg-Id keeps the command single). A
// failed publish leaves a keyed job queued for the retry to publish; an
// unkeyed one is marked failed (dispatch_failed), since no retry can find
// it. The same key with other params is ErrIdempotencyConflict.
//
// created is true for an unkeyed submission that succeeded; for a keyed
// one it is true for exactly the call whose publish stored the command.
// (If that publish's ack is lost, its caller gets an error and its retry
// reports created=false: nobody was told the job was accepted.)
//
// sub.Args is validated first: an invalid Args is returned as its
// Validate error (an Invalid error, CodeInvalidParams) and nothing is
// written or published.
func (p *Publisher) Submit(ctx context.Context, sub Submission) (Record, bool, error) {
	if sub.Args == nil {
		return Record{}, false, ErrNoArgs
	}
	kind := sub.Args.Kind()
	if err := sub.Args.Validate(); err != nil {
		return Record{}, false, fmt.Errorf("%s params: %w", kind, err)
	}
	params, err := marshalParams(sub.Args)
	if err != nil {
		return Record{}, false, err
	}
	id := NewID()
	created := true
	if sub.IdempotencyKey != "" {
		key := idempotencyKey(sub.SubmittedBy, kind, sub.IdempotencyKey)
		if _, err := p.store.kv.Create(ctx, key, []byte(id)); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return Record{}, false, fmt.Errorf("%w: claim idempotency key: %w", ErrUnavailable, err)
			}
			e, gerr := p.store.kv.Get(ctx, key)
			if gerr != nil {
				return Record{}, false, fmt.Errorf("%w: read idempotency key: %w", ErrUnavailable, gerr)
			}
			id, created = string(e.Value()), false
			if rec, rev, err := p.store.Get(ctx, id); err == nil {
				if !bytes.Equal(rec.Params, params) {
					return rec, false, fmt.Errorf("%w: key %q belongs to job %s", ErrIdempotencyConflict, sub.IdempotencyKey, rec.ID)
				}
				if rec.State == Queued {
					// The first submission may not have got its command out:
					// publish again; Nats-Msg-Id drops it if it had. If it
					// had not, no earlier caller was told the job was
					// accepted (that happens only after the publish), so
					// this submission is the one that creates it.
					stored, err := p.publish(ctx, rec, rev)
					if err != nil {
						return rec, false, err
					}
					return rec, stored, nil
				}
				return rec, false, nil
			} else if errors.Is(err, ErrNotFound) {
				// The first submitter claimed the key but did not get to
				// write its record, so it accepted nothing: finish the
				// submission under the same id, as its creator.
				created = true
			}
		}
	}
	now := p.now()
	rec := Record{
		ID: id, Kind: kind, State: Queued, Params: params,
		MaxAttempts: p.maxAttempts, SubmittedBy: sub.SubmittedBy, IdempotencyKey: sub.IdempotencyKey,
		CreatedAt: now, UpdatedAt: now, Step: "queued",
	}
	rev, err := p.store.Create(ctx, rec)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Record{}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if existing, r, gerr := p.store.Get(ctx, id); gerr == nil {
			rec, rev = existing, r
		}
		created = false // a racing submission with the same key wrote it
	}
	stored, err := p.publish(ctx, rec, rev)
	if sub.IdempotencyKey != "" {
		// Racing submissions of one key may all publish the command (a
		// finder of a queued record publishes it too, in case its creator
		// died); the Nats-Msg-Id stores it once, and the call whose
		// publish stored it is the one that created the job, so exactly
		// one of them says created.
		created = stored
	}
	if err != nil {
		if sub.IdempotencyKey != "" {
			// The caller retries with the same key, which publishes this
			// queued record's command again (see above).
			return rec, created, err
		}
		// Nothing will run this job: record why, best effort.
		_, _ = p.store.Update(context.WithoutCancel(ctx), id, func(r *Record) error {
			if r.State != Queued {
				return ErrTransition
			}
			t := p.now()
			r.State, r.FinishedAt = Failed, &t
			r.Error = &Error{Code: CodeDispatchFailed, Message: "the command could not be published: " + err.Error()}
			return nil
		})
		return rec, created, err
	}
	return rec, created, nil
}

// publish sends the command of rec (at revision rev) with its id as
// Nats-Msg-Id, so a republish within the window is stored once; stored
// reports whether this publish stored it (false: a duplicate). A stream
// without a leader for a moment (an election) is retried until ctx ends
// (JetStream's own publish deadline when ctx has none).
func (p *Publisher) publish(ctx context.Context, rec Record, rev uint64) (stored bool, err error) {
	ctx, span := tracing.StartPublish(ctx, rec.Kind, rec.ID)
	defer func() { tracing.End(span, err) }()
	cmd := Command{ID: rec.ID, Kind: rec.Kind, Params: rec.Params}
	if rec.State == Queued && rev > 0 {
		cmd.Queued, cmd.Rev = &rec, rev
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return false, fmt.Errorf("encode command: %w", err)
	}
	msg := nats.NewMsg(Subject(rec.Kind))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, rec.ID)
	tracing.Inject(ctx, msg.Header)
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithRetryAttempts(1000), jetstream.WithRetryWait(100*time.Millisecond))
	if err != nil {
		return false, fmt.Errorf("%w: publish %s: %w", ErrUnavailable, Subject(rec.Kind), err)
	}
	return !ack.Duplicate, nil
}

// marshalParams encodes a's JSON; RawArgs' Params go as they are, and an
// empty object or null is no params (as a kind without params publishes).
func marshalParams(a Args) (json.RawMessage, error) {
	if r, ok := a.(RawArgs); ok {
		return r.Params, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode %s params: %w", a.Kind(), err)
	}
	if string(b) == "null" || string(b) == "{}" {
		return nil, nil
	}
	return b, nil
}

func idempotencyKey(submitter, kind, key string) string {
	h := sha256.Sum256([]byte(submitter + "\x00" + kind + "\x00" + key))
	return "idem." + hex.EncodeToString(h[:16])
}
