// Package auditsink copies the AUDIT stream into the System DB's
// audit_logs table, once per event and in stream order, chaining each row
// to the previous one by hash so that an edited or deleted row is found
// by Verify.
//
// The sink is a durable consumer ("audit-sink") with MaxAckPending 1: the
// server hands out one event at a time across every sink replica, so the
// chain has a single writer and follows the stream order. A redelivered
// event whose id is already stored is acknowledged without a write.
package auditsink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/store"
)

// Consumer is the durable name of the sink.
const Consumer = "audit-sink"

// ConsumerConfig is the sink's consumer on AUDIT.
func ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "insightops audit sink → System DB audit_logs",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 1, // one event in flight: one chain writer, stream order
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    -1,
	}
}

// Run consumes AUDIT into db until ctx ends.
func Run(ctx context.Context, js jetstream.JetStream, db *store.DB, log *slog.Logger) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamAudit, ConsumerConfig())
	if err != nil {
		return fmt.Errorf("audit sink consumer: %w", err)
	}
	log = log.With("component", "audit-sink")
	if err := metrics.RegisterQueueDepth(js, bus.StreamAudit, []string{Consumer}); err != nil {
		log.Warn("audit sink lag metric", "err", err)
	}
	log.Info("audit sink started")
	for {
		select {
		case <-ctx.Done():
			log.Info("audit sink stopped")
			return nil
		default:
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			// No event within the wait (nats.ErrTimeout also while a
			// restore has the consumer paused): poll again.
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				continue
			}
			log.Warn("audit sink fetch", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if err := store1(ctx, db, msg); err != nil {
			log.Error("audit sink: event not stored; will retry", "subject", msg.Subject(), "err", err)
			_ = msg.NakWithDelay(2 * time.Second)
			continue
		}
		_ = msg.Ack()
	}
}

func store1(ctx context.Context, db *store.DB, msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var e audit.Event
	if err := json.Unmarshal(msg.Data(), &e); err != nil || e.ID == "" {
		// Not an event: keep a row for it so the chain covers the
		// stream, with the raw bytes as detail when they are JSON.
		e = audit.Event{ID: "invalid-" + strconv.FormatUint(md.Sequence.Stream, 10), Action: "audit.invalid", Resource: "audit", Outcome: audit.Failure, At: md.Timestamp}
	}
	row, err := rowOf(e, md.Sequence.Stream)
	if err != nil {
		return err
	}
	exists, err := db.AuditEventExists(ctx, row.EventID)
	if err != nil {
		return err
	}
	if exists {
		return nil // redelivery: stored before
	}
	prev, err := db.LastAuditHash(ctx)
	if err != nil {
		return err
	}
	row.PrevHash = prev
	row.Hash = Hash(prev, row)
	if _, err := db.InsertAuditLog(ctx, row); err != nil {
		return err
	}
	return nil
}

func rowOf(e audit.Event, seq uint64) (store.AuditLog, error) {
	var detail json.RawMessage
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return store.AuditLog{}, fmt.Errorf("encode detail: %w", err)
		}
		detail = b
	}
	return store.AuditLog{
		EventID: e.ID, StreamSeq: seq, At: e.At.UTC().Truncate(time.Microsecond),
		Actor: e.Actor, Role: e.Role, Action: e.Action, Resource: e.Resource, JobID: e.JobID,
		Outcome: e.Outcome, Detail: detail, SourceIP: e.SourceIP, RequestID: e.RequestID,
	}, nil
}

// Hash is a row's link in the chain: SHA-256 over the previous row's hash
// and the row's canonical content (its fields as stored, detail with
// sorted keys), so it can be recomputed from the database alone.
func Hash(prev string, r store.AuditLog) string {
	h := sha256.New()
	fields := []string{
		prev, r.EventID, strconv.FormatUint(r.StreamSeq, 10), r.At.UTC().Format(time.RFC3339Nano),
		r.Actor, r.Role, r.Action, r.Resource, r.JobID, r.Outcome, canonical(r.Detail), r.SourceIP, r.RequestID,
	}
	for _, f := range fields {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// canonical re-encodes JSON with sorted keys and no spaces (PostgreSQL's
// jsonb reorders keys; SQLite keeps the text as written).
func canonical(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}

// Report is the outcome of Verify.
type Report struct {
	Rows   int64  `json:"rows"`
	OK     bool   `json:"ok"`
	Broken *Break `json:"first_broken,omitempty"`
}

// Break names the first row whose link does not hold.
type Break struct {
	ID        int64  `json:"id"`
	EventID   string `json:"event_id"`
	StreamSeq uint64 `json:"stream_seq"`
	Reason    string `json:"reason"`
}

// Verify recomputes the chain in stream order and reports the first row
// whose stored hash or previous-hash link does not match.
func Verify(ctx context.Context, db *store.DB) (Report, error) {
	var rep Report
	prev := ""
	err := db.EachAuditLog(ctx, func(r store.AuditLog) error {
		rep.Rows++
		switch {
		case r.PrevHash != prev:
			rep.Broken = &Break{ID: r.ID, EventID: r.EventID, StreamSeq: r.StreamSeq, Reason: "prev_hash does not match the previous row's hash (a row was removed or reordered)"}
		case Hash(prev, r) != r.Hash:
			rep.Broken = &Break{ID: r.ID, EventID: r.EventID, StreamSeq: r.StreamSeq, Reason: "hash does not match the row's content (the row was altered)"}
		}
		if rep.Broken != nil {
			return errStop
		}
		prev = r.Hash
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return rep, fmt.Errorf("verify audit chain: %w", err)
	}
	rep.OK = rep.Broken == nil
	return rep, nil
}

var errStop = errors.New("stop")

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
