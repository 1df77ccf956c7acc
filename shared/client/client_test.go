package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestReadEventsParsesTheEventStream: events by name, data over several
// lines joined with newlines, comments and unknown fields skipped, an
// event without a name is "message", and a trailing event without its
// blank line is not delivered.
func TestReadEventsParsesTheEventStream(t *testing.T) {
	stream := ": stream of task X\n\n" +
		"event: job\ndata: {\"a\":1}\n\n" +
		": keep-alive\n\n" +
		"id: 7\nevent: job\ndata: {\"b\":\ndata: 2}\n\n" +
		"data:plain\n\n" +
		"event: job\ndata: {\"cut\":"
	type ev struct{ name, data string }
	var got []ev
	err := readEvents(strings.NewReader(stream), func(name string, data []byte) error {
		got = append(got, ev{name, string(data)})
		return nil
	})
	want := []ev{{"job", `{"a":1}`}, {"job", "{\"b\":\n2}"}, {"message", "plain"}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q (%v), want %q", got, err, want)
	}
	stop := errors.New("stop")
	n := 0
	err = readEvents(strings.NewReader(stream), func(string, []byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("a callback's error stops the stream: %v after %d events", err, n)
	}
}

func response(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"3"}}, Body: io.NopCloser(strings.NewReader(body))}
}

// TestErrorCarriesTheStatusAndTheAPICode: the API's error body becomes
// Code and Message; another body keeps the status as http_<status>; Is
// matches by code, by status or both.
func TestErrorCarriesTheStatusAndTheAPICode(t *testing.T) {
	e := readError(response(409, `{"error":{"code":"lock_held","message":"system is held by restore.run"}}`), "POST", "/admin/db/backup")
	if e.Status != 409 || e.Code != "lock_held" || e.Message != "system is held by restore.run" || e.RetryAfter != "3" {
		t.Fatalf("%+v", e)
	}
	var err error = fmt.Errorf("backup: %w", e)
	if !errors.Is(err, &Error{Code: "lock_held"}) || !errors.Is(err, &Error{Status: 409}) || errors.Is(err, &Error{Code: "not_found"}) ||
		errors.Is(err, &Error{}) || StatusOf(err) != 409 || CodeOf(err) != "lock_held" {
		t.Fatalf("matching %v", err)
	}
	if got := readError(response(502, "<html>bad gateway</html>"), "GET", "/x"); got.Code != "http_502" || got.Message != "<html>bad gateway</html>" {
		t.Fatalf("a proxy's answer: %+v", got)
	}
	un := fmt.Errorf("list: %w", &UnreachableError{URL: "http://x", Err: io.ErrUnexpectedEOF})
	if !errors.Is(un, ErrUnreachable) || !errors.Is(un, io.ErrUnexpectedEOF) || StatusOf(un) != 0 {
		t.Fatalf("unreachable: %v", un)
	}
	if !errors.Is(&DigestError{Name: "a", WantSize: -1}, ErrDigestMismatch) {
		t.Fatal("a DigestError is ErrDigestMismatch")
	}
}

// TestNewRefusesURLsItCannotUse: only http(s) with a host, no credentials.
func TestNewRefusesURLsItCannotUse(t *testing.T) {
	for _, u := range []string{"127.0.0.1:8000", "ftp://h", "http://", "http://user:pw@h:1"} {
		if _, err := New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := New("https://ops.example.com/insight/", WithToken("t"))
	if err != nil || c.BaseURL() != "https://ops.example.com/insight" || c.Token() != "t" || c.WithToken("u").Token() != "u" || c.Token() != "t" {
		t.Fatalf("%v %v", c, err)
	}
}
