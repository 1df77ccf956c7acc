package restoreworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/store"
)

// AuditSync configures how a System DB restore keeps audit_logs whole.
//
// The audit sink (package auditsink) is the single writer of audit_logs'
// hash chain. During a System DB restore its durable consumer is paused
// (JetStream consumer pause, refreshed like a lease, so a restore worker
// that dies releases it after PauseTTL) and the restore waits until the
// sink has no event in flight. So no event is written between snapshot
// saving the audit rows and putting them back (on PostgreSQL these are two
// steps around pg_restore). After the restore and the migrations, the
// events on the AUDIT stream after the highest stored stream sequence are
// copied into the table, in stream order and hash-chained as the sink does
// (Resync); then the sink is resumed and finds them stored.
type AuditSync struct {
	// Disabled skips the pause and the re-sync (snapshot still keeps the
	// rows present before the restore).
	Disabled bool
	// PauseTTL is how long one pause lasts unless refreshed (every third of it).
	PauseTTL time.Duration
	// InFlightWait bounds the wait for the sink's in-flight event (its AckWait).
	InFlightWait time.Duration
	// FetchWait bounds one read of the AUDIT stream during the re-sync.
	FetchWait time.Duration
}

// DefaultAuditSync returns the default settings.
func DefaultAuditSync() AuditSync {
	return AuditSync{PauseTTL: 2 * time.Minute, InFlightWait: 35 * time.Second, FetchWait: 5 * time.Second}
}

// sinkPause is a paused audit sink consumer; resume ends the pause.
type sinkPause struct {
	js   jetstream.JetStream
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
}

// pauseSink pauses the audit sink's consumer and waits for its in-flight
// event. It returns nil, nil when there is no sink consumer (no sink has
// ever run: nothing else writes audit_logs).
func (a AuditSync) pauseSink(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*sinkPause, error) {
	if a.Disabled || js == nil {
		return nil, nil
	}
	ttl := a.PauseTTL
	if ttl <= 0 {
		ttl = DefaultAuditSync().PauseTTL
	}
	_, err := js.PauseConsumer(ctx, bus.StreamAudit, auditsink.Consumer, time.Now().Add(ttl))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		log.Info("no audit sink consumer: nothing to pause")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pause the audit sink: %w", err)
	}
	p := &sinkPause{js: js, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go p.refresh(ttl) //nolint:gosec // G118: the pause is refreshed until the restore resumes the sink, past this call
	log.Info("audit sink paused for the System DB restore", "until_refreshed", ttl.String())

	wait := a.InFlightWait
	if wait <= 0 {
		wait = DefaultAuditSync().InFlightWait
	}
	deadline := time.Now().Add(wait)
	for {
		cons, err := js.Consumer(ctx, bus.StreamAudit, auditsink.Consumer)
		if err != nil {
			p.resume()
			return nil, fmt.Errorf("read the audit sink consumer: %w", err)
		}
		info := cons.CachedInfo()
		if info.NumAckPending == 0 {
			return p, nil
		}
		if time.Now().After(deadline) {
			log.Warn("the audit sink still has an event in flight; restoring anyway (the event is re-synced from the stream afterwards if it is lost)", "pending", info.NumAckPending)
			return p, nil
		}
		select {
		case <-ctx.Done():
			p.resume()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *sinkPause) refresh(ttl time.Duration) {
	defer close(p.done)
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
			if _, err := p.js.PauseConsumer(ctx, bus.StreamAudit, auditsink.Consumer, time.Now().Add(ttl)); err != nil {
				p.log.Warn("refresh the audit sink pause", "err", err)
			}
			cancel()
		}
	}
}

// resume ends the pause; a nil pause does nothing.
func (p *sinkPause) resume() {
	if p == nil {
		return
	}
	select {
	case <-p.stop:
		return
	default:
		close(p.stop)
	}
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.js.ResumeConsumer(ctx, bus.StreamAudit, auditsink.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		p.log.Warn("resume the audit sink (its pause expires by itself)", "err", err)
		return
	}
	p.log.Info("audit sink resumed")
}

// Resync copies into audit_logs every event of the AUDIT stream after the
// highest stream sequence stored, up to the stream's last sequence when it
// starts, in stream order, each chained to the previous row exactly as the
// audit sink does (auditsink.Hash over the last stored hash). An event
// already stored (by id) is skipped. Run it only while the sink is paused:
// the chain must have a single writer. It returns the number of rows
// inserted.
func Resync(ctx context.Context, js jetstream.JetStream, db *store.DB, fetchWait time.Duration) (int, error) {
	if fetchWait <= 0 {
		fetchWait = DefaultAuditSync().FetchWait
	}
	var maxSeq int64
	if err := db.SQL.QueryRowContext(ctx, "SELECT COALESCE(MAX(stream_seq), 0) FROM audit_logs").Scan(&maxSeq); err != nil {
		return 0, fmt.Errorf("audit re-sync: highest stored stream sequence: %w", err)
	}
	stream, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return 0, fmt.Errorf("audit re-sync: stream %s: %w", bus.StreamAudit, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit re-sync: stream %s: %w", bus.StreamAudit, err)
	}
	last := info.State.LastSeq
	if last <= uint64(maxSeq) || info.State.Msgs == 0 {
		return 0, nil
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   uint64(maxSeq) + 1,
	})
	if err != nil {
		return 0, fmt.Errorf("audit re-sync: consumer: %w", err)
	}
	n := 0
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return n, fmt.Errorf("audit re-sync: read the stream after sequence %d: %w", maxSeq, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("audit re-sync: metadata: %w", err)
		}
		seq := md.Sequence.Stream
		inserted, err := storeEvent(ctx, db, msg.Data(), seq, md.Timestamp)
		if err != nil {
			return n, fmt.Errorf("audit re-sync: event at sequence %d: %w", seq, err)
		}
		if inserted {
			n++
		}
		if seq >= last {
			return n, nil
		}
	}
}

// storeEvent stores one AUDIT message as auditsink does: a message that is
// not an event becomes an "audit.invalid" row, an event already stored is
// skipped, the row is chained to the last stored hash.
func storeEvent(ctx context.Context, db *store.DB, data []byte, seq uint64, ts time.Time) (bool, error) {
	var e audit.Event
	if err := json.Unmarshal(data, &e); err != nil || e.ID == "" {
		e = audit.Event{ID: "invalid-" + strconv.FormatUint(seq, 10), Action: "audit.invalid", Resource: "audit", Outcome: audit.Failure, At: ts}
	}
	var detail json.RawMessage
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return false, fmt.Errorf("encode detail: %w", err)
		}
		detail = b
	}
	row := store.AuditLog{
		EventID: e.ID, StreamSeq: seq, At: e.At.UTC().Truncate(time.Microsecond),
		Actor: e.Actor, Role: e.Role, Action: e.Action, Resource: e.Resource, JobID: e.JobID,
		Outcome: e.Outcome, Detail: detail, SourceIP: e.SourceIP, RequestID: e.RequestID,
	}
	exists, err := db.AuditEventExists(ctx, row.EventID)
	if err != nil || exists {
		return false, err
	}
	prev, err := db.LastAuditHash(ctx)
	if err != nil {
		return false, err
	}
	row.PrevHash = prev
	row.Hash = auditsink.Hash(prev, row)
	return db.InsertAuditLog(ctx, row)
}
