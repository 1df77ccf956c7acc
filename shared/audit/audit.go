// Package audit defines the audit event of the contract and publishes it
// on the AUDIT stream (subject audit.<resource>.<verb>), deduplicated by
// its id.
package audit

import (
	"context"
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
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish audit %s: %w", e.Action, err)
	}
	return nil
}

// Record publishes e and logs (rather than returns) a failure: for call
// sites where the audited work must go on, the loss is visible in the log.
func (p *Publisher) Record(ctx context.Context, e Event) {
	if err := p.Publish(ctx, e); err != nil {
		p.log.Error("audit event lost", "action", e.Action, "job_id", e.JobID, "err", err)
	}
}
