// Package allinonetest starts the real all-in-one (allinone.Run: embedded
// NATS, SQLite, every worker and the API) inside a test's process, on a
// free loopback port and the shipped demo target DB, for the tests of the
// all-in-one, the console and insightctl.
package allinonetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
)

// AdminEmail is the admin a fresh all-in-one's first-start init creates
// (with config.DefaultAdminPassword in development).
const AdminEmail = "admin@example.com"

// Options says how to start one instance.
type Options struct {
	// DataDir is its DATA_DIR (empty: a fresh t.TempDir()).
	DataDir string
	// Vars are environment variables over the defaults (a free API_ADDR,
	// NATS on a free port, the demo target DB enabled, 5 s ack wait and
	// shutdown).
	Vars map[string]string
	// LogTo receives its JSON log lines (nil: the test's logger).
	LogTo io.Writer
	// Name is its process name in logs (empty: "test-allinone").
	Name string
}

// Instance is one running all-in-one, stopped when the test ends.
type Instance struct {
	// URL is the API's base URL.
	URL string
	// Config is its configuration.
	Config config.Config
	// Deps are its open stores and bus.
	Deps app.Deps
	// Banner is what Run printed.
	Banner *Buffer

	stopOnce sync.Once
	stopErr  error
	stop     func() error
}

// Start runs an all-in-one and waits until its /health answers 200.
func Start(t testing.TB, o Options) *Instance {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	vars := map[string]string{
		"DATA_DIR": o.DataDir, "API_ADDR": testkit.FreeAddr(t), "NATS_LISTEN": "127.0.0.1:0",
		"TARGET_DB_SOURCE": "../../../assets/databases/vanna_db.db", "ASSETS_DIR": "../../../assets",
		"ENABLE_TARGET_DB": "true", "JOB_ACK_WAIT": "5s", "SHUTDOWN_TIMEOUT": "5s",
	}
	maps.Copy(vars, o.Vars)
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := testkit.Logger(t)
	if o.LogTo != nil {
		log = app.NewLoggerFormat(o.LogTo, "debug", "json")
	}
	name := o.Name
	if name == "" {
		name = "test-allinone"
	}
	ctx, cancel := context.WithCancel(context.Background())
	deps, closeAll, err := app.OpenWith(ctx, cfg, log, app.Options{Name: name, SystemDB: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	in := &Instance{URL: "http://" + cfg.APIAddr, Config: cfg, Deps: deps, Banner: &Buffer{}}
	done := make(chan error, 1)
	go func() { done <- allinone.Run(ctx, deps, in.Banner) }()
	in.stop = func() error {
		cancel()
		defer closeAll()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return fmt.Errorf("all-in-one did not stop within 20s")
		}
	}
	// A test that checks the shutdown calls Stop itself; at cleanup a slow
	// drain (SHUTDOWN_TIMEOUT 5s on a loaded machine, a browser's open
	// connections) is logged, not a failure of the test that ran.
	t.Cleanup(func() {
		if err := in.Stop(); err != nil {
			t.Logf("all-in-one stopped with %v", err)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, in.URL+"/health", http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := testkit.HTTP.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the instance and waits for Run to return (once; later calls
// return the first result).
func (in *Instance) Stop() error {
	in.stopOnce.Do(func() { in.stopErr = in.stop() })
	return in.stopErr
}

// Buffer is a bytes.Buffer safe for Run's goroutine to write while the
// test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
