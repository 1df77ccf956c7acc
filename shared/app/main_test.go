package app_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/testkit"
)

// get fetches url and returns its status and body; err when nothing answers.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestRunServesMetricsAddrWhileTheServiceRuns runs services through
// app.Run against a real NATS server and checks the METRICS_ADDR server:
// it answers /metrics and /healthz while run runs (a worker binary),
// stops when run returns, is not started for a process that serves
// /metrics on its own port (the API), and an address it cannot listen on
// fails Run before run is called.
func TestRunServesMetricsAddrWhileTheServiceRuns(t *testing.T) {
	t.Parallel()
	_, ns := testkit.Bus(t)
	for _, tc := range []struct {
		name       string
		ownPort    bool
		addrTaken  bool
		wantServed bool
		wantRunErr bool
		wantCalled bool
	}{
		{name: "worker: METRICS_ADDR served while running", wantServed: true, wantCalled: true},
		{name: "metrics on own port: METRICS_ADDR left alone", ownPort: true, wantCalled: true},
		{name: "address taken: Run fails before run", addrTaken: true, wantRunErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			addr := testkit.FreeAddr(t)
			if tc.addrTaken {
				ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			vars := map[string]string{"NATS_URL": ns.ClientURL(), "DATA_DIR": t.TempDir(), "METRICS_ADDR": addr}
			called := false
			errDone := errors.New("run done")
			err := app.Run(ctx, env(vars), io.Discard, app.Options{Name: "insightops-test", SystemDB: true, MetricsOnOwnPort: tc.ownPort},
				func(ctx context.Context, deps app.Deps) error {
					called = true
					if deps.Bus == nil || deps.DB == nil {
						t.Error("run got no bus or no System DB")
					}
					for _, path := range []string{"/metrics", "/healthz"} {
						status, body, err := get(ctx, "http://"+addr+path)
						switch {
						case tc.wantServed && (err != nil || status != http.StatusOK):
							t.Errorf("GET %s while running: %d %v, want 200", path, status, err)
						case tc.wantServed && path == "/metrics" && !strings.Contains(body, "go_goroutines"):
							t.Errorf("GET /metrics: no go_goroutines sample in\n%s", body)
						case !tc.wantServed && err == nil:
							t.Errorf("GET %s answered %d, want nothing listening", path, status)
						}
					}
					return errDone
				})
			if called != tc.wantCalled {
				t.Errorf("run called: %v, want %v", called, tc.wantCalled)
			}
			switch {
			case tc.wantRunErr && (err == nil || !strings.Contains(err.Error(), "METRICS_ADDR")):
				t.Errorf("Run: %v, want a METRICS_ADDR listen error", err)
			case !tc.wantRunErr && !errors.Is(err, errDone):
				t.Errorf("Run: %v, want run's own error", err)
			}
			if tc.wantServed {
				if status, _, err := get(ctx, "http://"+addr+"/healthz"); err == nil {
					t.Errorf("GET /healthz after Run returned: %d, want the server stopped", status)
				}
			}
		})
	}
}
