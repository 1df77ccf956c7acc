// Package loadtest is insightops' load generator: against a running API it
// logs in, then for a duration keeps a fixed number of clients each
// submitting a cheap job (a backup prune dry run) and polling it to its
// final state, and reports submission and poll latencies, throughput,
// errors and how many submitted jobs completed. cmd/loadgen runs it
// against a URL; the package's test runs it against an in-process
// all-in-one and also checks that goroutines and heap come back down.
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a run.
type Options struct {
	// BaseURL is the API, e.g. http://127.0.0.1:8000.
	BaseURL string
	// Token is a bearer token of an operator or admin (see Login).
	Token string
	// Duration is how long clients keep submitting; jobs submitted
	// before it ends are still polled to their final state.
	Duration time.Duration
	// Concurrency is the number of clients, each with one job in flight.
	Concurrency int
	// PollInterval is the pause between two polls of one job (default 20ms).
	PollInterval time.Duration
	// JobTimeout bounds how long one job may take to become final before
	// it counts as lost (default 2m).
	JobTimeout time.Duration
	// Client is the HTTP client (default: a new one with its own transport,
	// closed at the end of Run).
	Client *http.Client
}

// Latencies summarises a set of request durations.
type Latencies struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// String is "n=… p50=… p99=… max=…".
func (l Latencies) String() string {
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", l.Count, l.P50.Round(10*time.Microsecond), l.P99.Round(10*time.Microsecond), l.Max.Round(10*time.Microsecond))
}

func summarise(ds []time.Duration) Latencies {
	if len(ds) == 0 {
		return Latencies{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Latencies{Count: len(s), P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

// Stats are the measured outcome of a run.
type Stats struct {
	Elapsed   time.Duration `json:"elapsed_ns"`
	Submitted int           `json:"jobs_submitted"`
	// Completed jobs reached a final state; Succeeded of them succeeded.
	Completed int `json:"jobs_completed"`
	Succeeded int `json:"jobs_succeeded"`
	// Requests counts every HTTP request (submissions and polls).
	Requests int `json:"requests"`
	// Errors counts transport errors, unexpected statuses or bodies,
	// jobs ending other than succeeded and jobs not final in time.
	Errors int `json:"errors"`
	// ErrorSamples are the first few errors.
	ErrorSamples []string  `json:"error_samples,omitempty"`
	Submit       Latencies `json:"submit"`
	Poll         Latencies `json:"poll"`
	// JobsPerSecond is completed jobs per second of Elapsed.
	JobsPerSecond float64 `json:"jobs_per_second"`
	// RequestsPerSecond is HTTP requests per second of Elapsed.
	RequestsPerSecond float64 `json:"requests_per_second"`
}

const maxErrorSamples = 10

// Login returns a bearer token for email and password.
func Login(ctx context.Context, client *http.Client, baseURL, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/auth/login", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login: status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("login: no token in %q", data)
	}
	return out.Token, nil
}

// collector gathers the clients' measurements.
type collector struct {
	mu        sync.Mutex
	stats     Stats
	submitLat []time.Duration
	pollLat   []time.Duration
}

func (c *collector) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Errors++
	if len(c.stats.ErrorSamples) < maxErrorSamples {
		c.stats.ErrorSamples = append(c.stats.ErrorSamples, fmt.Sprintf(format, args...))
	}
}

func (c *collector) add(f func(s *Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.stats)
}

// Run drives the load and returns what it measured. It returns an error
// only for bad options or a cancelled ctx; failures of the API are counted
// in Stats.Errors.
func Run(ctx context.Context, o Options) (Stats, error) {
	if o.BaseURL == "" || o.Token == "" || o.Duration <= 0 || o.Concurrency <= 0 {
		return Stats{}, errors.New("loadtest: BaseURL, Token, Duration and Concurrency are required")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 2 * time.Minute
	}
	if o.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = o.Concurrency
		o.Client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
		defer tr.CloseIdleConnections()
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")

	col := &collector{}
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				client(ctx, o, col)
			}
		}()
	}
	wg.Wait()
	st := col.stats
	st.Elapsed = time.Since(start)
	st.Submit, st.Poll = summarise(col.submitLat), summarise(col.pollLat)
	if secs := st.Elapsed.Seconds(); secs > 0 {
		st.JobsPerSecond = float64(st.Completed) / secs
		st.RequestsPerSecond = float64(st.Requests) / secs
	}
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("loadtest: %w", err)
	}
	return st, nil
}

// accepted is the part of the 202 body the load reads.
type accepted struct {
	TaskID string `json:"task_id"`
}

// task is the part of the job record the load reads.
type task struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// client submits one job and polls it to its final state.
func client(ctx context.Context, o Options, col *collector) {
	var acc accepted
	code, lat, err := call(ctx, o, http.MethodPost, "/admin/db/backup/prune", []byte(`{"dry_run":true}`), &acc)
	col.add(func(s *Stats) { s.Requests++ })
	if err != nil || code != http.StatusAccepted || acc.TaskID == "" {
		if ctx.Err() == nil {
			col.fail("submit: status %d, task %q: %v", code, acc.TaskID, err)
		}
		return
	}
	col.add(func(s *Stats) { s.Submitted++ })
	col.mu.Lock()
	col.submitLat = append(col.submitLat, lat)
	col.mu.Unlock()

	jobDeadline := time.Now().Add(o.JobTimeout)
	for {
		var rec task
		code, lat, err := call(ctx, o, http.MethodGet, "/admin/db/tasks/"+acc.TaskID, nil, &rec)
		col.add(func(s *Stats) { s.Requests++ })
		if ctx.Err() != nil {
			return
		}
		if err != nil || code != http.StatusOK || rec.ID != acc.TaskID {
			col.fail("poll %s: status %d: %v", acc.TaskID, code, err)
			return
		}
		col.mu.Lock()
		col.pollLat = append(col.pollLat, lat)
		col.mu.Unlock()
		switch rec.State {
		case "succeeded":
			col.add(func(s *Stats) { s.Completed++; s.Succeeded++ })
			return
		case "failed", "cancelled":
			col.add(func(s *Stats) { s.Completed++ })
			msg := ""
			if rec.Error != nil {
				msg = rec.Error.Code + ": " + rec.Error.Message
			}
			col.fail("job %s ended %s %s", acc.TaskID, rec.State, msg)
			return
		case "queued", "running":
		default:
			col.fail("job %s in unknown state %q", acc.TaskID, rec.State)
			return
		}
		if time.Now().After(jobDeadline) {
			col.fail("job %s still %s after %s", acc.TaskID, rec.State, o.JobTimeout)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.PollInterval):
		}
	}
}

// call does one request and decodes a JSON answer into out.
func call(ctx context.Context, o Options, method, path string, body []byte, out any) (int, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.BaseURL+path, rd)
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+o.Token)
	start := time.Now()
	resp, err := o.Client.Do(req)
	if err != nil {
		return 0, time.Since(start), fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	lat := time.Since(start)
	if err != nil {
		return resp.StatusCode, lat, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, lat, fmt.Errorf("%s %s: %s", method, path, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, lat, fmt.Errorf("%s %s: decode %q: %w", method, path, data, err)
	}
	return resp.StatusCode, lat, nil
}
