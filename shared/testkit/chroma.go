package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ChromaBin is the Chroma CLI installed by `make chroma-install`, relative
// to the repository root (the directory holding go.work).
const ChromaBin = "deploy/chroma/node_modules/.bin/chroma"

// ChromaStartTimeout bounds how long a Chroma server may take to answer
// its heartbeat after it was started.
const ChromaStartTimeout = 60 * time.Second

// ChromaServer is a Chroma 1.0 server run from the repository's pinned npm
// package, listening on a loopback port.
type ChromaServer struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Dir holds its data (--path).
	Dir string
	// Log is the file its output goes to.
	Log string

	proc *process
}

// Chroma starts a Chroma server for this test on a free port with its data
// in a temp dir, and kills it (its whole process group) when the test ends.
// When the CLI is missing (run `make chroma-install`) or the server does
// not come up, the test is Unavailable: skipped, or failed under CI.
func Chroma(t testing.TB) *ChromaServer {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		Unavailable(t, "Chroma", err)
		return nil
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*ChromaStartTimeout)
	defer cancel()
	srv, err := StartChroma(ctx, root, dir)
	if err != nil {
		Unavailable(t, "Chroma", err)
		return nil
	}
	t.Cleanup(srv.Stop)
	return srv
}

// RepoRoot finds the repository root: the nearest directory, from the
// working directory up, that holds go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.work above the working directory")
		}
		dir = parent
	}
}

// StartChroma starts `chroma run` from root's npm package with its data in
// dir, on a free loopback port, and waits for its heartbeat. It retries on
// another port if the first one was taken meanwhile. Stop ends it.
func StartChroma(ctx context.Context, root, dir string) (*ChromaServer, error) {
	bin := filepath.Join(root, ChromaBin)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s is missing (run `make chroma-install`; it needs Node.js and npm): %w", ChromaBin, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chroma dir: %w", err)
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		srv, err := startChromaOn(ctx, bin, dir, port, attempt)
		if err == nil {
			return srv, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startChromaOn(ctx context.Context, bin, dir string, port, attempt int) (*ChromaServer, error) {
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "run", "--path", data, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "ANONYMIZED_TELEMETRY=False")
	p, err := startProcess("chroma", cmd, filepath.Join(dir, fmt.Sprintf("chroma-%d.log", attempt)))
	if err != nil {
		return nil, err
	}
	srv := &ChromaServer{URL: "http://127.0.0.1:" + strconv.Itoa(port), Dir: data, Log: p.log, proc: p}
	if err := p.waitReady(ctx, srv.URL+"/api/v2/heartbeat", ChromaStartTimeout, 100*time.Millisecond,
		func() bool { return heartbeat(ctx, srv.URL) == nil }); err != nil {
		return nil, err
	}
	return srv, nil
}

// Stop kills the server's process group (SIGTERM, then SIGKILL after 5s)
// and waits for it to exit. It may be called more than once.
func (s *ChromaServer) Stop() { s.proc.stop() }

func heartbeat(ctx context.Context, base string) error {
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, base+"/api/v2/heartbeat", http.NoBody)
	if err != nil {
		return err
	}
	res, err := HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("heartbeat")) {
		return fmt.Errorf("heartbeat: %d %s", res.StatusCode, body)
	}
	return nil
}

// tail returns the last lines of a log file for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "log tail:\n" + strings.Join(lines, "\n")
}
