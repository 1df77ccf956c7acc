package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// puller fetches job commands for free slots only, over one long-lived
// inbox subscription (nats.go's Fetch subscribes and unsubscribes on every
// call, which under load costs more than the job itself).
//
// Each pull request asks for exactly as many messages as slots it
// reserved. JetStream serves a consumer's waiting requests in order, so
// arriving messages fill the oldest open request first; a request that
// expires unfilled comes back as a 408 status, and its unfilled slots are
// freed. A request the server forgot (restart, reconnect) is expired
// locally after its deadline plus a grace period.
type puller struct {
	nc       *nats.Conn
	subject  string // $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
	inbox    string
	msgs     chan *nats.Msg
	sub      *nats.Subscription
	expires  time.Duration
	open     []pullRequest // oldest first
	reserved int           // slots held by open requests, not yet filled
}

type pullRequest struct {
	remaining int
	deadline  time.Time
}

func newPuller(nc *nats.Conn, stream, consumer string, concurrency int, expires time.Duration) (*puller, error) {
	p := &puller{
		nc:      nc,
		subject: "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer,
		inbox:   nc.NewInbox(),
		msgs:    make(chan *nats.Msg, 2*concurrency+16),
		expires: expires,
	}
	sub, err := nc.ChanSubscribe(p.inbox, p.msgs)
	if err != nil {
		return nil, fmt.Errorf("subscribe pull inbox: %w", err)
	}
	p.sub = sub
	return p, nil
}

// request asks for n messages.
func (p *puller) request(n int) error {
	body, _ := json.Marshal(struct { //nolint:errchkjson // two ints and a duration: marshalling cannot fail
		Batch   int   `json:"batch"`
		Expires int64 `json:"expires"`
	}{n, p.expires.Nanoseconds()})
	if err := p.nc.PublishRequest(p.subject, p.inbox, body); err != nil {
		return fmt.Errorf("pull request: %w", err)
	}
	p.open = append(p.open, pullRequest{remaining: n, deadline: time.Now().Add(p.expires)})
	p.reserved += n
	return nil
}

// delivered accounts a job message against the oldest open request. It
// reports false for a message no request reserved a slot for.
func (p *puller) delivered() bool {
	if len(p.open) == 0 {
		return false
	}
	p.open[0].remaining--
	p.reserved--
	if p.open[0].remaining == 0 {
		p.open = p.open[1:]
	}
	return true
}

// status handles a status message and returns how many reserved slots it
// frees.
func (p *puller) status(m *nats.Msg) int {
	code := m.Header.Get("Status")
	switch code {
	case "408", "409", "404":
		// Request expired / terminated (409: max waiting, leadership
		// change, consumer deleted…): free the oldest request's slots.
		if len(p.open) == 0 {
			return 0
		}
		n := p.open[0].remaining
		if pending, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages")); err == nil && pending < n {
			n = pending
			p.open[0].remaining -= n
			if p.open[0].remaining > 0 {
				p.reserved -= n
				return n
			}
		}
		p.open = p.open[1:]
		p.reserved -= n
		return n
	default: // 100 (heartbeat / flow control) and anything else: no slots
		return 0
	}
}

// expire frees the slots of requests past their deadline plus grace.
func (p *puller) expire(now time.Time, grace time.Duration) int {
	freed := 0
	for len(p.open) > 0 && now.After(p.open[0].deadline.Add(grace)) {
		freed += p.open[0].remaining
		p.reserved -= p.open[0].remaining
		p.open = p.open[1:]
	}
	return freed
}

func (p *puller) close() { _ = p.sub.Unsubscribe() }

// isStatus reports whether m is a JetStream status message, not a job.
func isStatus(m *nats.Msg) bool {
	return len(m.Data) == 0 && m.Header.Get("Status") != ""
}

// pullLoop runs the puller until ctx ends: it keeps one request out for
// the free slots (gathered, see gather), starts a job per message, and
// hands back any message that arrives once stopping.
func (w *runner) pullLoop(ctx context.Context, nc *nats.Conn, stream string) error {
	p, err := newPuller(nc, stream, w.opts.Kind, w.opts.Concurrency, w.opts.FetchWait)
	if err != nil {
		return err
	}
	defer p.close()
	slots := make(chan struct{}, w.opts.Concurrency)
	release := func(n int) {
		for range n {
			<-slots
		}
	}
	tick := time.NewTicker(w.opts.FetchWait / 4)
	defer tick.Stop()
	for {
		// Ask for more while slots are free and no request is waiting:
		// one open request at a time keeps the accounting exact and the
		// replica from hoarding.
		var acquire chan struct{}
		if len(p.open) == 0 {
			acquire = slots
		}
		select {
		case <-ctx.Done():
			// Stop pulling; hand back whatever is still arriving.
			p.close()
			for {
				select {
				case m := <-p.msgs:
					if !isStatus(m) {
						_ = m.Nak()
					}
				default:
					return nil
				}
			}
		case acquire <- struct{}{}:
			n := w.gather(slots)
			if err := p.request(n); err != nil {
				release(n)
				w.log.Warn("pull request failed", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		case m := <-p.msgs:
			if isStatus(m) {
				release(p.status(m))
				continue
			}
			if !p.delivered() {
				// No slot was reserved for it (its request had expired
				// locally): give it back rather than exceed concurrency.
				_ = m.Nak()
				continue
			}
			w.wg.Go(func() {
				defer func() { <-slots }()
				w.process(m)
			})
		case now := <-tick.C:
			release(p.expire(now, time.Second))
		}
	}
}
