package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// Accepted is the 202 answer of every route that queues a job.
type Accepted struct {
	Status    string      `json:"status"`
	TaskID    string      `json:"task_id"`
	Message   string      `json:"message"`
	StatusURL string      `json:"status_url"`
	Job       jobs.Record `json:"job"`
}

// JobFilter narrows Jobs: a kind of jobs.Kinds, a state, at most Limit
// (1–500, the API's default 50).
type JobFilter struct {
	Kind  string
	State jobs.State
	Limit int
}

// submit posts a job-queuing request; key, when not empty, is sent as the
// Idempotency-Key.
func (c *Client) submit(ctx context.Context, method, path string, query url.Values, body any, key string) (Accepted, error) {
	r := request{method: method, path: path, query: query, json: body}
	if key != "" {
		r.headers = map[string]string{HeaderIdempotencyKey: key}
	}
	var out Accepted
	err := c.call(ctx, r, &out)
	return out, err
}

// confirm is the ?confirm=true of destructive routes.
func confirm() url.Values { return url.Values{"confirm": {"true"}} }

// SubmitInit queues init.run (POST /admin/db/init).
func (c *Client) SubmitInit(ctx context.Context, key string) (Accepted, error) {
	return c.submit(ctx, http.MethodPost, "/admin/db/init", nil, jobspec.InitArgs{}, key)
}

// SubmitBackup queues backup.create (POST /admin/db/backup); the API
// accepts only Components and Note.
func (c *Client) SubmitBackup(ctx context.Context, args jobspec.BackupCreateArgs, key string) (Accepted, error) {
	return c.submit(ctx, http.MethodPost, "/admin/db/backup", nil, args, key)
}

// SubmitVerify queues backup.verify of a listed archive (POST
// /admin/db/backup/{name}/verify).
func (c *Client) SubmitVerify(ctx context.Context, args jobspec.BackupVerifyArgs, key string) (Accepted, error) {
	return c.submit(ctx, http.MethodPost, "/admin/db/backup/"+escape(args.Name)+"/verify", nil, nil, key)
}

// SubmitPrune queues backup.prune (POST /admin/db/backup/prune).
func (c *Client) SubmitPrune(ctx context.Context, args jobspec.BackupPruneArgs, key string) (Accepted, error) {
	return c.submit(ctx, http.MethodPost, "/admin/db/backup/prune", nil, args, key)
}

// SubmitRestore queues restore.run of args.Archive (POST
// /admin/db/backup/restore/{name}?confirm=true; admin). The archive is
// the path's; the body is the rest of args.
func (c *Client) SubmitRestore(ctx context.Context, args jobspec.RestoreArgs, key string) (Accepted, error) {
	body, err := withoutField(args, "archive")
	if err != nil {
		return Accepted{}, err
	}
	return c.submit(ctx, http.MethodPost, "/admin/db/backup/restore/"+escape(args.Archive), confirm(), body, key)
}

// withoutField is v's JSON object without one field (a route that takes
// it from its path refuses it in the body).
func withoutField(v any, field string) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode %T: %w", v, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("client: encode %T: %w", v, err)
	}
	delete(m, field)
	return m, nil
}

// SubmitTrain queues chroma.train (POST /admin/db/chroma/train).
func (c *Client) SubmitTrain(ctx context.Context, args jobspec.ChromaTrainArgs, key string) (Accepted, error) {
	return c.submit(ctx, http.MethodPost, "/admin/db/chroma/train", nil, args, key)
}

// SubmitClear queues chroma.clear of one collection or, with an empty
// CollectionName, all three (DELETE /admin/db/chroma/clear?confirm=true; admin).
func (c *Client) SubmitClear(ctx context.Context, args jobspec.ChromaClearArgs, key string) (Accepted, error) {
	q := confirm()
	setIf(q, "collection_name", args.CollectionName)
	return c.submit(ctx, http.MethodDelete, "/admin/db/chroma/clear", q, nil, key)
}

// Jobs lists recent jobs, newest first (GET /admin/db/tasks).
func (c *Client) Jobs(ctx context.Context, f JobFilter) ([]jobs.Record, error) {
	q := url.Values{}
	setIf(q, "kind", f.Kind)
	setIf(q, "state", string(f.State))
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out struct {
		Tasks []jobs.Record `json:"tasks"`
		Count int           `json:"count"`
	}
	err := c.get(ctx, "/admin/db/tasks", q, &out)
	return out.Tasks, err
}

