// Package presence announces a running worker instance in the WORKERS
// bucket (one key per instance, refreshed well inside the bucket's TTL)
// and lists the live instances per worker kind.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Worker is the value stored under a worker's key.
type Worker struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Concurrency int       `json:"concurrency"`
	InFlight    int64     `json:"in_flight"`
	StartedAt   time.Time `json:"started_at"`
	SeenAt      time.Time `json:"seen_at"`
}

var unsafeKey = regexp.MustCompile(`[^-_a-zA-Z0-9]`)

// Key is the WORKERS key of an instance: "<kind>.<sanitised id>".
func Key(kind, id string) string { return kind + "." + unsafeKey.ReplaceAllString(id, "_") }

// Announcer keeps one worker's presence key fresh.
type Announcer struct {
	kv       jetstream.KeyValue
	w        Worker
	inFlight atomic.Int64
	every    time.Duration
	log      *slog.Logger
}

// NewAnnouncer prepares the presence of worker id of kind; refresh every
// `every` (keep it a third of the bucket TTL or less).
func NewAnnouncer(kv jetstream.KeyValue, kind, id string, concurrency int, every time.Duration, log *slog.Logger) *Announcer {
	host, _ := os.Hostname()
	return &Announcer{kv: kv, every: every, log: log, w: Worker{
		ID: id, Kind: kind, Host: host, PID: os.Getpid(), Concurrency: concurrency, StartedAt: time.Now().UTC(),
	}}
}

// AddInFlight adjusts the in-flight count shown in the presence record.
func (a *Announcer) AddInFlight(n int64) { a.inFlight.Add(n) }

// Run writes the presence key now and every interval until ctx ends, then
// deletes it so the instance disappears at once on a clean stop.
func (a *Announcer) Run(ctx context.Context) {
	key := Key(a.w.Kind, a.w.ID)
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		a.put(ctx, key)
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := a.kv.Delete(dctx, key); err != nil {
				a.log.Debug("presence delete", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
	}
}

func (a *Announcer) put(ctx context.Context, key string) {
	w := a.w
	w.InFlight = a.inFlight.Load()
	w.SeenAt = time.Now().UTC()
	b, err := json.Marshal(w)
	if err != nil {
		a.log.Warn("presence refresh: encode", "err", err)
		return
	}
	if _, err := a.kv.Put(ctx, key, b); err != nil && ctx.Err() == nil {
		a.log.Warn("presence refresh failed", "err", err)
	}
}

// List returns the live workers grouped by kind, each group sorted by id.
func List(ctx context.Context, kv jetstream.KeyValue) (map[string][]Worker, error) {
	out := map[string][]Worker{}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list workers: watcher closed")
			}
			if e == nil {
				for _, ws := range out {
					sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
				}
				return out, nil
			}
			var wk Worker
			if json.Unmarshal(e.Value(), &wk) == nil {
				out[wk.Kind] = append(out[wk.Kind], wk)
			}
		}
	}
}
