// Package client is a typed Go client of the insightops HTTP API: log in,
// submit jobs with the shared/jobspec Args types, read and watch their
// jobs.Record (Server-Sent Events), list, download and import backup
// archives, read the knowledge base, the audit trail and health, and manage
// users and service tokens.
//
// Every failure the API answers is a *Error carrying the HTTP status and
// the API's error code ({"error": {"code", "message"}}); a server that
// cannot be reached is an error matching ErrUnreachable:
//
//	c, _ := client.New("http://127.0.0.1:8000", client.WithToken(tok))
//	acc, err := c.SubmitBackup(ctx, jobspec.BackupCreateArgs{Note: "nightly"}, "")
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.Code == "lock_held" { … }
//	rec, err := c.Wait(ctx, acc.TaskID, func(r jobs.Record) { fmt.Println(r.Progress, r.Step) })
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HeaderIdempotencyKey makes a retried submission return the first job.
const HeaderIdempotencyKey = "Idempotency-Key"

// Client talks to one insightops API. Its zero value is not usable: New
// makes one. A Client is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
	strict    bool
}

// Option configures a Client.
type Option func(*Client)

// WithToken authenticates every request with "Authorization: Bearer
// token": a login token (POST /auth/login) or a service token (iops_…).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sends the requests with hc (its Timeout, if any, also
// bounds event streams and downloads; leave it 0 and use contexts).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithStrictDecoding makes every JSON answer with a field this package's
// types do not know an error. Tests use it to catch a drift between these
// types and the API's.
func WithStrictDecoding() Option { return func(c *Client) { c.strict = true } }

// New returns a client of the API at baseURL (http or https, e.g.
// "http://127.0.0.1:8000"; a path prefix is kept for an API behind a
// proxy).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: API URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: API URL %q: want http://host:port or https://host:port", baseURL)
	}
	if u.User != nil {
		return nil, errors.New("client: API URL must not hold credentials; use a token")
	}
	c := &Client{base: u, http: &http.Client{}, userAgent: "insightops-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL is the API's URL as given to New.
func (c *Client) BaseURL() string { return c.base.String() }

// Token is the token the client sends ("" for none).
func (c *Client) Token() string { return c.token }

// WithToken returns a copy of c sending token instead.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// request is one call: method, path (with its query), a JSON body or a
// raw one, and extra headers.
type request struct {
	method  string
	path    string
	query   url.Values
	json    any
	body    io.Reader
	ctype   string
	length  int64
	headers map[string]string
}

// do sends r and returns the response when its status is 2xx; any other
// status is read as the API's error body and returned as *Error, a
// transport failure as an error matching ErrUnreachable. The caller closes
// the body.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	body := r.body
	ctype := r.ctype
	if r.json != nil {
		b, err := json.Marshal(r.json)
		if err != nil {
			return nil, fmt.Errorf("client: encode %s %s body: %w", r.method, r.path, err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	if r.length > 0 {
		req.ContentLength = r.length
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, ctx.Err())
		}
		return nil, &UnreachableError{URL: c.base.String(), Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp, r.method, r.path)
}

// call sends r and decodes a 2xx JSON answer into out (nil: discard it).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := c.decode(resp.Body, out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", r.method, r.path, err)
	}
	return nil
}

func (c *Client) decode(r io.Reader, out any) error {
	dec := json.NewDecoder(r)
	if c.strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// get is a GET of path with query, decoded into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.call(ctx, request{method: http.MethodGet, path: path, query: query}, out)
}

// escape makes one path segment of a name or id.
func escape(s string) string { return url.PathEscape(s) }

// timeOrZero formats t as RFC 3339, "" for the zero time.
func timeOrZero(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// setIf adds key=value to q when value is not empty.
func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
