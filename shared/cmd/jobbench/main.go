// Command jobbench measures the job round trip (submit → worker →
// succeeded in JOB_PROGRESS) against a raw JetStream baseline (publish
// with PubAck → pull consume → ack) on the same embedded server in the
// same run, and prints both rates and their ratio.
//
//	go run ./cmd/jobbench -n 3000 -c 8 -replicas 2 -worker-concurrency 8 -rounds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/worker"
)

func main() {
	if p := os.Getenv("JOBBENCH_CPUPROFILE"); p != "" {
		f, _ := os.Create(p)
		_ = pprof.StartCPUProfile(f)
	}
	n := flag.Int("n", 2000, "messages / jobs per measurement")
	c := flag.Int("c", 8, "concurrent publishers (raw) and submitters (round trip)")
	replicas := flag.Int("replicas", 2, "worker replicas in the round trip, each on its own connection")
	wc := flag.Int("worker-concurrency", 8, "WORKER_CONCURRENCY of each replica")
	rounds := flag.Int("rounds", 3, "alternating rounds; the median is reported")
	minRatio := flag.Float64("min-ratio", targetRatio, "exit 1 when round trip / raw falls below this (the documented target; 0: report only)")
	flag.Parse()
	err := run(*n, *c, *replicas, *wc, *rounds, *minRatio)
	pprof.StopCPUProfile() // a no-op when no profile was started
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobbench:", err)
		os.Exit(1)
	}
}

// targetRatio is the documented target: the job round trip runs at no less
// than a third of the raw JetStream baseline's rate.
const targetRatio = 1.0 / 3

func run(n, c, replicas, wc, rounds int, minRatio float64) error {
	dir, err := os.MkdirTemp("", "jobbench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Listen: "127.0.0.1:0", StoreDir: dir, ServerName: "jobbench"})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	log := slog.New(slog.DiscardHandler)
	var raw, trip []float64
	for r := 1; r <= rounds; r++ {
		rr, err := rawRound(ns.ClientURL(), n, c, r)
		if err != nil {
			return fmt.Errorf("raw round %d: %w", r, err)
		}
		tr, err := tripRound(ns.ClientURL(), n, c, replicas, wc, r, log)
		if err != nil {
			return fmt.Errorf("round-trip round %d: %w", r, err)
		}
		raw, trip = append(raw, rr), append(trip, tr)
		fmt.Printf("round %d: raw %.0f msg/s, round trip %.0f jobs/s\n", r, rr, tr)
	}
	mr, mt := median(raw), median(trip)
	ratio := mt / mr
	fmt.Printf("\n%d messages per measurement, %d publishers/submitters, %d worker replicas × concurrency %d\n", n, c, replicas, wc)
	fmt.Printf("%-44s %10.0f /s\n", "raw JetStream publish+consume+ack (median)", mr)
	fmt.Printf("%-44s %10.0f /s\n", "job round trip submit→succeeded (median)", mt)
	fmt.Printf("%-44s %10.2f  (target ≥ %.2f)\n", "ratio round trip / raw", ratio, minRatio)
	if minRatio > 0 && ratio < minRatio {
		return fmt.Errorf("ratio %.3f below the target %.3f", ratio, minRatio)
	}
	return nil
}

// rawRound: c goroutines publish n messages awaiting each PubAck; one pull
// consumer with c messages in flight acks them; the clock stops at the
// last ack.
func rawRound(url string, n, c, round int) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	name := fmt.Sprintf("RAW%d", round)
	subj := fmt.Sprintf("raw%d.x", round)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(ctx, name) }()
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return 0, err
	}
	var acked atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if acked.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(c))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	body := []byte(`{"id":"01JD0000000000000000000000","kind":"bench.noop"}`)
	start := time.Now()
	if err := fanOut(n, c, func(int) error { _, err := js.Publish(ctx, subj, body); return err }); err != nil {
		return 0, err
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("only %d of %d acked", acked.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// tripRound: c goroutines Submit n jobs; `replicas` worker replicas of
// concurrency wc run a no-op handler; the clock stops when every record
// reads succeeded (checked after the clock stops).
func tripRound(url string, n, c, replicas, wc, round int, log *slog.Logger) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := bus.Attach(ctx, nc, bus.Settings{Replicas: 1}, true, log)
	if err != nil {
		return 0, err
	}
	kind := fmt.Sprintf("bench%d", round)
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { wcancel(); wg.Wait() }()
	for i := range replicas {
		wnc, err := nats.Connect(url)
		if err != nil {
			return 0, err
		}
		defer wnc.Close() //nolint:revive // one connection per replica, closed when the round ends
		wb, err := bus.Attach(ctx, wnc, bus.Settings{Replicas: 1}, false, log)
		if err != nil {
			return 0, err
		}
		wg.Go(func() {
			_ = worker.Run(wctx, wb, worker.Options{Kind: kind, WorkerID: fmt.Sprintf("bench-%d", i), Concurrency: wc, Log: log,
				Handlers: map[string]worker.Handler{kind + ".noop": func(context.Context, *worker.Job) (any, error) { return nil, nil }}})
		})
	}

	p := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), 3)
	start := time.Now()
	if err := fanOut(n, c, func(int) error {
		_, _, err := p.Submit(ctx, jobs.Submission{Args: jobs.RawArgs{JobKind: kind + ".noop"}, SubmittedBy: "bench"})
		return err
	}); err != nil {
		return 0, err
	}
	// A worker acknowledges a command only after the succeeded record is
	// stored, so an empty JOBS stream means every record reads succeeded.
	// Polling the stream's state keeps the measurement from loading the
	// server the way a watch on every record write would.
	if err := waitStreamEmpty(ctx, b.JS, 2*time.Minute); err != nil {
		return 0, err
	}
	rate := float64(n) / time.Since(start).Seconds()
	// Untimed check of what the clock claimed.
	recs, err := jobs.NewStore(b.Jobs).List(ctx, jobs.Filter{Kind: kind + ".noop", Limit: n + 1})
	if err != nil {
		return 0, err
	}
	ok := 0
	for _, r := range recs {
		if r.State == jobs.Succeeded {
			ok++
		}
	}
	if ok != n {
		return 0, fmt.Errorf("%d of %d jobs succeeded", ok, n)
	}
	return rate, nil
}

func waitStreamEmpty(ctx context.Context, js jetstream.JetStream, within time.Duration) error {
	s, err := js.Stream(ctx, bus.StreamJobs)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d commands still in JOBS after %s", info.State.Msgs, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func fanOut(n, c int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c)
	for range c {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := f(int(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
