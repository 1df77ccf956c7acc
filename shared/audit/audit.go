// Package audit defines the audit event of the contract and publishes it
// on the AUDIT stream (subject audit.<resource>.<verb>), deduplicated by
// its id.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// Outcomes of an audited action.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Event is one audited action. It never holds a password, token or secret:
// callers put only identifiers and outcomes in Detail.
type Event struct {
	ID        string         `json:"id"`
	At        time.Time      `json:"at"`
	Actor     string         `json:"actor"`
	Role      string         `json:"role,omitempty"`
	Action    string         `json:"action"`
	Resource  string         `json:"resource"`
	JobID     string         `json:"job_id,omitempty"`
	Outcome   string         `json:"outcome"`
	Detail    map[string]any `json:"detail,omitempty"`
	SourceIP  string         `json:"source_ip,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
}

// Subject is where e is published: "audit." + action when the action starts
// with the resource ("backup.requested" → audit.backup.requested), else
// audit.<resource>.<action>.
func (e Event) Subject() string {
	if strings.HasPrefix(e.Action, e.Resource+".") {
		return "audit." + e.Action
	}
	return "audit." + e.Resource + "." + e.Action
}

// Publisher publishes events on the AUDIT stream.
type Publisher struct {
	js  jetstream.JetStream
	log *slog.Logger
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream, log *slog.Logger) *Publisher {
	return &Publisher{js: js, log: log}
}

// Publish fills in id and time when empty and publishes with Nats-Msg-Id =
// id, so a retried publish is stored once.
func (p *Publisher) Publish(ctx context.Context, e Event) error {
	if e.ID == "" {
		e.ID = ulid.Make().String()
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	if e.Actor == "" {
		e.Actor = "system"
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	msg := nats.NewMsg(e.Subject())
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, e.ID)
	// A stream electing a new leader (its node shut down, or a loaded
	// cluster) answers nobody, or not in time, for seconds: send the event
	// again until ctx ends (PublishRetryFor when ctx has no deadline)
	// rather than lose it; the id makes a resent event that had been
	// stored after all count once.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, PublishRetryFor)
		defer cancel()
	}
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttemptTimeout)
		_, err := p.js.PublishMsg(actx, msg, jetstream.WithRetryAttempts(1000), jetstream.WithRetryWait(250*time.Millisecond))
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish audit %s: %w", e.Action, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// PublishRetryFor bounds how long Publish keeps resending an event that
// was not acknowledged when its context has no deadline.
const PublishRetryFor = 30 * time.Second

// publishAttemptTimeout bounds one attempt: an answer that does not come
// (a leader that went away) is given up and the event sent again.
const publishAttemptTimeout = 3 * time.Second

// Record publishes e and logs (rather than returns) a failure: for call
// sites where the audited work must go on, the loss is visible in the log.
// A nil publisher records nothing, so optional auditing needs no check.
func (p *Publisher) Record(ctx context.Context, e Event) {
	if p == nil {
		return
	}
	if err := p.Publish(ctx, e); err != nil {
		p.log.Error("audit event lost", "action", e.Action, "job_id", e.JobID, "err", err)
	}
}

// DerivedID is an event id computed from parts (e.g. job id, action, lock,
// holder): an event that can be published again for the same fact (a
// retried attempt meeting the same lease holder) then carries the same id,
// so the AUDIT stream's duplicate window and the audit sink's unique
// event_id store it once. It is "ev-" and 32 hex digits, never a ULID, so it
// cannot collide with the ids Publish makes.
func DerivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "ev-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Read returns every event stored on the AUDIT stream under subject filter
// (e.g. "audit.>" or "audit.backup.lock_wait"), in stream order, as they
// are at the time of the call. It is for inspection and tests; a service
// following the trail uses its own durable consumer.
func Read(ctx context.Context, js jetstream.JetStream, filter string) ([]Event, error) {
	cons, err := js.OrderedConsumer(ctx, "AUDIT", jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("read audit %s: %w", filter, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read audit %s: %w", filter, err)
	}
	pending := info.NumPending
	var out []Event
	for uint64(len(out)) < pending {
		batch, err := cons.Fetch(int(min(pending-uint64(len(out)), 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read audit %s: %w", filter, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var e Event
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				return nil, fmt.Errorf("read audit %s: decode %s: %w", filter, m.Subject(), err)
			}
			out = append(out, e)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read audit %s: %w", filter, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read audit %s: %d of %d events arrived", filter, len(out), pending)
		}
	}
	return out, nil
}
