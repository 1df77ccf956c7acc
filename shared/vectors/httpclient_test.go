package vectors_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/vectors"
)

// TestRequestsAreBoundedByTheTimeout points a client at a server that
// accepts connections and never answers (a hung Chroma): each request
// ends with ErrUnavailable after Options.Timeout, although the caller's
// context would allow far longer. (chroma-go's own WithTimeout bounds
// nothing; before vectors.New gave it an http.Client with the timeout,
// this hung until the context ended.)
func TestRequestsAreBoundedByTheTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, never answered
		}
	}()
	c, err := vectors.New("http://"+ln.Addr().String(), vectors.NewLocal(0), vectors.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = c.Heartbeat(ctx)
	if !errors.Is(err, vectors.ErrUnavailable) {
		t.Fatalf("heartbeat against a server that never answers: %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the request ran until the caller's context ended (%v): Options.Timeout bounded nothing", err)
	}
}

// TestNewLeavesTheDefaultHTTPClientAlone: building a client does not
// change http.DefaultClient for the rest of the process (chroma-go v0.3.5
// sets its Transport; vectors.New puts it back).
func TestNewLeavesTheDefaultHTTPClientAlone(t *testing.T) {
	// Not parallel: reads http.DefaultClient, a process global every vectors.New writes.
	before := http.DefaultClient.Transport
	c, err := vectors.New("http://127.0.0.1:1", vectors.NewLocal(0), vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if http.DefaultClient.Transport != before {
		t.Fatalf("http.DefaultClient.Transport changed from %v to %T", before, http.DefaultClient.Transport)
	}
}
