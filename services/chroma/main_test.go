package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/testkit"
)

// TestBinaryServesMetricsAddr builds the chroma binary, starts it against a
// real NATS server with METRICS_ADDR set and scrapes /metrics and /healthz
// (the probes of deploy/k8s/worker-chroma.yaml); SIGTERM then stops it
// with exit status 0.
func TestBinaryServesMetricsAddr(t *testing.T) {
	t.Parallel()
	_, ns := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "chroma")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := testkit.FreeAddr(t)
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "NATS_URL="+ns.ClientURL(), "DATA_DIR="+t.TempDir(), "METRICS_ADDR="+addr,
		"DATABASE_URL=", "CHROMA_URL=")
	logPath := filepath.Join(t.TempDir(), "stderr.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill() // a no-op once it exited
		if err := <-exited; err != nil {
			t.Logf("chroma binary: %v", err)
		}
	}()

	// The binary opens its bus and System DB before it serves.
	scrapeCtx, cancelScrape := context.WithTimeout(ctx, 30*time.Second)
	defer cancelScrape()
	for _, tc := range []struct {
		path, want string
	}{
		{"/metrics", "go_goroutines"},
		{"/healthz", "ok"},
	} {
		body, err := scrape(scrapeCtx, "http://"+addr+tc.path, exited)
		if err != nil {
			t.Fatalf("GET %s: %v\nbinary log:\n%s", tc.path, err, logs())
		}
		if !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: no %q in\n%s", tc.path, tc.want, body)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0\nbinary log:\n%s", err, logs())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("still running 30s after SIGTERM\nbinary log:\n%s", logs())
	}
}

// scrape GETs url until it answers 200, failing when the process exits or
// ctx ends.
func scrape(ctx context.Context, url string, exited chan error) (string, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
		if err != nil {
			return "", err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			body, rerr := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			if err == nil {
				err = errors.New("exit status 0")
			}
			return "", fmt.Errorf("binary exited before serving: %w", err)
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