// Job reads one job record (GET /admin/db/tasks/{id}).
func (c *Client) Job(ctx context.Context, id string) (jobs.Record, error) {
	var out jobs.Record
	err := c.get(ctx, "/admin/db/tasks/"+escape(id), nil, &out)
	return out, err
}

// Cancel cancels a job (DELETE /admin/db/tasks/{id}): a queued job at
// once, a running one at its next step (the record then has
// CancelRequested). A final job is a 409 conflict.
func (c *Client) Cancel(ctx context.Context, id string) (jobs.Record, error) {
	var out jobs.Record
	err := c.call(ctx, request{method: http.MethodDelete, path: "/admin/db/tasks/" + escape(id)}, &out)
	return out, err
}

// Watch follows a job's Server-Sent Events (GET
// /admin/db/tasks/{id}/events): fn gets the record at once and on every
// change. It returns the final record when the job ends, or the error
// that stopped the stream (ctx's, a dropped connection: io.ErrUnexpectedEOF).
func (c *Client) Watch(ctx context.Context, id string, fn func(jobs.Record)) (jobs.Record, error) {
	path := "/admin/db/tasks/" + escape(id) + "/events"
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, headers: map[string]string{"Accept": "text/event-stream"}})
	if err != nil {
		return jobs.Record{}, err
	}
	defer resp.Body.Close()
	var last jobs.Record
	seen := false
	err = readEvents(resp.Body, func(event string, data []byte) error {
		if event != "job" {
			return nil
		}
		var rec jobs.Record
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("client: %s: decode event: %w", path, err)
		}
		last, seen = rec, true
		if fn != nil {
			fn(rec)
		}
		if rec.State.Final() {
			return errStop
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		return last, nil
	case ctx.Err() != nil:
		return last, fmt.Errorf("client: watch %s: %w", id, ctx.Err())
	case err != nil:
		return last, fmt.Errorf("client: watch %s: %w", id, err)
	case seen && last.State.Final():
		return last, nil
	}
	return last, fmt.Errorf("client: watch %s: stream ended before the job did: %w", id, io.ErrUnexpectedEOF)
}

// WaitUnreachable is how long Wait keeps reconnecting to an API that does
// not answer at all before it gives up with the ErrUnreachable error.
const WaitUnreachable = 2 * time.Minute

// Wait follows a job until it is final, as Watch, and comes back after a
// dropped stream (a restarted API, a proxy's timeout): it reconnects with
// backoff up to 30 s between tries and gives up when ctx ends, when the
// API answers with an error (401, 404, …), or when it has not answered at
// all for WaitUnreachable. A failed or cancelled job is not an error: look
// at the record's State.
func (c *Client) Wait(ctx context.Context, id string, fn func(jobs.Record)) (jobs.Record, error) {
	backoff := 250 * time.Millisecond
	answered := time.Now()
	for {
		rec, err := c.Watch(ctx, id, func(r jobs.Record) {
			answered = time.Now()
			if fn != nil {
				fn(r)
			}
		})
		if err == nil {
			return rec, nil
		}
		var apiErr *Error
		if errors.As(err, &apiErr) || ctx.Err() != nil {
			return rec, err
		}
		if errors.Is(err, ErrUnreachable) && time.Since(answered) > WaitUnreachable {
			return rec, fmt.Errorf("client: wait for %s: no answer for %s: %w", id, WaitUnreachable, err)
		}
		select {
		case <-ctx.Done():
			return rec, fmt.Errorf("client: wait for %s: %w", id, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

var errStop = errors.New("stop")

// maxEventBytes bounds one Server-Sent Event's data (a record with a large
// result).
const maxEventBytes = 8 << 20

// readEvents reads a text/event-stream, calling fn with each event's name
// ("message" when none was given) and data; comments and ids are skipped.
// It stops at the first error fn returns.
func readEvents(r io.Reader, fn func(event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventBytes)
	event := ""
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data.Len() > 0 {
				name := event
				if name == "" {
					name = "message"
				}
				if err := fn(name, bytes.TrimSuffix(data.Bytes(), []byte("\n"))); err != nil {
					return err
				}
			}
			event = ""
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}
